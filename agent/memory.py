"""Giving memory back: the agent runs all day, and a capture cycle briefly needs ~25 MB at 1080p.

glibc's malloc serves large blocks from mmap only up to a threshold that *grows* each time such a
block is freed; after a few cycles the 6-8 MB frame buffers come from the heap instead, and the heap
does not shrink, so resident memory creeps up by a frame or two. Each thread also gets its own arena.
Pinning the mmap threshold at 256 KiB makes every frame-sized buffer an mmap that is unmapped the
moment it is freed, and two arenas are plenty for the agent's few threads. Other C libraries (musl,
macOS, Windows) return large blocks on their own; there this does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def return_large_blocks_promptly() -> bool:
    """Tune glibc's malloc for the capture cycle; True when it applied."""
    if sys.platform != "linux":
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        mallopt.restype = ctypes.c_int
        applied = mallopt(_M_MMAP_THRESHOLD, 256 * 1024) == 1
        mallopt(_M_TRIM_THRESHOLD, 1024 * 1024)
        mallopt(_M_ARENA_MAX, 2)
        return applied
    return False
