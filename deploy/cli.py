"""``workproof``: the server side's one command.

workproof up [--demo]      the embedded stack on this machine (Temporal, PostgreSQL, S3, API, worker)
workproof api | worker     one part, for real deployments (compose, Kubernetes)
workproof migrate          schema, bucket, search attributes (idempotent)
workproof admin ...        users, tokens, funding
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from domain.errors import DomainError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from store.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workproof", description="Workproof server: documented hourly work."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run the embedded single-machine stack until Ctrl+C")
    up.add_argument(
        "--demo",
        action="store_true",
        help="create demo users and a contract, print their emails, passwords and tokens",
    )
    up.add_argument("--data-dir", help="where the stack keeps its data (default .workproof)")

    sub.add_parser("api", help="serve the API and web pages (uvicorn)")
    sub.add_parser("worker", help="run the Temporal worker (workflows and activities)")
    sub.add_parser("migrate", help="apply migrations, create the bucket, register search attributes")

    admin = sub.add_parser("admin", help="users, tokens and funding").add_subparsers(
        dest="admin_command", required=True, metavar="ACTION"
    )
    create = admin.add_parser("create-user", help="create a user and print a token once")
    create.add_argument("--role", required=True, help="provider, client, support or admin")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="")
    token = admin.add_parser("create-token", help="print a new token for a user once")
    token.add_argument("--email", required=True)
    token.add_argument("--days", type=int, default=365)
    revoke = admin.add_parser("revoke-token", help="revoke a token by its id")
    revoke.add_argument("token_id")
    fund = admin.add_parser("fund", help="credit a client's prepaid balance")
    fund.add_argument("--email", required=True)
    fund.add_argument("--cents", type=int, required=True)
    fund.add_argument("--currency", default="USD")
    fund.add_argument("--request-id", help="idempotency key (default: a new one)")
    admin.add_parser("list-users", help="list users")
    return parser


def fail(message: str) -> int:
    print(f"workproof: {message}", file=sys.stderr)
    return 2


def settings_problem(error: ValidationError) -> str:
    """The first invalid setting in one line, named as the environment variable a user sets (pydantic's
    own text spans several lines). Values of settings that may hold a secret are not repeated."""
    item = error.errors()[0]
    name = str(item["loc"][0]) if item["loc"] else "settings"
    variable = name if name.isupper() else f"WORKPROOF_{name.upper()}"
    secret = any(word in variable for word in ("URL", "SECRET", "KEY"))
    value = "" if secret or "input" not in item else f" (got {str(item['input'])[:80]!r})"
    more = error.error_count() - 1
    return f"{variable}: {item['msg']}{value}" + (f"; and {more} more" if more else "")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from pydantic import ValidationError

        from store.settings import Settings, secret_key_problem
    except ImportError as error:
        return fail(f"the server is not installed ({error.name} is missing): pip install 'workproof[server]'")
    try:
        settings = Settings()
    except ValidationError as error:
        return fail(f"invalid settings: {settings_problem(error)}")
    except Exception as error:
        return fail(f"invalid settings: {' '.join(str(error).split())}")
    if args.command == "up" and args.data_dir:
        from pathlib import Path

        settings = settings.model_copy(update={"data_dir": Path(args.data_dir)})
    try:
        if args.command == "up":
            return run_up(settings, demo=args.demo)
        if args.command in ("api", "worker") and (problem := secret_key_problem(settings.secret_key)):
            # The embedded stack hands its children a generated key; a real deployment must set its own.
            return fail(problem)
        if args.command == "api":
            return run_api(settings)
        if args.command == "worker":
            from deploy.worker import run_worker

            asyncio.run(run_worker(settings))
            return 0
        if args.command == "migrate":
            from deploy.setup import prepare

            prepare(settings, wait_seconds=60)
            print("migrations applied, bucket ready, search attributes and the retention schedule registered")
            return 0
        if args.command == "admin":
            from deploy.admin import run_admin

            return run_admin(settings, args)
    except DomainError as error:
        return fail(error.message)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # one line, not a traceback, for what a user can fix
        from deploy.setup import SetupError
        from deploy.stack import StackError

        if isinstance(error, (StackError, SetupError)):
            return fail(str(error))
        raise
    return 0


def run_api(settings: Settings) -> int:
    import uvicorn

    from deploy.stack import port_free

    if not port_free(settings.api_host, settings.api_port):
        return fail(f"port {settings.api_port} is taken: stop what listens there or set WORKPROOF_API_PORT")
    uvicorn.run(
        "api.app:create_app", factory=True, host=settings.api_host, port=settings.api_port,
        # X-Forwarded-For is read by the app, only from WORKPROOF_TRUSTED_PROXIES (api/deps.py client_address)
        proxy_headers=False, log_level="info", access_log=False,
    )  # fmt: skip
    return 0


def run_up(settings: Settings, *, demo: bool) -> int:
    from deploy.stack import EmbeddedStack

    began = time.monotonic()
    stack = EmbeddedStack(settings)
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
        print(f"\nWorkproof is up in {time.monotonic() - began:.1f}s (data in {stack.data_dir})")
        print(f"  API docs        {stack.api_url}/docs")
        print(f"  Web pages       {stack.api_url}/")
        print(f"  Health          {stack.api_url}/health")
        print(f"  Temporal Web UI {stack.temporal_ui_url}")
        if demo:
            from deploy.demo import seed_demo

            seed_demo(settings.model_copy(update={"database_url": stack.database_url}), stack)
        print("\nCtrl+C stops everything.", flush=True)
        while all(child.alive() for child in stack.children):
            time.sleep(0.5)
        dead = [c for c in stack.children if not c.alive()]
        for child in dead:
            print(
                f"workproof: {child.name} stopped unexpectedly: {child.log_tail()} (log: {child.log_path})",
                file=sys.stderr,
            )
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
