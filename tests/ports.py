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


def free_port(block: int = 1) -> int:
    """A port nothing listens on, for a part started later. Not from the kernel's ephemeral range: a port
    asked of the kernel (bind to 0) is free only now, and the next outgoing connection of any process (the
    tests make thousands) may take it as its source port before the part binds it ("Address already in
    use"). Below that range only listeners live, and the bind check sees them.

    ``block`` > 1: the first of that many consecutive free ports (the embedded object store takes its S3
    port and the seven after it); none of them is handed out again."""
    start = _ephemeral_start()
    low, high = (10_000, start - block) if start > 12_000 else (1_024, 9_999 - block)
    for _ in range(200):
        port = random.randint(low, high)
        ports = range(port, port + block)
        if any(p in _HANDED_OUT for p in ports) or not all(_bindable(p) for p in ports):
            continue
        _HANDED_OUT.update(ports)
        return port
    raise RuntimeError(f"no free port between {low} and {high}")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
