"""Network-namespace helpers for the partition tests (``test_partitions.py``).

Layout (nothing is created in the root namespace, so the host's network is never touched)::

    namespace <prefix>sw ("switch"):  bridges br0 and br1, ports p0..p{n-1}
    namespace <prefix>n{i}  (node i): eth0 = 10.213.0.{i+1}/24  <-veth->  p{i} in the switch
                                      lo up (the node's RPC listens on 127.0.0.1 here)

Every veth pair is created inside the switch namespace with its peer moved straight into the node
namespace, so no interface ever appears in the root namespace and the 10.213.0.0/24 addresses exist
only inside the node namespaces (there is no route out of them: the traffic cannot leave).

Partitions: every port starts on ``br0``. ``partition([[0, 1], [2, 3]])`` moves each group's ports
onto its own bridge (group k -> br{k}), so nodes inside a group still talk to each other and nodes in
different groups cannot (frames are simply not forwarded: an established TCP connection stalls, as
when a cable is cut between two switches). ``heal()`` puts every port back on ``br0``. Only iproute2
is needed: no nftables/iptables.

Reaching the RPCs: the test process stays in the root namespace. :func:`http_get_json` opens its TCP
connection from a short-lived thread that first ``setns(2)``-s itself into the node's namespace
(``setns`` with ``CLONE_NEWNET`` affects only the calling thread, and a socket keeps the namespace it
was created in), then speaks plain HTTP/1.1 over that socket from the calling thread. No extra
process per query, and no address in the root namespace.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterable

import pytest

CLONE_NEWNET = 0x40000000
SUBNET = "10.213.0"
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15, check=check)


def require_netns() -> None:
    """Skip (or, with ``CI`` set, fail) unless we are root and can make namespaces with a bridge."""
    why = None
    if os.geteuid() != 0:
        why = "network namespaces need root"
    elif shutil.which("ip") is None:
        why = "iproute2 `ip` is not installed"
    else:
        probe = f"rhprobe{os.getpid()}"
        try:
            made = ip("netns", "add", probe, check=False)
            if made.returncode != 0:
                why = f"cannot create a network namespace: {made.stderr.strip()}"
            else:
                bridge = ip("-n", probe, "link", "add", "br0", "type", "bridge", check=False)
                veth = ip("-n", probe, "link", "add", "a0", "type", "veth", "peer", "name", "b0", check=False)
                if bridge.returncode or veth.returncode:
                    why = f"no bridge/veth support: {(bridge.stderr + veth.stderr).strip()}"
        finally:
            ip("netns", "del", probe, check=False)
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"partition tests need network namespaces in CI, but {why}")
    pytest.skip(why)


class NetLab:
    """``n`` node namespaces wired to one switch namespace; see the module docstring."""

    def __init__(self, n: int, tag: str) -> None:
        self.n = n
        self.prefix = f"rh{os.getpid()}{tag}"
        self.switch = f"{self.prefix}sw"
        self.nodes = [f"{self.prefix}n{i}" for i in range(n)]
        self.created: list[str] = []

    def address(self, i: int) -> str:
        return f"{SUBNET}.{i + 1}"

    def up(self) -> None:
        sw = self.switch
        ip("netns", "add", sw)
        self.created.append(sw)
        ip("-n", sw, "link", "set", "lo", "up")
        for br in ("br0", "br1"):
            ip("-n", sw, "link", "add", br, "type", "bridge")
            ip("-n", sw, "link", "set", br, "up")
        for i, ns in enumerate(self.nodes):
            ip("netns", "add", ns)
            self.created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", sw, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("-n", sw, "link", "set", f"p{i}", "master", "br0")
            ip("-n", sw, "link", "set", f"p{i}", "up")
            ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")

    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        groups = [list(g) for g in groups]
        assert len(groups) <= 2, "two bridges: at most two sides"
        for k, group in enumerate(groups):
            for i in group:
                ip("-n", self.switch, "link", "set", f"p{i}", "master", f"br{k}")

    def heal(self) -> None:
        self.partition([range(self.n)])

    def down(self) -> None:
        """Delete every namespace (their veths and bridges go with them). Kill the processes first."""
        for ns in reversed(self.created):
            ip("netns", "del", ns, check=False)
        self.created.clear()


def _connect_in(ns: str, host: str, port: int, timeout: float) -> socket.socket:
    result: dict[str, object] = {}

    def run() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            result["sock"] = socket.create_connection((host, port), timeout=timeout)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            result["error"] = exc

    t = threading.Thread(target=run, name=f"setns-{ns}", daemon=True)
    t.start()
    t.join(timeout + 5)
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    if "sock" not in result:
        raise TimeoutError(f"connecting inside {ns} to {host}:{port} hung")
    return result["sock"]  # type: ignore[return-value]


def http_get_json(ns: str, port: int, path: str, host: str = "127.0.0.1", timeout: float = 3.0):
    """GET ``path`` from ``host:port`` as seen inside namespace ``ns``; (status, parsed JSON)."""
    sock = _connect_in(ns, host, port, timeout)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.sock = sock
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        reply = conn.getresponse()
        body = reply.read()
        return reply.status, (json.loads(body) if body else None)
    finally:
        conn.close()
