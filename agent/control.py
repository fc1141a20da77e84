"""The local control channel between the running tracker and the other commands (memo, pause, stop...).

One JSON request per line, one JSON answer per line. Linux and macOS: a Unix socket (0600, in a 0700
folder of the user's own) so only the provider's own processes can steer the tracker. Windows: a
loopback TCP port, and every request must carry the random secret from a 0600 file, because any local
process could connect to the port.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import socket
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config import AgentPaths
from agent.durable import make_private_folder, write_atomically
from agent.errors import AgentError, TrackerAlreadyRunning, TrackerNotRunning

Handler = Callable[[dict[str, Any]], dict[str, Any]]
MAX_REQUEST_BYTES = 64 * 1024
NOT_RUNNING = "tracker not running: start it with `workproof-agent start CONTRACT`"


def _check_private_folder(folder: Path) -> None:
    """Refuse a socket folder someone else could have prepared (the fallback lives in /tmp)."""
    if sys.platform == "win32":
        return
    info = folder.stat()
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise AgentError(f"{folder} is not private to you: remove it and start again")


class ControlServer:
    def __init__(self, paths: AgentPaths, handler: Handler) -> None:
        self.paths = paths
        self.handler = handler
        self._socket: socket.socket | None = None
        self._secret = ""
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if sys.platform == "win32":
            self._start_tcp()
        else:
            self._start_unix()
        self._thread = threading.Thread(target=self._serve, name="workproof-control", daemon=True)
        self._thread.start()

    def _start_unix(self) -> None:
        path = self.paths.control_socket
        make_private_folder(path.parent)
        _check_private_folder(path.parent)
        if path.exists():
            # Left by a tracker that died (kill -9, power cut)? Only if nobody answers on it.
            try:
                call(self.paths, {"command": "ping"}, timeout=2)
            except TrackerNotRunning:
                path.unlink()
            else:
                raise TrackerAlreadyRunning("a tracker is already running: see `workproof-agent status`")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        # The folder is 0700, so nobody else can reach the socket in the instant before this chmod.
        path.chmod(0o600)
        server.listen(8)
        self._socket = server

    def _start_tcp(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        self._secret = secrets.token_urlsafe(32)
        make_private_folder(self.paths.runtime)
        endpoint = {"port": server.getsockname()[1], "secret": self._secret, "pid": os.getpid()}
        write_atomically(self.paths.control_endpoint_file, json.dumps(endpoint).encode(), mode=0o600)
        self._socket = server

    def _serve(self) -> None:
        assert self._socket is not None
        while not self._closed.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        answer: dict[str, Any]
        with connection:
            try:
                connection.settimeout(10)
                request = json.loads(_read_line(connection))
                if not isinstance(request, dict):
                    raise ValueError("request is not an object")
                if sys.platform == "win32" and not hmac.compare_digest(
                    str(request.get("secret", "")), self._secret
                ):
                    answer = {"ok": False, "error": "wrong control secret"}
                else:
                    # No time limit from here on: a sync can take a while.
                    connection.settimeout(None)
                    answer = {"ok": True} | self.handler(request)
            except AgentError as error:
                answer = {"ok": False, "error": error.message, "exit_code": error.exit_code}
            except (OSError, ValueError) as error:
                answer = {"ok": False, "error": f"bad control request: {error}"}
            except Exception as error:  # one broken request must not take the tracker down
                answer = {"ok": False, "error": f"internal error: {error!r}"}
            with contextlib.suppress(OSError):
                connection.sendall(json.dumps(answer).encode() + b"\n")

    def close(self) -> None:
        self._closed.set()
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
        with contextlib.suppress(OSError):
            if sys.platform == "win32":
                self.paths.control_endpoint_file.unlink()
            else:
                self.paths.control_socket.unlink()


def _read_line(connection: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = connection.recv(4096)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if b"\n" in chunk or size > MAX_REQUEST_BYTES:
            break
    line = b"".join(chunks).split(b"\n", 1)[0]
    if not line:
        raise ValueError("empty message")
    return line


def call(paths: AgentPaths, request: dict[str, Any], *, timeout: float = 30.0) -> dict[str, Any]:
    """Send one request to the running tracker; raises :class:`TrackerNotRunning` if there is none."""
    try:
        if sys.platform == "win32":
            try:
                endpoint = json.loads(paths.control_endpoint_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise TrackerNotRunning(NOT_RUNNING) from None
            request = request | {"secret": endpoint["secret"]}
            client = socket.create_connection(("127.0.0.1", int(endpoint["port"])), timeout=timeout)
        else:
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.settimeout(timeout)
            client.connect(str(paths.control_socket))
    except (FileNotFoundError, ConnectionRefusedError):
        raise TrackerNotRunning(NOT_RUNNING) from None
    except OSError as error:
        raise TrackerNotRunning(f"{NOT_RUNNING} ({error})") from None
    with client:
        try:
            client.sendall(json.dumps(request).encode() + b"\n")
            answer = json.loads(_read_line(client))
        except TimeoutError:
            raise AgentError("the tracker did not answer in time: see its terminal") from None
        except (OSError, ValueError) as error:
            raise TrackerNotRunning(f"the tracker closed the connection ({error}): is it stopping?") from None
    if not answer.get("ok"):
        refusal = AgentError(str(answer.get("error", "the tracker refused")))
        refusal.exit_code = int(answer.get("exit_code", 1))
        raise refusal
    result: dict[str, Any] = answer
    return result
