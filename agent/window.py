"""The tracker's window: a small web page served by the running tracker, on this computer only.

ActivityWatch's way: no GUI toolkit in the agent, a page in the provider's own browser instead (and an
optional tray icon, :mod:`agent.tray`, that opens it). Kept light: the standard library's
``http.server`` in one thread that blocks in ``accept`` (no polling), server-rendered HTML, one small
script that asks for ``state`` every few seconds while the page is open, and nothing at all done while
no page is open.

Who can reach it:
- it listens on 127.0.0.1 only, on a random port: never reachable from another machine;
- every path starts with a random secret (``/SECRET/...``), compared in constant time; anything else is
  answered 403 with no detail. Other local users can connect to the port but do not know the secret:
  only the running tracker and ``workproof-agent ui`` (over the private control channel) do;
- the Host header must be ``127.0.0.1:PORT`` or ``localhost:PORT`` (a DNS-rebinding page has its own
  host name there), and a POST must come with an Origin of exactly those: another web site open in
  the provider's browser cannot drive the tracker;
- every answer is ``Cache-Control: no-store``, ``Referrer-Policy: same-origin`` (links to the server
  never carry the secret), ``X-Frame-Options: DENY`` and a CSP of ``default-src 'self'``.
"""

from __future__ import annotations

import contextlib
import hmac
import html
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from agent.api import Contract, WorkproofClient
from agent.deletion import delete_capture
from agent.errors import AgentError
from agent.queue import SUFFIX
from agent.tracker import check_memo
from domain.text import MAX_MEMO_CHARS

if TYPE_CHECKING:
    from agent.tracker import Tracker

MAX_FORM_BYTES = 64 * 1024
OFFERS_MAX_AGE = (
    60.0  # seconds: the server is asked for offers at most this often, and only while the page is open
)
POLL_SECONDS = 3
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_THUMBNAIL = re.compile(r"^([0-9a-f-]{36})-([1-9][0-9]?)\.webp$")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin: the page's own POSTs carry its Origin (with no-referrer Chromium sends "null"), and
    # nothing cross-origin (the links to the server) ever sees the address, secret included.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
