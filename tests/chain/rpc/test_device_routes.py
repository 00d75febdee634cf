"""``GET /devices/{public key}`` and ``GET /anchors/{address}`` on a node's RPC and on the hub's
embedded-chain router, and the light client's proof of the same binding."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub.chain.api import router
from hub.chain.light import LightClient, sync_once
from hub.chain.node.node import ChainNode
from hub.chain.node.rpc import create_rpc_app
from hub.chain.protocol.constants import RUFF
from hub.crypto.address import encode_address
from hub.crypto.encoding import encode

from tests.chain.chainkit import GENESIS_TIME, Wallet, addr, bind, key, log_batch, make_genesis

PRODUCER = key("producer0")
ALICE, BOB = key("alice"), key("bob")
PLUG = key("device-plug")
NOW = GENESIS_TIME + 10_000


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    g = make_genesis([PRODUCER], {ALICE: 100 * RUFF, BOB: 100 * RUFF})
    n = ChainNode(tmp_path_factory.mktemp("devices") / "chain", g, PRODUCER)
    alice = Wallet(ALICE, g)
    for slot, payload in enumerate([("bind_device", bind(PLUG, ALICE.public_key, GENESIS_TIME, g)),
                                    ("command_log", log_batch(0, 10, first_time=5, last_time=9)),
                                    ("command_log", log_batch(10, 3, root=b"\x02" * 32)),
                                    ("command_log", log_batch(13, 1, root=b"\x03" * 32))], start=1):
        n.submit(alice.tx(*payload).raw, NOW)
        n.produce(GENESIS_TIME + 500 * slot)
    assert n.head.height == 4
    yield n
    n.close()


@pytest.fixture(scope="module")
def rpc(node):
    with TestClient(create_rpc_app(node, now=lambda: NOW)) as tc:
        yield tc


@pytest.fixture(scope="module")
def hub_api(node):
    app = FastAPI()
    app.include_router(router(node), prefix="/api/plugins/chain")
    with TestClient(app) as tc:
        yield tc


@pytest.mark.parametrize("prefix", ["", "/api/plugins/chain"])
def test_a_devices_binding_is_shown_and_an_unknown_device_is_a_404(rpc, hub_api, prefix):
    client = hub_api if prefix else rpc
    got = client.get(f"{prefix}/devices/{PLUG.public_key.hex()}")
    assert got.status_code == 200, got.text
    shown = got.json()
    assert shown.pop("verified", True) is True  # the hub's view says it read its own full node
    assert shown == {"device": PLUG.public_key.hex(), "bound": True, "controller": ALICE.public_key.hex(),
                          "controller_address": encode_address(addr(ALICE)), "seq": 1, "time": GENESIS_TIME,
                          "epoch": 0, "height": 4}
    missing = client.get(f"{prefix}/devices/{'ab' * 32}")
    assert missing.status_code == 404 and "no binding" in missing.text
    assert client.get(f"{prefix}/devices/xyz").status_code == 422


def test_the_rpc_names_an_unbound_device_with_its_code(rpc):
    assert rpc.get(f"/devices/{'ab' * 32}").json()["error"] == "unbound"
    assert "64 hex digits" in rpc.get("/devices/12").json()["message"]


@pytest.mark.parametrize("prefix", ["", "/api/plugins/chain"])
def test_anchors_are_listed_in_pages(rpc, hub_api, prefix):
    client = hub_api if prefix else rpc
    alice = encode_address(addr(ALICE))
    page = client.get(f"{prefix}/anchors/{alice}", params={"limit": 2}).json()
    assert (page["next"], page["batches"], page["more_from"]) == (14, 3, 13)
    assert page["anchors"] == [
        {"first": 0, "count": 10, "root": "01" * 32, "first_time": 5, "last_time": 9, "height": 2},
        {"first": 10, "count": 3, "root": "02" * 32, "first_time": 0, "last_time": 0, "height": 3}]
    rest = client.get(f"{prefix}/anchors/{alice}", params={"from": 13}).json()
    assert [a["first"] for a in rest["anchors"]] == [13] and rest["more_from"] is None
    assert client.get(f"{prefix}/anchors/{alice}", params={"from": 14}).json()["anchors"] == []
    assert client.get(f"{prefix}/anchors/{alice}", params={"from": 5}).status_code == 404  # not a batch start
    assert client.get(f"{prefix}/anchors/{alice}", params={"from": 99}).status_code == 404
    none = client.get(f"{prefix}/anchors/{encode_address(addr(BOB))}").json()
    assert none["anchors"] == [] and none["next"] == 0
    assert client.get(f"{prefix}/anchors/ruff1nothing").status_code == 422
    assert client.get(f"{prefix}/anchors/{alice}", params={"limit": 0}).status_code == 422


def test_a_light_client_proves_the_binding_and_an_anchor(rpc, node):
    lc = LightClient(node.genesis, assume_unchanged_schedule=True)
    fetch = lambda f, n: [h["raw"] for h in rpc.get(f"/headers?from={f}&count={n}").json()["headers"]]  # noqa: E731
    asyncio.run(sync_once(lc, fetch))
    for ns, k in (("dev", PLUG.public_key), ("anchor", addr(ALICE) + (10).to_bytes(8, "big")), ("clog", addr(ALICE))):
        answer = rpc.get(f"/state/{ns}/proof", params={"key": encode(k).hex()}).json()
        _, present, value = lc.verify_state(ns, k, answer["proof"], block_hash=bytes.fromhex(answer["hash"]))
        assert present and value == node.state.get(ns, k)
        plain = rpc.get(f"/state/{ns}/proof", params={"key": k.hex()}).json()  # the key's bytes, not CBOR
        assert plain["key"] == answer["key"] and plain["proof"] == answer["proof"]
    assert "32 bytes" in rpc.get("/state/dev/proof", params={"key": "abcd"}).json()["message"]
