"""Admission runs the type's own rules against the head state, and a node says why a transaction it
refused or dropped is not pending (the free-spam finding of issue 15)."""

from __future__ import annotations

import hashlib

import pytest

from hub.chain.node import mempool as mempool_module
from hub.chain.node.mempool import SWEEP_MS, Mempool
from hub.chain.node.node import ChainNode
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.errors import Reason, TxRejected

from tests.chain.chainkit import GENESIS_TIME, Wallet, addr, key, make_genesis

PRODUCER = key("producer0")
ALICE, BOB, CAROL = key("alice"), key("bob"), key("carol")
NOW = GENESIS_TIME + 10_000


def genesis():
    return make_genesis([PRODUCER], {ALICE: 100 * RUFF, BOB: 100 * RUFF, CAROL: 100 * RUFF})


GENESIS = genesis()


def refused(fn) -> TxRejected:
    with pytest.raises(TxRejected) as info:
        fn()
    return info.value


def invalid_for_their_type(w: Wallet, nonce: int, fee: int) -> list[tuple[object, Reason]]:
    """Transactions whose envelope is fine (fee, signature, nonce, balance) but not their type's rules."""
    stranger = addr(key("stranger"))
    return [
        (w.tx("vote", {"candidates": [stranger]}, nonce=nonce, fee=fee), Reason.UNKNOWN_CANDIDATE),
        (w.tx("disqualify_poll", {"target": addr(PRODUCER)}, nonce=nonce, fee=fee), Reason.NOT_A_PRODUCER),
        (w.tx("disqualify_vote", {"poll": bytes(32), "approve": True}, nonce=nonce, fee=fee), Reason.NOT_A_CANDIDATE),
        (w.tx("evidence", {"first": {"height": 1}, "second": {"garbage": b"x"}}, nonce=nonce, fee=fee), Reason.BAD_EVIDENCE),
        (w.tx("data_anchor", {"hash": bytes(32)}, nonce=nonce, fee=fee), Reason.TYPE_NOT_ENABLED),
    ]