STATIC = {
    "window.js": "text/javascript; charset=utf-8",
    "window.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
DONE = {
    "memo": "Memo saved: it applies from the next capture.",
    "memo-cleared": "Memo cleared: slots without a memo are not guaranteed.",
    "pause": "Paused: no capture until you resume.",
    "resume": "Tracking again.",
}
NOT_GUARANTEED = (
    "Work View is off for this contract: slots are tracked without screenshots, and tracked time is "
    "not guaranteed (if the client does not pay it, the platform does not either)."
)
NO_MEMO = "No memo: slots captured without a memo are not guaranteed."


def _local(iso: str | None, fmt: str = "%H:%M:%S") -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone().strftime(fmt)


class Offers:
    """The contracts waiting for the provider, asked of the server in the background, at most once a minute."""

    def __init__(self, client: Callable[[], WorkproofClient]) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._fetched = -OFFERS_MAX_AGE
        self._busy = False
        self.items: list[dict[str, str]] | None = None  # None: not known yet
        self.note = ""

    def current(self) -> tuple[list[dict[str, str]] | None, str]:
        with self._lock:
            if not self._busy and time.monotonic() - self._fetched >= OFFERS_MAX_AGE:
                self._busy = True
                threading.Thread(target=self._fetch, name="workproof-offers", daemon=True).start()
            return self.items, self.note

    def _fetch(self) -> None:
        items: list[dict[str, str]] | None = None
        note = ""
        try:
            client = self._client()
            offered: list[Contract] = client.contracts_with_status("offered")
            items = [
                {
                    "id": c.id,
                    "title": c.title or c.id,
                    "terms": f"{c.rate_cents / 100:.2f} {c.currency}/h, up to {c.weekly_limit_hours} h a week",
                    "url": f"{client.server}/contracts/{c.id}",
                }
                for c in offered
                if c.status == "offered"
            ]
        except AgentError as error:
            note = f"offers unknown: {error.message}"
        except Exception as error:  # the window must keep working whatever the server answers
            note = f"offers unknown: {error!r}"
        with self._lock:
            if items is not None:
                self.items = items
            self.note = note
            self._fetched = time.monotonic()
            self._busy = False


class Window:
    """The page of one running tracker. ``start`` binds and serves in a daemon thread; ``url`` opens it."""

    def __init__(
        self,
        tracker: Tracker,
        *,
        thumbnails_folder: Path,
        client: Callable[[], WorkproofClient],
        host: str = "127.0.0.1",
    ) -> None:
        self.tracker = tracker
        self.thumbnails_folder = thumbnails_folder
        self.client = client
        self.offers = Offers(client)
        self.secret = secrets.token_urlsafe(32)
        self._host = host
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._deleted: dict[str, str] = {}  # capture id -> what deleting it did
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        window = self

        class Handler(WindowRequestHandler):
            owner = window

        server = ThreadingHTTPServer((self._host, 0), Handler, bind_and_activate=True)
        server.daemon_threads = True
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(target=self._serve, name="workproof-window", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        # handle_request blocks in accept with no timeout: no wake-ups while nobody looks at the page
        # (serve_forever would wake twice a second to check for shutdown).
        assert self._server is not None
        self._server.timeout = None
        while not self._closed.is_set():
            try:
                self._server.handle_request()
            except OSError:
                return

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}/{self.secret}/"

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        return (f"127.0.0.1:{self.port}", f"localhost:{self.port}")

    def close(self) -> None:
        if self._server is None or self._closed.is_set():
            return
        self._closed.set()
        # Wake the accept so the thread sees the flag, then close the socket.
        with contextlib.suppress(OSError), socket.create_connection((self._host, self.port), timeout=1):
            pass
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._server.server_close()

    # -- what the page shows -----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        snapshot = self.tracker.snapshot()
        contract = snapshot["contract"]
        uploader = snapshot["uploader"]
        pending = sum(1 for _ in self.tracker.queue.pending_folder.glob(f"*{SUFFIX}"))
        last: dict[str, Any] | None = None
        capture_id = snapshot.get("last_capture_id")
        if capture_id:
            slot = ""
            if snapshot.get("last_capture_slot"):
                start = datetime.fromisoformat(snapshot["last_capture_slot"])
                end = start + self.tracker.scheduler.slot_length
                slot = f"{_local(start.isoformat())} to {_local(end.isoformat())}"
            deleted = self._deleted.get(capture_id)
            thumbnails = (
                []
                if deleted
                else [
                    f"thumb/{path.name}"
                    for path in sorted(self.thumbnails_folder.glob(f"{capture_id}-*.webp"))
                ]
            )
            last = {
                "id": capture_id,
                "at": _local(snapshot.get("last_capture_at")),
                "at_iso": snapshot.get("last_capture_at"),
                "slot": slot,
                "kind": snapshot.get("last_capture_kind") or "",
                "thumbnails": thumbnails,
                "deleted": deleted or "",
            }
        offers, offers_note = self.offers.current()
        notices: list[str] = []
        if not snapshot["work_view_on"]:
            notices.append(NOT_GUARANTEED)
        if not snapshot["memo"].strip():
            notices.append(NO_MEMO)
        return {
            "state": "stopped" if snapshot["state"] == "stopping" else snapshot["state"],
            "contract": {"id": contract["id"], "title": contract["title"] or contract["id"]},
            "memo": snapshot["memo"],
            "work_view_on": snapshot["work_view_on"],
            "guaranteed": bool(snapshot["work_view_on"] and snapshot["memo"].strip()),
            "notices": notices,
            "blur": bool(snapshot.get("blur")),
            "last_capture": last,
            "last_problem": snapshot.get("last_problem") or "",
            "queue": pending,
            "last_upload": _local(uploader.get("last_upload_at"), "%Y-%m-%d %H:%M:%S") or "never",
            "last_error": uploader.get("last_error") or "",
            "offers": offers,
            "offers_note": offers_note,
        }

    # -- what the page does -----------------------------------------------------------------------

    def act(self, action: str, form: dict[str, str]) -> str:
        """Carry out a POST; answers the ``done`` key for the page. Raises AgentError to show a refusal."""
        if action == "memo":
            memo = check_memo(form.get("memo", "").replace("\r\n", "\n").replace("\r", "\n"))
            self.tracker.set_memo(memo)
            return "memo" if memo.strip() else "memo-cleared"
        if action == "pause":
            self.tracker.pause()
            return "pause"
        if action == "resume":
            self.tracker.resume()
            return "resume"
        if action == "delete":
            capture_id = form.get("capture_id", "").strip().lower()
            if not _UUID.match(capture_id):
                raise AgentError("no such capture")
            done = delete_capture(
                capture_id,
                delete_local=self.tracker.delete_local,
                client=self.client,
                thumbnails_folder=self.thumbnails_folder,
            )
            self._deleted[capture_id] = done
            return "delete"
        raise LookupError(action)

    def page(self, done: str = "", error: str = "") -> str:
        state = self.state()
        message = DONE.get(done, "")
        if done == "delete" and state["last_capture"] and state["last_capture"]["deleted"]:
            message = state["last_capture"]["deleted"]
        return render_page(state, done=message, error=error)

    def state_json(self) -> bytes:
        state = self.state()
        state["label"] = STATE_LABELS.get(state["state"], state["state"])
        state["blur_text"] = blur_text(state["blur"])
        state["html"] = fragments(state)
        return json.dumps(state).encode()


# -- HTTP -------------------------------------------------------------------------------------------


class WindowRequestHandler(BaseHTTPRequestHandler):
    owner: Window
    server_version = "workproof-agent"
    sys_version = ""
    # A connection that sends nothing is dropped after this long, so idle sockets cannot pile up threads.
    timeout = 15

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tracker's terminal is the provider's status line, not an access log

    # -- gatekeeping -------------------------------------------------------------------------------

    def _route(self) -> str | None:
        """The path after the secret, or None (after answering 403) when the request is not the provider's."""
        host = self.headers.get("Host", "")
        if host not in self.owner.allowed_hosts:
            self._refuse()
            return None
        path = urlsplit(self.path).path
        if not path.startswith("/"):
            self._refuse()
            return None
        given, _, rest = path[1:].partition("/")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.owner.secret.encode()):
            self._refuse()
            return None
        if rest == "" and not path.endswith("/"):
            self._send(HTTPStatus.SEE_OTHER, b"", headers={"Location": f"/{self.owner.secret}/"})
            return None
        return rest

    def _refuse(self) -> None:
        self._send(HTTPStatus.FORBIDDEN, b"")

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        for name, value in (SECURITY_HEADERS | (headers or {})).items():
            self.send_header(name, value)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- methods -----------------------------------------------------------------------------------

    def do_GET(self) -> None:
        rest = self._route()
        if rest is None:
            return
        query = parse_qs(urlsplit(self.path).query)
        if rest == "":
            done = query.get("done", [""])[0]
            body = self.owner.page(done=done if done in DONE or done == "delete" else "").encode()
            self._send(HTTPStatus.OK, body, "text/html; charset=utf-8")
        elif rest == "state":
            self._send(HTTPStatus.OK, self.owner.state_json(), "application/json")
        elif rest in STATIC:
            content = resources.files("agent").joinpath("static", rest).read_bytes()
            self._send(HTTPStatus.OK, content, STATIC[rest])
        elif rest.startswith("thumb/") and (match := _THUMBNAIL.match(rest.removeprefix("thumb/"))):
            if match.group(1) in self.owner._deleted:
                self._send(HTTPStatus.NOT_FOUND, b"")
                return
            try:
                content = (self.owner.thumbnails_folder / match.group(0)).read_bytes()
            except OSError:
                self._send(HTTPStatus.NOT_FOUND, b"")
                return
            self._send(HTTPStatus.OK, content, "image/webp")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        rest = self._route()
        if rest is None:
            return
        # Another site open in the same browser can send a POST here (it cannot know the secret, but
        # the check costs nothing): only the page's own origin may change anything.
        if self.headers.get("Origin", "") not in {f"http://{h}" for h in self.owner.allowed_hosts}:
            self._refuse()
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_FORM_BYTES:
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"")
            return
        raw = self.rfile.read(length).decode("utf-8", "replace")
        form = {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}
        try:
            done = self.owner.act(rest, form)
        except LookupError:
            self._send(HTTPStatus.NOT_FOUND, b"")
            return
        except AgentError as error:
            body = self.owner.page(error=error.message).encode()
            self._send(HTTPStatus.UNPROCESSABLE_ENTITY, body, "text/html; charset=utf-8")
            return
        # Post/redirect/get: reloading the page does not post again.
        self._send(HTTPStatus.SEE_OTHER, b"", headers={"Location": f"/{self.owner.secret}/?done={done}"})

    def do_PUT(self) -> None:
        if self._route() is not None:
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"")

    do_DELETE = do_PATCH = do_PUT


