"""Free TCP ports for processes started on this machine (a devnet's nodes, test hubs and brokers).

A port the kernel hands out for ``bind(port=0)`` comes from its ephemeral range, the same range every
outgoing connection takes its local port from: between the moment the port is found free and the
moment the node binds it, any connection made on the machine can take it (CI saw "address already
in use" once Chromium, brokers and hubs ran side by side). Ports below that range are never given
to outgoing connections, so a port found free there stays free unless someone binds it on purpose.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

#: Where to look when the kernel's ephemeral range starts high enough (Linux: 32768 by default).
LOW = 20000


def _ephemeral_start() -> int | None:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports nothing listens on now, below the ephemeral range when it allows, else
    ones the kernel hands out."""
    start = _ephemeral_start()
    found: list[int] = []
    if start is not None and start - LOW >= 1000:
        pool = random.Random().sample(range(LOW, start), min(start - LOW, 50 * n))
        for port in pool:
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
            found.append(port)
            if len(found) == n:
                return found
    socks = [socket.socket() for _ in range(n - len(found))]
    try:
        for s in socks:
            s.bind((host, 0))
        return found + [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]
