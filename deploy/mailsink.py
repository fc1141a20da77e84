"""The embedded stack's SMTP server: accepts every message on 127.0.0.1 and keeps it in a Maildir under
the data folder, where ``/dev/mail`` (and the tests) read it. Never relays anything anywhere.

``python -m deploy.mailsink MAILDIR --port 8025``"""

from __future__ import annotations

import argparse
import mailbox
import signal
import threading
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class KeepInMaildir:
    def __init__(self, folder: Path) -> None:
        self.box = mailbox.Maildir(folder, create=True)
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.lock:
            self.box.add(message)
        return "250 kept"


def main() -> None:
    parser = argparse.ArgumentParser(prog="mailsink")
    parser.add_argument("maildir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args()
    controller = Controller(KeepInMaildir(Path(args.maildir)), hostname=args.host, port=args.port)
    controller.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"SMTP server on {args.host}:{args.port}, keeping mail in {args.maildir}", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