# -- the page ---------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def render_last(last: dict[str, Any] | None) -> str:
    if not last:
        return "<p>No capture yet in this session.</p>"
    thumbs = "".join(
        f'<img src="{_e(src)}" alt="monitor {i + 1} of the capture at {_e(last["at"])}" width="320">'
        for i, src in enumerate(last["thumbnails"])
    )
    kind = "screenshot" if last["kind"] == "screenshot" else "tracked time, no screenshot"
    if last["deleted"]:
        action = f"<p id=last-deleted>{_e(last['deleted'])}</p>"
    else:
        action = (
            f'<form method=post action=delete id=delete-form data-confirm="Delete the capture of '
            f"{_e(last['at'])}? Its slot leaves this week's timesheet.\">"
            f'<input type=hidden name=capture_id value="{_e(last["id"])}">'
            "<button type=submit class=danger>Delete this capture</button></form>"
        )
    return (
        "<dl class=facts>"
        f'<dt>Time</dt><dd><time id=last-at datetime="{_e(last["at_iso"])}">{_e(last["at"])}</time></dd>'
        f"<dt>Slot</dt><dd id=last-slot>{_e(last['slot'])}</dd>"
        f"<dt>Kind</dt><dd id=last-kind>{_e(kind)}</dd>"
        f"</dl><div class=thumbs>{thumbs}</div>{action}"
    )


