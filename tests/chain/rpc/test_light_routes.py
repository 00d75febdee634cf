"""``GET /blocks/{height}/changes``: the schedule proofs a light client needs, over the node's RPC."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient

from hub.chain.light import LightClient, changes_proof, sync_once
from hub.chain.node.node import ChainNode
from hub.chain.node.rpc import create_rpc_app
from hub.chain.protocol import dpos
from hub.chain.protocol.constants import RUFF
from hub.crypto.encoding import encode

from tests.chain.chainkit import Sim, Wallet, addr, key, make_genesis
from tests.chain.rpc.conftest import NOW

PRODUCERS = [key(f"lr-producer{i}") for i in range(4)]
OUTSIDERS = [key(f"lr-outsider{i}") for i in range(4)]
VOTERS = [key(f"lr-voter{i}") for i in range(2)]


def test_changes_of_each_block_are_changes_proof_bytes(client, chain):
    node = chain.node
    for height in range(1, node.head.height + 1):
        got = client.get(f"/blocks/{height}/changes")
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == "application/cbor"
        assert got.content == changes_proof(node, height)


def test_unknown_heights_are_a_404_that_says_why(client, chain):
    for path, words in [("/blocks/0/changes", "genesis"), ("/blocks/99/changes", "no block at height 99"),
                        (f"/blocks/{2**62}/changes", "no block at height")]:
        got = client.get(path)
        assert got.status_code == 404, (path, got.text)
        body = got.json()
        assert body["error"] == "not_found" and words in body["message"], body
    for path in ("/blocks/xyz/changes", "/blocks/-1/changes", f"/blocks/{2**64}/changes"):
        got = client.get(path)
        assert got.status_code == 422 and got.json()["error"] == "invalid_request", (path, got.text)
    assert client.get("/blocks/1/raw").status_code == 200  # the neighbouring route is untouched


def test_a_light_client_follows_an_election_through_the_rpc(tmp_path):
    """Round ends with a changed producer set: the proofs served over HTTP are the bytes the
    producers committed to, and a light client fed only by the RPC moves to the new schedule."""
    funded = {k: 1000 * RUFF for k in PRODUCERS + OUTSIDERS}
    funded.update({v: 100_000 * RUFF for v in VOTERS})
    g = make_genesis(PRODUCERS, funded, PRODUCERS=4)
    sim = Sim(g, PRODUCERS + OUTSIDERS)
    committed: dict[int, bytes] = {}

    def step(txs=()):
        applied = sim.next_block(txs)
        committed[applied.block.header.height] = encode([list(c) for c in applied.changes])

    txs = [Wallet(k, sim).tx("register_candidate", {"name": f"o{i}"}, fee=11 * RUFF) for i, k in enumerate(OUTSIDERS)]
    txs += [Wallet(v, sim).tx("vote", {"candidates": [addr(k) for k in OUTSIDERS]}) for v in VOTERS]
    step(txs)
    while len(sim.blocks) < 3 * g.rules().PRODUCERS + 1:
        step()
    elected = set(sim.state.meta("elected"))
    assert elected == {k.public_key for k in OUTSIDERS}, "the test chain must really change its producers"

    node = ChainNode(tmp_path / "node", g, None)
    try:
        for b in sim.blocks:
            node.receive_block(b)
        with TestClient(create_rpc_app(node, now=lambda: NOW)) as rpc:
            for height, proof in committed.items():
                got = rpc.get(f"/blocks/{height}/changes")
                assert got.status_code == 200 and got.content == proof, height

            def fetch_headers(start, count):
                return [h["raw"] for h in rpc.get("/headers", params={"from": start, "count": count}).json()["headers"]]

            asked: list[int] = []

            def fetch_changes(height):
                asked.append(height)
                answer = rpc.get(f"/blocks/{height}/changes")
                assert answer.status_code == 200, answer.text
                return answer.content

            lc = LightClient(g)
            asyncio.run(sync_once(lc, fetch_headers, batch=5, fetch_changes=fetch_changes))
        assert lc.head.hash == node.head.hash and lc.final.height == node.lib
        assert asked and all(dpos.is_round_end(h, g.rules()) for h in asked)
        assert set(lc.schedule()) == elected and lc.needs_schedule_proof() == []
    finally:
        node.close()


def test_the_route_is_in_the_openapi_document(client):
    spec = client.get("/openapi.json").json()
    assert "application/cbor" in spec["paths"]["/blocks/{height}/changes"]["get"]["responses"]["200"]["content"]
