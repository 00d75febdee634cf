"""Ownership on a chain the hub does not run: a ``hub chain node`` process, a ``hub run`` following
it as a light client (``chain: {rpc, genesis}``), and a buyer on another machine who has only a key
and the node's address (``hub device buy --rpc``)."""

from __future__ import annotations

import json

from hub.chain.node.files import read_key
from hub.crypto.address import address_of, encode_address
from tests.chain.test_remote_hub import Node, poll
from tests.hubproc import DEMO, HubProcess, run_cli

PLUG = "demo:smart_plug"


def _ok(data, *args) -> str:
    result = run_cli(data, *args, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_bind_and_sale_through_a_remote_node(tmp_path):
    node = Node(tmp_path)
    node.start()
    hub = None
    try:
        poll("the node's RPC", lambda: node.get("/head"), 20, node.log)
        producer = str(tmp_path / "g" / "keys" / "producer-0.key")
        data = tmp_path / "hub-data"
        data.mkdir()
        owner_key, buyer_key = tmp_path / "owner.key", tmp_path / "buyer.key"
        for path in (owner_key, buyer_key):  # neither produces blocks: their balances move only by what they do
            _ok(data, "chain", "keygen", "--out", str(path))
            address = encode_address(address_of(read_key(path).public_key))
            _ok(data, "chain", "send", address, "100", "--rpc", node.url, "--key", producer, "--wait")
        (data / "configuration.yaml").write_text(
            DEMO + f"chain:\n  rpc: {node.url}\n  genesis: {tmp_path / 'g' / 'genesis.json'}\n"
                   f"identity:\n  key: {owner_key}\n")
        hub = HubProcess(data).start()
        poll("the hub to follow the node", lambda: hub.get("/api/plugins/chain/head")["connected"], 20, hub.log)

        made = json.loads(_ok(data, "device", "keygen", "--device", PLUG, "--json"))
        device = bytes.fromhex(made["public_key"])
        out = _ok(data, "device", "bind", PLUG, "--label", made["files"]["png"], "--wait")
        assert "in block" in out, out

        offer = tmp_path / "offer.json"
        _ok(data, "device", "sell", PLUG, "--price", "30", "--out", str(offer))
        owner, buyer = read_key(owner_key), read_key(buyer_key)
        seller_account = f"/accounts/{encode_address(address_of(owner.public_key))}"
        buyer_account = f"/accounts/{encode_address(address_of(buyer.public_key))}"
        seller_before, buyer_before = node.get(seller_account)["balance"], node.get(buyer_account)["balance"]

        # The buyer: another machine, another data directory, only the node's address and a key.
        elsewhere = tmp_path / "buyer-home"
        bought = json.loads(_ok(elsewhere, "device", "buy", str(offer), "--key", str(buyer_key), "--rpc", node.url,
                                "--json"))
        assert bought["status"] in ("included", "irreversible"), bought
        assert node.get(seller_account)["balance"] == seller_before + 30_000_000
        assert node.get(buyer_account)["balance"] == buyer_before - 30_000_000 - bought["fee"]
        # And anyone can check who controls the device now: a proof of the chain's record against its state root.
        from hub.crypto.encoding import encode

        proof = node.get(f"/state/dev/proof?key={encode(device).hex()}")
        assert proof is not None and buyer.public_key.hex() in json.dumps(proof), proof
    finally:
        node.close()
        if hub is not None:
            hub.stop()
