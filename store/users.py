"""Users and their tokens. A token's secret is shown once; only its sha256 is kept."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.errors import Conflict, InvalidInput, NotFound, Unauthorized
from domain.text import MAX_NAME_CHARS, check_text
from store.models import ROLES, ApiToken, User, utcnow

TOKEN_PREFIX = "wp_"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_email(email: str) -> str:
    email = (email or "").strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidInput(f"{email!r} is not an email address such as ana@example.com")
    return email


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is unknown: use one of {', '.join(ROLES)}")
    return role


def create_user(
    *, session: Session, email: str, role: str, name: str = "", timezone: str = "UTC", verified: bool = True
) -> User:
    """A new account. ``verified``: the address is known to be the person's (an admin made the account,
    or an emailed invitation was followed); a sign-up confirms it by link first."""
    email = check_email(email)
    role = check_role(role)
    name = check_text(name, what="name", max_chars=MAX_NAME_CHARS)
    if session.exec(select(User).where(User.email == email)).first():
        raise Conflict(f"a user with email {email} exists already")
    user = User(
        email=email, role=role, name=name.strip() or email.split("@")[0], timezone=timezone,
        email_verified_at=utcnow() if verified else None,
    )  # fmt: skip
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a user with email {email} exists already") from None
    return user


def get_user_by_email(*, session: Session, email: str) -> User:
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        raise NotFound(f"no user with email {email}")
    return user


def issue_token(
    *,
    session: Session,
    user: User,
    days: int = 365,
    name: str = "",
    kind: str = "api",
    lifetime: timedelta | None = None,
    origin: ApiToken | None = None,
    address: str = "",
) -> tuple[str, ApiToken]:
    """A new random token for ``user``; returns (the secret, shown once; the stored row)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        token_hash=hash_token(secret),
        prefix=secret[:10],
        kind=kind,
        name=name[:100],
        csrf_secret=secrets.token_urlsafe(24) if kind == "session" else "",
        expires_at=utcnow() + (lifetime or timedelta(days=days)),
        origin_id=origin.id if origin is not None else None,
        address=address[:64],
    )
    session.add(row)
    session.flush()
    return secret, row


BEARER_KINDS = ("api", "device")  # what `Authorization: Bearer` may carry


def check_secret(secret: str) -> None:
    """The token's form, before any lookup."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise Unauthorized(
            "a valid bearer token is required: send `Authorization: Bearer wp_...`", "token_missing"
        )


def check_standing(
    *, found: bool, kind: str | None, token_kind: str | None, revoked_at: datetime | None,
    expires_at: datetime | None, user_found: bool, disabled_at: datetime | None, now: datetime,
) -> None:  # fmt: skip
    """Unauthorized unless the token is known (of ``kind``), not revoked, not expired, and its user is
    enabled: one set of rules and messages for the ORM check below and the cached one (``store/auth.py``)."""
    kinds = BEARER_KINDS if kind == "api" else (kind,)  # "api": any bearer token (an API or a device token)
    if not found or (kind is not None and token_kind not in kinds):
        raise Unauthorized("this token is not known: ask an admin for a new one", "token_unknown")
    if revoked_at is not None:
        raise Unauthorized("this token was revoked: ask an admin for a new one", "token_revoked")
    if expires_at is None or expires_at <= now:
        raise Unauthorized("this token has expired: ask an admin for a new one", "token_expired")
    if not user_found or disabled_at is not None:
        raise Unauthorized("this account is disabled", "account_disabled")


LAST_USED_EVERY = timedelta(minutes=1)  # ``last_used_at`` is written at most this often per token


def authenticate(*, session: Session, secret: str, kind: str | None = None) -> tuple[User, ApiToken]:
    """The user a token belongs to; raises Unauthorized for a missing, unknown, revoked or expired one."""
    check_secret(secret)
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(secret))).first()
    now = utcnow()
    user = session.get(User, row.user_id) if row is not None else None
    check_standing(
        found=row is not None, kind=kind, token_kind=row.kind if row else None,
        revoked_at=row.revoked_at if row else None, expires_at=row.expires_at if row else None,
        user_found=user is not None, disabled_at=user.disabled_at if user else None, now=now,
    )  # fmt: skip
    assert row is not None and user is not None
    if row.origin_id is not None:  # a session started from a token ends when that token does
        origin = session.get(ApiToken, row.origin_id)
        if origin is None or origin.revoked_at is not None or origin.expires_at <= now:
            raise Unauthorized(
                "the token this session was started with was revoked or expired: sign in again",
                "token_revoked",
            )
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
        row.last_used_at = now  # throttled: not a write on every request
        session.add(row)
    return user, row


def revoke_token(*, session: Session, token_id: uuid.UUID, by: User | None = None) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or (by is not None and by.role != "admin" and row.user_id != by.id):
        raise NotFound("no such token")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
    return row


def list_tokens(
    *, session: Session, user_id: uuid.UUID, kinds: tuple[str, ...] = BEARER_KINDS, live: bool = False
) -> list[ApiToken]:
    query = select(ApiToken).where(ApiToken.user_id == user_id, col(ApiToken.kind).in_(kinds))
    if live:
        query = query.where(col(ApiToken.revoked_at).is_(None), col(ApiToken.expires_at) > utcnow())
    return list(session.exec(query.order_by(col(ApiToken.created_at))).all())


def revoke_all(*, session: Session, user_id: uuid.UUID, kinds: tuple[str, ...] = ("session",)) -> int:
    """End every live session (or token of ``kinds``) of an account; how many ended."""
    rows = list_tokens(session=session, user_id=user_id, kinds=kinds, live=True)
    now = utcnow()
    for row in rows:
        row.revoked_at = now
        session.add(row)
    return len(rows)
