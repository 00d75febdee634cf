"""Every transaction type's rules: what is accepted, and each rejection's reason code."""

from __future__ import annotations

import pytest

from hub.chain.protocol.block import Header
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.errors import Reason, TxRejected
from hub.chain.protocol.rules import BlockContext, apply_tx
from hub.chain.protocol.transition import signature_verifier
from hub.chain.protocol.tx import Transaction
from hub.crypto.address import address_of
from hub.crypto.encoding import encode
from hub.crypto.signing import Network

from tests.chain.chainkit import CHAIN, Wallet, addr, key, make_genesis

PRODUCERS = [key(f"producer{i}") for i in range(4)]
ALICE, BOB, CAROL = key("alice"), key("bob"), key("carol")
NOW = 2_000_000


@pytest.fixture
def state():
    return make_genesis(PRODUCERS, {ALICE: 1000 * RUFF, BOB: 10 * RUFF, CAROL: 100 * RUFF}).state()


def ctx(height=1):
    return BlockContext(height, NOW, 1, frozenset(addr(k) for k in PRODUCERS))


def apply(state, tx):
    state.begin()
    try:
        fee = apply_tx(state, tx, ctx(), signature_verifier(state.network))
    except BaseException:
        state.rollback()
        raise
    state.commit()
    return fee


def rejected(state, tx, reason: Reason) -> TxRejected:
    before = state.digest()
    state.begin()
    with pytest.raises(TxRejected) as info:
        apply_tx(state, tx, ctx(), signature_verifier(state.network))
    changes, _ = state.commit()
    assert info.value.reason is reason, str(info.value)
    assert changes == [] and state.digest() == before, "a rejected transaction must change nothing"
    return info.value


def test_transfer_moves_amount_and_takes_fee(state):
    w = Wallet(ALICE, state)
    fee = apply(state, w.send(BOB, 5 * RUFF, fee=20_000))
    assert fee == 20_000
    assert state.balance(addr(ALICE)) == 1000 * RUFF - 5 * RUFF - 20_000
    assert state.balance(addr(BOB)) == 15 * RUFF
    assert state.nonce(addr(ALICE)) == 1


def test_transfer_to_self_costs_only_the_fee(state):
    apply(state, Wallet(ALICE, state).send(ALICE, 5 * RUFF, fee=20_000))
    assert state.balance(addr(ALICE)) == 1000 * RUFF - 20_000


def test_envelope_rejections(state):
    w = Wallet(ALICE, state)
    rejected(state, w.send(BOB, 1, fee=10, nonce=1), Reason.FEE_TOO_LOW)
    rejected(state, w.send(BOB, 1, valid_until=NOW - 1, nonce=1), Reason.EXPIRED)
    rejected(state, w.send(BOB, 1, valid_until=NOW + state.constants.MAX_TX_LIFETIME + 1, nonce=1), Reason.VALIDITY_TOO_LONG)
    rejected(state, w.send(BOB, 1, nonce=2), Reason.NONCE_TOO_HIGH)
    rejected(state, Wallet(BOB, state).send(ALICE, 10 * RUFF), Reason.INSUFFICIENT_BALANCE)
    rejected(state, Wallet(key("nobody"), state).send(ALICE, 1), Reason.INSUFFICIENT_BALANCE)
    apply(state, w.send(BOB, 1, nonce=1))
    rejected(state, w.send(BOB, 1, nonce=1), Reason.NONCE_TOO_LOW)


def test_forged_and_foreign_signatures(state):
    good = Wallet(ALICE, state).send(BOB, 1)
    forged = Transaction(good.type, good.sender, good.nonce, good.fee, good.valid_until,
                         {**good.payload, "amount": 999 * RUFF}, good.signature)
    rejected(state, forged, Reason.BAD_SIGNATURE)
    rejected(state, Wallet(ALICE, Network("another-chain", state.genesis_hash)).send(BOB, 1), Reason.BAD_SIGNATURE)