def render_offers(offers: list[dict[str, str]] | None) -> str:
    if offers is None:
        return "<p>Checking the server…</p>"
    if not offers:
        return "<p>No offers waiting.</p>"
    items = "".join(
        f'<li><a href="{_e(o["url"])}" target=_blank rel="noopener noreferrer">{_e(o["title"])}</a> '
        f"<span>{_e(o['terms'])}</span>: accept it on the server's page</li>"
        for o in offers
    )
    return f"<ul class=offers>{items}</ul>"


def render_notices(notices: list[str]) -> str:
    return "".join(f"<li>{_e(n)}</li>" for n in notices)


def fragments(state: dict[str, Any]) -> dict[str, str]:
    """The parts of the page the script replaces as they are (rendered and escaped here, not in JS)."""
    return {
        "last": render_last(state["last_capture"]),
        "offers": render_offers(state["offers"]),
        "notices": render_notices(state["notices"]),
    }


STATE_LABELS = {"tracking": "Tracking", "paused": "Paused", "stopped": "Stopped"}


def render_page(state: dict[str, Any], *, done: str = "", error: str = "") -> str:
    contract = state["contract"]
    tracking = state["state"] == "tracking"
    parts = fragments(state)
    label = STATE_LABELS.get(state["state"], state["state"])

    def hidden(condition: object) -> str:
        return " hidden" if condition else ""

    return f"""<!doctype html>
<html lang=en>
<head>
<meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<meta name=referrer content=same-origin>
<title>Workproof agent: {_e(label)}</title>
<link rel=stylesheet href=window.css>
<link rel=icon href=favicon.svg type="image/svg+xml">
<script src=window.js defer></script>
</head>
<body data-poll="{POLL_SECONDS}">
<main>
<header>
  <h1>Workproof agent</h1>
  <p id=state class="state state-{_e(state["state"])}" aria-live=polite>{_e(label)}</p>
</header>
<p id=stopped-note class=alert hidden>The tracker has stopped: this page no longer updates. Start it again
with <code>workproof-agent start CONTRACT</code>, then <code>workproof-agent ui</code>.</p>
<p id=done role=status{hidden(not done)}>{_e(done)}</p>
<p id=error role=alert class=alert{hidden(not error)}>{_e(error)}</p>
<ul id=notices class="notices alert" aria-live=polite{hidden(not state["notices"])}>{parts["notices"]}</ul>

<section aria-labelledby=contract-h>
  <h2 id=contract-h>Contract</h2>
  <p><strong id=contract-title>{_e(contract["title"])}</strong><br><code id=contract-id>{_e(contract["id"])}</code></p>
  <div class=row>
    <form method=post action=pause id=pause-form{hidden(not tracking)}><button type=submit>Pause</button></form>
    <form method=post action=resume id=resume-form{hidden(tracking)}><button type=submit>Resume</button></form>
  </div>
  <form method=post action=memo id=memo-form>
    <label for=memo>Memo: what you are working on (applies from the next capture)</label>
    <textarea id=memo name=memo rows=2 maxlength={MAX_MEMO_CHARS}>{_e(state["memo"])}</textarea>
    <button type=submit>Save memo</button>
  </form>
</section>

<section aria-labelledby=last-h>
  <h2 id=last-h>Last capture</h2>
  <div id=last>{parts["last"]}</div>
</section>

<section aria-labelledby=upload-h>
  <h2 id=upload-h>Uploads</h2>
  <dl class=facts>
    <dt>Waiting in the queue</dt><dd id=queue>{_e(state["queue"])}</dd>
    <dt>Last upload</dt><dd id=last-upload>{_e(state["last_upload"])}</dd>
    <dt>Last upload error</dt><dd id=last-error>{_e(state["last_error"] or "none")}</dd>
    <dt>Blur</dt><dd id=blur>{_e(blur_text(state["blur"]))}</dd>
  </dl>
  <p id=last-problem class=alert{hidden(not state["last_problem"])}>{_e(state["last_problem"])}</p>
</section>

<section aria-labelledby=offers-h>
  <h2 id=offers-h>Offers waiting for you</h2>
  <div id=offers aria-live=polite>{parts["offers"]}</div>
  <p id=offers-note{hidden(not state["offers_note"])}>{_e(state["offers_note"])}</p>
</section>
</main>
</body>
</html>
"""


def blur_text(on: bool) -> str:
    return "on: images are pixelated before they leave memory" if on else "off"
