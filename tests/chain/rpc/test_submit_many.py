"""``POST /txs``: many transactions in one request, one result per transaction, in order."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hub.chain.node.rpc import MAX_BATCH_TXS, create_rpc_app
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.tx import Transaction
from hub.crypto.encoding import encode

from tests.chain.rpc.conftest import ALICE, BOB, CAROL, NOW

CBOR = {"content-type": "application/cbor"}


def error_of(resp, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"error", "message"} and body["message"]
    return body["error"]


def test_a_batch_in_cbor_is_admitted_in_order_with_one_result_each(client, chain):
    w = chain.wallets[ALICE]
    txs = [w.send(CAROL, RUFF) for _ in range(5)]  # successive nonces of one sender in one request
    r = client.post("/txs", content=encode([t.raw for t in txs]), headers=CBOR)
    assert r.status_code == 200
    body = r.json()
    assert body["results"] == [{"hash": t.hash.hex(), "status": "pending"} for t in txs]
    assert (body["accepted"], body["refused"]) == (5, 0)
    assert all(t.hash in chain.node.mempool for t in txs)
    chain.produce()
    assert client.get(f"/tx/{txs[-1].hash.hex()}").json()["status"] in ("included", "irreversible")


def test_a_batch_in_json_and_resubmission_answers_where_each_one_is(client, chain):
    w = chain.wallets[BOB]
    t1, t2 = w.send(CAROL, 1), w.send(CAROL, 2)
    r = client.post("/txs", json={"txs": [t1.raw.hex()]})
    assert r.json()["results"] == [{"hash": t1.hash.hex(), "status": "pending"}]
    chain.produce()
    # t1 is now in a block, t2 is new: resubmitting t1 is not an error
    r = client.post("/txs", json={"txs": [t1.raw.hex(), t2.raw.hex()]})
    assert r.status_code == 200
    assert [x["status"] for x in r.json()["results"]] == ["included", "pending"]
    assert r.json()["results"][0]["hash"] == t1.hash.hex()


def test_refused_transactions_are_results_and_do_not_stop_the_others(client, chain):
    w = chain.wallets[ALICE]
    good = w.send(CAROL, 1)
    forged = Transaction(good.type, good.sender, good.nonce + 1, good.fee, good.valid_until, good.payload, b"\x01" * 64)
    gap = w.send(CAROL, 1, nonce=good.nonce + 50)
    after = w.send(CAROL, 1, nonce=good.nonce + 1)
    raws = [good.raw, forged.raw, b"\xa0", gap.raw, after.raw]
    body = client.post("/txs", content=encode(raws), headers=CBOR).json()
    res = body["results"]
    assert len(res) == 5 and (body["accepted"], body["refused"]) == (2, 3)
    assert res[0] == {"hash": good.hash.hex(), "status": "pending"}
    assert res[1]["error"] == "bad_signature" and res[1]["hash"] == forged.hash.hex() and res[1]["message"]
    assert res[2]["error"] == "bad_encoding"
    assert res[3]["error"] == "nonce_too_high"
    assert res[4] == {"hash": after.hash.hex(), "status": "pending"}
    assert forged.hash not in chain.node.mempool and gap.hash not in chain.node.mempool


def test_admitted_transactions_are_handed_to_on_submit_for_gossip(chain):
    seen = []
    w = chain.wallets[CAROL]
    txs = [w.send(BOB, 1) for _ in range(3)]
    with TestClient(create_rpc_app(chain.node, now=lambda: NOW, on_submit=lambda tx: seen.append(tx.hash))) as c:
        c.post("/txs", content=encode([txs[0].raw, b"\x00", txs[1].raw]), headers=CBOR)
        c.post("/txs", content=encode([txs[1].raw, txs[2].raw]), headers=CBOR)  # the duplicate is not gossiped again
        c.post("/tx", content=txs[2].raw, headers=CBOR)
    assert seen == [t.hash for t in txs]


def test_bad_batches_are_refused_as_a_whole(client):
    assert error_of(client.post("/txs", content=encode({"txs": []}), headers=CBOR), 422) == "invalid_request"
    assert error_of(client.post("/txs", content=encode(["text, not bytes"]), headers=CBOR), 422) == "invalid_request"
    assert error_of(client.post("/txs", content=b"\xff\xff", headers=CBOR), 422) == "invalid_request"
    assert error_of(client.post("/txs", json={"tx": "00"}), 422) == "invalid_request"
    assert error_of(client.post("/txs", json={"txs": ["zz"]}), 422) == "invalid_request"
    assert error_of(client.post("/txs", json={"txs": "00"}), 422) == "invalid_request"
    assert error_of(client.post("/txs", content=b"x", headers={"content-type": "text/plain"}), 415) == "unsupported_media_type"
    too_many = encode([b"\x00"] * (MAX_BATCH_TXS + 1))
    assert error_of(client.post("/txs", content=too_many, headers=CBOR), 413) == "too_large"
    assert error_of(client.post("/txs", content=b"\x00" * (5 * 1024 * 1024), headers=CBOR), 413) == "too_large"
    assert client.post("/txs", content=encode([]), headers=CBOR).json() == {"results": [], "accepted": 0, "refused": 0}


def test_openapi_documents_the_batch_route(client):
    op = client.get("/openapi.json").json()["paths"]["/txs"]["post"]
    assert op["summary"] and "application/cbor" in op["requestBody"]["content"]


def test_admission_runs_on_the_executor_the_node_gives(chain, monkeypatch):
    """A node passes the thread that admits its gossip, so RPC and gossip wait in one queue."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    threads = []
    real = chain.node.submit_many
    monkeypatch.setattr(chain.node, "submit_many",
                        lambda raws, now: threads.append(threading.current_thread().name) or real(raws, now))
    with ThreadPoolExecutor(1, thread_name_prefix="gossip-admission") as pool:
        with TestClient(create_rpc_app(chain.node, now=lambda: NOW, admit_executor=pool)) as client:
            w = chain.wallets[ALICE]
            assert client.post("/txs", content=encode([w.send(CAROL, 1).raw]), headers=CBOR).json()["accepted"] == 1
            assert client.post("/tx", json={"tx": w.send(CAROL, 1).raw.hex()}).json()["status"] == "pending"
    assert len(threads) == 2 and all(name.startswith("gossip-admission") for name in threads)
