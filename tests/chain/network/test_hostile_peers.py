"""Real ``hub chain node`` processes against crowds of strangers (issue #15): connections that never
finish their handshake must not cost the node memory, and strangers with free keys filling every
inbound slot must not cut the node off from an honest producer.

The strangers run in the test's event loop, each from its own loopback address (127.0.0.0/8)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from hub.chain.devnet_cli import free_ports
from hub.chain.p2p import messages
from hub.chain.p2p.frames import encode_frame, read_frame
from hub.chain.protocol.genesis import load_genesis
from hub.crypto.keys import PrivateKey
from tests.chain.network._raw import connect
from tests.chain.network.test_processes import HAVE_RPC, HUB, _hub, stop_all


class Nodes:
    """``hub chain node`` processes of one genesis (2 producers, 0.5 s slots) in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        _hub("chain", "genesis", "--out", "g", "--producers", "2", "--set", "BLOCK_INTERVAL=500", cwd=root)
        self.genesis = load_genesis(root / "g/genesis.json")
        self.procs: list[subprocess.Popen] = []
        self.producers = [json.loads((root / f"g/keys/producer-{i}.key").read_text())["public_key"] for i in range(2)]

    def start(self, name: str, p2p: int, *args: str) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "w")
        proc = subprocess.Popen([*HUB, "chain", "node", "--genesis", "g/genesis.json", "--data", name,
                                 "--listen", f"127.0.0.1:{p2p}", *args], cwd=self.root, stdout=log,
                                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.root.glob("*.log")))

    async def until(self, what: str, check, timeout: float):
        deadline = time.monotonic() + timeout
        while not (value := check()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")
            await asyncio.sleep(0.2)
        return value


@pytest.fixture
def nodes(tmp_path):
    n = Nodes(tmp_path)
    yield n
    stop_all(n.procs)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _unauthenticated(port: int, source: str, junk: bytes) -> None:
    """Announce an 8 MiB frame before any handshake and send ``junk`` of it; hold the connection."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        writer.write((8 << 20).to_bytes(4, "big") + junk)
        await asyncio.wait_for(writer.drain(), 5)
    except (OSError, asyncio.TimeoutError):
        return None  # refused or reset: the node did not take it
    return writer


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads memory use from /proc")
async def test_connections_that_never_finish_their_handshake_cost_the_node_no_memory(nodes):
    """200 connections from 50 addresses each announce an 8 MiB hello and send 512 KiB of it: the
    node refuses the frame at its length and holds none of it (it used to buffer every byte)."""
    port = free_ports(1)[0]
    proc = nodes.start("n0", port)
    await nodes.until("the node listening", lambda: "p2p: listening" in nodes.log("n0"), 30)
    before = _rss_kib(proc.pid)
    junk = os.urandom(512 * 1024)
    writers = await asyncio.gather(*(_unauthenticated(port, f"127.0.1.{i % 50 + 1}", junk) for i in range(200)))
    await asyncio.sleep(1.0)  # whatever the node kept is in its memory now
    grown_mib = (_rss_kib(proc.pid) - before) / 1024
    assert proc.poll() is None
    assert grown_mib < 40, f"the node grew by {grown_mib:.0f} MiB for 200 unauthenticated connections"
    # And it still serves a peer that does its handshake.
    reader, writer = await connect("127.0.0.1", port, nodes.genesis, PrivateKey.generate())
    writer.write(encode_frame(messages.get_blocks(1, 1)))
    assert (await asyncio.wait_for(read_frame(reader), 5))["type"] == "blocks"
    for w in [writer, *writers]:
        if w is not None:
            w.close()


async def _fake_peer(port: int, genesis, source: str, stop: asyncio.Event) -> None:
    """A stranger with a fresh free key that behaves well: it answers pings and holds its slot
    for as long as the node lets it."""
    try:
        reader, writer = await connect("127.0.0.1", port, genesis, PrivateKey.generate(), source=source)
    except (OSError, ConnectionError):
        return
    try:
        while not stop.is_set():
            msg = await read_frame(reader, 1 << 24)
            if msg is None:
                return
            if msg["type"] == "ping":
                writer.write(encode_frame(messages.pong(msg["nonce"])))
    except (OSError, ConnectionError, ValueError):
        return
    finally:
        writer.close()


def _producers_since(rpc: int, start: int) -> set[str]:
    try:
        reply = httpx.get(f"http://127.0.0.1:{rpc}/headers", params={"from": start, "count": 200}, timeout=1)
    except httpx.HTTPError:
        return set()
    return {h["producer_key"] for h in reply.json()["headers"]} if reply.status_code == 200 else set()


def _height(rpc: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{rpc}/head", timeout=1).json()["height"]
    except (httpx.HTTPError, ValueError, KeyError):
        return -1


@pytest.mark.skipif(not HAVE_RPC, reason="needs the node RPC")
async def test_strangers_in_every_inbound_slot_do_not_cut_off_an_honest_producer(nodes):
    """Node A (producer 0, 4 inbound slots) has its slots full of well-behaved strangers when node
    B (producer 1, a fresh data directory, A as its only peer) starts: B still gets in, syncs,
    and its blocks reach A's chain, also after a second crowd of strangers has come."""
    p2p_a, rpc_a, p2p_b, rpc_b = free_ports(4)
    nodes.start("a", p2p_a, "--producer-key", "g/keys/producer-0.key", "--rpc", f"127.0.0.1:{rpc_a}",
                "--max-inbound", "4", "--max-per-address", "2")
    await nodes.until("node A's RPC", lambda: _height(rpc_a) >= 0, 30)
    stop = asyncio.Event()
    crowd = [asyncio.create_task(_fake_peer(p2p_a, nodes.genesis, f"127.0.2.{i // 3 + 1}", stop)) for i in range(9)]
    await nodes.until("node A full of strangers", lambda: nodes.log("a").count("inbound, height 0") >= 4, 20)

    nodes.start("b", p2p_b, "--producer-key", "g/keys/producer-1.key", "--rpc", f"127.0.0.1:{rpc_b}",
                "--peers", f"127.0.0.1:{p2p_a}")
    await nodes.until("node B in sync with A", lambda: _height(rpc_b) >= _height(rpc_a) > 5, 40)
    first = _height(rpc_a)
    await nodes.until("a block of B's in A's chain", lambda: nodes.producers[1] in _producers_since(rpc_a, first), 20)

    crowd += [asyncio.create_task(_fake_peer(p2p_a, nodes.genesis, f"127.0.3.{i + 1}", stop)) for i in range(8)]
    await asyncio.sleep(1.0)
    later = _height(rpc_a)
    await nodes.until("another block of B's in A's chain", lambda: nodes.producers[1] in _producers_since(rpc_a, later), 20)
    assert "evicting inbound peer" in nodes.log("a")
    stop.set()
    for task in crowd:
        task.cancel()
    await asyncio.gather(*crowd, return_exceptions=True)
