"""Admin pages for users: list and search, change a role, disable and enable (which ends every session
and token), reset a second factor, list and end sessions. Reads and changes are audited
(``api/services/users.py``); staff are invited from ``/invitations``."""

from __future__ import annotations

import uuid

from fastapi import Form, Query
from fastapi.responses import Response
from sqlmodel import Session

from api.deps import FormViewerDep, ServicesDep, Viewer, ViewerDep
from api.schemas import SessionPublic, UserAdminView
from api.services import users as service
from api.web.render import NOTICES, base_context, page_router, redirect, render
from domain.errors import Forbidden, NotFound
from store.models import User

router = page_router()


def admin_only(viewer: Viewer) -> None:
    if viewer.user.role != "admin":
        raise Forbidden("this page is for admins", "role_required")


@router.get("/admin/users")
async def users(
    viewer: ViewerDep, services: ServicesDep, q: str = Query("", max_length=100),
    role: str = Query("", pattern="^(|provider|client|support|admin)$"), offset: int = Query(0, ge=0, le=100_000),
    done: str | None = Query(None, max_length=40),
) -> Response:  # fmt: skip
    admin_only(viewer)
    rows, total = await services.db(
        lambda s: service.search(s, viewer.user, q=q or None, role=role or None, limit=50, offset=offset)
    )
    return render("admin_users.html", base_context(viewer, "Users", rows=rows, total=total, q=q, role=role,
                                                   offset=offset, notice=NOTICES.get(done or "")))  # fmt: skip


@router.get("/admin/users/{user_id}")
async def user_page(user_id: uuid.UUID, viewer: ViewerDep, services: ServicesDep,
                    done: str | None = Query(None, max_length=40)) -> Response:  # fmt: skip
    admin_only(viewer)

    def load(session: Session) -> tuple[UserAdminView, list[SessionPublic]]:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        return service.view(user), service.sessions(session, viewer.user, user_id)

    user, sessions = await services.db(load)
    return render("admin_user.html", base_context(viewer, user.email, user=user, sessions=sessions,
                                                  notice=NOTICES.get(done or "")))  # fmt: skip


@router.post("/admin/users/{user_id}/role")
async def role(user_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep,
               role: str = Form(..., pattern="^(provider|client|support|admin)$")) -> Response:  # fmt: skip
    admin_only(viewer)
    await services.db(lambda s: service.change_role(s, viewer.user, user_id, role))
    return redirect(f"/admin/users/{user_id}?done=saved")


@router.post("/admin/users/{user_id}/disable")
async def disable(user_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep) -> Response:
    admin_only(viewer)
    await services.db(lambda s: service.set_disabled(s, viewer.user, user_id, True))
    return redirect(f"/admin/users/{user_id}?done=saved")


@router.post("/admin/users/{user_id}/enable")
async def enable(user_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep) -> Response:
    admin_only(viewer)
    await services.db(lambda s: service.set_disabled(s, viewer.user, user_id, False))
    return redirect(f"/admin/users/{user_id}?done=saved")


@router.post("/admin/users/{user_id}/second-factor/reset")
async def reset_factor(user_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep) -> Response:
    admin_only(viewer)
    await services.db(lambda s: service.reset_factor(s, viewer.user, user_id))
    return redirect(f"/admin/users/{user_id}?done=saved")


@router.post("/admin/users/{user_id}/sessions/{token_id}/end")
async def end(
    user_id: uuid.UUID, token_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep
) -> Response:
    admin_only(viewer)
    await services.db(lambda s: service.end_session(s, viewer.user, token_id))
    return redirect(f"/admin/users/{user_id}?done=revoked")
