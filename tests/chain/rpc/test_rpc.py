"""Every route of the node's RPC against a small devnet chain built in-process."""

from __future__ import annotations

import hashlib

from hub.chain.protocol.block import Block, Header
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.tx import Transaction
from hub.crypto import keys, merkle
from hub.crypto.address import address_of, encode_address
from hub.crypto.encoding import decode

from tests.chain.rpc.conftest import ALICE, BOB, CAROL, NOW, PRODUCER


def error_of(resp, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"error", "message"} and body["message"]
    return body["error"]


def test_head_names_the_head_and_the_last_irreversible_block(client, chain):
    h = client.get("/head").json()
    node = chain.node
    assert h["height"] == 4 and h["hash"] == node.head.hash.hex() and h["slot"] == 4 and h["round"] == 1
    assert h["genesis_hash"] == node.genesis.hash.hex() and h["chain_id"] == node.genesis.chain_id
    assert h["lib"] == {"height": node.lib, "hash": node.store.canonical_hash(node.lib).hex()} and node.lib == 3


def test_blocks_by_height_and_hash_and_raw(client, chain):
    b1 = client.get("/blocks/1").json()
    assert b1["height"] == 1 and b1["tx_hashes"] == [t.hash.hex() for t in chain.txs[:3]]
    assert b1["canonical"] and b1["irreversible"] and b1["producer"] == encode_address(address_of(PRODUCER.public_key))
    assert client.get(f"/blocks/{b1['hash']}").json() == b1
    assert client.get(f"/blocks/{b1['hash'].upper()}").json()["height"] == 1
    raw = client.get("/blocks/1/raw")
    assert raw.headers["content-type"] == "application/cbor"
    block = Block.decode(raw.content)
    assert block.hash.hex() == b1["hash"] and block.header.signature_ok(chain.node.genesis.hash)
    assert client.get(f"/blocks/{b1['hash']}/raw").content == raw.content
    assert error_of(client.get("/blocks/99"), 404) == "not_found"
    assert error_of(client.get("/blocks/0"), 404) == "not_found"
    assert error_of(client.get(f"/blocks/{'ab' * 32}/raw"), 404) == "not_found"
    assert error_of(client.get("/blocks/12345678901234567890123"), 404) == "not_found"
    assert error_of(client.get("/blocks/xyz"), 422) == "invalid_request"


def test_headers_carry_raw_signed_bytes_a_client_can_check(client, chain):
    got = client.get("/headers", params={"from": 2, "count": 10}).json()
    assert [h["height"] for h in got["headers"]] == [2, 3, 4] and got["head"] == 4
    prev = client.get("/blocks/1").json()["hash"]
    for h in got["headers"]:
        raw = bytes.fromhex(h["raw"])
        header = Header.from_dict(decode(raw))
        assert hashlib.sha256(raw).hexdigest() == h["hash"]
        assert header.prev_hash.hex() == prev and keys.verify(header.producer, header.signing_bytes(chain.node.genesis.hash), header.sig)
        prev = h["hash"]
    assert client.get("/headers", params={"from": 9}).json()["headers"] == []
    assert error_of(client.get("/headers", params={"count": 100_000}), 422) == "invalid_request"
    assert error_of(client.get("/headers", params={"from": 0}), 422) == "invalid_request"
    assert error_of(client.get("/headers", params={"from": "x"}), 422) == "invalid_request"


def test_tx_with_an_inclusion_proof_that_verifies_against_the_header(client, chain):
    tx = chain.txs[1]
    got = client.get(f"/tx/{tx.hash.hex()}").json()
    assert got["height"] == 1 and got["index"] == 1 and got["status"] == "irreversible"
    assert got["type"] == "transfer" and got["nonce"] == 2 and got["sender"] == encode_address(address_of(ALICE.public_key))
    assert got["payload"]["to"] == address_of(BOB.public_key).hex()
    raw = bytes.fromhex(got["raw"])
    assert raw == tx.raw
    header = Header.from_dict(decode(bytes.fromhex(client.get("/headers", params={"from": 1, "count": 1}).json()["headers"][0]["raw"])))
    proof = got["proof"]
    assert proof["tx_root"] == header.tx_root.hex()
    path = [bytes.fromhex(p) for p in proof["path"]]
    assert merkle.verify_inclusion(raw, got["index"], proof["tree_size"], path, header.tx_root)
    assert not merkle.verify_inclusion(chain.txs[0].raw, got["index"], proof["tree_size"], path, header.tx_root)
    assert error_of(client.get(f"/tx/{'00' * 32}"), 404) == "not_found"
    assert error_of(client.get("/tx/nothex"), 422) == "invalid_request"


def test_submit_json_and_cbor_then_pending_then_included(client, chain):
    w = chain.wallets[ALICE]
    t1, t2 = w.send(CAROL, RUFF), w.send(CAROL, RUFF)
    assert client.post("/tx", json={"tx": t1.raw.hex()}).json() == {"hash": t1.hash.hex(), "status": "pending"}
    r = client.post("/tx", content=t2.raw, headers={"content-type": "application/cbor"})
    assert r.json() == {"hash": t2.hash.hex(), "status": "pending"}
    assert client.get(f"/tx/{t1.hash.hex()}").json()["status"] == "pending"
    # Resubmitting is safe: the answer is the hash and where the transaction is.
    assert client.post("/tx", json={"tx": t1.raw.hex()}).json() == {"hash": t1.hash.hex(), "status": "pending"}
    chain.produce()
    assert client.get(f"/tx/{t2.hash.hex()}").json()["height"] == 5
    assert client.post("/tx", json={"tx": t1.raw.hex()}).json() == {"hash": t1.hash.hex(), "status": "included"}


