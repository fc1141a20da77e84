"""``/dev/mail``: the embedded SMTP server's mailbox, only when the embedded stack runs it
(``WORKPROOF_DEV_MAIL``), so a newcomer on one machine can follow an invitation or a reset link. Every
message sent, newest first, with its links. Absent (404) in any other deployment."""

from __future__ import annotations

from fastapi.responses import Response

from api.deps import ServicesDep
from api.web.render import error_page, page_router, render
from store.maildir import read_maildir

router = page_router()


@router.get("/dev/mail")
async def mailbox(services: ServicesDep) -> Response:
    settings = services.settings
    if not settings.dev_mail:
        return error_page("no such page: check the address", 404)
    mails = list(reversed(read_maildir(settings.maildir)))
    return render("devmail.html", {"title": "Mail (this machine only)", "mails": mails[:200]})
