"""The on-disk capture queue: every capture is durable here before any upload is tried.

Layout under the queue folder:

- ``pending/<captured_at>_<capture_id>.capture``: one file per capture, oldest first by name;
- ``rejected/``: captures the server refused for good, each with ``<capture_id>.reason.json``;
- ``tmp/``: files being written. A capture exists once its file is renamed into ``pending/``; anything
  left in ``tmp/`` after a crash was never committed and is removed at the next start.

A capture file is ``WPQ1`` + a 4-byte big-endian header length + a JSON header (the capture's metadata
and, per image, its length and sha256) + the WebP images back to back. The sha256 is checked again
before upload, so a file damaged on disk is set aside (in ``rejected/``) instead of being sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.durable import TEMP_SUFFIX, fsync_folder, make_private_folder, write_atomically
from agent.errors import QueueFull
from domain.calendar import edit_cutoff, week_label
from domain.wire import CaptureKind, CaptureMeta

MAGIC = b"WPQ1"
_HEADER_LENGTH = struct.Struct(">I")
SUFFIX = ".capture"
NEAR_LIMIT_FRACTION = 0.9
AT_RISK_BEFORE_CUTOFF = timedelta(hours=6)


class DamagedCapture(Exception):
    """A queue file that cannot be read back as it was written."""


@dataclass(frozen=True)
class QueuedMeta:
    """What the queue keeps about a capture: its contract and the upload's ``meta``."""

    capture_id: str
    contract_id: str
    captured_at: datetime
    memo: str
    kind: CaptureKind
    keyboard_events: int | None = None
    mouse_events: int | None = None

    def api_meta(self) -> dict[str, Any]:
        """The ``meta`` form field of the upload: the wire model the server validates it with."""
        meta = CaptureMeta.model_construct(
            capture_id=uuid.UUID(self.capture_id), captured_at=self.captured_at.astimezone(UTC), memo=self.memo,
            kind=self.kind, keyboard_events=self.keyboard_events, mouse_events=self.mouse_events,
        )  # fmt: skip
        return meta.model_dump(mode="json")

    @property
    def week(self) -> str:
        return week_label(self.captured_at)

    @property
    def edit_cutoff(self) -> datetime:
        """After this moment the server no longer accepts the capture (default policy)."""
        return edit_cutoff(self.captured_at)


@dataclass(frozen=True)
class StoredImage:
    size: int
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class QueuedCapture:
    meta: QueuedMeta
    path: Path
    images: list[StoredImage]
    file_size: int
    data_offset: int

    @property
    def capture_id(self) -> str:
        return self.meta.capture_id

    def read_images(self) -> list[bytes]:
        """The image bytes, each checked against the sha256 recorded when it was queued."""
        contents: list[bytes] = []
        try:
            with self.path.open("rb") as source:
                source.seek(self.data_offset)
                for index, image in enumerate(self.images):
                    content = source.read(image.size)
                    if len(content) != image.size or hashlib.sha256(content).hexdigest() != image.sha256:
                        raise DamagedCapture(
                            f"image {index + 1} of {self.path.name} does not match its sha256"
                        )
                    contents.append(content)
        except OSError as error:
            raise DamagedCapture(f"cannot read {self.path.name}: {error}") from None
        return contents


@dataclass(frozen=True)
class RejectedCapture:
    meta: QueuedMeta | None
    capture_id: str
    status: int
    message: str
    rejected_at: str
    path: Path


@dataclass
class QueueUsage:
    pending: int = 0
    rejected: int = 0
    bytes_used: int = 0
    limit_bytes: int = 0
    oldest: datetime | None = None
    late: list[str] = field(default_factory=list)  # capture ids past their week's edit cutoff
    # week label -> (captures still queued, that week's edit cutoff), for weeks whose cutoff is near
    at_risk: dict[str, tuple[int, datetime]] = field(default_factory=dict)

    @property
    def near_limit(self) -> bool:
        return self.bytes_used >= NEAR_LIMIT_FRACTION * self.limit_bytes


def _meta_to_json(meta: QueuedMeta) -> dict[str, Any]:
    return meta.api_meta() | {"contract_id": meta.contract_id}