def test_a_transaction_signed_for_another_genesis_of_the_same_chain_id_is_refused(state):
    """Every devnet is ``ruff-devnet``: the chain id alone would let a transfer replay across them."""
    other = make_genesis(PRODUCERS, {ALICE: 1000 * RUFF, BOB: 5 * RUFF})
    assert other.chain_id == state.chain_id and other.hash != state.genesis_hash
    replayed = Wallet(ALICE, other).send(BOB, 1)
    error = rejected(state, replayed, Reason.BAD_SIGNATURE)
    assert "genesis" in error.detail
    assert apply(other.state(), replayed) == replayed.fee  # valid where it was signed


def test_payload_and_type_rejections(state):
    w = Wallet(ALICE, state)
    bad_amount = Transaction.create(ALICE, state.network, "transfer", {"to": addr(BOB), "amount": 0}, nonce=1, fee=RUFF, valid_until=10**7)
    assert "amount" in rejected(state, bad_amount, Reason.BAD_PAYLOAD).detail
    as_text = Transaction.create(ALICE, state.network, "transfer", {"to": addr(BOB), "amount": "5"}, nonce=1, fee=RUFF, valid_until=10**7)
    rejected(state, as_text, Reason.BAD_PAYLOAD)  # strict: no "5" -> 5
    extra = Transaction.create(ALICE, state.network, "transfer", {"to": addr(BOB), "amount": 5, "x": 1}, nonce=1, fee=RUFF, valid_until=10**7)
    rejected(state, extra, Reason.BAD_PAYLOAD)
    unknown = Transaction.create(ALICE, state.network, "mint", {}, nonce=1, fee=RUFF, valid_until=10**7)
    rejected(state, unknown, Reason.UNKNOWN_TYPE)
    big = w.tx("data_anchor", {"hash": bytes(32), "label": "x" * 256}, nonce=1)
    assert big.size < state.constants.MAX_TX_BYTES  # sanity: the size rule is tested in the envelope


def test_wire_form_defects_are_bad_encoding():
    tx = Wallet(ALICE, Network(CHAIN, bytes(32))).send(BOB, 1)
    assert Transaction.from_bytes(tx.raw).hash == tx.hash
    for raw in (b"", b"\xff", tx.raw[:-1], encode({**tx.as_dict(), "extra": 1}), encode({**tx.as_dict(), "nonce": -1}),
                encode([1, 2]), encode({**tx.as_dict(), "sender": b"short"})):
        with pytest.raises(TxRejected) as info:
            Transaction.from_bytes(raw)
        assert info.value.reason is Reason.BAD_ENCODING
    with pytest.raises(TxRejected) as info:
        Transaction.from_bytes(tx.raw, max_size=10)
    assert info.value.reason is Reason.TOO_LARGE


def test_candidates_and_votes(state):
    alice, bob = Wallet(ALICE, state), Wallet(BOB, state)
    rejected(state, alice.tx("register_candidate", {"name": "alice"}, fee=RUFF), Reason.FEE_TOO_LOW)
    alice.nonce = 0
    apply(state, alice.tx("register_candidate", {"name": "alice"}, fee=state.constants.CANDIDATE_FEE + RUFF))
    assert state.get("cand", addr(ALICE))[0] == "alice"
    rejected(state, alice.tx("register_candidate", {"name": "alice2"}, fee=11 * RUFF), Reason.ALREADY_CANDIDATE)
    alice.nonce -= 1
    carol = Wallet(CAROL, state)
    rejected(state, carol.tx("register_candidate", {"name": "alice"}, fee=11 * RUFF), Reason.NAME_TAKEN)
    carol.nonce -= 1
    rejected(state, carol.tx("register_candidate", {"name": "Not Valid"}, fee=11 * RUFF), Reason.BAD_PAYLOAD)
    carol.nonce -= 1
    rejected(state, bob.tx("vote", {"candidates": [addr(CAROL)]}), Reason.UNKNOWN_CANDIDATE)
    bob.nonce -= 1
    rejected(state, bob.tx("vote", {"candidates": [addr(ALICE), addr(ALICE)]}), Reason.DUPLICATE_VOTE)
    bob.nonce -= 1
    rejected(state, bob.tx("vote", {"candidates": [bytes([i]) * 20 for i in range(31)]}), Reason.TOO_MANY_VOTES)
    bob.nonce -= 1
    apply(state, bob.tx("vote", {"candidates": [addr(ALICE)]}))
    assert state.get("vote", addr(BOB)) == (addr(ALICE),)
    apply(state, bob.tx("vote", {"candidates": []}))  # withdraws the vote
    assert state.get("vote", addr(BOB)) is None


