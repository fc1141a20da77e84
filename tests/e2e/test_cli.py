"""The real ``workproof`` console script, run as a user runs it, against the test stack's database.

The rules: ``admin create-user`` prints a working token once; a mistake (unknown role, malformed or
duplicate email, funding someone who is not a client, a token id that is not one) exits non-zero with one
line on stderr that says what is wrong, never a traceback; ``workproof up`` that cannot start (a taken
port, an unreachable database) and any command under bad settings say so in one line too.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.stack import find_binary
from tests.harness import RunningStack, free_port

pytestmark = pytest.mark.e2e

WORKPROOF = find_binary("workproof", "workproof")
TOKEN = re.compile(r"\bwp_[A-Za-z0-9_-]{20,}")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any Workproof setting, plus ``settings``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("WORKPROOF_") and k not in ("DATABASE_URL", "S3_ENDPOINT")
    }
    return {**env, **settings}


def workproof(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> Run:
    done = subprocess.run(
        [WORKPROOF, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty working folder: no ``.env`` of the project's is read."""
    return tmp_path_factory.mktemp("cli")


Admin = Callable[..., Run]


@pytest.fixture(scope="module")
def admin(stack: RunningStack, folder: Path) -> Admin:
    """``workproof admin ...`` against the test stack's database."""
    env = clean_env(WORKPROOF_DATABASE_URL=stack.database_url)

    def run(*args: str) -> Run:
        return workproof("admin", *args, env=env, cwd=folder)

    return run


def assert_one_line_error(run: Run, *fragments: str) -> None:
    assert run.code != 0, run
    assert run.stdout == "", run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("workproof: "), run.stderr
    assert "Traceback" not in run.stderr
    for fragment in fragments:
        assert fragment in lines[0], run.stderr


def email() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}@example.com"


def test_create_user_prints_a_token_once_and_it_works_against_the_api(
    stack: RunningStack, admin: Admin
) -> None:
    address = email()
    run = admin("create-user", "--role", "client", "--email", address, "--name", "Ana")
    assert run.code == 0, run
    assert run.stderr == ""
    tokens = TOKEN.findall(run.stdout)
    assert len(tokens) == 1, run.stdout
    assert "shown once" in run.stdout
    with stack.client(tokens[0]) as http:
        me = http.get("/v1/me")
        balance = http.get("/v1/balance")
    assert me.status_code == 200
    assert (me.json()["email"], me.json()["role"], me.json()["name"]) == (address, "client", "Ana")
    assert balance.status_code == 200

    funded = admin("fund", "--email", address, "--cents", "12345")
    assert funded.code == 0 and "balance: 12345 cents USD" in funded.stdout
    again = admin("create-token", "--email", address)
    assert again.code == 0
    assert TOKEN.findall(again.stdout) != tokens  # a new secret: the first is never shown again


# Each mistake: the arguments after `workproof admin` ({client} / {provider}: users that exist) and what
# the one line on stderr must say.
MISTAKES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "unknown role": (("create-user", "--role", "boss", "--email", "x@example.com"), ("role 'boss' is unknown", "use one of provider")),
    "malformed email": (("create-user", "--role", "client", "--email", "not-an-email"), ("is not an email address such as ana@example.com",)),
    "email without a domain": (("create-user", "--role", "client", "--email", "a@b"), ("is not an email address",)),
    "email with a space": (("create-user", "--role", "client", "--email", "ana @example.com"), ("is not an email address",)),
    "duplicate email": (("create-user", "--role", "client", "--email", "{PROVIDER}"), ("a user with email {provider} exists already",)),
    "token id not a uuid": (("revoke-token", "not-a-uuid"), ("'not-a-uuid' is not a token id (a UUID)",)),
    "unknown token id": (("revoke-token", str(uuid.UUID(int=7))), ("no such token",)),
    "token for nobody": (("create-token", "--email", "nobody-here@example.com"), ("no user with email nobody-here@example.com",)),
    "funding nobody": (("fund", "--email", "nobody-here@example.com", "--cents", "100"), ("no user with email",)),
    "funding a provider": (("fund", "--email", "{provider}", "--cents", "100"), ("{provider} is a provider; only clients have a prepaid balance",)),
    "funding a negative amount": (("fund", "--email", "{client}", "--cents", "-500"), ("amount must be more than zero cents",)),
    "funding zero": (("fund", "--email", "{client}", "--cents", "0"), ("amount must be more than zero cents",)),
    "funding an overflowing amount": (("fund", "--email", "{client}", "--cents", str(10**14)), ("amount is over the limit",)),
}  # fmt: skip


@pytest.fixture(scope="module")
def people(admin: Admin) -> dict[str, str]:
    found = {"client": email(), "provider": email()}
    for role, address in found.items():
        assert admin("create-user", "--role", role, "--email", address).code == 0
    return {**found, "PROVIDER": found["provider"].upper()}


