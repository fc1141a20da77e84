"""The inbox (``/inbox``: read and unread items, each linking to its page; mark read, mark all read),
the bell's count for the light poll of ``static/bell.js``, the email preferences and webhook endpoints
(``/settings/notifications``), and the operators' view (``/admin/notifications``). The use cases are in
``api/services/notifications.py``."""

from __future__ import annotations

import uuid

from fastapi import Form, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session

from api.deps import FormViewerDep, ServicesDep, ViewerDep
from api.services import notifications as service
from api.web.admin import admin_only
from api.web.render import base_context, page_router, redirect, render
from domain.errors import NotFound
from store import notify as repo

router = page_router()


@router.get("/inbox")
async def inbox(viewer: ViewerDep, services: ServicesDep, unread: bool = Query(False)) -> Response:
    items = await services.db(lambda s: service.inbox(s, viewer.user, unread_only=unread))
    return render("inbox.html", base_context(viewer, "Inbox", items=items, unread_only=unread))


@router.get("/inbox/count")
async def count(viewer: ViewerDep) -> Response:
    """The bell's number (the page already carries it; ``bell.js`` refreshes it once a minute)."""
    return JSONResponse({"unread": viewer.unread}, headers={"Cache-Control": "no-store"})


@router.get("/inbox/{notification_id}")
async def open_item(notification_id: uuid.UUID, viewer: ViewerDep, services: ServicesDep) -> Response:
    """Marks the item read and goes to its page (only the item's read mark changes: nothing a forged
    link could abuse)."""
    return redirect(await services.db(lambda s: service.open_item(s, viewer.user, notification_id)))


@router.post("/inbox/{notification_id}/read")
async def mark(notification_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep,
               read: bool = Form(True)) -> Response:  # fmt: skip
    await services.db(lambda s: service.mark(s, viewer.user, notification_id, read))
    return redirect("/inbox")


@router.post("/inbox/read-all")
async def read_all(viewer: FormViewerDep, services: ServicesDep) -> Response:
    await services.db(lambda s: repo.mark_all_read(s, viewer.user.id))
    return redirect("/inbox")


# --- settings: email per kind, webhook endpoints ----------------------------------------------------------


async def _settings_page(viewer: ViewerDep, services: ServicesDep, **more: object) -> Response:
    def load(session: Session) -> dict[str, object]:
        return {
            "kinds": service.preferences(session, viewer.user),
            "hooks": service.webhooks(session, viewer.user),
        }

    context = await services.db(load)
    return render("notification_settings.html", base_context(viewer, "Notifications", **context, **more))


@router.get("/settings/notifications")
async def settings_page(
    viewer: ViewerDep, services: ServicesDep, done: str | None = Query(None, max_length=40)
) -> Response:
    return await _settings_page(viewer, services, notice="Saved." if done else None, secret=None)


@router.post("/settings/notifications")
async def save(request: Request, viewer: FormViewerDep, services: ServicesDep) -> Response:
    form = await request.form()
    wanted = {str(v) for v in form.getlist("email")}
    await services.db(lambda s: service.set_preferences(s, viewer.user, wanted))
    return redirect("/settings/notifications?done=saved")


@router.post("/settings/webhooks")
async def register(request: Request, viewer: FormViewerDep, services: ServicesDep,
                   url: str = Form(..., max_length=500), deployment: bool = Form(False)) -> Response:  # fmt: skip
    form = await request.form()
    kinds = [str(v) for v in form.getlist("kinds")]
    settings = services.settings
    hook = await services.db(
        lambda s: service.register_webhook(
            s, settings, viewer.user, url=url, kinds=kinds, deployment=deployment
        )
    )
    # the secret is shown once, on this answer
    return await _settings_page(
        viewer, services, notice="Endpoint registered.", secret=(hook.url, hook.secret)
    )


@router.post("/settings/webhooks/{webhook_id}/{action}")
async def change(webhook_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep,
                 action: str) -> Response:  # fmt: skip
    def act(session: Session) -> None:
        if action == "delete":
            service.delete_webhook(session, viewer.user, webhook_id)
        elif action in ("enable", "disable"):
            service.set_webhook_enabled(session, viewer.user, webhook_id, action == "enable")
        else:
            raise NotFound("no such page: check the address")

    await services.db(act)
    return redirect("/settings/notifications?done=saved")


# --- operators ------------------------------------------------------------------------------------------


@router.get("/admin/notifications")
async def admin_page(viewer: ViewerDep, services: ServicesDep) -> Response:
    admin_only(viewer)

    def load(session: Session) -> dict[str, object]:
        return {"backlog": repo.backlog(session), "failed": repo.failed_deliveries(session),
                "mail": repo.mail_state(session)}  # fmt: skip

    return render(
        "admin_notifications.html", base_context(viewer, "Notifications", **await services.db(load))
    )
