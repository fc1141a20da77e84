"""Who am I; admin: users, tokens, funding a client's balance."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, status

from api.deps import AdminUser, ClientUser, CurrentUser, SessionDep, SettingsDep
from api.schemas import (
    BalancePublic,
    Funding,
    Page,
    RoleChange,
    SessionPublic,
    TokenCreate,
    TokenIssued,
    TokenPublic,
    UserAdminView,
    UserCreate,
    UserPublic,
)
from api.services import money
from api.services import users as user_service
from domain.errors import NotFound
from domain.money import check_currency
from store.audit import audit
from store.models import User
from store.users import create_user, issue_token, list_tokens, revoke_token

router = APIRouter(prefix="/v1", tags=["users"])


@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser) -> User:
    return user


@router.get("/admin/users", response_model=Page[UserAdminView], tags=["admin"])
def list_users(
    session: SessionDep,
    admin: AdminUser,
    role: str | None = Query(None, pattern="^(provider|client|support|admin)$"),
    q: str | None = Query(None, max_length=100, description="Part of an email address or a name"),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=100_000),  # as the dispute queue: past this, narrow the query
) -> dict:
    """Users, searched by email or name (the read is audited)."""
    rows, total = user_service.search(session, admin, q=q, role=role, limit=limit, offset=offset)
    return {"items": rows, "total": total, "limit": limit, "offset": offset}


@router.post("/admin/users/{user_id}/role", response_model=UserAdminView, tags=["admin"])
def change_role(user_id: uuid.UUID, body: RoleChange, session: SessionDep, admin: AdminUser) -> UserAdminView:
    """A new role; the account's sessions end (its pages follow the role from the next sign-in)."""
    return user_service.change_role(session, admin, user_id, body.role)


@router.post("/admin/users/{user_id}/disable", response_model=UserAdminView, tags=["admin"])
def disable(user_id: uuid.UUID, session: SessionDep, admin: AdminUser) -> UserAdminView:
    """Disable the account: every session, API token and device token ends now."""
    return user_service.set_disabled(session, admin, user_id, True)


@router.post("/admin/users/{user_id}/enable", response_model=UserAdminView, tags=["admin"])
def enable(user_id: uuid.UUID, session: SessionDep, admin: AdminUser) -> UserAdminView:
    return user_service.set_disabled(session, admin, user_id, False)


@router.delete("/admin/users/{user_id}/second-factor", response_model=UserAdminView, tags=["admin"])
def reset_second_factor(user_id: uuid.UUID, session: SessionDep, admin: AdminUser) -> UserAdminView:
    """Turn the account's second factor off (staff enrol again at their next sign-in); sessions end."""
    return user_service.reset_factor(session, admin, user_id)


@router.get("/admin/users/{user_id}/sessions", response_model=list[SessionPublic], tags=["admin"])
def user_sessions(user_id: uuid.UUID, session: SessionDep, admin: AdminUser) -> list[SessionPublic]:
    """The account's live web sessions, API tokens and device tokens (end one with DELETE
    /v1/admin/tokens/{id}); the read is audited."""
    return user_service.sessions(session, admin, user_id)


@router.post("/admin/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED, tags=["admin"])
def add_user(body: UserCreate, session: SessionDep, admin: AdminUser) -> User:
    user = create_user(
        session=session, email=body.email, role=body.role, name=body.name, timezone=body.timezone
    )
    audit(session=session, actor=admin, action="user.create", subject_type="user", subject_id=str(user.id))
    return user


@router.post(
    "/admin/users/{user_id}/tokens",
    response_model=TokenIssued,
    status_code=status.HTTP_201_CREATED,
    tags=["admin"],
)
def add_token(user_id: uuid.UUID, body: TokenCreate, session: SessionDep, admin: AdminUser) -> dict:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    secret, row = issue_token(session=session, user=user, days=body.days, name=body.name)
    audit(session=session, actor=admin, action="token.issue", subject_type="user", subject_id=str(user.id))
    return {**TokenPublic.model_validate(row, from_attributes=True).model_dump(), "token": secret}


@router.get("/admin/users/{user_id}/tokens", response_model=list[TokenPublic], tags=["admin"])
def user_tokens(user_id: uuid.UUID, session: SessionDep, admin: AdminUser) -> list:
    audit(session=session, actor=admin, action="admin.read", subject_type="tokens", subject_id=str(user_id))
    return list_tokens(session=session, user_id=user_id)


@router.delete("/admin/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["admin"])
def revoke(token_id: uuid.UUID, session: SessionDep, admin: AdminUser) -> None:
    revoke_token(session=session, token_id=token_id)
    audit(session=session, actor=admin, action="token.revoke", subject_type="token", subject_id=str(token_id))


@router.post("/admin/clients/{client_id}/funding", response_model=BalancePublic, tags=["admin"])
def fund(client_id: uuid.UUID, body: Funding, session: SessionDep, admin: AdminUser) -> BalancePublic:
    return money.fund(session, admin, client_id, body.amount_cents, body.currency, body.request_id)


@router.get("/balance", response_model=BalancePublic, tags=["client"])
def my_balance(
    session: SessionDep, client: ClientUser, settings: SettingsDep, currency: str = "USD"
) -> BalancePublic:
    # checked before the lookup: it creates the account on first use, so a bad code would be stored
    return money.balance(session, client.id, check_currency(currency))
