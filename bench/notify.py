"""Benchmark: a Monday's notification fan-out through the real path.

Every contract's "timesheet submitted" goes to both parties (2 mails per contract), as the timesheet
workflows' NOTIFY activity writes it (the real activity, called directly from 8 threads as a worker's
activity executor would: no Temporal in this bench).
The worker's own loops then do the rest, woken by ``LISTEN workproof_outbox`` — the fan-out (:func:`api.services.notifications.run_notifier`:
inbox row, rendering, the outbox in one transaction) and the mail sender (:func:`store.mail.run_sender`:
claimed with ``FOR UPDATE SKIP LOCKED``, sent over SMTP, marked sent) — to the real local SMTP server
(``deploy/mailsink.py``, a separate process writing a Maildir).

- figure: mails per second from the first event to the last message in the Maildir, and p95 of the time
  from each event (the notification row's ``created_at``) to its message file in the Maildir;
- floor: the same messages (those the real path produced, serialised beforehand, with fresh Message-IDs)
  handed by bare ``smtplib.sendmail`` over one connection to the same server in the same run: the best
  SMTP can do here, with no database and no message building.

Rounds alternate (real, floor; then floor, real; ...) and the medians are compared: this shared machine's
speed drifts within a run.

Run: ``python -m bench.notify [--contracts 200] [--workers 1] [--processes]`` (``--processes``: each
worker's loops in a process of its own, as separate worker processes run). Target: figure / floor >= 0.5.
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path

from sqlmodel import col, select

from activities.notifications import NotificationActivities
from api.services.notifications import run_notifier
from deploy.stack import tcp_open
from domain.calendar import week_start
from domain.messages import Notify
from store.db import migrate, session_scope
from store.mail import listen, message_of, run_sender
from store.maildir import read_maildir
from store.models import Contract, Notification, OutboxMail
from store.settings import Settings
from store.users import create_user
from tests.harness import drop_database, local_postgres_url, stack_settings
from tests.ports import free_port

TARGET_RATIO = 0.5


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def maildir_files(folder: Path) -> dict[str, float]:
    """Every message file in the Maildir with the time it was written."""
    found: dict[str, float] = {}
    for sub in ("new", "cur"):
        path = folder / sub
        if path.exists():
            for entry in os.scandir(path):
                found[entry.name] = entry.stat().st_mtime
    return found


def wait_files(folder: Path, count: int, timeout: float = 180) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = maildir_files(folder)
        if len(files) >= count:
            return files
        time.sleep(0.05)
    raise SystemExit(f"only {len(maildir_files(folder))} of {count} messages arrived within {timeout:.0f}s")


def setup(database_url: str, contracts: int) -> list[tuple[str, str, str]]:
    """``contracts`` active contracts, each with its own client and provider."""
    made = []
    with session_scope(database_url) as session:
        for n in range(contracts):
            client = create_user(session=session, email=f"client{n}-{uuid.uuid4().hex[:6]}@bench.example",
                                 role="client", name=f"Client {n}", timezone="Europe/Madrid")  # fmt: skip
            provider = create_user(session=session, email=f"provider{n}-{uuid.uuid4().hex[:6]}@bench.example",
                                   role="provider", name=f"Provider {n}")  # fmt: skip
            contract = Contract(client_id=client.id, provider_id=provider.id, title=f"Contract {n}", rate_cents=6000,
                                currency="USD", weekly_limit_hours=40, status="active", accepted_at=datetime.now(UTC))  # fmt: skip
            session.add(contract)
            session.flush()
            made.append((str(contract.id), str(client.id), str(provider.id)))
    return made


def floor(smtp_port: int, messages: list[tuple[str, str, bytes]], sender: str, folder: Path) -> float:
    """Seconds for bare smtplib to hand every message (recipient, Message-ID, bytes: built beforehand, with
    a fresh Message-ID) to the server over one connection, until all are kept."""
    fresh = [
        (to, raw.replace(mid.encode(), f"<floor-{uuid.uuid4()}@bench.example>".encode()))
        for to, mid, raw in messages
    ]
    envelope = parseaddr(sender)[1]
    before = len(maildir_files(folder))
    began = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as server:
        for to, raw in fresh:
            server.sendmail(envelope, [to], raw)
    wait_files(folder, before + len(messages))
    return time.perf_counter() - began


def start_loops(database_url: str, smtp_url: str, settings: Settings, stop: threading.Event) -> None:
    """What deploy/worker.py starts in each worker process: the listener, the notifier, the sender."""
    mail_wake, notify_wake = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=listen, daemon=True, args=(database_url, [mail_wake, notify_wake], stop)),
        threading.Thread(target=run_notifier, daemon=True,
                         args=(database_url, settings, stop, settings.mail_poll_seconds, notify_wake)),
        threading.Thread(target=run_sender, daemon=True,
                         args=(database_url, smtp_url, settings.mail_from, stop, settings.mail_poll_seconds, mail_wake)),
    ]  # fmt: skip
    for thread in threads:
        thread.start()


def serve(database_url: str, smtp_url: str, folder: str) -> None:
    """A worker's loops in this process until it is terminated (``--processes``)."""
    settings = stack_settings(Path(folder), database_url).model_copy(update={"mail_poll_seconds": 1.0})
    stop = threading.Event()
    start_loops(database_url, smtp_url, settings, stop)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        return serve(*sys.argv[2:])
    parser = argparse.ArgumentParser(prog="bench.notify")
    parser.add_argument("--contracts", type=int, default=200)
    parser.add_argument(
        "--workers", type=int, default=1, help="fan-out + sender loops, as worker processes run"
    )
    parser.add_argument("--rounds", type=int, default=3, help="real and floor rounds, alternating")
    parser.add_argument("--processes", action="store_true", help="run each worker's loops in its own process")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="workproof-bench-notify-"))
    database_url = local_postgres_url()
    if database_url is None:
        raise SystemExit("needs the machine's PostgreSQL at 127.0.0.1:5432")
    smtp_port = free_port()
    maildir = folder / "mail"
    sink = subprocess.Popen(
        [sys.executable, "-m", "deploy.mailsink", str(maildir), "--host", "127.0.0.1", "--port", str(smtp_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    stop = threading.Event()
    children: list[subprocess.Popen[bytes]] = []
    try:
        deadline = time.monotonic() + 30
        while not tcp_open("127.0.0.1", smtp_port):
            if time.monotonic() > deadline:
                raise SystemExit("the SMTP server did not start")
            time.sleep(0.1)
        migrate(database_url)
        settings = stack_settings(folder, database_url).model_copy(update={"mail_poll_seconds": 1.0})
        parties = setup(database_url, args.contracts)
        expected = 2 * len(parties)
        smtp_url = f"smtp://127.0.0.1:{smtp_port}"

        # warm-up: one contract's pair through the whole path (templates, connections, plans)
        if args.processes:  # each worker loop set in its own process, as separate worker processes run
            for _ in range(args.workers):
                children.append(subprocess.Popen(
                    [sys.executable, "-m", "bench.notify", "--serve", database_url, smtp_url, str(folder)],
                    stdin=subprocess.PIPE,
                ))  # fmt: skip
        else:
            for _ in range(args.workers):
                start_loops(database_url, smtp_url, settings, stop)
        activity = NotificationActivities(database_url)
        monday = week_start(datetime.now(UTC)) - timedelta(days=7)

        def submitted(contract_id: str, client_id: str, provider_id: str, week: datetime) -> None:
            activity.notify(Notify(
                kind="timesheet_submitted", recipient_ids=[client_id, provider_id], contract_id=contract_id,
                week_start=week, dedupe_key=f"timesheet_submitted:{contract_id}:{week:%Y-%m-%d}",
                payload={"week": f"{week:%Y-%m-%d}", "status": "submitted",
                         "deadline": (week + timedelta(days=12)).isoformat()},
            ))  # fmt: skip

        submitted(*parties[0], monday - timedelta(days=7 * (args.rounds + 1)))
        wait_files(maildir, 2)

        def real_round(week: datetime) -> tuple[float, float, list[float], int, list[tuple[str, str, bytes]]]:
            """Every contract's week submitted at once, as the workflows do at the edit cutoff: seconds
            until the last message is in the Maildir, seconds to write the events, each message's
            latency, duplicates, and the messages (for the floor)."""
            before = len(maildir_files(maildir))
            began = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:  # a worker's activity threads
                list(pool.map(lambda p: submitted(p[0], p[1], p[2], week), parties))
            emitted = time.perf_counter() - began
            files = wait_files(maildir, before + expected)
            took = time.perf_counter() - began
            with session_scope(database_url) as session:
                events = {
                    f"notification-{n.id}": n.created_at
                    for n in session.exec(select(Notification).where(Notification.week_start == week)).all()
                }
                rows = session.exec(select(OutboxMail).where(col(OutboxMail.sent_at).is_not(None))).all()
                messages = [
                    (r.recipient, r.message_id, message_of(r, settings.mail_from))
                    for r in rows
                    if r.message_id[1:].split("@")[0] in events
                ]
            # each message file back to its event: the Message-ID names the notification
            latencies, duplicates, seen = [], 0, set()
            for kept in read_maildir(maildir):
                key = kept.message_id[1:].split("@")[0]
                if key not in events:
                    continue
                duplicates += kept.message_id in seen
                seen.add(kept.message_id)
                latencies.append(files.get(kept.key, max(files.values())) - events[key].timestamp())
            assert len(seen) == expected, f"{len(seen)} distinct messages of {expected}"
            return took, emitted, latencies, duplicates, messages

        # alternating rounds (real first, then floor first, ...): this machine's speed drifts within a run
        reals: list[float] = []
        floors: list[float] = []
        latencies: list[float] = []
        duplicates = 0
        emitted = 0.0
        messages: list[tuple[str, str, bytes]] = []
        for n in range(args.rounds):
            week = monday - timedelta(days=7 * n)
            if n % 2 == 1 and messages:
                floors.append(floor(smtp_port, messages, settings.mail_from, maildir))
            took, emitted, round_latencies, round_duplicates, messages = real_round(week)
            reals.append(took)
            latencies += round_latencies
            duplicates += round_duplicates
            if n % 2 == 0:
                floors.append(floor(smtp_port, messages, settings.mail_from, maildir))
        stop.set()
        real_s, floor_s = statistics.median(reals), statistics.median(floors)
    finally:
        stop.set()
        for child in children:
            child.terminate()
            child.wait(10)
        sink.terminate()
        sink.wait(10)
        drop_database(database_url)
        shutil.rmtree(folder, ignore_errors=True)

    real_rate = expected / real_s
    floor_rate = expected / floor_s
    ratio = real_rate / floor_rate
    p95 = percentile(latencies, 95)
    print(f"contracts: {len(parties)}, mails: {expected}, worker loops: {args.workers} "
          f"(poll {settings.mail_poll_seconds:.1f} s); events written in {emitted:.2f} s")  # fmt: skip
    print(f"real path: {real_s:.2f} s, {real_rate:.1f} mails/s; event to Maildir p50 "
          f"{percentile(latencies, 50):.2f} s, p95 {p95:.2f} s, max {max(latencies):.2f} s; duplicates {duplicates}")  # fmt: skip
    print(f"floor (bare smtplib, one connection): {floor_s:.2f} s, {floor_rate:.1f} mails/s")
    print(
        f"rounds: real {', '.join(f'{r:.2f}' for r in reals)} s; floor {', '.join(f'{f:.2f}' for f in floors)} s (medians above)"
    )
    print(f"ratio {ratio:.2f} (target >= {TARGET_RATIO}): {'met' if ratio >= TARGET_RATIO else 'NOT met'}")
    print(json.dumps({
        "benchmark": "notify", "contracts": len(parties), "mails": expected, "workers": args.workers,
        "rounds": args.rounds, "real_s": round(real_s, 3), "real_per_s": round(real_rate, 1), "floor_s": round(floor_s, 3),
        "floor_per_s": round(floor_rate, 1), "ratio": round(ratio, 3), "target_ratio": TARGET_RATIO,
        "p50_event_to_mailbox_s": round(percentile(latencies, 50), 3), "p95_event_to_mailbox_s": round(p95, 3),
        "duplicates": duplicates, "met": ratio >= TARGET_RATIO,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
