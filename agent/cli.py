"""``workproof-agent``: the provider's command line.

Every failure ends in one line on stderr that names the fix, and a non-zero exit code
(2 usage, 3 not logged in, 4 tracker not running / already running, 5 server unreachable,
6 server refused, 7 no screen capture, 8 queue full, 1 anything else).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import shutil
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

from agent import control
from agent.activity import activity_counter
from agent.api import ClientCache, Contract, WorkproofClient
from agent.capture import choose_backend
from agent.config import (
    AgentPaths,
    Credentials,
    Settings,
    coerce_setting,
    load_credentials,
    load_settings,
    save_credentials,
    save_settings,
    slot_length,
)
from agent.deletion import delete_uploaded, forget_thumbnails
from agent.device import device_login, discard_token
from agent.durable import ProcessLock, write_atomically
from agent.errors import (
    AgentError,
    InvalidArgument,
    NotLoggedIn,
    ServerRefused,
    ServerUnreachable,
    TrackerAlreadyRunning,
    TrackerNotRunning,
)
from agent.memory import return_large_blocks_promptly
from agent.queue import CaptureQueue
from agent.schedule import SlotScheduler
from agent.tracker import Tracker, check_memo, prune_thumbnails
from agent.uploader import Backoff, DrainReport, Uploader, UploaderState
from domain.calendar import parse_week, week_label, week_start
from domain.errors import InvalidInput

if TYPE_CHECKING:
    from agent.tray import Tray
    from agent.window import Window

TOKEN_ENV = "WORKPROOF_AGENT_TOKEN"


# -- output ------------------------------------------------------------------------------------------


class StatusLine:
    """One line, rewritten in place on a terminal; plain lines when the output is a file or a pipe."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self._text = ""
        self._lock = threading.Lock()

    def _clear(self) -> None:
        if self.tty and self._text:
            self.stream.write("\r\x1b[K")

    def event(self, message: str, *, problem: bool = False) -> None:
        with self._lock:
            self._clear()
            target = sys.stderr if problem else self.stream
            stamp = datetime.now().astimezone().strftime("%H:%M:%S")
            print(f"{stamp} {message}", file=target, flush=True)
            self._draw()

    def show(self, text: str) -> None:
        with self._lock:
            self._clear()
            self._text = text
            self._draw()

    def _draw(self) -> None:
        if self.tty and self._text:
            width = shutil.get_terminal_size((100, 20)).columns
            self.stream.write(self._text[: max(10, width - 1)])
            self.stream.flush()

    def close(self) -> None:
        with self._lock:
            self._clear()
            self._text = ""
            self.stream.flush()


def fail(message: str) -> None:
    print(f"workproof-agent: {message}", file=sys.stderr, flush=True)


def local_time(iso: str | None) -> str:
    if not iso:
        return "never"
    at = datetime.fromisoformat(iso)
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def hours(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d} h"


# -- helpers -----------------------------------------------------------------------------------------


def client_for(credentials: Credentials) -> WorkproofClient:
    return WorkproofClient(credentials.server, credentials.token)