@pytest.fixture(scope="module")
def mistakes(admin: Admin, people: dict[str, str]) -> dict[str, Run]:
    """Every mistake run at once (each is a separate process: this only saves waiting)."""
    with ThreadPoolExecutor(4) as pool:
        running = {
            name: pool.submit(admin, *(arg.format(**people) for arg in args))
            for name, (args, _) in MISTAKES.items()
        }
        return {name: future.result() for name, future in running.items()}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_an_admin_mistake_is_one_line_on_stderr_and_a_nonzero_exit(
    mistakes: dict[str, Run], people: dict[str, str], mistake: str
) -> None:
    _, says = MISTAKES[mistake]
    assert_one_line_error(mistakes[mistake], *(fragment.format(**people) for fragment in says))


def test_the_refused_funding_moved_no_money(
    admin: Admin, mistakes: dict[str, Run], people: dict[str, str]
) -> None:
    """After the refused negative, zero and overflowing amounts, one cent is the whole balance."""
    run = admin("fund", "--email", people["client"], "--cents", "1")
    assert run.code == 0 and f"{people['client']} balance: 1 cents USD" in run.stdout


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def up_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """Every port of the embedded stack free, unless ``settings`` says otherwise."""
    ports = {
        "WORKPROOF_API_PORT": free_port(), "WORKPROOF_EMBEDDED_POSTGRES_PORT": free_port(),
        "WORKPROOF_EMBEDDED_S3_PORT": free_port(block=8), "WORKPROOF_EMBEDDED_TEMPORAL_PORT": free_port(),
        "WORKPROOF_TEMPORAL_UI_PORT": free_port(), "WORKPROOF_WORKER_HEALTH_PORT": free_port(),
        "WORKPROOF_EMBEDDED_SMTP_PORT": free_port(),
    }  # fmt: skip
    return clean_env(
        **{"WORKPROOF_DATA_DIR": str(data_dir), **{k: str(v) for k, v in ports.items()}, **settings}
    )


def test_up_with_a_taken_api_port_fails_in_one_line(tmp_path: Path, taken_port: int) -> None:
    run = workproof("up", env=up_env(tmp_path / "data", WORKPROOF_API_PORT=str(taken_port)), cwd=tmp_path)
    assert_one_line_error(
        run, f"port {taken_port} for the API is taken", "set WORKPROOF_API_PORT to a free port"
    )
    assert not (tmp_path / "data" / "logs").exists()  # nothing was started


def test_up_with_an_unreachable_database_fails_in_one_line_naming_database_url(tmp_path: Path) -> None:
    url = f"postgresql://workproof:s3cret-pass@127.0.0.1:{free_port()}/workproof"
    run = workproof("up", env=up_env(tmp_path / "data", DATABASE_URL=url), cwd=tmp_path)
    assert_one_line_error(
        run, "cannot reach DATABASE_URL", "unset DATABASE_URL to use the embedded PostgreSQL"
    )
    assert "s3cret-pass" not in run.stderr


BAD_SETTINGS: dict[str, tuple[tuple[str, ...], str, str, tuple[str, ...]]] = {
    "port not a number (admin)": (("admin", "list-users"), "WORKPROOF_API_PORT", "notanumber", ("WORKPROOF_API_PORT", "valid integer", "notanumber")),
    "port not a number (up)": (("up",), "WORKPROOF_API_PORT", "notanumber", ("WORKPROOF_API_PORT",)),
    "not a postgresql url": (("admin", "list-users"), "WORKPROOF_DATABASE_URL", "mysql://root:pw@localhost/db", ("DATABASE_URL", "postgresql://")),
    "presign over 5 minutes": (("migrate",), "WORKPROOF_PRESIGN_SECONDS", "3600", ("WORKPROOF_PRESIGN_SECONDS", "300")),
    "no monitors": (("api",), "WORKPROOF_MAX_MONITORS", "0", ("WORKPROOF_MAX_MONITORS",)),
}  # fmt: skip


@pytest.fixture(scope="module")
def bad_settings_runs(folder: Path) -> dict[str, Run]:
    def run(command: tuple[str, ...], setting: str, value: str) -> Run:
        return workproof(
            *command, env=clean_env(WORKPROOF_DATA_DIR=str(folder / "data"), **{setting: value}), cwd=folder
        )

    with ThreadPoolExecutor(4) as pool:
        running = {name: pool.submit(run, *case[:3]) for name, case in BAD_SETTINGS.items()}
        return {name: future.result() for name, future in running.items()}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_bad_settings_are_one_line_naming_the_setting(bad_settings_runs: dict[str, Run], case: str) -> None:
    run = bad_settings_runs[case]
    assert_one_line_error(run, "invalid settings", *BAD_SETTINGS[case][3])
    assert ":pw@" not in run.stderr  # a database URL's password is never repeated


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("", "is not set"),
        ("short-but-random-3f9a", "fewer than 32"),
        ("CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME", "an example"),
        ("a" * 48, "a pattern"),
    ],
)
def test_the_api_and_the_worker_refuse_a_missing_short_or_example_secret_key(key: str, says: str) -> None:
    """A real deployment signs sessions and image links with its own key; the embedded stack hands its
    children a generated one."""
    for command in ("api", "worker"):
        env = {
            **os.environ,
            "WORKPROOF_SECRET_KEY": key,
            "WORKPROOF_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x",
        }
        done = subprocess.run(
            [sys.executable, "-m", "deploy.cli", command], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, done.stderr
        assert says in done.stderr and "WORKPROOF_SECRET_KEY" in done.stderr
