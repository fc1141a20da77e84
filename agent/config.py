"""Where the agent keeps its files, the provider's credentials and settings.

- config folder (``platformdirs.user_config_dir("workproof")``): ``credentials.json`` (0600) and
  ``settings.json``;
- data folder (``user_data_dir``): the capture queue, thumbnails, the uploader's state;
- runtime folder (``user_runtime_dir``): the control socket of the running tracker.

``WORKPROOF_AGENT_HOME`` puts all three under one folder (``config/``, ``data/``, ``run/``): tests and
portable installs use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from agent.durable import make_private_folder, write_atomically
from agent.errors import InvalidArgument, NotLoggedIn
from domain.calendar import SLOT

APP_NAME = "workproof"
HOME_ENV = "WORKPROOF_AGENT_HOME"
SLOT_ENV = "WORKPROOF_AGENT_SLOT_SECONDS"
GIB = 1024**3
# A Unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux, 104 on macOS).
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class AgentPaths:
    config: Path
    data: Path
    runtime: Path

    @classmethod
    def discover(cls, environ: dict[str, str] | None = None) -> AgentPaths:
        env = os.environ if environ is None else environ
        home = env.get(HOME_ENV)
        if home:
            root = Path(home).expanduser().resolve()
            return cls(config=root / "config", data=root / "data", runtime=root / "run")
        import platformdirs

        with warnings.catch_warnings():
            # Without XDG_RUNTIME_DIR platformdirs falls back to /tmp/runtime-UID and warns; that is fine.
            warnings.simplefilter("ignore")
            runtime = Path(platformdirs.user_runtime_dir(APP_NAME, appauthor=False))
        return cls(
            config=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            data=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            runtime=runtime,
        )

    @property
    def credentials_file(self) -> Path:
        return self.config / "credentials.json"

    @property
    def settings_file(self) -> Path:
        return self.config / "settings.json"

    @property
    def queue_folder(self) -> Path:
        return self.data / "queue"

    @property
    def thumbnails_folder(self) -> Path:
        return self.data / "thumbnails"

    @property
    def uploader_state_file(self) -> Path:
        return self.data / "uploader.json"

    @property
    def contracts_cache_file(self) -> Path:
        return self.data / "contracts.json"

    @property
    def tracker_lock_file(self) -> Path:
        return self.data / "tracker.lock"

    @property
    def control_endpoint_file(self) -> Path:
        """Windows: the loopback port and secret of the running tracker (0600)."""
        return self.runtime / "control.json"

    @property
    def control_socket(self) -> Path:
        """Unix: the running tracker's socket; a short fallback when the runtime path is too long."""
        preferred = self.runtime / "control.sock"
        if len(os.fsencode(preferred)) <= _MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(os.fsencode(self.runtime)).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"workproof-{os.getuid()}-{digest}" / "control.sock"

    def ensure(self) -> None:
        for folder in (self.config, self.data, self.runtime):
            make_private_folder(folder)


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str
    user_id: str = ""
    email: str = ""
    name: str = ""


def save_credentials(paths: AgentPaths, credentials: Credentials) -> None:
    make_private_folder(paths.config)
    content = json.dumps(asdict(credentials), indent=2).encode()
    write_atomically(paths.credentials_file, content, mode=0o600)


def load_credentials(paths: AgentPaths) -> Credentials:
    path = paths.credentials_file
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotLoggedIn(
            "not logged in: run `workproof-agent login SERVER_URL` with your provider token"
        ) from None
    except (OSError, ValueError) as error:
        raise NotLoggedIn(
            f"cannot read {path} ({error}): run `workproof-agent login SERVER_URL` again"
        ) from None
    if sys.platform != "win32":
        # A token readable by others is a leaked token; repair the mode rather than refuse to work.
        with contextlib.suppress(OSError):
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(0o600)
    try:
        return Credentials(**{f.name: str(raw.get(f.name, "")) for f in fields(Credentials)})
    except (TypeError, AttributeError):
        raise NotLoggedIn(f"{path} is damaged: run `workproof-agent login SERVER_URL` again") from None


@dataclass(frozen=True)
class Settings:
    """The provider's choices; edit ``settings.json`` or use ``workproof-agent settings KEY VALUE``."""

    blur: bool = False  # pixelate every image before it leaves memory
    blur_block_px: int = 24  # size of a pixelation block: larger hides more
    webp_quality: int = 60
    queue_limit_bytes: int = 2 * GIB  # disk the queue may use; new captures are refused beyond it
    activity_counts: bool = True  # keyboard and mouse event counts per slot (never which keys)
    thumbnails: bool = True  # small local previews for `workproof-agent shots` and the window
    tray: bool = True  # a tray icon beside the window, when pystray is installed (the `tray` extra)

    def validated(self) -> Settings:
        if not 1 <= self.webp_quality <= 100:
            raise InvalidArgument("webp_quality must be between 1 and 100")
        if not 2 <= self.blur_block_px <= 512:
            raise InvalidArgument("blur_block_px must be between 2 and 512")
        if self.queue_limit_bytes < 16 * 1024 * 1024:
            raise InvalidArgument("queue_limit_bytes must be at least 16 MiB (16777216)")
        return self


def load_settings(paths: AgentPaths) -> Settings:
    try:
        raw: Any = json.loads(paths.settings_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError) as error:
        raise InvalidArgument(f"cannot read {paths.settings_file} ({error}): fix or delete it") from None
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{paths.settings_file} must hold a JSON object: fix or delete it")
    values: dict[str, Any] = {}
    for field in fields(Settings):
        if field.name in raw:
            values[field.name] = coerce_setting(field.name, raw[field.name])
    return Settings(**values).validated()


def save_settings(paths: AgentPaths, settings: Settings) -> None:
    make_private_folder(paths.config)
    write_atomically(paths.settings_file, json.dumps(asdict(settings.validated()), indent=2).encode())


def coerce_setting(name: str, value: object) -> bool | int:
    """A setting's value from JSON or the command line (``on``/``off``, ``2GiB``...)."""
    kinds = {f.name: f.type for f in fields(Settings)}
    if name not in kinds:
        raise InvalidArgument(f"unknown setting {name!r}: choose one of {', '.join(kinds)}")
    if kinds[name] in (bool, "bool"):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "on", "true", "yes"):
            return True
        if text in ("0", "off", "false", "no"):
            return False
        raise InvalidArgument(f"{name} takes on or off, not {value!r}")
    if isinstance(value, bool):
        raise InvalidArgument(f"{name} takes a number, not {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip().lower().replace(" ", "")
    for suffix, factor in (("gib", GIB), ("mib", 1024**2), ("kib", 1024), ("b", 1)):
        if text.endswith(suffix) and text[: -len(suffix)].isdigit():
            return int(text[: -len(suffix)]) * factor
    if text.isdigit():
        return int(text)
    raise InvalidArgument(f"{name} takes a whole number (e.g. 60, or 2GiB for sizes), not {value!r}")


def slot_length(environ: dict[str, str] | None = None) -> timedelta:
    """12 minutes, or the test-only length in ``WORKPROOF_AGENT_SLOT_SECONDS``."""
    env = os.environ if environ is None else environ
    raw = env.get(SLOT_ENV)
    if not raw:
        return SLOT
    try:
        seconds = float(raw)
    except ValueError:
        raise InvalidArgument(f"{SLOT_ENV}={raw!r} is not a number of seconds") from None
    if not 0.1 <= seconds <= SLOT.total_seconds():
        raise InvalidArgument(f"{SLOT_ENV} must be between 0.1 and {int(SLOT.total_seconds())} seconds")
    return timedelta(seconds=seconds)
