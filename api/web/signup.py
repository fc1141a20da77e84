"""Sign-up, address confirmation and password reset pages. The answers never say whether an address
has an account; links are single-use (``api/services/accounts.py``)."""

from __future__ import annotations

from fastapi import Form, Request
from fastapi.responses import Response

from api.deps import AddressDep, FormViewerDep, ServicesDep, ViewerDep
from api.services import accounts
from api.web.account import form_page, pre_session_csrf_ok, refused
from api.web.render import base_context, page_router, redirect, render
from domain.errors import DomainError

router = page_router()
EXPIRED = "The form expired: please try again."


@router.get("/signup")
async def signup_form(services: ServicesDep) -> Response:
    return form_page("signup.html", services.settings, {"title": "Create an account", "email": "", "name": "",
                                                        "mode": services.settings.signup})  # fmt: skip


@router.post("/signup")
async def signup(
    request: Request,
    services: ServicesDep,
    address: AddressDep,
    email: str = Form("", max_length=254),
    name: str = Form("", max_length=200),
    password: str = Form("", max_length=1024),
    csrf: str = Form("", max_length=200),
) -> Response:
    """A client's account; the same answer whether or not the address has one (a mail says which)."""
    settings = services.settings
    context = {"title": "Create an account", "email": email, "name": name, "mode": settings.signup}
    if not pre_session_csrf_ok(request, csrf):
        return form_page("signup.html", settings, {**context, "error": EXPIRED}, 403)
    try:
        await accounts.throttle(
            services, (f"signup:address:{address}", settings.login_attempts_per_minute, 60)
        )
        await services.db(lambda s: accounts.sign_up(s, services, email=email, password=password, name=name))
    except DomainError as error:
        return refused("signup.html", settings, context, error)
    return render(
        "check_mail.html", {"title": "Check your mail", "email": email.strip().lower(), "what": "signup"}
    )


@router.get("/verify")
async def verify_pending(viewer: ViewerDep) -> Response:
    """Where an account that has not confirmed its address lands."""
    if viewer.user.email_verified_at is not None:
        return redirect("/")
    return render("verify_pending.html", base_context(viewer, "Confirm your address"))


@router.post("/verify/resend")
async def verify_resend(viewer: FormViewerDep, services: ServicesDep, address: AddressDep) -> Response:
    await accounts.throttle(services, (f"verify:account:{viewer.user.id}", 5, 3600))
    await services.db(lambda s: accounts.send_verification(s, services, viewer.user))
    return render("check_mail.html", {"title": "Check your mail", "email": viewer.user.email, "what": "verify",
                                      "viewer": viewer})  # fmt: skip


@router.get("/verify/{secret}")
async def verify(secret: str, services: ServicesDep) -> Response:
    """Following the emailed link confirms the address (spent on first use)."""
    user = await services.db(lambda s: accounts.confirm_email(s, secret[:200]))
    return render("done.html", {"title": "Address confirmed", "message": f"{user.email} is confirmed.",
                                "link": "/login", "link_text": "Sign in"})  # fmt: skip


@router.get("/reset")
async def reset_form(services: ServicesDep) -> Response:
    return form_page("reset_request.html", services.settings, {"title": "Reset your password", "email": ""})


@router.post("/reset")
async def reset_request(
    request: Request,
    services: ServicesDep,
    address: AddressDep,
    email: str = Form("", max_length=254),
    csrf: str = Form("", max_length=200),
) -> Response:
    settings = services.settings
    context = {"title": "Reset your password", "email": email}
    if not pre_session_csrf_ok(request, csrf):
        return form_page("reset_request.html", settings, {**context, "error": EXPIRED}, 403)
    try:
        await accounts.throttle(
            services, (f"reset:address:{address}", settings.login_attempts_per_minute, 60)
        )
        await accounts.throttle(services, (f"reset:{email.strip().lower()[:200]}", 5, 3600))
    except DomainError as error:
        return refused("reset_request.html", settings, context, error)
    await services.db(lambda s: accounts.request_reset(s, services, email))
    return render(
        "check_mail.html", {"title": "Check your mail", "email": email.strip().lower(), "what": "reset"}
    )


@router.get("/reset/{secret}")
async def reset_page(secret: str, services: ServicesDep) -> Response:
    user = await services.db(lambda s: accounts.reset_link_user(s, secret[:200]))
    return form_page("reset.html", services.settings, {"title": "Choose a new password", "secret": secret,
                                                       "email": user.email})  # fmt: skip


@router.post("/reset/{secret}")
async def reset(
    secret: str,
    request: Request,
    services: ServicesDep,
    password: str = Form("", max_length=1024),
    csrf: str = Form("", max_length=200),
) -> Response:
    """A new password; every session of the account ends."""
    settings = services.settings
    context = {"title": "Choose a new password", "secret": secret, "email": ""}
    if not pre_session_csrf_ok(request, csrf):
        return form_page("reset.html", settings, {**context, "error": EXPIRED}, 403)
    try:
        await services.db(lambda s: accounts.reset_password(s, secret[:200], password))
    except DomainError as error:
        return refused("reset.html", settings, context, error)
    return render("done.html", {"title": "Password changed", "link": "/login", "link_text": "Sign in",
                                "message": "Your password is changed; every session of your account has ended."})  # fmt: skip
