"""Two devnets made by ``hub chain genesis``: both are ``ruff-devnet`` and both fund the same key.
A transfer signed for one is refused by a node of the other, naming the genesis; signed for that
node's own genesis, the same transfer is admitted. Before signatures bound the genesis hash, the
chain id alone made every devnet's transactions valid on every other."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hub.chain.devnet_cli import free_ports
from hub.chain.protocol.genesis import load_genesis
from hub.chain.protocol.tx import Transaction
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey

from tests.chain.network.test_processes import HUB, stop_all

ALICE = PrivateKey(bytes(range(32)))


def _devnet(root: Path, name: str) -> Path:
    funded = f"{encode_address(address_of(ALICE.public_key))}=100"
    subprocess.run([*HUB, "chain", "genesis", "--out", name, "--producers", "1", "--balance", funded,
                    "--set", "BLOCK_INTERVAL=500"], cwd=root, capture_output=True, text=True, timeout=30, check=True)
    return root / name / "genesis.json"


def _transfer(genesis_path: Path) -> Transaction:
    genesis = load_genesis(genesis_path)
    payload = {"to": address_of(b"\x05" * 32), "amount": 1_000, "memo": b""}
    valid_until = time.time_ns() // 1_000_000 + 600_000
    return Transaction.create(ALICE, genesis.network, "transfer", payload, nonce=1, fee=genesis.rules().fee_for(400),
                              valid_until=valid_until)


def _post(port: int, tx: Transaction, deadline: float) -> httpx.Response:
    while True:
        assert time.monotonic() < deadline, "the node's RPC did not answer"
        try:
            return httpx.post(f"http://127.0.0.1:{port}/tx", json={"tx": tx.raw.hex()}, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)


def test_a_transfer_signed_for_another_devnet_is_refused_naming_the_genesis(tmp_path):
    a, b = _devnet(tmp_path, "a"), _devnet(tmp_path, "b")
    ga, gb = load_genesis(a), load_genesis(b)
    assert ga.chain_id == gb.chain_id == "ruff-devnet" and ga.hash != gb.hash
    p2p, rpc = free_ports(2)
    log = open(tmp_path / "node-b.log", "w")
    node = subprocess.Popen(
        [*HUB, "chain", "node", "--genesis", str(b), "--data", str(tmp_path / "nb"), "--listen", f"127.0.0.1:{p2p}",
         "--rpc", f"127.0.0.1:{rpc}"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 20
        replayed = _post(rpc, _transfer(a), deadline)
        assert replayed.status_code == 422, replayed.text
        error = replayed.json()
        assert error["error"] == "bad_signature" and "genesis" in error["message"], error
        own = _post(rpc, _transfer(b), deadline)
        assert own.status_code == 200 and own.json()["status"] == "pending", own.text
    finally:
        stop_all([node])
        log.close()
