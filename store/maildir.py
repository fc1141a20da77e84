"""Reading the embedded SMTP server's Maildir: ``/dev/mail`` lists it; the tests read their mail here."""

from __future__ import annotations

import mailbox
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

_LINK = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class KeptMail:
    key: str
    message_id: str
    sender: str
    to: str
    subject: str
    date: str
    text: str
    html: str

    @property
    def links(self) -> list[str]:
        return _LINK.findall(self.text)


def _part(message: EmailMessage, kind: str) -> str:
    body = message.get_body(preferencelist=(kind,))
    return body.get_content() if body is not None else ""


def read_maildir(folder: Path) -> list[KeptMail]:
    """Every kept message, oldest first."""
    if not (folder / "cur").exists() and not (folder / "new").exists():
        return []
    box = mailbox.Maildir(folder, factory=None, create=False)
    parser = BytesParser(policy=policy.default)
    mails = []
    for key in box.keys():
        try:
            raw = box.get_bytes(key)
        except (KeyError, FileNotFoundError):
            continue
        message = parser.parsebytes(raw)
        assert isinstance(message, EmailMessage)
        mails.append(
            KeptMail(
                key=key, message_id=str(message.get("Message-ID", "")), sender=str(message.get("From", "")),
                to=str(message.get("To", "")), subject=str(message.get("Subject", "")),
                date=str(message.get("Date", "")), text=_part(message, "plain"), html=_part(message, "html"),
            )
        )  # fmt: skip

    def when(mail: KeptMail) -> float:
        try:
            return parsedate_to_datetime(mail.date).timestamp()
        except (TypeError, ValueError):
            return 0.0

    return sorted(mails, key=lambda mail: (when(mail), mail.key))