def test_submit_rejections_name_the_reason(client, chain):
    w = chain.wallets[ALICE]
    good = w.send(CAROL, 1)
    forged = Transaction(good.type, good.sender, good.nonce, good.fee, good.valid_until, good.payload, b"\x01" * 64)
    assert error_of(client.post("/tx", json={"tx": forged.raw.hex()}), 422) == "bad_signature"
    assert error_of(client.post("/tx", json={"tx": w.send(CAROL, 1, nonce=1).raw.hex()}), 422) == "nonce_too_low"
    assert error_of(client.post("/tx", json={"tx": w.send(CAROL, 1, nonce=50).raw.hex()}), 422) == "nonce_too_high"
    assert error_of(client.post("/tx", json={"tx": w.send(CAROL, 10**6 * RUFF, nonce=4).raw.hex()}), 422) == "insufficient_balance"
    assert error_of(client.post("/tx", json={"tx": "a0"}), 422) == "bad_encoding"
    assert error_of(client.post("/tx", json={"tx": "zz"}), 422) == "invalid_request"
    assert error_of(client.post("/tx", content=b"not json", headers={"content-type": "application/json"}), 422) == "invalid_request"
    assert error_of(client.post("/tx", content=b"\x00" * 20_000, headers={"content-type": "application/cbor"}), 413) == "too_large"
    assert error_of(client.post("/tx", content=b"x", headers={"content-type": "text/plain"}), 415) == "unsupported_media_type"


def test_accounts(client, chain):
    bob = encode_address(address_of(BOB.public_key))
    got = client.get(f"/accounts/{bob}").json()
    assert got["address"] == bob and got["nonce"] == 1
    assert got["balance"] == chain.node.state.balance(address_of(BOB.public_key)) and got["balance_ruff"].endswith(" RUFF")
    assert got["candidate"]["name"] == "bob" and got["candidate"]["registered_at"] == 2 and got["vote"] == []
    carol = client.get(f"/accounts/{encode_address(address_of(CAROL.public_key))}").json()
    assert carol["candidate"] is None and carol["vote"] == [bob]
    nobody = client.get("/accounts/" + encode_address(bytes([7]) * 20)).json()
    assert nobody["balance"] == 0 and nobody["nonce"] == 0
    assert error_of(client.get("/accounts/ruff1notanaddress"), 422) == "invalid_request"


def test_candidates_weigh_votes_by_balance(client, chain):
    got = client.get("/candidates").json()
    (bob,) = got["candidates"]
    assert bob["name"] == "bob" and bob["weight"] == chain.node.state.balance(address_of(CAROL.public_key))
    assert not bob["disqualified"] and not bob["banned"] and not bob["producing"]
    assert got["voted_stake"] == bob["weight"] and got["supply"] > 0 and got["quorum"] is False


def test_schedule_lists_this_rounds_producers(client, chain):
    got = client.get("/schedule").json()
    assert got["round"] == 2 and got["head"] == 4 and got["lib"] == 3  # the round of the next block
    (p,) = got["producers"]
    assert p["public_key"] == PRODUCER.public_key.hex() and p["produced"] == 4 and p["missed"] == 0
    assert p["banned_until"] is None and got["next_producer"] == p["address"] and got["next_slot"] >= 5


def test_openapi_and_unknown_routes(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/tx", "/head", "/blocks/{block_id}", "/headers", "/stream", "/schedule"} <= set(paths)
    assert error_of(client.get("/nothing"), 404) == "not_found"
    assert error_of(client.delete("/head"), 405) == "method_not_allowed"


def test_schedule_shows_misses_and_bans(tmp_path):
    from fastapi.testclient import TestClient

    from hub.chain.node.node import ChainNode
    from hub.chain.node.rpc import create_rpc_app
    from tests.chain.chainkit import GENESIS_TIME, key, make_genesis

    other = key("producer1")
    node = ChainNode(tmp_path / "two", make_genesis([PRODUCER, other], {ALICE: RUFF}), PRODUCER)
    try:
        for slot in range(1, 7):  # only PRODUCER's slots are filled; the other's are missed
            node.produce(GENESIS_TIME + 500 * slot)
        with TestClient(create_rpc_app(node, now=lambda: NOW)) as client:
            got = {p["public_key"]: p for p in client.get("/schedule").json()["producers"]}
        assert got[PRODUCER.public_key.hex()]["missed"] == 0 and got[PRODUCER.public_key.hex()]["produced"] == 3
        assert got[other.public_key.hex()]["missed"] >= 2 and got[other.public_key.hex()]["banned_until"] > NOW
    finally:
        node.close()


def test_stream_count_is_bounded(client):
    from hub.chain.node.rpc import MAX_STREAMS

    client.app.state.streams = MAX_STREAMS
    assert error_of(client.get("/stream"), 429) == "too_many_streams"
    client.app.state.streams = 0
