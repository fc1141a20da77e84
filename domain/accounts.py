"""The rules of accounts: passwords, sign-up modes, link lifetimes, device codes, second factor.
docs/design.md, "Accounts and sessions"."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Literal

from domain.errors import InvalidInput

MIN_PASSWORD = 12
MAX_PASSWORD = 128  # Argon2 takes any length; the bound only keeps a request's cost bounded
SignupMode = Literal["open", "invite", "closed"]
VERIFY_LINK_LIFETIME = timedelta(days=2)
RESET_LINK_LIFETIME = timedelta(hours=1)
INVITATION_LIFETIME = timedelta(days=7)
DEVICE_CODE_LIFETIME = timedelta(minutes=15)
DEVICE_POLL_SECONDS = 2
STAFF_ROLES = ("support", "admin")
RECOVERY_CODES = 10
# Letters that cannot be mistaken for each other when read aloud or typed from a terminal.
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
_USER_CODE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")


def check_password(password: str) -> str:
    """At least 12 characters, at most 128; any characters, no composition rules (NIST SP 800-63B)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"the password is too short: use at least {MIN_PASSWORD} characters", "password_invalid"
        )
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(
            f"the password is too long: use at most {MAX_PASSWORD} characters", "password_invalid"
        )
    return password


def needs_second_factor(role: str) -> bool:
    """Staff move money and read every contract: they enrol a second factor before using the pages."""
    return role in STAFF_ROLES


def new_user_code() -> str:
    letters = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(8))
    return f"{letters[:4]}-{letters[4:]}"


def normalise_user_code(text: str) -> str | None:
    """What a person typed (any case, with or without the dash, spaces) as a code, or None."""
    letters = re.sub(r"[\s-]", "", (text or "").upper())
    code = f"{letters[:4]}-{letters[4:]}"
    return code if _USER_CODE.match(code) else None


def new_recovery_code() -> str:
    return "-".join(secrets.token_hex(3) for _ in range(3))


def normalise_recovery_code(text: str) -> str:
    letters = re.sub(r"[^0-9a-f]", "", (text or "").lower())
    return "-".join(letters[i : i + 6] for i in range(0, len(letters), 6))
