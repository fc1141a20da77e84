"""The server-rendered pages, put together: sign-in (``account.py``), sign-up and reset (``signup.py``), the
account's own page and device approval (``profile.py``), invitations and offers (``invitations.py``), the
admin's users (``admin.py``), ``/dev/mail`` (``devmail.py``), the inbox, notification settings and the
operators' view (``inbox.py``), the contract list and the week (``contracts.py``), a contract's terms
(``terms.py``), the browser tracker (``tracker.py``), money (``money.py``: statements, earnings, the admin's
top-ups), the support console (``support.py``), and the static files. What they share lives in
``render.py``; the use cases they call in ``api/services``; their dependencies in ``api/deps.py``.

Every page answer carries the security headers (``api/web/security.py``); every POST form carries the
session's CSRF token; no page shows a contract its viewer is not a party to."""

from __future__ import annotations

from fastapi import APIRouter

from api.web import (
    account,
    admin,
    contracts,
    devmail,
    inbox,
    invitations,
    money,
    profile,
    signup,
    support,
    terms,
    tracker,
)
from api.web.render import HERE, SecureStatic, steady_heap

router = APIRouter(include_in_schema=False, lifespan=steady_heap)
router.mount("/static", SecureStatic(directory=HERE / "static"), name="static")
for area in (
    account,
    signup,
    profile,
    invitations,
    admin,
    devmail,
    contracts,
    terms,
    tracker,
    money,
    support,
    inbox,
):
    router.include_router(area.router)

__all__ = ["router"]
