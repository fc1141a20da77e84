"""Invitations and offers on the web: a client invites a provider by email to an hourly offer (or offers
an existing provider a contract), sees each invitation's state, withdraws or resends it; an admin invites
staff; the invitee reads the offer from the emailed link and accepts (creating an account, or signed in)
or declines. Offers in the contract list are accepted or declined by the provider and withdrawn by the
client. Each action is the same use case as the API's (``api/services/invitations.py``, ``contracts.py``)."""

from __future__ import annotations

import uuid

from fastapi import Form, Query, Request
from fastapi.responses import Response

from api.deps import (
    SESSION_COOKIE,
    AddressDep,
    FormViewerDep,
    MaybeViewerDep,
    ServicesDep,
    ViewerDep,
    same_token,
)
from api.schemas import OfferTerms
from api.services import accounts, contracts
from api.services import invitations as service
from api.web.account import form_page, pre_session_csrf_ok, refused
from api.web.render import NOTICES, base_context, page_router, redirect, render
from api.web.security import set_session_cookie
from domain.errors import DomainError, Forbidden, InvalidInput

router = page_router()


@router.get("/invitations")
async def invitations(
    viewer: ViewerDep, services: ServicesDep, done: str | None = Query(None, max_length=40)
) -> Response:
    if viewer.user.role not in ("client", "admin"):
        raise Forbidden("only clients and admins send invitations", "role_required")
    rows = await services.db(lambda s: service.sent(s, viewer.user))
    return render(
        "invitations.html", base_context(viewer, "Invitations", rows=rows, notice=NOTICES.get(done or ""))
    )


@router.post("/invitations")
async def invite(
    viewer: FormViewerDep,
    services: ServicesDep,
    email: str = Form("", max_length=254),
    role: str = Form("provider", max_length=16),
    title: str = Form("", max_length=200),
    rate: str = Form("", max_length=20),
    currency: str = Form("USD", max_length=3),
    weekly_limit_hours: int = Form(40, ge=1, le=168),
    manual_allowed: bool = Form(False),
    work_view: bool = Form(False),
) -> Response:
    offer = None
    if viewer.user.role == "client":
        try:
            cents = round(float(rate) * 100)
        except ValueError:
            raise InvalidInput(f"rate {rate!r} is not an amount such as 45.00") from None
        offer = OfferTerms(title=title or "-", rate_cents=max(0, min(cents, 10**9)), currency=currency or "USD",
                           weekly_limit_hours=weekly_limit_hours, manual_allowed=manual_allowed,
                           work_view=work_view)  # fmt: skip
    made = await services.db(
        lambda s: service.invite(s, services, viewer.user, email=email, role=role, offer=offer)
    )
    return redirect("/invitations?done=" + ("offered" if isinstance(made, uuid.UUID) else "invited"))


@router.post("/invitations/{invitation_id}/withdraw")
async def withdraw(invitation_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep) -> Response:
    await services.db(lambda s: service.withdraw(s, viewer.user, invitation_id))
    return redirect("/invitations?done=withdrawn")


@router.post("/invitations/{invitation_id}/resend")
async def resend(invitation_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep) -> Response:
    await services.db(lambda s: service.resend(s, services, viewer.user, invitation_id))
    return redirect("/invitations?done=resent")


# --- the invitee -----------------------------------------------------------------------------------------


def _invite_context(shown: service.Shown, secret: str, viewer: object) -> dict:
    return {"title": "Invitation", "shown": shown, "secret": secret, "viewer": viewer, "name": ""}


@router.get("/invite/{secret}")
async def invitation(secret: str, viewer: MaybeViewerDep, services: ServicesDep) -> Response:
    """The offer (or staff role) from the emailed link, with accept and decline."""
    shown = await services.db(lambda s: service.show(s, secret[:200]))
    return form_page("invite.html", services.settings, _invite_context(shown, secret, viewer))


@router.post("/invite/{secret}")
async def answer(
    secret: str,
    request: Request,
    viewer: MaybeViewerDep,
    services: ServicesDep,
    address: AddressDep,
    action: str = Form("accept", pattern="^(accept|decline)$"),
    name: str = Form("", max_length=200),
    password: str = Form("", max_length=1024),
    csrf: str = Form("", max_length=200),
) -> Response:
    secret = secret[:200]
    sent_csrf_ok = pre_session_csrf_ok(request, csrf) or (
        viewer is not None and same_token(viewer.csrf, csrf)
    )
    if not sent_csrf_ok:
        raise Forbidden(
            "this form did not carry a valid CSRF token: reload the page and try again", "csrf_failed"
        )
    if action == "decline":
        await services.db(lambda s: service.decline(s, secret))
        return render("done.html", {"title": "Invitation declined", "message": "The sender will see that you declined.",
                                    "link": "/", "link_text": "Workproof", "viewer": viewer})  # fmt: skip
    try:
        user, contract_id = await service.accept(services, secret, viewer.user if viewer else None, name=name,
                                                 password=password)  # fmt: skip
    except DomainError as error:
        if error.code not in ("password_invalid", "account_exists", "invitation_wrong_role", "invalid_input"):
            raise
        shown = await services.db(lambda s: service.show(s, secret))
        return refused(
            "invite.html", services.settings, {**_invite_context(shown, secret, viewer), "name": name}, error
        )
    target = f"/contracts/{contract_id}" if contract_id else "/"
    response = redirect(target)
    if viewer is None:  # a new account: signed in at once (the link proved the address)
        passed = accounts.FirstFactor(user.id, None, False)
        session_secret, _ = await services.db(lambda s: accounts.start_session(s, services, passed, address))
        set_session_cookie(response, SESSION_COOKIE, session_secret, services.settings)
    return response


# --- offers in the contract list -------------------------------------------------------------------------


@router.post("/contracts/{contract_id}/accept")
async def accept_offer(contract_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep) -> Response:
    await contracts.accept(services, viewer.user, contract_id)
    return redirect(f"/contracts/{contract_id}")


@router.post("/contracts/{contract_id}/decline")
async def decline_offer(contract_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep) -> Response:
    await services.db(lambda s: contracts.close_offer(s, viewer.user, contract_id, "declined"))
    return redirect("/contracts?done=declined")


@router.post("/contracts/{contract_id}/withdraw")
async def withdraw_offer(contract_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep) -> Response:
    await services.db(lambda s: contracts.close_offer(s, viewer.user, contract_id, "withdrawn"))
    return redirect("/contracts?done=withdrawn")
