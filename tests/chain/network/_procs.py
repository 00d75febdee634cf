"""Helpers for fault tests: a set of ``hub chain node`` processes on loopback, each with its RPC,
that a test can kill -9 and restart with the same data directory.

Every process is started in its own session; :meth:`Cluster.close` (called from fixture teardown)
SIGKILLs each one by its pid, so nothing outlives a test, even a failing one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import httpx

from hub.chain.devnet_cli import free_ports
from tests.chain.network.test_processes import HUB, _hub


OPENED = re.compile(r"node: chain \S+, head (\d+) \(\w+\), last irreversible (\d+)")


class Cluster:
    def __init__(self, root: Path, nodes: int, block_interval_ms: int = 500) -> None:
        self.root = root
        self.n = nodes
        _hub("chain", "genesis", "--out", "g", "--producers", str(nodes), "--set", f"BLOCK_INTERVAL={block_interval_ms}",
             cwd=root)
        ports = free_ports(2 * nodes)
        self.p2p, self.rpc = ports[:nodes], ports[nodes:]
        self.procs: list[subprocess.Popen | None] = [None] * nodes
        self.starts = [0] * nodes
        self.client = httpx.Client(timeout=1.0)
        self.keys = [json.loads((root / f"g/keys/producer-{i}.key").read_text())["public_key"] for i in range(nodes)]
        self.addresses = [json.loads((root / f"g/keys/producer-{i}.key").read_text())["address"] for i in range(nodes)]

    # --- processes -----------------------------------------------------------------------------
    def start(self, i: int) -> None:
        assert self.procs[i] is None or self.procs[i].poll() is not None
        peers = ",".join(f"127.0.0.1:{p}" for j, p in enumerate(self.p2p) if j != i)
        self.starts[i] += 1
        log = open(self.root / f"n{i}.log", "a")
        log.write(f"=== start {self.starts[i]} at {time.time():.3f}\n")
        log.flush()
        self.procs[i] = subprocess.Popen(
            [*HUB, "chain", "node", "--genesis", "g/genesis.json", "--data", f"n{i}",
             "--producer-key", f"g/keys/producer-{i}.key", "--listen", f"127.0.0.1:{self.p2p[i]}",
             "--peers", peers, "--rpc", f"127.0.0.1:{self.rpc[i]}"],
            cwd=self.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()

    def start_all(self) -> None:
        for i in range(self.n):
            self.start(i)

    def kill9(self, i: int) -> None:
        p = self.procs[i]
        assert p is not None
        p.send_signal(signal.SIGKILL)
        p.wait(5)
        with open(self.root / f"n{i}.log", "a") as log:
            log.write(f"=== killed -9 at {time.time():.3f}\n")

    def alive(self, i: int) -> bool:
        p = self.procs[i]
        return p is not None and p.poll() is None

    def close(self) -> None:
        for p in self.procs:
            if p is not None and p.poll() is None:
                try:
                    p.send_signal(signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            if p is not None:
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        self.client.close()

    # --- RPC -----------------------------------------------------------------------------------
    def get(self, i: int, path: str) -> dict | None:
        """The JSON answer of node ``i``, or None if it does not answer (yet)."""
        try:
            reply = self.client.get(f"http://127.0.0.1:{self.rpc[i]}{path}")
        except httpx.HTTPError:
            return None
        return reply.json() if reply.status_code == 200 else None

    def head(self, i: int) -> dict | None:
        return self.get(i, "/head")

    def block(self, i: int, height: int) -> dict | None:
        return self.get(i, f"/blocks/{height}")

    def missed(self, i: int, producer: int) -> int | None:
        sched = self.get(i, "/schedule")
        if sched is None:
            return None
        for row in sched["producers"]:
            if row["public_key"] == self.keys[producer]:
                return row["missed"]
        raise AssertionError(f"producer {producer} is not in node {i}'s schedule: {sched}")

    def producers_since(self, i: int, start: int) -> set[str]:
        """Public keys of the producers of node ``i``'s canonical blocks from ``start`` on."""
        data = self.get(i, f"/headers?from={start}&count=200")
        return {h["producer_key"] for h in data["headers"]} if data else set()

    def common_hash(self, nodes: list[int]) -> tuple[int, list[str | None]] | None:
        """The minimum head height among ``nodes`` and each one's hash of the block there."""
        heads = [self.head(i) for i in nodes]
        if any(h is None for h in heads):
            return None
        height = min(h["height"] for h in heads)
        blocks = [self.block(i, height) for i in nodes] if height > 0 else [{"hash": None}] * len(nodes)
        return height, [b["hash"] if b else None for b in blocks]

    def opened_at(self, i: int, start: int) -> tuple[int, int] | None:
        """(head, last irreversible) that node ``i`` reported opening its store with at its
        ``start``-th start (1-based), from its log; None if it has not got that far."""
        text = (self.root / f"n{i}.log").read_text()
        part = text.split(f"=== start {start} at", 1)
        if len(part) < 2:
            return None
        m = OPENED.search(part[1].split("=== start", 1)[0])
        return (int(m.group(1)), int(m.group(2))) if m else None

    # --- diagnostics ---------------------------------------------------------------------------
    def logs(self, tail: int = 2500) -> str:
        return "\n".join(f"--- n{i} (pid {p.pid if p else None}, rc {p.poll() if p else None})\n"
                         + ((self.root / f"n{i}.log").read_text()[-tail:] if (self.root / f"n{i}.log").exists() else "")
                         for i, p in enumerate(self.procs))


def wait_for(what: str, check: Callable[[], object], deadline: float, cluster: Cluster, poll: float = 0.2):
    """Poll ``check`` until it returns something truthy; fail with the logs past ``deadline``."""
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{cluster.logs()}")
        time.sleep(poll)