def test_polls(state):
    producer = Wallet(PRODUCERS[0], state)
    apply(state, Wallet(CAROL, state).tx("register_candidate", {"name": "carol"}, fee=11 * RUFF))
    state.begin()
    state.set("acct", addr(PRODUCERS[0]), (10 * RUFF, 0))
    state.commit()
    outsider = Wallet(ALICE, state)
    rejected(state, outsider.tx("disqualify_poll", {"target": addr(CAROL)}), Reason.NOT_A_PRODUCER)
    rejected(state, producer.tx("disqualify_poll", {"target": addr(BOB)}), Reason.UNKNOWN_CANDIDATE)
    producer.nonce -= 1
    poll = producer.tx("disqualify_poll", {"target": addr(CAROL), "reason": "missed slots"})
    apply(state, poll)
    rejected(state, producer.tx("disqualify_poll", {"target": addr(CAROL)}), Reason.POLL_EXISTS)
    rejected(state, Wallet(BOB, state).tx("disqualify_vote", {"poll": poll.hash, "approve": True}), Reason.NOT_A_CANDIDATE)
    carol = Wallet(CAROL, state)
    carol.nonce = 1
    rejected(state, carol.tx("disqualify_vote", {"poll": bytes(32), "approve": False}), Reason.UNKNOWN_POLL)
    carol.nonce -= 1
    apply(state, carol.tx("disqualify_vote", {"poll": poll.hash, "approve": False}))
    rejected(state, carol.tx("disqualify_vote", {"poll": poll.hash, "approve": True}), Reason.ALREADY_VOTED)


def _header(state, producer, slot, salt: bytes, chain=CHAIN, genesis_hash=None) -> dict:
    return Header(chain, 5, 2, slot, 0, salt * 32, bytes(32), bytes(32), producer.public_key) \
        .signed(producer, genesis_hash or state.genesis_hash).as_dict()


def test_evidence(state):
    offender = PRODUCERS[1]
    w = Wallet(ALICE, state)
    rejected(state, w.tx("evidence", {"first": _header(state, offender, 7, b"\x01"), "second": _header(state, offender, 8, b"\x02")}),
             Reason.BAD_EVIDENCE)
    w.nonce -= 1
    rejected(state, w.tx("evidence", {"first": _header(state, offender, 7, b"\x01"), "second": _header(state, PRODUCERS[2], 7, b"\x02")}),
             Reason.BAD_EVIDENCE)
    w.nonce -= 1
    same = _header(state, offender, 7, b"\x01")
    rejected(state, w.tx("evidence", {"first": same, "second": same}), Reason.BAD_EVIDENCE)
    w.nonce -= 1
    forged = {**_header(state, offender, 7, b"\x02"), "sig": bytes(64)}
    rejected(state, w.tx("evidence", {"first": _header(state, offender, 7, b"\x01"), "second": forged}), Reason.BAD_EVIDENCE)
    w.nonce -= 1
    rejected(state, w.tx("evidence", {"first": {"x": 1}, "second": {}}), Reason.BAD_EVIDENCE)
    w.nonce -= 1
    foreign = [_header(state, offender, 7, b"\x01", "other"), _header(state, offender, 7, b"\x02", "other")]
    rejected(state, w.tx("evidence", {"first": foreign[0], "second": foreign[1]}), Reason.BAD_EVIDENCE)
    w.nonce -= 1
    elsewhere = [_header(state, offender, 7, b"\x01", genesis_hash=bytes(32)), _header(state, offender, 7, b"\x02", genesis_hash=bytes(32))]
    rejected(state, w.tx("evidence", {"first": elsewhere[0], "second": elsewhere[1]}), Reason.BAD_EVIDENCE)
    w.nonce -= 1
    apply(state, w.tx("evidence", {"first": _header(state, offender, 7, b"\x01"), "second": _header(state, offender, 7, b"\x02")}))
    assert state.get("dq", address_of(offender.public_key)) == 1
    rejected(state, w.tx("evidence", {"first": _header(state, offender, 9, b"\x01"), "second": _header(state, offender, 9, b"\x02")}),
             Reason.DISQUALIFIED)


