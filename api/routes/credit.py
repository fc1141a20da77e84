"""Credit lines: the guarantee exposure the platform accepts for a client beyond the client's held money
(admins only, audited). Without one, a client's weeks are guaranteed only as far as the client's own
balance holds them."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from api.deps import AdminUser, SessionDep
from api.schemas import CreditLine, CreditLinePublic
from api.services import money as service

router = APIRouter(prefix="/v1/admin/clients/{client_id}/credit", tags=["admin"])


@router.get("", response_model=CreditLinePublic)
def read(
    client_id: uuid.UUID, session: SessionDep, admin: AdminUser, currency: str = Query("USD", max_length=3)
) -> CreditLinePublic:
    return service.credit_line(session, admin, client_id, currency)


@router.put("", response_model=CreditLinePublic)
def set_line(
    client_id: uuid.UUID, body: CreditLine, session: SessionDep, admin: AdminUser
) -> CreditLinePublic:
    """Set the client's credit line (0 withdraws it; weeks already secured keep what they reserved)."""
    return service.set_credit_line(session, admin, client_id, body.currency, body.limit_cents, body.reason)
