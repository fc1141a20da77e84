"""The account's own page: the second factor (enrolment, with recovery codes shown once), and every
session, API token and device token with its last use, each of which can be ended; and the page where
a signed-in person approves an agent's device code."""

from __future__ import annotations

import uuid

from fastapi import Form, Query
from fastapi.responses import Response
from sqlmodel import Session

from api.deps import FormViewerDep, ServicesDep, ViewerDep
from api.services import accounts, devices
from api.services import users as user_service
from api.web.render import NOTICES, base_context, page_router, redirect, render
from domain.errors import DomainError
from store.models import ApiToken

router = page_router()


@router.get("/account")
async def account(
    viewer: ViewerDep, services: ServicesDep, done: str | None = Query(None, max_length=40)
) -> Response:
    def load(session: Session) -> tuple[list[ApiToken], list[ApiToken]]:
        return accounts.sessions_of(session, viewer.user.id), accounts.tokens_of(session, viewer.user.id)

    sessions, tokens = await services.db(load)
    return render("account.html", base_context(viewer, "Account", sessions=sessions, tokens=tokens,
                                               notice=NOTICES.get(done or "")))  # fmt: skip


@router.post("/account/tokens/{token_id}/revoke")
async def revoke(token_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep) -> Response:
    await services.db(lambda s: user_service.end_session(s, viewer.user, token_id))
    if str(token_id) == viewer.session_id:
        return redirect("/login")
    return redirect("/account?done=revoked")


@router.post("/account/password")
async def change_password(
    viewer: FormViewerDep, services: ServicesDep, current: str = Form("", max_length=1024),
    password: str = Form("", max_length=1024),
) -> Response:  # fmt: skip
    """A new password: every session of the account ends, this one too (sign in again)."""
    await accounts.change_password(services, viewer.user, current, password)
    return redirect("/login")


@router.get("/account/second-factor")
async def second_factor(viewer: ViewerDep, services: ServicesDep) -> Response:
    """Enrol: the secret for an authenticator app, confirmed by one of its codes."""
    if viewer.user.totp_enabled_at is not None:
        return render("second_factor_on.html", base_context(viewer, "Second factor", codes=None))
    secret, uri = await services.db(lambda s: accounts.begin_totp(s, viewer.user))
    return render("enrol.html", base_context(viewer, "Second factor", secret=secret, uri=uri))


@router.post("/account/second-factor")
async def enable(
    viewer: FormViewerDep, services: ServicesDep, code: str = Form("", max_length=20)
) -> Response:
    try:
        codes = await services.db(lambda s: accounts.enable_totp(s, viewer.user, code))
    except DomainError as error:
        secret, uri = await services.db(lambda s: accounts.begin_totp(s, viewer.user))
        return render("enrol.html", base_context(viewer, "Second factor", secret=secret, uri=uri,
                                                 error=error.message), error.status_code)  # fmt: skip
    return render("second_factor_on.html", base_context(viewer, "Second factor", codes=codes))


# --- the agent's device code ---------------------------------------------------------------------------


@router.get("/device")
async def device_form(viewer: ViewerDep, code: str = Query("", max_length=20)) -> Response:
    return render("device.html", base_context(viewer, "Sign in an agent", code=code, row=None))


@router.post("/device")
async def device_check(
    viewer: FormViewerDep, services: ServicesDep, code: str = Form("", max_length=20)
) -> Response:
    """Show which machine asks, before anything is approved."""
    row = await services.db(lambda s: devices.pending(s, code))
    return render("device.html", base_context(viewer, "Sign in an agent", code=row.user_code, row=row))


@router.post("/device/approve")
async def device_approve(
    viewer: FormViewerDep, services: ServicesDep, code: str = Form("", max_length=20)
) -> Response:
    await services.db(lambda s: devices.approve(s, viewer.user, code))
    return redirect("/account?done=approved_device")
