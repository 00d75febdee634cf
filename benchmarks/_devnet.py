"""Shared set-up of the chain network benchmarks: real ``hub chain node`` processes on loopback.

A :class:`Devnet` owns a directory, a genesis (written by ``hub chain genesis``, or given), one
process per node started the way ``hub chain devnet`` starts them, each with its log file, and an
HTTP client for their RPC. :meth:`Devnet.close` SIGTERMs every process it started (SIGKILL after a
grace period), by pid, so nothing outlives the benchmark even when it fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from hub.chain.devnet_cli import free_ports  # noqa: E402,F401 - bench_chain_sync imports it from here
from hub.crypto.address import address_of, encode_address  # noqa: E402
from hub.crypto.keys import PrivateKey  # noqa: E402

HUB = [sys.executable, "-m", "hub.cli"]


def key(name: str) -> PrivateKey:
    return PrivateKey(hashlib.sha256(name.encode()).digest())


def address(k: PrivateKey) -> str:
    return encode_address(address_of(k.public_key))


def hub(*args: str, cwd: Path) -> None:
    done = subprocess.run([*HUB, *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"hub {' '.join(args[:3])} failed:\n{done.stderr[-2000:]}")


def make_genesis(root: Path, producers: int, block_interval: int, balances: dict[str, int]) -> Path:
    """``hub chain genesis`` into ``root/g``: producer keys in g/keys/producer-i.key. Balances in RUFF."""
    args = ["chain", "genesis", "--out", "g", "--producers", str(producers), "--set", f"BLOCK_INTERVAL={block_interval}"]
    for a, amount in balances.items():
        args += ["--balance", f"{a}={amount}"]
    hub(*args, cwd=root)
    return root / "g" / "genesis.json"


class NodeProc:
    def __init__(self, name: str, root: Path, genesis: Path, p2p: int, rpc: int, producer_key: Path | None) -> None:
        self.name, self.root, self.genesis, self.p2p, self.rpc, self.producer_key = name, root, genesis, p2p, rpc, producer_key
        self.log = root / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rpc}"

    def start(self, peers: list[int], data: Path | None = None, profile: Path | None = None) -> None:
        """``profile``: run under cProfile in every thread (``_profiled_node.py``), stats to this file."""
        hub_cmd = HUB if profile is None else [sys.executable, str(Path(__file__).with_name("_profiled_node.py")), str(profile)]
        cmd = [*hub_cmd, "chain", "node", "--genesis", str(self.genesis), "--data", str(data or self.root / self.name),
               "--listen", f"127.0.0.1:{self.p2p}", "--peers", ",".join(f"127.0.0.1:{p}" for p in peers),
               "--rpc", f"127.0.0.1:{self.rpc}"]
        if self.producer_key is not None:
            cmd += ["--producer-key", str(self.producer_key)]
        with open(self.log, "w") as log:
            self.started = time.time()
            self.proc = subprocess.Popen(cmd, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def stop(self, grace: float = 10.0) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait(5)
        except ProcessLookupError:
            pass


class Devnet:
    """``n`` nodes on loopback, all peered with each other; node i produces with producer-i.key
    when ``producers`` is true."""

    def __init__(self, root: Path, genesis: Path, n: int, *, producers: bool = True) -> None:
        self.root = root
        ports = free_ports(2 * n)
        keys = root / "g" / "keys"
        self.nodes = [NodeProc(f"n{i}", root, genesis, ports[i], ports[n + i],
                               keys / f"producer-{i}.key" if producers else None) for i in range(n)]
        self.client = httpx.Client(timeout=5.0)

    def start(self, profile: Path | None = None) -> None:
        for node in self.nodes:
            node.start([m.p2p for m in self.nodes if m is not node],
                       profile=None if profile is None else profile / f"{node.name}.prof")

    def head(self, i: int) -> dict | None:
        try:
            r = self.client.get(f"{self.nodes[i].url}/head")
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    def wait_ready(self, min_height: int, timeout: float = 60.0) -> None:
        """Every node answers and has applied ``min_height`` blocks (so they are peered and producing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.proc.poll() is not None:
                    raise RuntimeError(f"{node.name} exited with {node.proc.returncode}:\n{node.log.read_text()[-3000:]}")
            heads = [self.head(i) for i in range(len(self.nodes))]
            if all(h is not None and h["height"] >= min_height for h in heads):
                return
            time.sleep(0.2)
        raise RuntimeError("the devnet did not start:\n" + "\n".join(f"--- {n.name}\n{n.log.read_text()[-2000:]}" for n in self.nodes))

    def close(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                try:
                    node.proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.proc.send_signal(signal.SIGKILL)
                node.proc.wait(5)
        self.client.close()


# --- node logs ---------------------------------------------------------------------------------------
# logging's default asctime: local time, millisecond resolution; every node runs on this machine's clock.
_STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
PRODUCED = re.compile(_STAMP + r" INFO \S+: chain: produced block (\d+) in slot (\d+) \(round \d+, (\d+) txs\)")
RECEIVED = re.compile(_STAMP + r" INFO \S+: p2p: block (\d+) \(slot (\d+), (\d+) txs\) from \S+ (applied|reorganised)")


def stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one when ``pid`` is None), from /proc."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> tuple[float, float]:
    """(main thread, all other threads) CPU seconds of a process: for a node, its event loop (RPC,
    p2p frames, asyncio) vs the worker threads where ``asyncio.to_thread`` runs the chain work."""
    main = other = 0.0
    tck = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        t = (int(fields[11]) + int(fields[12])) / tck
        if task.name == str(pid):
            main += t
        else:
            other += t
    return main, other


def json_line(result: dict) -> str:
    return json.dumps(result)
