"""The mails accounts send: rendered from Jinja templates (plain text and HTML, ``api/web/templates/
mail/``) and put in the outbox in the caller's transaction (store/mail.py sends them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from sqlmodel import Session

from store.mail import Rendered, enqueue
from store.settings import Settings

TEMPLATES = Path(__file__).resolve().parents[1] / "web" / "templates"
_HTML = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
)
_TEXT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False, undefined=jinja2.StrictUndefined,  # noqa: S701 (plain text mail, never HTML)
    keep_trailing_newline=True,
)  # fmt: skip
SUBJECTS = {
    "verify": "Confirm your email address",
    "signup_exists": "You already have a Workproof account",
    "reset": "Choose a new Workproof password",
    "invitation": "{inviter} invites you to Workproof",
    "offer": "{inviter} offers you a contract",
}


def render(kind: str, settings: Settings, **context: Any) -> Rendered:
    context = {"base_url": settings.base_url, **context}
    subject = SUBJECTS[kind].format(**context)
    context["subject"] = subject
    return Rendered(
        subject=subject,
        text=_TEXT.get_template(f"mail/{kind}.txt").render(context),
        html=_HTML.get_template(f"mail/{kind}.html").render(context),
    )


def send(session: Session, settings: Settings, kind: str, recipient: str, **context: Any) -> None:
    """Render ``kind`` and add it to the outbox in ``session``'s transaction."""
    enqueue(session=session, kind=kind, recipient=recipient, mail=render(kind, settings, **context),
            sender=settings.mail_from)  # fmt: skip