def test_a_type_without_effects_is_validated_then_refused_until_it_has_them(state):
    """It would pay a fee and a nonce for nothing (and a data_anchor minted the block reward), and
    giving it effects later would change what old blocks mean: refused until implemented. The
    market types have their effects (tests/chain/test_market_txs.py)."""
    w = Wallet(ALICE, state)
    device = key("device").public_key
    assert "no effect yet" in rejected(state, w.tx("data_anchor", {"hash": bytes(32), "label": "sensor batch"}, nonce=1),
                                       Reason.TYPE_NOT_ENABLED).detail
    assert state.nonce(addr(ALICE)) == 0
    # the payload is still judged first, so a malformed one says what is wrong with it
    rejected(state, w.tx("data_anchor", {"hash": bytes(31)}, nonce=1), Reason.BAD_PAYLOAD)
    rejected(state, w.tx("create_contract", {"device": device, "commands": [], "terms": {"kind": "prepaid"}}, nonce=1),
             Reason.BAD_PAYLOAD)
    rejected(state, w.tx("call", {"contract": bytes(31), "deposit": 5}, nonce=1), Reason.BAD_PAYLOAD)


def test_a_block_with_a_type_without_effects_is_invalid_and_mints_nothing():
    from hub.chain.protocol.block import Block, tx_root
    from hub.chain.protocol.errors import BlockRejected
    from hub.chain.protocol.transition import apply_block
    from tests.chain.chainkit import Sim

    genesis = make_genesis(PRODUCERS, {ALICE: 1000 * RUFF})
    sim = Sim(genesis, PRODUCERS)
    anchor = Wallet(ALICE, genesis).tx("data_anchor", {"hash": bytes(32)}, fee=5_000)
    built = sim.next_block([anchor], strict=False)  # a producer leaves it out ...
    assert built.txs == [] and sim.state.meta("minted") == 0
    assert [e.reason for _, e in _rejections(genesis, [anchor])] == [Reason.TYPE_NOT_ENABLED]
    # ... and a block that carries it anyway is refused by every node
    honest = sim.blocks[-1]
    owner = next(k for k in PRODUCERS if k.public_key == honest.header.producer)
    forged = Block(Header(**{**honest.header.body(), "tx_root": tx_root((anchor.raw,))}).signed(owner, genesis.hash), (anchor.raw,))
    state = genesis.state()
    with pytest.raises(BlockRejected) as info:
        apply_block(state, forged)
    assert info.value.tx_reason is Reason.TYPE_NOT_ENABLED
    assert state.meta("minted") == 0 and state.head.height == 0


def _rejections(genesis, txs):
    from hub.chain.protocol import dpos
    from hub.chain.protocol.transition import build_block

    state = genesis.state()
    slot = state.head.slot + 1
    owner = dpos.slot_owner(dpos.schedule_after(state), slot)
    return build_block(state, next(k for k in PRODUCERS if k.public_key == owner), slot, list(txs)).rejected