"""A real ``hub chain node`` process: transactions that break their type's rules are refused with the
reason (never gossiped), and one dropped after admission is reported as dropped, with the reason, by
the RPC, by ``hub chain tx`` and by ``--wait``."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from hub.chain.devnet_cli import free_ports
from hub.chain.node.files import read_key, write_key
from hub.chain.node.store import ChainStore
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.genesis import load_genesis
from hub.chain.protocol.tx import Transaction
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey

from tests.chain.network.test_processes import HUB, _hub


class Node:
    def __init__(self, root: Path, *, produce: bool) -> None:
        self.root = root
        for name in ("alice", "bob"):
            write_key(root / f"{name}.key", PrivateKey.generate())
        self.alice, self.bob = read_key(root / "alice.key"), read_key(root / "bob.key")
        funds = [f"--balance={encode_address(address_of(k.public_key))}=1000" for k in (self.alice, self.bob)]
        _hub("chain", "genesis", "--out", "g", "--producers", "1", "--set", "BLOCK_INTERVAL=500", *funds, cwd=root)
        self.genesis = load_genesis(root / "g/genesis.json")
        p2p, self.rpc = free_ports(2)
        self.log = open(root / "node.log", "w")
        self.proc = subprocess.Popen(
            [*HUB, "chain", "node", "--genesis", "g/genesis.json", "--data", "n0", "--listen", f"127.0.0.1:{p2p}",
             "--rpc", f"127.0.0.1:{self.rpc}", *(["--producer-key", "g/keys/producer-0.key"] if produce else [])],
            cwd=root, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.rpc}", timeout=3)
        self.until(lambda: self.get("/head"), "the RPC to answer")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)
        self.http.close()
        self.log.close()

    def get(self, path: str) -> dict | None:
        try:
            reply = self.http.get(path)
        except httpx.TransportError:
            return None
        return reply.json() if reply.status_code == 200 else None

    def until(self, check, what: str, seconds: float = 15):
        deadline = time.monotonic() + seconds
        while not (value := check()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"timed out waiting for {what}\n{(self.root / 'node.log').read_text()[-3000:]}")
            time.sleep(0.1)
        return value

    def tx(self, key: PrivateKey, tx_type: str, payload: dict, *, nonce: int = 1, fee: int = RUFF) -> Transaction:
        valid_until = time.time_ns() // 1_000_000 + 3_600_000
        return Transaction.create(key, self.genesis.network, tx_type, payload, nonce=nonce, fee=fee, valid_until=valid_until)


@pytest.fixture
def producing(tmp_path):
    node = Node(tmp_path, produce=True)
    yield node
    node.close()


@pytest.fixture
def following(tmp_path):
    node = Node(tmp_path, produce=False)  # nothing is ever included: what is pending stays pending
    yield node
    node.close()


def test_transactions_breaking_their_types_rules_are_refused_and_a_dropped_one_says_why(producing):
    n = producing
    producer = address_of(bytes.fromhex(n.genesis.producers[0]))
    stranger = address_of(PrivateKey.generate().public_key)
    invalid = {
        "unknown_candidate": n.tx(n.alice, "vote", {"candidates": [stranger]}),
        "not_a_producer": n.tx(n.alice, "disqualify_poll", {"target": producer}),
        "bad_evidence": n.tx(n.alice, "evidence", {"first": {"slot": 1}, "second": {"slot": 1}}),
        "type_not_enabled": n.tx(n.alice, "data_anchor", {"hash": bytes(32)}, fee=5_000),
    }
    for why, tx in invalid.items():
        reply = n.http.post("/tx", json={"tx": tx.raw.hex()})
        assert (reply.status_code, reply.json()["error"]) == (422, why), reply.text
        found = n.get(f"/tx/{tx.hash.hex()}")
        assert (found["status"], found["reason"]) == ("refused", why)
    # Two registrations of one name, both valid against the head when admitted; the block takes one.
    first = n.tx(n.alice, "register_candidate", {"name": "same"}, fee=12 * RUFF)
    second = n.tx(n.bob, "register_candidate", {"name": "same"}, fee=11 * RUFF)
    reply = n.http.post("/txs", json={"txs": [first.raw.hex(), second.raw.hex()]})
    assert reply.json()["accepted"] == 2, reply.text
    n.until(lambda: (n.get(f"/tx/{first.hash.hex()}") or {}).get("status") in ("included", "irreversible"),
            "the first registration to be included")
    dropped = n.until(lambda: n.get(f"/tx/{second.hash.hex()}"), "the node to answer for the second")
    assert (dropped["status"], dropped["reason"]) == ("dropped", "name_taken"), dropped
    assert "same" in dropped["message"]
    alice = n.get(f"/accounts/{encode_address(address_of(n.alice.public_key))}")
    bob = n.get(f"/accounts/{encode_address(address_of(n.bob.public_key))}")
    assert alice["nonce"] == 1 and bob["nonce"] == 0  # nothing invalid was included or charged


def test_cli_wait_and_tx_report_a_transaction_dropped_from_the_mempool(following):
    n = following
    to = encode_address(address_of(n.bob.public_key))
    cli = subprocess.Popen([*HUB, "chain", "send", to, "1", "--chain-dir", "n0", "--key", "alice.key", "--wait"],
                           cwd=n.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        store = ChainStore(n.root / "n0")

        def pending_row():
            return store.conn.execute("SELECT hash, raw FROM inbox WHERE status='pending'").fetchone()
        tx_hash, raw = n.until(pending_row, "the node to admit the queued transaction")
        queued = Transaction.from_bytes(raw)
        # The same sender replaces it with a higher fee, through the RPC.
        replacement = n.tx(n.alice, "transfer", {"to": address_of(n.bob.public_key), "amount": 2 * RUFF},
                           nonce=queued.nonce, fee=queued.fee + 1000)
        assert n.http.post("/tx", json={"tx": replacement.raw.hex()}).json()["status"] == "pending"
        out, _ = cli.communicate(timeout=20)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(5)
    assert cli.returncode == 1
    assert f"transaction {tx_hash.hex()} dropped: replaced: replaced by {replacement.hash.hex()}" in out, out
    assert "is the hub running" not in out
    shown = subprocess.run([*HUB, "chain", "tx", tx_hash.hex(), "--chain-dir", "n0"], cwd=n.root,
                           capture_output=True, text=True, timeout=30)
    assert shown.returncode == 1 and "dropped: replaced" in shown.stdout, shown.stdout + shown.stderr
    found = n.get(f"/tx/{tx_hash.hex()}")
    assert (found["status"], found["reason"]) == ("dropped", "replaced")
    store.close()
