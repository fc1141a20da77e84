"""``workproof worker``: runs the workflows and activities, sends the mail outbox (store/mail.py), fans
notifications out and delivers webhooks (api/services/notifications.py), and answers GET /health on its
own port."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import signal
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from temporalio.worker import Worker

from activities import all_activities
from api.services.notifications import run_notifier
from store.audit import audit
from store.db import session_scope
from store.mail import listen, run_sender
from store.settings import Settings
from workflows.client import WORKFLOWS, connect
from workflows.vouching import VouchingWorkerInterceptor

log = logging.getLogger("workproof.worker")


def build_worker(client, settings: Settings, executor: concurrent.futures.Executor) -> Worker:
    assert settings.database_url, "DATABASE_URL is required"
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=all_activities(settings.database_url),
        activity_executor=executor,
        # Updates the API did not sign are refused before their validators run, and audited.
        interceptors=[
            VouchingWorkerInterceptor(settings.resolved_secret_key(), RefusalAudit(settings.database_url))
        ],
        max_concurrent_activities=32,
        # On SIGTERM running activities get this long to finish before the worker stops polling and
        # exits; an activity cut short is retried elsewhere, and its idempotency key makes that safe.
        graceful_shutdown_timeout=timedelta(seconds=30),
    )


class RefusalAudit:
    """Writes each refused update to the audit log from a thread of its own: the refusal is noticed inside
    a workflow's validator, which must not wait on a database."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.pending: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        threading.Thread(target=self._write, name="workproof-refusal-audit", daemon=True).start()

    def __call__(self, refused: dict[str, Any]) -> None:
        self.pending.put(refused)

    def _write(self) -> None:
        while True:
            refused = self.pending.get()
            try:
                with session_scope(self.database_url, pre_ping=False) as session:
                    audit(session=session, actor=None, action="update.refused_unvouched", subject_type="workflow",
                          subject_id=str(refused["workflow_id"])[:100], detail=refused)  # fmt: skip
            except Exception:
                log.exception("could not audit a refused update: %s", refused)


def serve_health(host: str, port: int, ready: threading.Event) -> ThreadingHTTPServer:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = ready.is_set() and self.path.split("?")[0] == "/health"
            body = b'{"status":"ok"}' if ok else b'{"status":"starting"}'
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def run_worker(settings: Settings) -> None:
    ready = threading.Event()
    server = (
        serve_health(settings.worker_health_host, settings.worker_health_port, ready)
        if settings.worker_health_port
        else None
    )
    address = settings.temporal_address or f"127.0.0.1:{settings.embedded_temporal_port}"
    client = None
    for attempt in range(120):
        try:
            client = await connect(address, settings.temporal_namespace)
            break
        except Exception as error:
            if attempt % 10 == 0:
                log.warning("waiting for Temporal at %s: %s", address, error)
            await asyncio.sleep(0.5)
    if client is None:
        raise SystemExit(f"cannot reach Temporal at {address}: check WORKPROOF_TEMPORAL_ADDRESS")
    mail_stop = threading.Event()
    # the loops wake when work is committed (LISTEN workproof_outbox) and poll as a fallback
    mail_wake, notify_wake = threading.Event(), threading.Event()
    threading.Thread(
        target=listen, name="outbox-listener", daemon=True,
        args=(settings.database_url, [mail_wake, notify_wake], mail_stop),
    ).start()  # fmt: skip
    if settings.smtp_url:
        threading.Thread(
            target=run_sender, name="mail-sender", daemon=True,
            args=(settings.database_url, settings.smtp_url, settings.mail_from, mail_stop, settings.mail_poll_seconds,
                  mail_wake),
        ).start()  # fmt: skip
    else:
        log.warning("WORKPROOF_SMTP_URL is not set: mail waits in the outbox until it is")
    # notifications: the fan-out (inbox, outbox, webhook deliveries) and the webhook sender
    threading.Thread(
        target=run_notifier, name="notifier", daemon=True,
        args=(settings.database_url, settings, mail_stop, settings.mail_poll_seconds, notify_wake),
    ).start()  # fmt: skip
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
        worker = build_worker(client, settings, executor)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        ready.set()
        try:
            async with worker:
                await stop.wait()
                log.info("stopping: letting running activities finish")
        finally:
            mail_stop.set()
            if server:
                server.shutdown()
