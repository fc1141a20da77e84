"""Writes that survive a crash: a file is either its old content or its complete new content, never half.

The sequence is the classic one: write a temporary file in the same folder, fsync it, rename it over the
target, fsync the folder. Without the first fsync a power cut can leave the renamed file empty (the
rename reached the journal before the data); without the folder fsync the rename itself can be lost.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

TEMP_SUFFIX = ".partial"


def fsync_folder(folder: Path) -> None:
    """Make a rename or unlink in ``folder`` durable.

    Windows cannot open a folder as a file; NTFS journals its metadata, so there is nothing to do there.
    """
    if sys.platform == "win32":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(
    target: Path, content: bytes | list[bytes], *, mode: int = 0o600, temp_folder: Path | None = None
) -> None:
    """Replace ``target`` by ``content`` all at once; a crash leaves only a ``*.partial`` file behind.

    ``temp_folder`` must be on the same file system as ``target`` (a rename across file systems is a copy,
    which is not atomic). Readers ignore ``*.partial`` files, so a crash mid-write is harmless.
    """
    folder = temp_folder or target.parent
    temp = folder / f"{target.name}.{os.getpid()}{TEMP_SUFFIX}"
    # The mode is given at creation so secrets are never readable by others, not even for a moment.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), mode)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in [content] if isinstance(content, bytes) else content:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_folder(target.parent)
    if temp_folder is not None and temp_folder != target.parent:
        fsync_folder(temp_folder)


def make_private_folder(folder: Path) -> Path:
    """Create ``folder`` (and parents) readable by the owner only; tighten it if it already exists."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if sys.platform != "win32":
        with contextlib.suppress(PermissionError):
            folder.chmod(0o700)
    return folder


class ProcessLock:
    """An exclusive, non-blocking lock on a file, released by the OS when the process dies (even kill -9).

    It makes "one tracker per user" true and lets a command tell a live tracker from a stale socket.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        make_private_folder(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if sys.platform == "win32":
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        if sys.platform == "win32":
            import msvcrt

            with contextlib.suppress(OSError):
                msvcrt.locking(self._fd, msvcrt.LK_UNLCK, 1)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
