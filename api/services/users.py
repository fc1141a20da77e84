"""Admins and users: list and search, change a role, disable and enable (which ends every session and
token), list and end sessions, reset a second factor. Every admin read and change is audited."""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, func, or_, select

from api.schemas import SessionPublic, UserAdminView
from api.services.accounts import reset_second_factor
from domain.errors import InvalidInput, NotFound
from store.audit import audit
from store.models import ApiToken, User, utcnow
from store.users import check_role, list_tokens, revoke_all, revoke_token


def view(user: User) -> UserAdminView:
    return UserAdminView(**user.model_dump(), second_factor=user.totp_enabled_at is not None)


def search(
    session: Session, admin: User, *, q: str | None, role: str | None, limit: int, offset: int
) -> tuple[list[UserAdminView], int]:
    query = select(User)
    if role:
        query = query.where(User.role == role)
    if q:
        like = "%" + q.strip().lower().replace("\\", "").replace("%", "").replace("_", "\\_") + "%"
        query = query.where(or_(col(User.email).like(like), func.lower(User.name).like(like)))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(User.created_at)).offset(offset).limit(limit)).all()
    audit(session=session, actor=admin, action="admin.read", subject_type="users", subject_id="search",
          detail={"q": (q or "")[:100], "role": role or ""})  # fmt: skip
    return [view(u) for u in rows], int(total)


def _user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def change_role(session: Session, admin: User, user_id: uuid.UUID, role: str) -> UserAdminView:
    user = _user(session, user_id)
    if user.id == admin.id:
        raise InvalidInput("an admin cannot change their own role: ask another admin")
    old, user.role = user.role, check_role(role)
    revoke_all(
        session=session, user_id=user.id
    )  # pages and permissions follow the new role from the next sign-in
    session.add(user)
    audit(session=session, actor=admin, action="user.role", subject_type="user", subject_id=str(user.id),
          detail={"from": old, "to": role})  # fmt: skip
    return view(user)


def set_disabled(session: Session, admin: User, user_id: uuid.UUID, disabled: bool) -> UserAdminView:
    """Disabling ends every session, API token and device token of the account at once."""
    user = _user(session, user_id)
    if user.id == admin.id and disabled:
        raise InvalidInput("an admin cannot disable their own account")
    if disabled:
        user.disabled_at = user.disabled_at or utcnow()
        revoke_all(session=session, user_id=user.id, kinds=("session", "api", "device"))
    else:
        user.disabled_at = None
    session.add(user)
    audit(session=session, actor=admin, action="user.disable" if disabled else "user.enable", subject_type="user",
          subject_id=str(user.id))  # fmt: skip
    return view(user)


def sessions(session: Session, admin: User, user_id: uuid.UUID) -> list[SessionPublic]:
    _user(session, user_id)
    rows = list_tokens(session=session, user_id=user_id, kinds=("session", "api", "device"), live=True)
    audit(session=session, actor=admin, action="admin.read", subject_type="user", subject_id=str(user_id),
          detail={"what": "sessions"})  # fmt: skip
    return [SessionPublic.model_validate(r, from_attributes=True) for r in rows]


def end_session(session: Session, user: User, token_id: uuid.UUID) -> ApiToken:
    """An admin ends anyone's session or token; a person their own (others' are 404)."""
    row = revoke_token(session=session, token_id=token_id, by=user)
    audit(session=session, actor=user, action="token.revoke", subject_type="token", subject_id=str(token_id),
          detail={"kind": row.kind})  # fmt: skip
    return row


def reset_factor(session: Session, admin: User, user_id: uuid.UUID) -> UserAdminView:
    return view(reset_second_factor(session, admin, user_id))
