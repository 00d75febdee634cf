"""The operator's routes in-process: the mempool a page at a time, metrics that follow admissions,
and peer control refused without the admin token (the real-process test covers the sockets)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hub.chain.node.rpc import create_rpc_app
from hub.chain.protocol.constants import RUFF

from tests.chain.rpc.conftest import ALICE, BOB, NOW


def samples(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def test_mempool_pages_cover_every_pending_transaction_once(client, chain):
    sent = [chain.wallets[ALICE].send(BOB, RUFF) for _ in range(5)]
    for tx in sent:
        assert client.post("/tx", json={"tx": tx.raw.hex()}).json()["status"] == "pending"
    seen, offset = [], 0
    while offset is not None:
        page = client.get("/mempool", params={"offset": offset, "limit": 2}).json()
        assert page["size"] == 5 and len(page["transactions"]) <= 2
        seen += [t["hash"] for t in page["transactions"]]
        offset = page["next"]
    assert seen == [tx.hash.hex() for tx in sent]
    assert client.get("/mempool", params={"limit": 501}).json()["error"] == "invalid_request"
    assert client.get("/mempool", params={"offset": -1}).status_code == 422

    got = samples(client.get("/metrics").text)
    assert got["ruff_mempool_transactions"] == 5 and got['ruff_rpc_tx_submissions_total{outcome="admitted"}'] == 5
    assert got['ruff_node_tx_admissions_total{outcome="admitted"}'] >= 5
    assert got["ruff_chain_head_height"] == 4 and got["ruff_chain_lib_height"] == chain.node.lib
    assert got["ruff_node_blocks_produced"] == 4 and got["ruff_node_blocks_missed"] == 0


def test_admin_routes_are_off_without_a_token_and_501_without_peer_control(chain):
    with TestClient(create_rpc_app(chain.node, now=lambda: NOW)) as off:
        assert off.post("/peers", json={"address": "127.0.0.1:9"}).json()["error"] == "forbidden"
    with TestClient(create_rpc_app(chain.node, now=lambda: NOW, admin_token="s3cret")) as on:
        admin = {"authorization": "Bearer s3cret"}
        assert on.delete("/bans/k").status_code == 401
        assert on.post("/peers", json={"address": "127.0.0.1:0"}, headers=admin).status_code == 422
        answer = on.post("/peers", json={"address": "127.0.0.1:9"}, headers=admin)
        assert answer.status_code == 501 and answer.json()["error"] == "not_implemented"
        assert on.get("/peers").json() == {"peers": [], "count": 0, "inbound": 0, "outbound": 0, "bans": []}
