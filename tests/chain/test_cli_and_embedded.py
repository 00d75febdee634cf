"""``hub chain ...`` against a chain directory, and the embedded chain inside a running hub."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from click.testing import CliRunner

from hub.chain.node.files import read_key
from hub.chain.node.node import ChainNode
from hub.chain.protocol.genesis import load_genesis
from hub.cli import main
from hub.crypto.address import address_of, encode_address
from hub.runtime import Hub


def hub_cli(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def make_devnet(chain_dir: Path, producers: int = 1) -> None:
    hub_cli("chain", "genesis", "--out", str(chain_dir), "--producers", str(producers), "--chain-id", "clinet",
            "--set", "BLOCK_INTERVAL=500", "--set", "PRODUCERS=2")  # genesis time: now


def test_genesis_keygen_send_and_inspect(tmp_path):
    chain_dir = tmp_path / "data" / "chain"
    make_devnet(chain_dir)
    genesis = load_genesis(chain_dir / "genesis.json")
    assert genesis.rules().BLOCK_INTERVAL == 500 and genesis.chain_id == "clinet"
    producer_key = chain_dir / "keys" / "producer-0.key"
    assert oct(producer_key.stat().st_mode & 0o777) == "0o600"
    me = json.loads(hub_cli("chain", "keygen", "--chain-dir", str(chain_dir), "--json").output)
    assert hub_cli("chain", "keygen", "--chain-dir", str(chain_dir), ok=False).exit_code == 1  # never overwrites

    common = ["--data", str(tmp_path / "data"), "--key", str(producer_key)]
    sent = json.loads(hub_cli("chain", "send", me["address"], "2.5", *common, "--json").output)
    assert sent["status"] == "queued" and sent["nonce"] == 1
    second = json.loads(hub_cli("chain", "send", me["address"], "1", *common, "--json").output)
    assert second["nonce"] == 2  # the queued one counts
    reg = json.loads(hub_cli("chain", "candidate", "register", "alpha", *common, "--json").output)
    assert hub_cli("chain", "tx", sent["hash"], "--chain-dir", str(chain_dir)).output.strip().endswith("queued")

    # A node (what `hub run` does each slot) takes the queue into a block.
    node = ChainNode(chain_dir, genesis, read_key(producer_key))
    now = time.time_ns() // 1_000_000
    node.drain_inbox(now)
    block = node.produce(now + 500)
    assert len(block.txs) == 3
    node.close()
    voted = json.loads(hub_cli("chain", "vote", "alpha", *common, "--json").output)
    assert voted["nonce"] == 4

    out = json.loads(hub_cli("chain", "balance", me["address"], "--chain-dir", str(chain_dir), "--json").output)
    assert out == {"address": me["address"], "balance": 3_500_000, "nonce": 0}
    assert "3.5 RUFF" in hub_cli("chain", "balance", me["address"], "--chain-dir", str(chain_dir)).output
    proof = json.loads(hub_cli("chain", "tx", sent["hash"], "--chain-dir", str(chain_dir), "--json").output)
    assert proof["height"] == 1 and proof["index"] == 0 and proof["proof"]["verified"] is True
    assert proof["payload"]["amount"] == 2_500_000
    shown = json.loads(hub_cli("chain", "block", "1", "--chain-dir", str(chain_dir), "--json").output)
    assert [t["hash"] for t in shown["txs"]] == [sent["hash"], second["hash"], reg["hash"]]
    prods = json.loads(hub_cli("chain", "producers", "--chain-dir", str(chain_dir), "--json").output)
    assert prods["head"] == 1 and prods["producers"][0]["produced"] == 1


def test_cli_errors_say_what_is_wrong(tmp_path):
    chain_dir = tmp_path / "chain"
    missing = hub_cli("chain", "balance", "--chain-dir", str(chain_dir), ok=False)
    assert missing.exit_code == 1 and "no chain in" in missing.output
    make_devnet(chain_dir)
    key = str(chain_dir / "keys" / "producer-0.key")
    me = encode_address(address_of(read_key(Path(key)).public_key))
    typo = me[:-1] + ("q" if me[-1] != "q" else "p")
    for args, message in [
        (["send", typo, "1"], "checksum"),
        (["send", me, "1.0000001"], "at most 6 decimals"),
        (["send", me, "lots"], "not a number"),
        (["send", me, "2000000"], "insufficient balance"),
        (["send", me, "1", "--fee", "5"], "below the minimum"),
        (["candidate", "register", "Bad Name"], "candidate name"),
        (["vote", "nobody"], "no candidate named"),
        (["tx", "abc"], "64 hex digits"),
        (["block", "9"], "no block at height 9"),
    ]:
        result = hub_cli("chain", *args, "--chain-dir", str(chain_dir), "--key", key, ok=False) if args[0] in ("send", "candidate", "vote") \
            else hub_cli("chain", *args, "--chain-dir", str(chain_dir), ok=False)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    again = hub_cli("chain", "genesis", "--out", str(chain_dir), ok=False)
    assert "exists" in again.output
    bad = hub_cli("chain", "genesis", "--out", str(tmp_path / "x"), "--set", "PRODUCER=3", ok=False)
    assert "unknown constant 'PRODUCER'" in bad.output
    crowded = hub_cli("chain", "genesis", "--out", str(tmp_path / "y"), "--producers", "3", "--set", "PRODUCERS=2", ok=False)
    assert "producers: 3 listed, but PRODUCERS is 2" in crowded.output


async def _wait_for(predicate, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_hub_run_embedded_default_runs_a_producing_chain(tmp_path):
    # The embedded default configuration (no configuration.yaml) includes `chain:`.
    hub = Hub(tmp_path, entrypoints=False)
    await hub.start()
    try:
        assert hub.plugins.info["chain"].status == "running", hub.plugins.info["chain"].error
        node = hub.contexts["chain"].data["node"]
        assert node.key is not None and node.genesis.chain_id.startswith("ruff-embedded-")
        owner = read_key(tmp_path / "chain" / "keys" / "owner.key")
        assert node.state.balance(address_of(owner.public_key)) == 1_000_000 * 10**6
    finally:
        await hub.stop()


async def test_embedded_chain_produces_takes_cli_transactions_and_restarts_consistently(tmp_path):
    chain_dir = tmp_path / "chain"
    hub_cli("chain", "genesis", "--out", str(chain_dir), "--producers", "1", "--chain-id", "fast",
            "--set", "BLOCK_INTERVAL=200", "--set", "PRODUCERS=3")
    (tmp_path / "configuration.yaml").write_text("chain:\n")
    hub = Hub(tmp_path, entrypoints=False)
    await hub.start()
    try:
        node = hub.contexts["chain"].data["node"]
        await _wait_for(lambda: node.head.height >= 3)
        me = encode_address(address_of(read_key(chain_dir / "keys" / "producer-0.key").public_key))
        result = await asyncio.to_thread(hub_cli, "chain", "send", me, "1", "--chain-dir", str(chain_dir),
                                         "--key", str(chain_dir / "keys" / "producer-0.key"), "--wait", "--json")
        sent = json.loads(result.output)
        assert sent["status"] == "included" and sent["height"] >= 3
    finally:
        await hub.stop()
    head = node.head
    reopened = ChainNode(chain_dir, load_genesis(chain_dir / "genesis.json"))
    assert reopened.head == head and reopened.state.digest() == node.state.digest()
    reopened.close()


async def test_a_bad_chain_section_is_reported_and_the_hub_still_starts(tmp_path):
    (tmp_path / "configuration.yaml").write_text("chain:\n  produse: false\n")
    hub = Hub(tmp_path, entrypoints=False)
    await hub.start()
    try:
        assert hub.plugins.info["chain"].status == "config_error"
        assert "produse" in hub.plugins.info["chain"].error
    finally:
        await hub.stop()


def test_hub_chain_device_shows_a_binding_and_tx_shows_its_statement(tmp_path):
    from hub.crypto.keys import PrivateKey
    from tests.chain.chainkit import Wallet, bind

    chain_dir = tmp_path / "data" / "chain"
    make_devnet(chain_dir)
    genesis = load_genesis(chain_dir / "genesis.json")
    producer = read_key(chain_dir / "keys" / "producer-0.key")
    plug = PrivateKey(b"\x05" * 32)
    node = ChainNode(chain_dir, genesis, producer)
    now = time.time_ns() // 1_000_000
    tx = Wallet(producer, genesis).tx("bind_device", bind(plug, producer.public_key, now, genesis),
                                      valid_until=now + 3_600_000)
    node.submit(tx.raw, now)
    node.produce(now + 500)
    node.close()
    where = ["--chain-dir", str(chain_dir)]
    shown = json.loads(hub_cli("chain", "device", plug.public_key.hex(), *where, "--json").output)
    assert shown["controller"] == producer.public_key.hex() and shown["seq"] == 1 and shown["bound"] is True
    assert producer.public_key.hex() in hub_cli("chain", "device", plug.public_key.hex(), *where).output
    never = hub_cli("chain", "device", "ab" * 32, *where, ok=False)
    assert never.exit_code == 1 and "no binding" in never.output
    assert "64 hex digits" in hub_cli("chain", "device", "nope", *where, ok=False).output
    included = json.loads(hub_cli("chain", "tx", tx.hash.hex(), *where, "--json").output)
    assert included["payload"]["statement"]["kind"] == "bind"
    assert "bind" in hub_cli("chain", "tx", tx.hash.hex(), *where).output
