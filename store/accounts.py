"""Passwords (Argon2id), single-use emailed links, the second factor (TOTP and recovery codes) and the
rate limits shared by every API replica. docs/design.md, "Accounts and sessions"."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import text
from sqlmodel import Session, col, select

from domain.accounts import RECOVERY_CODES, new_recovery_code, normalise_recovery_code
from domain.errors import Conflict, NotFound
from store.models import AccountLink, RecoveryCode, User, utcnow

HASHER = PasswordHasher()  # Argon2id, the library's current parameters (RFC 9106's second choice)
# Verified when an address has no account, so both answers take about the same time.
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- passwords -----------------------------------------------------------------------------------------


def set_password(user: User, password: str) -> None:
    user.password_hash = HASHER.hash(password)


def password_matches(user: User | None, password: str) -> bool:
    """Whether ``password`` is the user's. With no user (or no password set) a dummy hash is checked,
    so the time taken does not say whether the address has an account. A hash made with older
    parameters is replaced (the caller's transaction stores it)."""
    stored = user.password_hash if user is not None and user.password_hash else None
    try:
        HASHER.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    if stored is None or user is None:
        return False
    if HASHER.check_needs_rehash(stored):
        user.password_hash = HASHER.hash(password)
    return True


def find_user(*, session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == (email or "").strip().lower()[:254])).first()


# --- single-use links ----------------------------------------------------------------------------------


def new_link(*, session: Session, user: User, purpose: str, lifetime: timedelta) -> str:
    """A random link token for ``user``; only its sha256 is stored. Earlier unused links of the same
    purpose stop working, so only the newest mail counts."""
    for old in session.exec(
        select(AccountLink).where(
            AccountLink.user_id == user.id, AccountLink.purpose == purpose, col(AccountLink.used_at).is_(None)
        )
    ).all():
        old.used_at = utcnow()
        session.add(old)
    secret = secrets.token_urlsafe(32)
    session.add(
        AccountLink(
            purpose=purpose, token_hash=sha256(secret), user_id=user.id, expires_at=utcnow() + lifetime
        )
    )
    session.flush()
    return secret


def use_link(*, session: Session, secret: str, purpose: str, spend: bool = True) -> User:
    """The user a link is for, the link spent (unless ``spend`` is False: a page only shows it).
    Unknown, used or expired links are refused with their own code."""
    row = session.exec(
        select(AccountLink)
        .where(AccountLink.token_hash == sha256(secret or ""), AccountLink.purpose == purpose)
        .with_for_update()
    ).first()
    if row is None or len(secret or "") > 100:
        raise NotFound(
            "this link is not known: check that it was copied whole, or ask for a new one", "link_unknown"
        )
    if row.used_at is not None:
        raise Conflict("this link was used already: each link works once; ask for a new one", "link_used")
    if row.expires_at <= utcnow():
        raise Conflict("this link has expired: ask for a new one", "link_expired")
    user = session.get(User, row.user_id)
    if user is None:
        raise NotFound("this link is not known: ask for a new one", "link_unknown")
    if spend:
        row.used_at = utcnow()
        session.add(row)
    return user


# --- the second factor ---------------------------------------------------------------------------------


def totp_uri(user: User, secret: str, issuer: str = "Workproof") -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=issuer)


def totp_matches(user: User, secret: str, code: str, now: datetime | None = None) -> bool:
    """A 6-digit code of ``secret`` for now (±30 s), never one already used (the step is kept)."""
    code = "".join((code or "").split())
    if not (len(code) == 6 and code.isdigit()):
        return False
    totp = pyotp.TOTP(secret)
    at = now or utcnow()
    step = int(at.timestamp()) // totp.interval
    for candidate in (step - 1, step, step + 1):
        if user.totp_last_step is not None and candidate <= user.totp_last_step:
            continue
        if secrets.compare_digest(totp.at(candidate * totp.interval), code):
            user.totp_last_step = candidate
            return True
    return False


def new_recovery_codes(*, session: Session, user: User) -> list[str]:
    """Fresh recovery codes (shown once); the old ones stop working."""
    drop_recovery_codes(session=session, user_id=user.id)
    codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
    for code in codes:
        session.add(RecoveryCode(user_id=user.id, code_hash=sha256(code)))
    session.flush()
    return codes


def use_recovery_code(*, session: Session, user: User, code: str) -> bool:
    row = session.exec(
        select(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == sha256(normalise_recovery_code(code)),
            col(RecoveryCode.used_at).is_(None),
        )
        .with_for_update()
    ).first()
    if row is None:
        return False
    row.used_at = utcnow()
    session.add(row)
    return True


def drop_recovery_codes(*, session: Session, user_id: uuid.UUID) -> None:
    for row in session.exec(select(RecoveryCode).where(RecoveryCode.user_id == user_id)).all():
        session.delete(row)


def recovery_codes_left(*, session: Session, user_id: uuid.UUID) -> int:
    rows = session.exec(
        select(RecoveryCode).where(RecoveryCode.user_id == user_id, col(RecoveryCode.used_at).is_(None))
    ).all()
    return len(rows)


# --- rate limits ---------------------------------------------------------------------------------------


def hit(*, session: Session, key: str, limit: int, window_seconds: int, count: bool = True) -> int:
    """Count one attempt under ``key`` in the current fixed window; 0 when it may go ahead, else the
    seconds until the window ends. Refused attempts are not counted (waiting always works). In
    PostgreSQL, so every API replica shares the count; call it in a transaction of its own, so a
    failed attempt's rollback does not undo the count."""
    now = utcnow()
    epoch = int(now.timestamp())
    start = epoch - epoch % window_seconds
    window_start = datetime.fromtimestamp(start, tz=now.tzinfo)
    wait = max(1, start + window_seconds - epoch)
    current = session.execute(
        text("SELECT hits FROM rate_buckets WHERE key = :key AND window_start = :start"),
        {"key": key[:200], "start": window_start},
    ).scalar()
    if current is not None and current >= limit:
        return wait
    if count:
        hits = session.execute(
            text(
                "INSERT INTO rate_buckets (key, window_start, hits) VALUES (:key, :start, 1) "
                "ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_buckets.hits + 1 RETURNING hits"
            ),
            {"key": key[:200], "start": window_start},
        ).scalar_one()
        if hits > limit:
            return wait
    if epoch % 97 == 0:  # now and then, forget windows long gone
        session.execute(text("DELETE FROM rate_buckets WHERE window_start < now() - interval '1 day'"))
    return 0