def read_contracts_cache(paths: AgentPaths) -> dict[str, Contract]:
    try:
        raw = json.loads(paths.contracts_cache_file.read_text(encoding="utf-8"))
        return {key: Contract.from_api(value) for key, value in raw.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def write_contracts_cache(paths: AgentPaths, contracts: list[Contract]) -> None:
    with contextlib.suppress(OSError):
        paths.data.mkdir(parents=True, exist_ok=True, mode=0o700)
        content = json.dumps({c.id: c.as_dict() for c in contracts}, indent=2).encode()
        write_atomically(paths.contracts_cache_file, content)


def pick_contract(contracts: list[Contract], wanted: str) -> Contract:
    exact = [c for c in contracts if c.id == wanted]
    if exact:
        return exact[0]
    matches = [c for c in contracts if c.id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise InvalidArgument(f"{wanted!r} matches {len(matches)} contracts: give more of the id")
    raise InvalidArgument(
        f"no contract {wanted!r} on your account: list them with `workproof-agent contracts`"
    )


def open_queue(paths: AgentPaths, settings: Settings) -> CaptureQueue:
    return CaptureQueue(paths.queue_folder, limit_bytes=settings.queue_limit_bytes)


def tracker_running(paths: AgentPaths) -> dict[str, Any] | None:
    try:
        return control.call(paths, {"command": "status"}, timeout=10)
    except TrackerNotRunning:
        return None


def backoff_for(length: timedelta) -> Backoff:
    # Never wait longer than half a slot between attempts (5 minutes at 12-minute slots): a provider who
    # reconnects sees the queue drain soon, and test runs with short slots stay short.
    cap = max(1.0, min(300.0, length.total_seconds() / 2))
    return Backoff(base=min(1.0, cap), cap=cap)


def report_drain(report: DrainReport, remaining_note: str = "") -> int:
    line = f"uploaded {report.delivered}"
    if report.rejected:
        line += f", rejected {report.rejected}"
    line += f", {report.remaining} still queued"
    print(line + remaining_note)
    for message in report.messages:
        fail(message)
    if report.remaining:
        return ServerUnreachable.exit_code
    return 0


# -- commands ----------------------------------------------------------------------------------------


def cmd_login(args: argparse.Namespace, paths: AgentPaths) -> int:
    server = args.server.strip().rstrip("/")
    if not server.startswith(("http://", "https://")):
        raise InvalidArgument(f"server {server!r} needs a scheme: e.g. https://{server}")
    token = args.token or os.environ.get(TOKEN_ENV, "")
    if token == "-":  # a machine without a browser: the token on stdin
        token = getpass.getpass("provider token: ") if sys.stdin.isatty() else sys.stdin.readline()
    approved = not token
    if approved:  # a person: approve this machine on the web (agent/device.py)
        token = device_login(server, sys.stdout)
    token = token.strip()
    if not token:
        raise InvalidArgument(f"no token given: pass --token, set {TOKEN_ENV}, or approve the device code")
    with WorkproofClient(server, token) as client:
        try:
            me = client.me()
        except ServerRefused as error:
            if error.status in (401, 403):
                raise NotLoggedIn(
                    f"the server refused this token ({error.detail}): check it, or ask for a new one"
                ) from None
            raise
    role = str(me.get("role", ""))
    if role != "provider":
        if approved:  # a token this login made: do not leave it behind
            discard_token(server, token)
        raise InvalidArgument(
            f"this token belongs to a {role or 'non-provider'} account: log in with your provider token"
        )
    credentials = Credentials(
        server=server,
        token=token,
        user_id=str(me.get("id", "")),
        email=str(me.get("email", "")),
        name=str(me.get("name", "")),
    )
    save_credentials(paths, credentials)
    print(f"logged in to {server} as {credentials.name or credentials.email} <{credentials.email}>")
    print(f"credentials saved in {paths.credentials_file} (readable by you only)")
    return 0


def cmd_contracts(args: argparse.Namespace, paths: AgentPaths) -> int:
    credentials = load_credentials(paths)
    with client_for(credentials) as client:
        contracts = client.contracts()
    write_contracts_cache(paths, contracts)
    if args.json:
        print(json.dumps([c.as_dict() for c in contracts], indent=2))
        return 0
    if not contracts:
        print("no contracts yet: a client offers you one, and you accept it on the web")
        return 0
    for c in contracts:
        rate = f"{c.rate_cents / 100:.2f} {c.currency}/h"
        view = "Work View on" if c.work_view_on else "Work View off"
        print(f"{c.id}  {c.status:<7}  {rate:>14}  {c.weekly_limit_hours:>3} h/week  {view:<13}  {c.title}")
    return 0


def resolve_contract(
    paths: AgentPaths, credentials: Credentials, wanted: str, report: Callable[[str], None]
) -> Contract:
    try:
        with client_for(credentials) as client:
            contracts = client.contracts()
        write_contracts_cache(paths, contracts)
        contract = pick_contract(contracts, wanted)
    except (ServerUnreachable, ServerRefused) as error:
        if isinstance(error, ServerRefused) and error.status < 500:
            raise
        # Losing a day's work because the wifi (or the server) is down at 9:00 is exactly what the agent
        # must not do: track with what this computer last knew of the contract.
        cached = list(read_contracts_cache(paths).values())
        try:
            contract = pick_contract(cached, wanted)
        except InvalidArgument:
            try:
                uuid.UUID(wanted)
            except ValueError:
                raise ServerUnreachable(
                    f"{error.message}; to track offline, give the contract's full id"
                ) from None
            contract = Contract(id=wanted, title="(offline)", status="active")
        report(
            f"{error.message}; tracking offline with the last known contract details, "
            "captures upload when the server is back"
        )
    if contract.status == "offered":
        raise InvalidArgument(f"contract {contract.id} is only offered: accept it on the web first")
    if contract.status == "ended":
        raise InvalidArgument(f"contract {contract.id} has ended: there is nothing more to track")
    return contract


def cmd_start(args: argparse.Namespace, paths: AgentPaths) -> int:
    credentials = load_credentials(paths)
    settings = load_settings(paths)
    memo = check_memo(args.memo or "")
    length = slot_length()
    paths.ensure()
    lock = ProcessLock(paths.tracker_lock_file)
    if not lock.try_acquire():
        raise TrackerAlreadyRunning(
            "a tracker is already running for this account: use `workproof-agent status`, or stop it first"
        )
    line = StatusLine()
    return_large_blocks_promptly()
    try:
        contract = resolve_contract(paths, credentials, args.contract, lambda m: line.event(m, problem=True))
        # Choose (and try) the capture back end now, so a missing grim or portal is reported at start,
        # not twelve minutes later.
        backend = choose_backend() if contract.work_view_on else None
        queue = open_queue(paths, settings)
        queue.discard_leftovers()
        prune_thumbnails(paths.thumbnails_folder)
        clients = ClientCache()

        def lookup(contract_id: str) -> Contract | None:
            current = load_credentials(paths)  # a new `login` takes effect without a restart
            return clients.client(current.server, current.token).contract(contract_id)

        uploader = Uploader(
            queue,
            lambda: load_credentials(paths),
            paths.uploader_state_file,
            backoff=backoff_for(length),
            clients=clients,
            on_event=lambda m: line.event(m, problem=True),
        )
        tracker = Tracker(
            contract=contract,
            memo=memo,
            settings=settings,
            queue=queue,
            uploader=uploader,
            scheduler=SlotScheduler(length),
            thumbnails_folder=paths.thumbnails_folder,
            contracts_cache=paths.contracts_cache_file,
            lookup_contract=lookup,
            backend=backend,
            activity=activity_counter(settings.activity_counts, dict(os.environ)),
            report=lambda m: line.event(m, problem=True),
            notify=line.event,
        )
        window = open_window(tracker, paths, clients, lambda m: line.event(m, problem=True))
        server = control.ControlServer(paths, lambda request: handle_control(tracker, request, window))
        server.start()
        tray = start_tray(tracker, window, settings, lambda m: line.event(m, problem=True))
        try:

            def stop_once(signum: int, _frame: object) -> None:
                tracker.stop()
                # A second Ctrl+C interrupts the last upload at once; the queue on disk is safe either way.
                signal.signal(
                    signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
                )

            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, stop_once)
            view = f"screenshots via {backend.name}" if backend else "Work View off: tracked time only"
            line.event(
                f"tracking {contract.title or contract.id} ({view}); stop with Ctrl+C or `workproof-agent stop`"
                + ("; see it in your browser with `workproof-agent ui`" if window is not None else "")
            )
            if not contract.work_view_on:
                line.event(NOT_GUARANTEED_NOTE)
            if not memo.strip():
                line.event(
                    "no memo: slots without a memo are not guaranteed; set one with `workproof-agent memo TEXT`"
                )
            tracker.run(on_tick=lambda: line.show(status_text(tracker.snapshot(), queue)))
        finally:
            if tray is not None:
                tray.close()
            server.close()
            if window is not None:
                window.close()
            line.close()
            clients.close()
        snapshot = tracker.snapshot()
        usage = queue.usage()
        print(
            f"stopped: {snapshot['captures']} capture(s) this session; {usage.pending} waiting for upload"
            + (" (they upload at the next start or with `workproof-agent sync`)" if usage.pending else "")
        )
        return 0
    finally:
        lock.release()


NOT_GUARANTEED_NOTE = "Work View is off: this time is tracked without screenshots and is not guaranteed"


def open_window(
    tracker: Tracker, paths: AgentPaths, clients: ClientCache, report: Callable[[str], None]
) -> Window | None:
    """The tracker's web page (see agent/window.py); tracking goes on without it if it cannot start."""
    from agent.window import Window

    def client() -> WorkproofClient:
        current = load_credentials(paths)
        return clients.client(current.server, current.token)

    window = Window(tracker, thumbnails_folder=paths.thumbnails_folder, client=client)
    try:
        window.start()
    except OSError as error:
        report(f"the window could not start ({error}): tracking goes on; use the other commands")
        return None
    return window


def start_tray(
    tracker: Tracker, window: Window | None, settings: Settings, report: Callable[[str], None]
) -> Tray | None:
    """The optional tray icon (the `tray` extra); None when it is off, not installed, or has no window."""
    if not settings.tray or window is None:
        return None
    from agent.tray import Tray, TrayActions

    actions = TrayActions(
        open_window=lambda: open_in_browser(window.url),
        pause=tracker.pause,
        resume=tracker.resume,
        stop=tracker.stop,
        paused=lambda: tracker.paused,
    )
    tray = Tray(actions, report)
    return tray if tray.start() else None


def open_in_browser(url: str) -> bool:
    import webbrowser

    try:
        return webbrowser.open(url, new=2)
    except webbrowser.Error:
        return False


def status_text(snapshot: dict[str, Any], queue: CaptureQueue) -> str:
    state = "PAUSED" if snapshot["state"] == "paused" else snapshot["state"]
    title = snapshot["contract"]["title"] or snapshot["contract"]["id"][:8]
    memo = snapshot["memo"].strip() or "(no memo)"
    slot = ""
    if snapshot.get("slot_start"):
        slot = datetime.fromisoformat(snapshot["slot_start"]).astimezone().strftime("%H:%M:%S")
    pending = len(list(queue.pending_folder.glob("*.capture")))
    last = snapshot["uploader"].get("last_upload_at")
    uploaded = datetime.fromisoformat(last).astimezone().strftime("%H:%M:%S") if last else "-"
    return (
        f"{state} {title} | memo: {memo[:40]} | slot {slot} | {snapshot['captures']} captured"
        f" | queue {pending} | uploaded {uploaded}"
    )


def handle_control(tracker: Tracker, request: dict[str, Any], window: Window | None = None) -> dict[str, Any]:
    command = request.get("command")
    if command == "ping":
        return {}
    if command == "window":
        if window is None:
            raise AgentError("the tracker's window did not start (see the tracker's terminal)")
        return {"url": window.url}
    if command == "status":
        return tracker.snapshot()
    if command == "memo":
        tracker.set_memo(str(request.get("memo", "")))
        return {"memo": tracker.memo}
    if command == "pause":
        tracker.pause()
        return {"state": "paused"}
    if command == "resume":
        tracker.resume()
        return {"state": "tracking"}
    if command == "stop":
        tracker.stop()
        return {"state": "stopping"}
    if command == "sync":
        return asdict(tracker.sync())
    if command == "delete":
        return {"deleted": tracker.delete_local(str(request.get("capture_id", "")))}
    raise InvalidArgument(f"unknown control command {command!r}")


def cmd_memo(args: argparse.Namespace, paths: AgentPaths) -> int:
    memo = check_memo(args.text)
    control.call(paths, {"command": "memo", "memo": memo})
    print("memo set: it applies from the next capture" if memo.strip() else "memo cleared")
    return 0


def cmd_simple(command: str, done: str) -> Callable[[argparse.Namespace, AgentPaths], int]:
    def run(args: argparse.Namespace, paths: AgentPaths) -> int:
        control.call(paths, {"command": command})
        print(done)
        return 0

    return run


def cmd_ui(args: argparse.Namespace, paths: AgentPaths) -> int:
    try:
        url = str(control.call(paths, {"command": "window"}, timeout=10)["url"])
    except TrackerNotRunning:
        raise TrackerNotRunning(
            "tracker not running: the window belongs to the running tracker; start it with "
            "`workproof-agent start CONTRACT`, then run `workproof-agent ui` again"
        ) from None
    if args.print:
        print(url)
        return 0
    if open_in_browser(url):
        print("opened the tracker's window in your browser")
        return 0
    print(f"no browser could be opened here: open this address yourself (it is yours alone): {url}")
    return 0


def cmd_status(args: argparse.Namespace, paths: AgentPaths) -> int:
    settings = load_settings(paths)
    snapshot = tracker_running(paths)
    queue = open_queue(paths, settings)
    usage = queue.usage()
    rejected = queue.rejected()
    uploader = snapshot["uploader"] if snapshot else asdict(UploaderState.load(paths.uploader_state_file))
    result: dict[str, Any] = {
        "tracker": snapshot,
        "queue": {
            "pending": usage.pending,
            "bytes_used": usage.bytes_used,
            "limit_bytes": usage.limit_bytes,
            "near_limit": usage.near_limit,
            "oldest": usage.oldest.isoformat() if usage.oldest else None,
            "late": usage.late,
            "at_risk": {
                week: {"captures": n, "edit_cutoff": c.isoformat()} for week, (n, c) in usage.at_risk.items()
            },
        },
        "rejected": [
            {
                "capture_id": r.capture_id,
                "status": r.status,
                "message": r.message,
                "rejected_at": r.rejected_at,
            }
            for r in rejected
        ],
        "uploader": uploader,
        "weeks": [],
    }
    server_note = ""
    try:
        credentials = load_credentials(paths)
        result["server"] = credentials.server
        week = week_label(datetime.now(UTC))
        with client_for(credentials) as client:
            if snapshot:
                contracts = [Contract.from_api(snapshot["contract"])]
            else:
                contracts = [c for c in client.contracts() if c.status == "active"]
            for contract in contracts:
                sheet = client.timesheet(contract.id, week)
                result["weeks"].append(
                    {
                        "contract_id": contract.id,
                        "title": contract.title,
                        "week": week,
                        "documented_minutes": int(sheet.get("documented_minutes", 0)),
                        "billable_minutes": int(sheet.get("billable_minutes", 0)),
                    }
                )
    except NotLoggedIn as error:
        server_note = error.message
    except (ServerUnreachable, ServerRefused) as error:
        server_note = f"this week's time unknown: {error.message}"
    if args.json:
        print(json.dumps(result | {"note": server_note}, indent=2))
    else:
        print_status(result, server_note)
    for week, (count, cutoff) in usage.at_risk.items():
        fail(
            f"{count} capture(s) of the week of {week} must upload before {cutoff:%a %H:%M} UTC: run `sync` online"
        )
    for capture_id in usage.late:
        fail(f"capture {capture_id} missed its week's edit cutoff: the server may refuse it (still queued)")
    return 0


def print_status(result: dict[str, Any], server_note: str) -> None:
    snapshot = result["tracker"]
    if snapshot is None:
        print("tracker: not running")
    else:
        contract = snapshot["contract"]
        print(f"tracker: {snapshot['state']} on {contract['title'] or contract['id']} ({contract['id']})")
        print(f"  memo: {snapshot['memo'] or '(none: slots without a memo are not guaranteed)'}")
        if snapshot["work_view_on"]:
            print("  Work View: on")
        else:
            print("  Work View: off (tracked time, no screenshots): this time is not guaranteed")
        print(
            f"  this session: {snapshot['captures']} captured, {snapshot['skipped_paused']} slot(s) paused, "
            f"{snapshot['missed'] + snapshot['failed']} missed or failed"
        )
        if snapshot.get("last_problem"):
            print(f"  last problem: {snapshot['last_problem']}")
    for week in result["weeks"]:
        print(
            f"this week ({week['week']}) on {week['title'] or week['contract_id']}: "
            f"{hours(week['documented_minutes'])} documented, {hours(week['billable_minutes'])} billable"
        )
    if server_note:
        print(server_note)
    queue = result["queue"]
    print(
        f"queue: {queue['pending']} capture(s) waiting, {queue['bytes_used'] / 2**20:.1f} MiB of "
        f"{queue['limit_bytes'] / 2**30:.1f} GiB" + (" (nearly full!)" if queue["near_limit"] else "")
    )
    uploader = result["uploader"]
    print(f"last upload: {local_time(uploader.get('last_upload_at'))}")
    if uploader.get("last_error"):
        print(f"last upload error: {uploader['last_error']} ({local_time(uploader.get('last_error_at'))})")
    if result["rejected"]:
        print(
            f"rejected by the server ({len(result['rejected'])}): retry with `workproof-agent sync --retry-rejected`"
        )
        for item in result["rejected"]:
            print(f"  {item['capture_id']}  {item['status'] or '-'}  {item['message']}")


def cmd_shots(args: argparse.Namespace, paths: AgentPaths) -> int:
    settings = load_settings(paths)
    try:
        start = parse_week(args.week) if args.week else week_start(datetime.now(UTC))
    except InvalidInput as error:
        raise InvalidArgument(error.message) from None
    week = week_label(start)
    queue = open_queue(paths, settings)
    rows: dict[str, dict[str, Any]] = {}
    for item in queue.pending():
        if item.meta.week == week and (not args.contract or item.meta.contract_id.startswith(args.contract)):
            rows[item.capture_id] = {
                "capture_id": item.capture_id,
                "contract_id": item.meta.contract_id,
                "captured_at": item.meta.captured_at.isoformat(),
                "kind": item.meta.kind,
                "monitor_count": len(item.images),
                "memo": item.meta.memo,
                "where": "queued",
            }
    for rejected in queue.rejected():
        if rejected.meta and rejected.meta.week == week:
            rows[rejected.capture_id] = {
                "capture_id": rejected.capture_id,
                "contract_id": rejected.meta.contract_id,
                "captured_at": rejected.meta.captured_at.isoformat(),
                "kind": rejected.meta.kind,
                "monitor_count": None,
                "memo": rejected.meta.memo,
                "where": f"rejected: {rejected.message}",
            }
    note = ""
    try:
        credentials = load_credentials(paths)
        with client_for(credentials) as client:
            contracts = [c for c in client.contracts() if c.status != "offered"]
            if args.contract:
                contracts = [pick_contract(contracts, args.contract)]
            for contract in contracts:
                for record in client.captures(contract.id, week):
                    rows[str(record["capture_id"])] = {
                        "capture_id": str(record["capture_id"]),
                        "contract_id": contract.id,
                        "captured_at": str(record["captured_at"]),
                        "kind": record.get("kind", "screenshot"),
                        "monitor_count": record.get("monitor_count"),
                        "memo": record.get("memo", ""),
                        "where": "uploaded",
                    }
    except (ServerUnreachable, ServerRefused, NotLoggedIn) as error:
        note = f"showing this computer's captures only: {error.message}"
    ordered = sorted(rows.values(), key=lambda row: row["captured_at"])
    for row in ordered:
        thumbs = sorted(paths.thumbnails_folder.glob(f"{row['capture_id']}-*.webp"))
        row["thumbnails"] = [str(path) for path in thumbs]
    if args.json:
        print(json.dumps({"week": week, "captures": ordered, "note": note}, indent=2))
        return 0
    print(f"week {week}: {len(ordered)} capture(s)")
    for row in ordered:
        when = local_time(row["captured_at"])
        monitors = f"{row['monitor_count']} mon" if row["monitor_count"] is not None else "-"
        memo = (row["memo"] or "(no memo)").replace("\n", " ")[:50]
        thumb = f"  {row['thumbnails'][0]}" if row["thumbnails"] else ""
        print(
            f"{when}  {row['capture_id']}  {row['kind']:<10}  {monitors:<6}  {row['where']:<9}  {memo}{thumb}"
        )
    if note:
        fail(note)
    return 0


def cmd_delete(args: argparse.Namespace, paths: AgentPaths) -> int:
    settings = load_settings(paths)
    wanted = args.capture.strip().lower()
    if len(wanted) < 4:
        raise InvalidArgument("give at least 4 characters of the capture id (see `workproof-agent shots`)")
    queue = open_queue(paths, settings)
    local = {item.capture_id for item in queue.find(wanted)}
    local |= {r.capture_id for r in queue.rejected() if r.capture_id.startswith(wanted)}
    if len(local) > 1:
        raise InvalidArgument(f"{wanted!r} matches {len(local)} captures: give more of the id")
    if local:
        capture_id = local.pop()
        deleted = _delete_local(paths, queue, capture_id)
        if deleted:
            forget_thumbnails(paths.thumbnails_folder, capture_id)
            print(f"deleted capture {capture_id} before upload: it never left this computer")
            return 0
        # It was being uploaded at that very moment: it is on the server now, so delete it there.
        wanted = capture_id
    try:
        capture_id = str(uuid.UUID(wanted))
    except ValueError:
        raise InvalidArgument(
            f"no queued capture starts with {wanted!r}; to delete an uploaded one give its full id "
            "(see `workproof-agent shots`)"
        ) from None
    credentials = load_credentials(paths)
    with client_for(credentials) as client:
        print(delete_uploaded(client, capture_id, paths.thumbnails_folder))
    return 0


def _delete_local(paths: AgentPaths, queue: CaptureQueue, capture_id: str) -> bool:
    try:
        answer = control.call(paths, {"command": "delete", "capture_id": capture_id})
        return bool(answer["deleted"])
    except TrackerNotRunning:
        pass
    # No tracker: hold its lock so none starts uploading this capture while it is deleted.
    lock = ProcessLock(paths.tracker_lock_file)
    if not lock.try_acquire():
        raise TrackerAlreadyRunning("a tracker is starting: try again in a moment")
    try:
        return queue.discard(capture_id)
    finally:
        lock.release()


def cmd_sync(args: argparse.Namespace, paths: AgentPaths) -> int:
    settings = load_settings(paths)
    queue = open_queue(paths, settings)
    if args.retry_rejected:
        moved = queue.requeue_rejected()
        print(f"{moved} rejected capture(s) queued again")
    try:
        answer = control.call(paths, {"command": "sync"}, timeout=600)
        report = DrainReport(**{k: v for k, v in answer.items() if k in DrainReport.__dataclass_fields__})
        return report_drain(report)
    except TrackerNotRunning:
        pass
    lock = ProcessLock(paths.tracker_lock_file)
    if not lock.try_acquire():
        raise TrackerAlreadyRunning("a tracker is starting: try again in a moment")
    try:
        load_credentials(paths)
        queue.discard_leftovers()
        uploader = Uploader(queue, lambda: load_credentials(paths), paths.uploader_state_file)
        try:
            report = uploader.drain()
        finally:
            uploader.clients.close()
    finally:
        lock.release()
    for capture_id in queue.usage().late:
        fail(f"capture {capture_id} missed its week's edit cutoff: the server may refuse it (still queued)")
    return report_drain(report)


def cmd_settings(args: argparse.Namespace, paths: AgentPaths) -> int:
    settings = load_settings(paths)
    if args.key is None:
        for key, value in asdict(settings).items():
            print(f"{key} = {json.dumps(value)}")
        return 0
    if args.value is None:
        values = asdict(settings)
        if args.key not in values:
            coerce_setting(args.key, "")  # raises the "unknown setting" message
        print(json.dumps(values[args.key]))
        return 0
    changes: dict[str, Any] = {args.key: coerce_setting(args.key, args.value)}
    updated = replace(settings, **changes).validated()
    save_settings(paths, updated)
    print(f"{args.key} = {json.dumps(asdict(updated)[args.key])} (applies at the next start)")
    return 0


# -- entry point -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workproof-agent",
        description="Document your hourly work for Workproof: one screenshot per 12-minute slot, with your memo.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    login = commands.add_parser(
        "login", help="sign in: approve this machine on the web (or give a token with --token)"
    )
    login.add_argument("server", help="the Workproof server, e.g. https://workproof.example.com")
    login.add_argument(
        "--token", help=f"a provider token for machines without a browser (or set {TOKEN_ENV}; - reads stdin)"
    )
    login.set_defaults(run=cmd_login)

    contracts = commands.add_parser("contracts", help="list your contracts")
    contracts.add_argument("--json", action="store_true")
    contracts.set_defaults(run=cmd_contracts)

    start = commands.add_parser("start", help="track a contract (runs in this terminal)")
    start.add_argument("contract", help="the contract id (or its first characters)")
    start.add_argument("--memo", default="", help="what you are working on")
    start.set_defaults(run=cmd_start)

    memo = commands.add_parser("memo", help="change the memo, from the next capture")
    memo.add_argument("text")
    memo.set_defaults(run=cmd_memo)

    for name, done, help_text in (
        ("pause", "paused: no capture until you resume", "pause tracking (slots are skipped)"),
        ("resume", "tracking again", "resume tracking"),
        ("stop", "stopping the tracker", "stop tracking"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.set_defaults(run=cmd_simple(name, done))

    ui = commands.add_parser("ui", help="open the running tracker's window in your browser")
    ui.add_argument("--print", action="store_true", help="print the window's address instead of opening it")
    ui.set_defaults(run=cmd_ui)

    status = commands.add_parser("status", help="tracking state, this week's time, the upload queue")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=cmd_status)

    shots = commands.add_parser("shots", help="list a week's captures")
    shots.add_argument("--week", help="the week's Monday, YYYY-MM-DD (default: this week)")
    shots.add_argument("--contract", help="only this contract")
    shots.add_argument("--json", action="store_true")
    shots.set_defaults(run=cmd_shots)

    delete = commands.add_parser("delete", help="delete a capture (its slot leaves the timesheet)")
    delete.add_argument("capture", help="the capture id (see `shots`)")
    delete.set_defaults(run=cmd_delete)

    sync = commands.add_parser("sync", help="upload the queue now")
    sync.add_argument("--retry-rejected", action="store_true", help="queue rejected captures again first")
    sync.set_defaults(run=cmd_sync)

    settings = commands.add_parser("settings", help="show or change a setting (blur, webp_quality...)")
    settings.add_argument("key", nargs="?")
    settings.add_argument("value", nargs="?")
    settings.set_defaults(run=cmd_settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = AgentPaths.discover()
    try:
        code: int = args.run(args, paths)
        return code
    except ServerRefused as error:
        hint = ": log in again with `workproof-agent login SERVER_URL`" if error.status == 401 else ""
        fail(error.message + hint)
        return error.exit_code
    except AgentError as error:
        fail(error.message)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