def test_a_transaction_breaking_its_types_rules_is_refused_on_entry():
    state = genesis().state()
    pool = Mempool(GENESIS.network)
    for tx, why in invalid_for_their_type(Wallet(ALICE, GENESIS), 1, RUFF // 100):
        assert refused(lambda: pool.add(tx, state, NOW)).reason is why
    assert len(pool) == 0 and not pool.spend


def test_an_invalid_transaction_never_replaces_or_evicts_a_valid_one():
    state = genesis().state()
    pool = Mempool(GENESIS.network, max_txs=2)
    valid = Wallet(ALICE, GENESIS).send(BOB, 1, fee=10_000)
    cheap = Wallet(BOB, GENESIS).send(ALICE, 1, fee=5_000)
    pool.add(valid, state, NOW)
    pool.add(cheap, state, NOW)
    # Same sender and nonce, a far higher fee: a replacement if it were valid.
    for tx, why in invalid_for_their_type(Wallet(ALICE, GENESIS), 1, RUFF):
        assert refused(lambda: pool.add(tx, state, NOW)).reason is why
    # A full pool: a richer transaction would evict the cheapest, an invalid one does not.
    for tx, why in invalid_for_their_type(Wallet(CAROL, GENESIS), 1, RUFF):
        assert refused(lambda: pool.add(tx, state, NOW)).reason is why
    assert set(pool.by_hash) == {valid.hash, cheap.hash}
    assert pool.fate(valid.hash) is None and pool.fate(cheap.hash) is None


def node(tmp_path) -> ChainNode:
    return ChainNode(tmp_path / "chain", genesis(), PRODUCER)


def test_the_node_remembers_why_it_refused_a_transaction(tmp_path):
    n = node(tmp_path)
    vote = Wallet(ALICE, GENESIS).tx("vote", {"candidates": [addr(key("stranger"))]})
    assert refused(lambda: n.submit(vote.raw, NOW)).reason is Reason.UNKNOWN_CANDIDATE
    fate = n.mempool.fate(vote.hash)
    assert fate.status == "refused" and fate.reason is Reason.UNKNOWN_CANDIDATE
    assert str(fate).startswith("refused: unknown_candidate: ruff1")  # names the candidate
    garbage = b"\xff not a transaction"
    n.submit_many([garbage], NOW)
    assert n.mempool.fate(hashlib.sha256(garbage).digest()).reason is Reason.BAD_ENCODING
    n.close()


def test_a_transaction_dropped_at_block_time_says_why_also_to_the_cli_inbox(tmp_path):
    """Both registrations are valid against the head; only one can be in the block."""
    n = node(tmp_path)
    first = Wallet(ALICE, GENESIS).tx("register_candidate", {"name": "same"}, fee=12 * RUFF)
    second = Wallet(BOB, GENESIS).tx("register_candidate", {"name": "same"}, fee=11 * RUFF)
    n.store.add_to_inbox(second.hash, second.raw, addr(BOB), 1)  # as `hub chain candidate register` queues it
    assert dict(n.drain_inbox(NOW)) == {second.hash: "pending"}
    n.submit(first.raw, NOW)
    block = n.produce(GENESIS_TIME + 500)
    assert block.txs == (first.raw,)
    assert second.hash not in n.mempool
    fate = n.mempool.fate(second.hash)
    assert (fate.status, fate.reason) == ("dropped", Reason.NAME_TAKEN)
    assert n.store.inbox_status(second.hash) == str(fate)  # what `hub chain tx` and `--wait` read
    assert str(fate).startswith("dropped: name_taken")
    # Resubmitting it now is refused for the same reason, and the record says so.
    assert refused(lambda: n.submit(second.raw, NOW)).reason is Reason.NAME_TAKEN
    assert n.mempool.fate(second.hash).status == "refused"
    n.close()


def test_replaced_and_evicted_transactions_are_reported_dropped(tmp_path):
    n = node(tmp_path)
    n.mempool.max_txs = 2
    low = Wallet(ALICE, GENESIS).send(BOB, 1, fee=10_000)
    n.store.add_to_inbox(low.hash, low.raw, addr(ALICE), 1)
    n.drain_inbox(NOW)
    higher = Wallet(ALICE, GENESIS).send(CAROL, 1, fee=20_000)
    n.submit(higher.raw, NOW)
    assert n.mempool.fate(low.hash).reason is Reason.REPLACED
    assert n.store.inbox_status(low.hash).startswith(f"dropped: replaced: replaced by {higher.hash.hex()}")
    cheap = Wallet(BOB, GENESIS).send(ALICE, 1, fee=5_000)
    n.submit(cheap.raw, NOW)
    n.submit(Wallet(CAROL, GENESIS).send(ALICE, 1, fee=50_000).raw, NOW)
    assert n.mempool.fate(cheap.hash).reason is Reason.MEMPOOL_FULL
    n.close()


def test_the_expiry_sweep_drops_what_another_senders_transaction_made_invalid():
    state = genesis().state()
    pool = Mempool(GENESIS.network)
    state.begin()
    state.set("cand", addr(BOB), ("bob", BOB.public_key, 1))
    state.set("name", "bob", addr(BOB))
    state.commit()
    vote = Wallet(CAROL, GENESIS).tx("vote", {"candidates": [addr(BOB)]})
    transfer = Wallet(ALICE, GENESIS).send(BOB, 1)
    pool.prune(state, NOW)  # the first call sweeps; the next is due SWEEP_MS later
    pool.add(vote, state, NOW)
    pool.add(transfer, state, NOW)
    state.begin(), state.set("dq", addr(BOB), 2), state.commit()  # as an evidence transaction would
    pool.prune(state, NOW + 1, ())
    assert vote.hash in pool  # between sweeps nothing is checked again: the producer would drop it
    pool.prune(state, NOW + SWEEP_MS + 1, ())
    assert vote.hash not in pool and transfer.hash in pool
    assert (pool.fate(vote.hash).status, pool.fate(vote.hash).reason) == ("dropped", Reason.DISQUALIFIED)


def test_what_the_mempool_remembers_is_bounded(monkeypatch):
    monkeypatch.setattr(mempool_module, "REMEMBERED_FATES", 100)
    pool = Mempool(GENESIS.network)
    for i in range(250):
        pool.refused(i.to_bytes(32, "big"), TxRejected(Reason.BAD_SIGNATURE))
    assert len(pool.fates) == 100
    assert pool.fate((249).to_bytes(32, "big")) is not None and pool.fate((0).to_bytes(32, "big")) is None


def test_the_types_admission_does_not_check_again_have_no_rules_of_their_own():
    """Skipping check_type for them is safe only while their handler checks nothing."""
    from hub.chain.protocol.rules import TYPES_WITHOUT_RULES, check_type, next_block_context

    state = genesis().state()
    ctx = next_block_context(state, NOW)
    assert TYPES_WITHOUT_RULES == {"transfer"}
    before = state.digest()
    check_type(state, Wallet(ALICE, GENESIS).send(addr(key("nobody")), 99 * RUFF), ctx)  # anyone, any amount: no rule
    assert state.digest() == before
