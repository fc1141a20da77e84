"""Free ports for the parts the tests start. Standard library only: the agent's tests use it too."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, for a part started later. Not from the kernel's ephemeral range: a port
    asked of the kernel (bind to 0) is free only now, and the next outgoing connection of any process (the
    tests make thousands) may take it as its source port before the part binds it ("Address already in
    use"). Below that range only listeners live, and the bind check sees them."""
    start = _ephemeral_start()
    low, high = (10_000, start - 1) if start > 12_000 else (1_024, 9_999)
    for _ in range(200):
        port = random.randint(low, high)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port between {low} and {high}")
