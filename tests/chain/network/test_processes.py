"""Three ``hub chain node`` processes on loopback: they converge on one chain that all three
producers build, a transaction queued at every node is included exactly once, and when one producer
is killed the other two carry the chain on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.chain.devnet_cli import free_ports
from hub.chain.node.store import ChainStore
from hub.chain.protocol.tx import Transaction

HUB = [sys.executable, "-m", "hub.cli"]
try:
    from hub.chain.node.rpc import create_rpc_app  # noqa: F401 - written in parallel; used when present
    HAVE_RPC = True
except ImportError:
    HAVE_RPC = False
NODES = 3


def stop_all(procs: list[subprocess.Popen]) -> None:
    """SIGTERM every node still running (they shut down cleanly on it), then kill what lingers."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def _hub(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*HUB, *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=True)


@pytest.fixture
def devnet(tmp_path):
    _hub("chain", "genesis", "--out", "g", "--producers", str(NODES), "--set", "BLOCK_INTERVAL=500", cwd=tmp_path)
    ports = free_ports(NODES + 1)
    rpc_port = ports.pop()
    procs = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        for i in range(NODES):
            peers = ",".join(f"127.0.0.1:{p}" for j, p in enumerate(ports) if j != i)
            log = open(tmp_path / f"n{i}.log", "w")
            procs.append(subprocess.Popen(
                [*HUB, "chain", "node", "--genesis", "g/genesis.json", "--data", f"n{i}",
                 "--producer-key", f"g/keys/producer-{i}.key", "--listen", f"127.0.0.1:{ports[i]}", "--peers", peers,
                 *(["--rpc", f"127.0.0.1:{rpc_port}"] if i == 1 else [])],
                cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env))
        yield tmp_path, procs, rpc_port
    finally:
        stop_all(procs)


def _submit_over_rpc(root: Path, port: int, deadline: float) -> bytes:
    import httpx

    from hub.chain.node.files import read_key
    from hub.chain.protocol.genesis import load_genesis
    from hub.crypto.address import address_of

    genesis = load_genesis(root / "g/genesis.json")
    sender = read_key(root / "g/keys/producer-2.key")
    to = bytes.fromhex(json.loads((root / "g/keys/producer-0.key").read_text())["public_key"])

    payload = {"to": address_of(to), "amount": 2_000_000, "memo": b""}
    valid_until = time.time_ns() // 1_000_000 + 3_600_000
    draft = Transaction.create(sender, genesis.network, "transfer", payload, nonce=1, fee=0, valid_until=valid_until)
    fee = genesis.rules().fee_for(draft.size + 9)
    tx = Transaction.create(sender, genesis.network, "transfer", payload, nonce=1, fee=fee, valid_until=valid_until)
    while True:
        assert time.monotonic() < deadline, "the RPC did not answer"
        try:
            reply = httpx.post(f"http://127.0.0.1:{port}/tx", json={"tx": tx.raw.hex()}, timeout=2)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    assert reply.status_code == 200, reply.text
    assert reply.json()["hash"] == tx.hash.hex()
    return tx.hash


def _raw_tx(store: ChainStore, tx_hash: bytes) -> bytes:
    """The queued transaction's bytes: still in the inbox, or (once included) in its block."""
    row = store.conn.execute("SELECT raw FROM inbox WHERE hash=?", (tx_hash,)).fetchone()
    if row is not None:
        return row[0]
    height, index = store.tx_location(tx_hash)
    return store.canonical_block(height).txs[index]


def _canonical(store: ChainStore, upto: int) -> list:
    return [store.canonical_block(h) for h in range(1, upto + 1)]


def _logs(root: Path) -> str:
    return "\n".join(f"--- n{i}\n" + (root / f"n{i}.log").read_text()[-3000:] for i in range(NODES))


def test_three_processes_converge_and_include_a_transaction_once(devnet):
    root, procs, rpc_port = devnet
    deadline = time.monotonic() + 25
    stores: list[ChainStore] = []
    while len(stores) < NODES:  # chain.db appears once each node has started
        assert time.monotonic() < deadline, _logs(root)
        stores = [ChainStore(root / f"n{i}") for i in range(NODES) if (root / f"n{i}" / "chain.db").exists()]
        if len(stores) < NODES:
            for s in stores:
                s.close()
            stores = []
            time.sleep(0.2)
    try:
        # A transfer queued at node 0 (as `hub chain send` does it), to producer 1's account.
        to = json.loads((root / "g/keys/producer-1.key").read_text())["address"]
        sent = json.loads(_hub("chain", "send", to, "1.5", "--chain-dir", "n0", "--key", "g/keys/producer-0.key",
                               "--json", cwd=root).stdout)
        tx_hash = bytes.fromhex(sent["hash"])
        # The same signed bytes queued at the two other nodes too: still included only once.
        raw = _raw_tx(stores[0], tx_hash)
        for s in stores[1:]:
            s.add_to_inbox(tx_hash, raw)
        hashes = [tx_hash]
        if HAVE_RPC:  # a second one, signed here, through node 1's RPC (gossiped by the RPC's on_submit hook)
            hashes.append(_submit_over_rpc(root, rpc_port, deadline))

        producers: set[bytes] = set()
        while True:
            assert time.monotonic() < deadline, _logs(root)
            assert all(p.poll() is None for p in procs), _logs(root)
            heads = [s.head() for s in stores]
            common = min(h.height for h in heads) - 2  # blocks may be in flight at the tip
            if common >= 6 and all(s.tx_location(h) for s in stores for h in hashes):
                chains = [[b.hash for b in _canonical(s, common)] for s in stores]
                if chains[0] == chains[1] == chains[2]:
                    producers = {b.header.producer for b in _canonical(stores[0], common)}
                    if len(producers) == NODES:
                        break
            time.sleep(0.25)
        assert max(h.height for h in heads) - min(h.height for h in heads) <= 3

        # Included exactly once, at the same place on every node.
        for s in stores:
            included = [Transaction.from_bytes(raw).hash for b in _canonical(s, s.head().height) for raw in b.txs]
            assert all(included.count(h) == 1 for h in hashes)
        for h in hashes:
            assert len({s.tx_location(h) for s in stores}) == 1

        # Node 2 dies without a word: its slots go empty, the next producers carry the chain on.
        procs[2].kill()
        procs[2].wait(5)
        start = max(s.head().height for s in stores[:2])
        while True:
            assert time.monotonic() < deadline + 5, _logs(root)
            common = min(s.head().height for s in stores[:2]) - 2
            if common >= start + 4:
                chains = [[b.hash for b in _canonical(s, common)] for s in stores[:2]]
                if chains[0] == chains[1]:
                    break
            time.sleep(0.25)
        assert {b.header.producer for b in _canonical(stores[0], common)[start:]} <= producers
    finally:
        for s in stores:
            s.close()
    for p in procs[:2]:
        p.send_signal(signal.SIGTERM)
    for p in procs[:2]:
        assert p.wait(10) == 0, _logs(root)
    text = "\n".join((root / f"n{i}.log").read_text() for i in range(NODES))
    assert "listening on" in text and "produced block" in text and "stopped at head" in text
