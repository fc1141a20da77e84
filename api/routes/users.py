"""Who am I; admin: users, tokens, funding a client's balance."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, status
from sqlmodel import col, func, select

from api.deps import AdminUser, ClientUser, CurrentUser, SessionDep, SettingsDep
from api.schemas import (
    BalancePublic,
    Funding,
    Page,
    TokenCreate,
    TokenIssued,
    TokenPublic,
    UserCreate,
    UserPublic,
)
from api.services import money
from domain.errors import NotFound
from domain.money import check_currency
from store.audit import audit
from store.models import User
from store.users import create_user, issue_token, list_tokens, revoke_token

router = APIRouter(prefix="/v1", tags=["users"])


@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser) -> User:
    return user


@router.get("/admin/users", response_model=Page[UserPublic], tags=["admin"])
def list_users(
    session: SessionDep,
    admin: AdminUser,
    role: str | None = None,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=100_000),  # as the dispute queue: past this, narrow the query
) -> dict:
    query = select(User)
    if role:
        query = query.where(User.role == role)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(User.created_at)).offset(offset).limit(limit)).all()
    audit(session=session, actor=admin, action="admin.read", subject_type="users", subject_id="list",
          detail={"role": role, "offset": offset})  # fmt: skip
    return {"items": rows, "total": total, "limit": limit, "offset": offset}


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
