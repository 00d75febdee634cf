"""``GET /state/{ns}/proof`` and ``GET /accounts/{address}/proof``: any key, present or absent, proven
against the head's state root, and checked by a light client that synced over the same RPC."""

from __future__ import annotations

import asyncio

from hub.chain.light import LightClient, LightClientError, Reason, sync_once
from hub.crypto.address import encode_address
from hub.crypto.encoding import encode

from tests.chain.chainkit import addr
from tests.chain.rpc.conftest import ALICE, BOB, CAROL


def _synced(client, chain) -> LightClient:
    lc = LightClient(chain.node.genesis, assume_unchanged_schedule=True)
    fetch = lambda f, n: [h["raw"] for h in client.get(f"/headers?from={f}&count={n}").json()["headers"]]  # noqa: E731
    asyncio.run(sync_once(lc, fetch))
    assert lc.head.hash == chain.node.head.hash
    return lc


def test_every_kind_of_key_is_proven_against_the_head_header(client, chain):
    lc = _synced(client, chain)
    node = chain.node
    bob_address = chain.txs[3].sender_address
    cases = [("acct", addr(ALICE)), ("cand", bob_address), ("name", "bob"), ("vote", addr(CAROL)),
             ("meta", "elected"), ("acct", b"\x09" * 20), ("cand", addr(ALICE)), ("name", "nobody")]
    for ns, key in cases:
        got = client.get(f"/state/{ns}/proof", params={"key": encode(key).hex()})
        assert got.status_code == 200, got.text
        answer = got.json()
        assert answer["height"] == node.head.height and answer["hash"] == node.head.hash.hex()
        header, present, value = lc.verify_state(ns, key, answer["proof"], block_hash=bytes.fromhex(answer["hash"]))
        assert header.state_root.hex() == answer["state_root"]
        assert present == answer["present"] and value == node.state.get(ns, key), (ns, key)
    assert lc.verify_state("vote", addr(CAROL), client.get(
        "/state/vote/proof", params={"key": encode(addr(CAROL)).hex()}).json()["proof"])[2] == (bob_address,)


def test_an_account_proof_names_balance_and_nonce_and_a_lie_fails(client, chain):
    lc = _synced(client, chain)
    answer = client.get(f"/accounts/{encode_address(addr(ALICE))}/proof").json()
    assert (answer["balance"], answer["nonce"]) == (chain.node.state.balance(addr(ALICE)), 3)
    _, present, value = lc.verify_state("acct", addr(ALICE), answer["proof"])  # the head by default
    assert present and value == (answer["balance"], 3)
    try:  # Bob's proof says nothing about Alice (and the other way round)
        lc.verify_state("acct", addr(BOB), answer["proof"])
        raise AssertionError("a proof of another key was accepted")
    except LightClientError as exc:
        assert exc.reason is Reason.BAD_STATE_PROOF and "bucket" in exc.detail
    for height, final_only, reason in [(1, False, Reason.BAD_STATE_PROOF),  # the head's proof, block 1's root
                                       (lc.head.height, True, Reason.NOT_STORED)]:  # the head is not final yet
        try:
            lc.verify_state("acct", addr(ALICE), answer["proof"], height=height, final_only=final_only)
            raise AssertionError(f"accepted at height {height}")
        except LightClientError as exc:
            assert exc.reason is reason, exc


def test_bad_requests_are_4xx_naming_what_is_wrong(client):
    for path, params, status, words in [
        ("/state/nope/proof", {"key": "00"}, 404, "no state namespace 'nope'"),
        ("/state/acct/proof", {"key": "zz"}, 422, "not hex"),
        ("/state/acct/proof", {"key": "1800"}, 422, "deterministic"),  # 0 written in two bytes
        ("/state/acct/proof", {"key": "ff"}, 422, "key"),
        ("/state/acct/proof", {"key": "00" * 300}, 422, ""),
        ("/state/acct/proof", {}, 422, ""),
        ("/accounts/ruff1nothing/proof", {}, 422, "address"),
    ]:
        got = client.get(path, params=params)
        assert got.status_code == status, (path, params, got.text)
        assert words in got.json()["message"], got.json()
