"""People's accounts: sign-in (password or token, then the second factor), sign-up and address
confirmation, password reset, the second factor, sessions. docs/design.md, "Accounts and sessions".

Sign-in never says whether an address has an account: a wrong password and an unknown address get the
same answer after about the same work (a dummy Argon2 hash is checked), and the per-account limit counts
failures under the address typed, account or not."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import pyotp
from sqlmodel import Session

from api.services import Services, mail
from domain.accounts import (
    RESET_LINK_LIFETIME,
    VERIFY_LINK_LIFETIME,
    check_password,
    needs_second_factor,
)
from domain.errors import Forbidden, InvalidInput, NotFound, RateLimited, Unauthorized
from store import accounts as repo
from store import notify
from store.audit import audit
from store.models import ApiToken, User, utcnow
from store.users import authenticate, check_email, create_user, issue_token, list_tokens, revoke_all

WRONG = "the email address or password is wrong"
FAILURE_WINDOW = 15 * 60


@dataclass(frozen=True)
class FirstFactor:
    """Who passed the first factor, and (for a session started from a token) which token."""

    user_id: uuid.UUID
    origin_id: uuid.UUID | None
    second_factor: bool  # the account has a second factor: ask for it before a session starts


async def throttle(services: Services, *keys: tuple[str, int, int], count: bool = True) -> None:
    """Count an attempt under each (key, limit, window seconds) in a transaction of its own; refuse
    with 429 and the wait when any is over its limit."""

    def check(session: Session) -> int:
        waits = [repo.hit(session=session, key=k, limit=n, window_seconds=w, count=count) for k, n, w in keys]
        return max(waits, default=0)

    wait = await services.db(check)
    if wait:
        raise RateLimited(f"too many attempts: wait {wait} s and try again", wait)


def _account_key(what: str, email: str) -> str:
    return f"{what}:account:{repo.sha256(email.strip().lower())}"


async def check_password_sign_in(services: Services, email: str, password: str, address: str) -> FirstFactor:
    s = services.settings
    await throttle(services, (f"signin:address:{address}", s.login_attempts_per_minute, 60))
    account_key = _account_key("signin-failed", email)
    await throttle(services, (account_key, s.login_failures_per_account, FAILURE_WINDOW), count=False)

    def check(session: Session) -> FirstFactor | None:
        user = repo.find_user(session=session, email=email)
        if not repo.password_matches(user, password[:256]) or user is None or user.disabled_at is not None:
            return None
        return FirstFactor(user.id, None, user.totp_enabled_at is not None)

    passed = await services.db(check)
    if passed is None:
        await throttle(services, (account_key, s.login_failures_per_account, FAILURE_WINDOW))
        raise Unauthorized(WRONG, "credentials_invalid")
    return passed


async def check_token_sign_in(services: Services, token: str, address: str) -> FirstFactor:
    """An API token as the first factor (for API users; a person signs in with a password)."""
    s = services.settings
    await throttle(services, (f"signin:address:{address}", s.login_attempts_per_minute, 60))

    def check(session: Session) -> FirstFactor:
        user, row = authenticate(session=session, secret=token.strip(), kind="api")
        return FirstFactor(user.id, row.id, user.totp_enabled_at is not None)

    return await services.db(check)


async def check_second_factor(services: Services, user_id: uuid.UUID, code: str, address: str) -> None:
    """An authenticator code (or an unused recovery code) of the account; limited like passwords."""
    s = services.settings
    key = f"totp-failed:account:{user_id}"
    await throttle(services, (f"signin:address:{address}", s.login_attempts_per_minute, 60))
    await throttle(services, (key, s.login_failures_per_account, FAILURE_WINDOW), count=False)

    def check(session: Session) -> bool:
        user = session.get(User, user_id, with_for_update=True)
        if user is None or user.disabled_at is not None or not user.totp_secret or not user.totp_enabled_at:
            return False
        if repo.totp_matches(user, user.totp_secret, code):
            session.add(user)
            return True
        return repo.use_recovery_code(session=session, user=user, code=code)

    if not await services.db(check):
        await throttle(services, (key, s.login_failures_per_account, FAILURE_WINDOW))
        raise Unauthorized(
            "the code is wrong or was used already: try the current one", "second_factor_invalid"
        )


def start_session(
    session: Session, services: Services, passed: FirstFactor, address: str
) -> tuple[str, User]:
    user = session.get(User, passed.user_id)
    if user is None or user.disabled_at is not None:
        raise Unauthorized("this account is disabled", "account_disabled")
    origin = session.get(ApiToken, passed.origin_id) if passed.origin_id else None
    secret, _ = issue_token(
        session=session, user=user, kind="session", name="web session", origin=origin, address=address,
        lifetime=timedelta(hours=services.settings.session_hours),
    )  # fmt: skip
    audit(session=session, actor=user, action="session.start", subject_type="user", subject_id=str(user.id),
          detail={"address": address, "with": "token" if origin else "password"})  # fmt: skip
    return secret, user


# --- sign-up and confirmation --------------------------------------------------------------------------


def sign_up(session: Session, services: Services, *, email: str, password: str, name: str) -> None:
    """A client's account, unconfirmed until the emailed link is followed. An address that has an
    account gets a mail saying so instead, and the caller the same answer."""
    settings = services.settings
    if settings.signup != "open":
        raise Forbidden("new accounts are by invitation only on this server", "signup_closed")
    email = check_email(email)
    check_password(password)
    existing = repo.find_user(session=session, email=email)
    if existing is not None:
        repo.HASHER.hash(password)  # the same work as a new account
        mail.send(session, settings, "signup_exists", email, name=existing.name)
        return
    user = create_user(session=session, email=email, role="client", name=name, verified=False)
    repo.set_password(user, password)
    session.add(user)
    send_verification(session, services, user)
    audit(session=session, actor=user, action="user.signup", subject_type="user", subject_id=str(user.id))


def send_verification(session: Session, services: Services, user: User) -> None:
    link = repo.new_link(session=session, user=user, purpose="verify", lifetime=VERIFY_LINK_LIFETIME)
    mail.send(session, services.settings, "verify", user.email, name=user.name,
              link=f"{services.settings.base_url}/verify/{link}",
              hours=int(VERIFY_LINK_LIFETIME.total_seconds() // 3600))  # fmt: skip


def confirm_email(session: Session, secret: str) -> User:
    user = repo.use_link(session=session, secret=secret, purpose="verify")
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        session.add(user)
        audit(session=session, actor=user, action="user.verify", subject_type="user", subject_id=str(user.id))
    return user


# --- password reset ------------------------------------------------------------------------------------


def request_reset(session: Session, services: Services, email: str) -> None:
    """Mail a reset link if the address has an account; the caller gets the same answer either way."""
    try:
        email = check_email(email)
    except InvalidInput:
        return
    user = repo.find_user(session=session, email=email)
    if user is None or user.disabled_at is not None:
        return
    link = repo.new_link(session=session, user=user, purpose="reset", lifetime=RESET_LINK_LIFETIME)
    mail.send(session, services.settings, "reset", user.email, name=user.name,
              link=f"{services.settings.base_url}/reset/{link}")  # fmt: skip


def reset_link_user(session: Session, secret: str) -> User:
    return repo.use_link(session=session, secret=secret, purpose="reset", spend=False)


def reset_password(session: Session, secret: str, password: str) -> User:
    """A new password from a reset link: every session of the account ends."""
    check_password(password)
    user = repo.use_link(session=session, secret=secret, purpose="reset")
    revoke_all(session=session, user_id=user.id)  # every session of the account ends
    repo.set_password(user, password)
    if user.email_verified_at is None:  # the link came to the address: it is the person's
        user.email_verified_at = utcnow()
    session.add(user)
    audit(
        session=session,
        actor=user,
        action="user.password_reset",
        subject_type="user",
        subject_id=str(user.id),
    )
    _password_changed(session, user)
    return user


def _password_changed(session: Session, user: User) -> None:
    notify.record(session, kind="password_changed", recipient_id=user.id,
                  dedupe_key=f"password_changed:{user.id}:{utcnow().isoformat()}", payload={})  # fmt: skip


async def change_password(services: Services, user: User, current: str, new: str) -> None:
    """A new password, given the current one (failures limited like sign-ins); every session ends."""
    s = services.settings
    key = _account_key("signin-failed", user.email)
    await throttle(services, (key, s.login_failures_per_account, FAILURE_WINDOW), count=False)
    check_password(new)

    def change(session: Session) -> bool:
        row = _fresh(session, user)
        if not repo.password_matches(row, current[:256]):
            return False
        repo.set_password(row, new)
        revoke_all(session=session, user_id=row.id)
        session.add(row)
        audit(
            session=session,
            actor=row,
            action="user.password_change",
            subject_type="user",
            subject_id=str(row.id),
        )
        _password_changed(session, row)
        return True

    if not await services.db(change):
        await throttle(services, (key, s.login_failures_per_account, FAILURE_WINDOW))
        raise Unauthorized("the current password is wrong", "credentials_invalid")


# --- the second factor ---------------------------------------------------------------------------------


def begin_totp(session: Session, user: User) -> tuple[str, str]:
    """A new secret for the authenticator app (kept until confirmed by a code); (secret, otpauth URI)."""
    user = _fresh(session, user)
    if user.totp_enabled_at is None and not user.totp_secret:  # kept until confirmed: one key per enrolment
        user.totp_secret = pyotp.random_base32()
        session.add(user)
    assert user.totp_secret
    return user.totp_secret, repo.totp_uri(user, user.totp_secret)


def enable_totp(session: Session, user: User, code: str) -> list[str]:
    """Turn the second factor on with a code of the new secret; the recovery codes, shown once."""
    user = _fresh(session, user)
    if user.totp_enabled_at is not None:
        raise InvalidInput("the second factor is on already")
    if not user.totp_secret or not repo.totp_matches(user, user.totp_secret, code):
        raise Unauthorized(
            "the code is wrong: type the six digits your app shows now", "second_factor_invalid"
        )
    user.totp_enabled_at = utcnow()
    session.add(user)
    audit(
        session=session, actor=user, action="user.totp_enable", subject_type="user", subject_id=str(user.id)
    )
    return repo.new_recovery_codes(session=session, user=user)


def reset_second_factor(session: Session, admin: User, user_id: uuid.UUID) -> User:
    """An admin turns another account's second factor off (it enrols again); its sessions end."""
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound(f"no user {user_id}")
    user.totp_secret = user.totp_enabled_at = user.totp_last_step = None
    repo.drop_recovery_codes(session=session, user_id=user.id)
    revoke_all(session=session, user_id=user.id)
    session.add(user)
    audit(
        session=session, actor=admin, action="user.totp_reset", subject_type="user", subject_id=str(user.id)
    )
    return user


def must_enrol(user: User) -> bool:
    return needs_second_factor(user.role) and user.totp_enabled_at is None


def _fresh(session: Session, user: User) -> User:
    row = session.get(User, user.id, with_for_update=True)
    assert row is not None
    return row


# --- sessions and tokens -------------------------------------------------------------------------------


def sessions_of(session: Session, user_id: uuid.UUID) -> list[ApiToken]:
    return list_tokens(session=session, user_id=user_id, kinds=("session",), live=True)


def tokens_of(session: Session, user_id: uuid.UUID) -> list[ApiToken]:
    return list_tokens(session=session, user_id=user_id, live=True)
