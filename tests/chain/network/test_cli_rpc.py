"""Every chain command against a remote node: ``--rpc URL`` with a real ``hub chain node`` process.

The key file stays with the CLI; transactions are signed there, submitted with ``POST /tx`` and read
back from the node. No chain directory exists on the CLI's side (``--chain-dir`` points nowhere).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from hub.chain.cli import chain
from hub.chain.devnet_cli import free_ports

HUB = [sys.executable, "-m", "hub.cli"]


@pytest.fixture
def node(tmp_path):
    """One producing node (300 ms slots) with its RPC; yields (url, its producer key file)."""
    subprocess.run([*HUB, "chain", "genesis", "--out", str(tmp_path / "g"), "--producers", "1",
                    "--set", "BLOCK_INTERVAL=300"], check=True, capture_output=True, timeout=30)
    p2p, rpc = free_ports(2)
    log = open(tmp_path / "node.log", "w")
    proc = subprocess.Popen([*HUB, "chain", "node", "--genesis", str(tmp_path / "g/genesis.json"),
                             "--data", str(tmp_path / "n"), "--producer-key", str(tmp_path / "g/keys/producer-0.key"),
                             "--listen", f"127.0.0.1:{p2p}", "--rpc", f"127.0.0.1:{rpc}"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    log.close()
    url = f"http://127.0.0.1:{rpc}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "node.log").read_text()
            try:
                if httpx.get(f"{url}/head", timeout=1).json()["height"] >= 1:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        yield url, tmp_path / "g/keys/producer-0.key"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _run(*args: str, ok: bool = True):
    result = CliRunner().invoke(chain, [*map(str, args)])
    assert (result.exit_code == 0) == ok, result.output
    return json.loads(result.output) if ok and "--json" in args else result


def test_every_chain_command_works_against_a_remote_node(node, tmp_path):
    url, producer = node
    nowhere = tmp_path / "no-chain-here"
    wallet = tmp_path / "wallet.key"
    address = _run("keygen", "--out", wallet, "--json")["address"]

    mine = _run("balance", "--rpc", url, "--key", producer, "--chain-dir", nowhere, "--json")
    assert mine["balance"] == 1_000_000 * 10**6 and mine["nonce"] == 0

    sent = _run("send", address, "20", "--rpc", url, "--key", producer, "--wait", "--json")
    assert sent["status"] in ("included", "irreversible") and sent["height"] >= 1
    # Two more at once, without waiting: the second takes the nonce after the pending first.
    first = _run("send", address, "1", "--rpc", url, "--key", producer, "--json")
    second = _run("send", address, "1.5", "--rpc", url, "--key", producer, "--json")
    assert (first["nonce"], second["nonce"]) == (2, 3) and first["status"] == second["status"] == "pending"

    shown = _run("tx", sent["hash"], "--rpc", url, "--json")
    assert shown["proof"]["verified"] is True and shown["height"] == sent["height"]
    assert shown["type"] == "transfer" and shown["payload"]["amount"] == 20 * 10**6
    assert "verified" in _run("tx", sent["hash"], "--rpc", url).output
    assert "Transactions" in _run("block", sent["height"], "--rpc", url).output
    blk = _run("block", sent["height"], "--rpc", url, "--json")
    assert sent["hash"] in [t["hash"] for t in blk["txs"]] and blk["height"] == sent["height"]
    assert _run("block", "--rpc", url, "--json")["height"] >= sent["height"]  # the head by default

    registered = _run("candidate", "register", "alice", "--rpc", url, "--key", wallet, "--wait", "--json")
    assert registered["status"] in ("included", "irreversible")
    voted = _run("vote", "alice", "--rpc", url, "--key", wallet, "--wait", "--json")
    assert voted["status"] in ("included", "irreversible") and voted["nonce"] == 2

    deadline = time.monotonic() + 10
    while (theirs := _run("balance", address, "--rpc", url, "--json"))["nonce"] < 2 or \
            _run("tx", second["hash"], "--rpc", url, "--json")["status"] == "pending":
        assert time.monotonic() < deadline, theirs
        time.sleep(0.2)
    assert theirs["balance"] == 22_500_000 - registered["fee"] - voted["fee"]
    producers = _run("producers", "--rpc", url, "--json")
    assert len(producers["producers"]) == 1 and producers["producers"][0]["produced"] >= 1
    table = _run("producers", "--rpc", url)
    assert "Round" in table.output


def test_remote_errors_say_what_is_wrong(node, tmp_path):
    url, producer = node
    gone = "http://127.0.0.1:1"
    for args in (["balance", "ruff1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"], ["block"], ["producers"],
                 ["tx", "00" * 32], ["send", "ruff1x", "1", "--key", str(producer)]):
        result = _run(*args, "--rpc", gone, ok=False)
        assert gone in result.output or "address" in result.output, (args, result.output)
    poor = tmp_path / "poor.key"
    _run("keygen", "--out", poor)
    address = _run("balance", "--rpc", url, "--key", producer, "--json")["address"]
    result = _run("send", address, "1", "--rpc", url, "--key", poor, ok=False)
    assert "insufficient balance" in result.output and url in result.output
    result = _run("tx", "ab" * 32, "--rpc", url, ok=False)
    assert "no transaction" in result.output and url in result.output
    result = _run("block", "999999", "--rpc", url, ok=False)
    assert "no block at height 999999" in result.output
    result = _run("vote", "nobody", "--rpc", url, "--key", producer, ok=False)
    assert "no candidate named 'nobody'" in result.output


def test_hub_chain_device_reads_a_binding_from_a_remote_node(node, tmp_path):
    from hub.chain.node.files import read_key
    from hub.chain.protocol.genesis import load_genesis
    from hub.crypto.keys import PrivateKey
    from tests.chain.chainkit import Wallet, bind

    url, producer_file = node
    genesis, producer = load_genesis(tmp_path / "g/genesis.json"), read_key(producer_file)
    plug = PrivateKey(b"\x06" * 32)
    now = time.time_ns() // 1_000_000
    tx = Wallet(producer, genesis).tx("bind_device", bind(plug, producer.public_key, now, genesis), nonce=1,
                                      valid_until=now + 3_600_000)
    assert httpx.post(f"{url}/tx", json={"tx": tx.raw.hex()}).json()["status"] == "pending"
    deadline = time.monotonic() + 10
    while _run("tx", tx.hash.hex(), "--rpc", url, "--json").get("status") == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    shown = _run("device", plug.public_key.hex(), "--rpc", url, "--json")
    assert shown["controller"] == producer.public_key.hex() and shown["seq"] == 1
    assert _run("tx", tx.hash.hex(), "--rpc", url, "--json")["payload"]["statement"]["kind"] == "bind"
    result = _run("device", "ab" * 32, "--rpc", url, ok=False)
    assert "never bound" in result.output and url in result.output