def _meta_from_json(raw: dict[str, Any]) -> QueuedMeta:
    captured_at = datetime.fromisoformat(raw["captured_at"])
    if captured_at.tzinfo is None:
        raise ValueError("captured_at without a UTC offset")
    kind = raw["kind"]
    if kind not in ("screenshot", "tracked"):
        raise ValueError(f"unknown capture kind {kind!r}")
    return QueuedMeta(
        capture_id=str(raw["capture_id"]),
        contract_id=str(raw["contract_id"]),
        captured_at=captured_at,
        memo=str(raw.get("memo", "")),
        kind=kind,
        keyboard_events=raw.get("keyboard_events"),
        mouse_events=raw.get("mouse_events"),
    )


class CaptureQueue:
    """Durable FIFO of captures awaiting upload, bounded in bytes. Safe to share between threads."""

    def __init__(self, folder: Path, *, limit_bytes: int) -> None:
        self.folder = folder
        self.limit_bytes = limit_bytes
        self.pending_folder = make_private_folder(folder / "pending")
        self.rejected_folder = make_private_folder(folder / "rejected")
        self.temp_folder = make_private_folder(folder / "tmp")
        # One capture is never uploaded and deleted at the same time: both claim its id first.
        self._claims: set[str] = set()
        self._claims_changed = threading.Condition()

    def discard_leftovers(self) -> None:
        """Half-written files from a crash were never committed: nobody was told they exist.

        Only the holder of the agent lock may call this: another process's write in progress looks
        exactly like a crash's leftover.
        """
        for leftover in self.temp_folder.iterdir():
            if leftover.name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(OSError):
                    leftover.unlink()

    # -- writing -----------------------------------------------------------------------------------

    def put(self, meta: QueuedMeta, images: list[bytes], sizes: list[tuple[int, int]]) -> QueuedCapture:
        """Store a capture durably; raises :class:`QueueFull` rather than exceed the disk limit."""
        stored = [
            StoredImage(size=len(content), sha256=hashlib.sha256(content).hexdigest(), width=w, height=h)
            for content, (w, h) in zip(images, sizes, strict=True)
        ]
        header = json.dumps(
            {"meta": _meta_to_json(meta), "images": [image.__dict__ for image in stored]},
            separators=(",", ":"),
        ).encode()
        prefix = MAGIC + _HEADER_LENGTH.pack(len(header))
        total = len(prefix) + len(header) + sum(image.size for image in stored)
        used = self.bytes_used()
        if used + total > self.limit_bytes:
            raise QueueFull(
                f"capture queue full ({used / 2**20:.0f} MiB of {self.limit_bytes / 2**20:.0f} MiB): "
                "connect to the network so captures can upload, or raise queue_limit_bytes with "
                "`workproof-agent settings queue_limit_bytes 4GiB`"
            )
        stamp = meta.captured_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.pending_folder / f"{stamp}_{meta.capture_id}{SUFFIX}"
        write_atomically(target, [prefix, header, *images], temp_folder=self.temp_folder)
        return QueuedCapture(meta, target, stored, total, len(prefix) + len(header))

    # -- reading -----------------------------------------------------------------------------------

    @staticmethod
    def read(path: Path) -> QueuedCapture:
        try:
            with path.open("rb") as source:
                head = source.read(len(MAGIC) + _HEADER_LENGTH.size)
                if len(head) != len(MAGIC) + _HEADER_LENGTH.size or not head.startswith(MAGIC):
                    raise DamagedCapture(f"{path.name} is not a capture file")
                (length,) = _HEADER_LENGTH.unpack(head[len(MAGIC) :])
                raw = json.loads(source.read(length))
            meta = _meta_from_json(raw["meta"])
            images = [StoredImage(**image) for image in raw["images"]]
            file_size = path.stat().st_size
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DamagedCapture(f"{path.name} cannot be read ({error})") from None
        data_offset = len(head) + length
        if file_size != data_offset + sum(image.size for image in images):
            raise DamagedCapture(f"{path.name} has {file_size} bytes, not the size its header promises")
        return QueuedCapture(meta, path, images, file_size, data_offset)

    def pending(self) -> list[QueuedCapture]:
        """Captures awaiting upload, oldest first. Damaged files are moved to ``rejected/``."""
        items: list[QueuedCapture] = []
        for path in sorted(self.pending_folder.glob(f"*{SUFFIX}")):
            try:
                items.append(self.read(path))
            except DamagedCapture as error:
                if path.exists():
                    self._set_aside(path, path.stem.split("_", 1)[-1], None, 0, str(error))
        return items

    def find(self, capture_id_prefix: str) -> list[QueuedCapture]:
        return [item for item in self.pending() if item.capture_id.startswith(capture_id_prefix)]

    def rejected(self) -> list[RejectedCapture]:
        found: list[RejectedCapture] = []
        for reason_path in sorted(self.rejected_folder.glob("*.reason.json")):
            try:
                reason = json.loads(reason_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            capture_path = self.rejected_folder / str(reason.get("file", ""))
            meta = None
            with contextlib.suppress(DamagedCapture):
                meta = self.read(capture_path).meta
            found.append(
                RejectedCapture(
                    meta=meta,
                    capture_id=str(reason.get("capture_id", "")),
                    status=int(reason.get("status", 0)),
                    message=str(reason.get("message", "")),
                    rejected_at=str(reason.get("rejected_at", "")),
                    path=capture_path,
                )
            )
        return found

    def bytes_used(self) -> int:
        total = 0
        for folder in (self.pending_folder, self.rejected_folder, self.temp_folder):
            for entry in os.scandir(folder):
                with contextlib.suppress(OSError):
                    total += entry.stat().st_size
        return total

    def usage(self, now: datetime | None = None) -> QueueUsage:
        now = now or datetime.now(UTC)
        items = self.pending()
        at_risk: dict[str, tuple[int, datetime]] = {}
        for item in items:
            cutoff = item.meta.edit_cutoff
            if now < cutoff <= now + AT_RISK_BEFORE_CUTOFF:
                count, _ = at_risk.get(item.meta.week, (0, cutoff))
                at_risk[item.meta.week] = (count + 1, cutoff)
        return QueueUsage(
            pending=len(items),
            rejected=len(self.rejected()),
            bytes_used=self.bytes_used(),
            limit_bytes=self.limit_bytes,
            oldest=items[0].meta.captured_at if items else None,
            late=[item.capture_id for item in items if item.meta.edit_cutoff <= now],
            at_risk=at_risk,
        )

    # -- leaving the queue -------------------------------------------------------------------------

    @contextlib.contextmanager
    def claim(self, capture_id: str) -> Iterator[None]:
        """Exclusive use of one capture (upload, delete) within this process."""
        with self._claims_changed:
            while capture_id in self._claims:
                self._claims_changed.wait()
            self._claims.add(capture_id)
        try:
            yield
        finally:
            with self._claims_changed:
                self._claims.discard(capture_id)
                self._claims_changed.notify_all()

    def remove(self, item: QueuedCapture) -> None:
        """The server has the capture: forget it (durably, so it is not sent again after a crash)."""
        with contextlib.suppress(FileNotFoundError):
            item.path.unlink()
        fsync_folder(item.path.parent)

    def reject(self, item: QueuedCapture, status: int, message: str) -> None:
        self._set_aside(item.path, item.capture_id, item.meta, status, message)

    def _set_aside(
        self, path: Path, capture_id: str, meta: QueuedMeta | None, status: int, message: str
    ) -> None:
        # The reason is written first: a crash between the two steps leaves the capture pending (it will
        # be retried), never in rejected/ without a reason.
        reason = {
            "capture_id": capture_id,
            "file": path.name,
            "status": status,
            "message": message,
            "rejected_at": datetime.now(UTC).isoformat(),
            "captured_at": meta.captured_at.isoformat() if meta else None,
        }
        write_atomically(
            self.rejected_folder / f"{capture_id}.reason.json",
            json.dumps(reason, indent=2).encode(),
            temp_folder=self.temp_folder,
        )
        os.replace(path, self.rejected_folder / path.name)
        fsync_folder(self.rejected_folder)
        fsync_folder(path.parent)

    def discard(self, capture_id: str) -> bool:
        """Delete a capture that never reached the server (the provider's choice). True if it existed."""
        with self.claim(capture_id):
            removed = False
            for folder in (self.pending_folder, self.rejected_folder):
                for path in folder.glob(f"*_{capture_id}{SUFFIX}"):
                    path.unlink()
                    removed = True
                reason = folder / f"{capture_id}.reason.json"
                if reason.exists():
                    reason.unlink()
                fsync_folder(folder)
            return removed

    def requeue_rejected(self) -> int:
        """Give every rejected capture another try (after the cause is fixed, e.g. a wrong account)."""
        moved = 0
        for reason_path in list(self.rejected_folder.glob("*.reason.json")):
            capture_id = reason_path.name.removesuffix(".reason.json")
            for path in self.rejected_folder.glob(f"*_{capture_id}{SUFFIX}"):
                os.replace(path, self.pending_folder / path.name)
                moved += 1
            reason_path.unlink()
        fsync_folder(self.pending_folder)
        fsync_folder(self.rejected_folder)
        return moved
