"""DPoS scenarios on a simulated clock: rounds, misses, elections, the 318 rule, bans, polls, evidence."""

from __future__ import annotations

import copy

import pytest

from hub.chain.protocol import dpos
from hub.chain.protocol.block import Block, Header, tx_root
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.errors import BlockRejected
from hub.chain.protocol.transition import apply_block, build_block
from hub.crypto.address import address_of

from tests.chain.chainkit import Sim, Wallet, addr, key, make_genesis

PRODUCERS = [key(f"producer{i}") for i in range(4)]
VOTERS = [key(f"voter{i}") for i in range(3)]
OUTSIDERS = [key(f"outsider{i}") for i in range(3)]
CAND_FEE = 11 * RUFF


def sim(balances=None, producers=PRODUCERS, **constants) -> Sim:
    funded = {k: 1000 * RUFF for k in PRODUCERS + OUTSIDERS}
    funded.update(balances or {v: 10_000 * RUFF for v in VOTERS})
    return Sim(make_genesis(producers, funded, **constants), PRODUCERS + OUTSIDERS)


def elected(s: Sim) -> set[bytes]:
    """The producers of the next round."""
    return set(s.state.meta("elected"))


def pending(s: Sim) -> set[bytes]:
    """The result of the last round end's election, in effect once that block is irreversible."""
    return set(s.state.meta("pending"))


def next_block_without(s: Sim, gone: set[bytes]):
    """The next block by a producer not in ``gone``; the slots of those before it are missed."""
    skip = 0
    while s.owner(s.state.head.slot + 1 + skip) in gone:
        skip += 1
    return s.next_block(skip=skip)


def run_to_round_end_without(s: Sim, gone: set[bytes]) -> None:
    while True:
        next_block_without(s, gone)
        if dpos.is_round_end(s.state.head.height, s.c):
            return


def test_a_full_round_has_every_producer_once_in_the_seeded_order():
    s = sim()
    expected = dpos.producer_order([k.public_key for k in PRODUCERS], s.state.head.hash)
    # slot s belongs to order[s mod PRODUCERS]; slot 0 is the genesis
    assert [s.owner(slot) for slot in range(1, 5)] == [expected[1], expected[2], expected[3], expected[0]]
    blocks = [s.next_block() for _ in range(4)]
    assert sorted(b.block.header.producer for b in blocks) == sorted(expected)
    assert [b.block.header.round for b in blocks] == [1, 1, 1, 1]
    assert [b.block.header.slot for b in blocks] == [1, 2, 3, 4]
    assert all(s.state.get("prod", addr(k)) == 1 for k in PRODUCERS)
    # Round 2's order is seeded with the hash of round 1's last block.
    assert dpos.schedule_after(s.state) == dpos.producer_order(list(expected), s.state.head.hash)
    assert s.next_block().block.header.round == 2


def test_a_missed_slot_is_taken_18_s_later_by_the_next_producer_and_the_round_still_has_p_blocks():
    s = sim(BLOCK_INTERVAL=9000)
    first = s.next_block().block.header
    absent = s.owner(first.slot + 1)
    second = s.next_block(skip=1).block.header
    assert second.timestamp - first.timestamp == 18_000
    assert second.producer == s.owner(first.slot + 2) != absent
    assert s.state.get("miss", address := addr_of(absent)) == 1
    assert s.state.get("ban", address) == second.timestamp + s.c.BAN_DURATION
    s.next_block()
    s.next_block()
    assert s.state.head.height == 4 and dpos.is_round_end(4, s.c)
    assert s.next_block().block.header.round == 2  # heights, not slots, make rounds


def addr_of(pk: bytes) -> bytes:
    return address_of(pk)


def _register_and_vote(s: Sim, candidates, votes: dict) -> None:
    txs = [Wallet(k, s).tx("register_candidate", {"name": f"c{i}"}, fee=CAND_FEE) for i, k in enumerate(candidates)]
    txs += [Wallet(v, s).tx("vote", {"candidates": [addr(c) for c in cs]}) for v, cs in votes.items()]
    s.next_block(txs)


def test_election_with_quorum_elects_the_heaviest_and_it_takes_effect_once_irreversible():
    s = sim(balances={VOTERS[0]: 50_000 * RUFF, VOTERS[1]: 30_000 * RUFF, VOTERS[2]: 1_000 * RUFF},
            producers=PRODUCERS[:2], PRODUCERS=2)
    _register_and_vote(s, OUTSIDERS, {VOTERS[0]: [OUTSIDERS[2]], VOTERS[1]: [OUTSIDERS[0], OUTSIDERS[2]],
                                      VOTERS[2]: [OUTSIDERS[1]]})
    s.run_to_round_end()
    # weights: outsider2 80k, outsider0 30k, outsider1 1k; two seats
    assert s.state.meta("pending") == (OUTSIDERS[2].public_key, OUTSIDERS[0].public_key)
    # The block holding the result is not irreversible yet: round 2 is the genesis producers'.
    assert elected(s) == {k.public_key for k in PRODUCERS[:2]}
    s.next_block()
    assert set(s.state.meta("order")) == {k.public_key for k in PRODUCERS[:2]}
    # Both of round 2's producers built on the election, so it takes effect for round 3.
    s.run_to_round_end()
    assert s.state.meta("elected") == (OUTSIDERS[2].public_key, OUTSIDERS[0].public_key)
    s.next_block()
    assert set(s.state.meta("order")) == {OUTSIDERS[2].public_key, OUTSIDERS[0].public_key}


def test_an_election_waits_while_no_more_than_two_thirds_of_the_producers_build_on_it():
    """What a partitioned minority sees: half the producers are gone. It bans them and its election
    leaves them out, but the result must not take effect there, or the minority would finalise a
    branch of its own (finality counts the schedule's producers)."""
    s = sim(PRODUCERS=4)
    _register_and_vote(s, PRODUCERS, {v: PRODUCERS for v in VOTERS})
    s.run_to_round_end()
    assert pending(s) == elected(s) == {k.public_key for k in PRODUCERS}
    first = s.state.head.slot + 1
    gone = {s.owner(first), s.owner(first + 1)}
    run_to_round_end_without(s, gone)  # round 2: only the other two produce
    assert pending(s) == {k.public_key for k in PRODUCERS} - gone
    assert elected(s) == {k.public_key for k in PRODUCERS}, "2 of 4 signed round 2: nothing changes"
    next_block_without(s, gone)
    assert set(s.state.meta("order")) == {k.public_key for k in PRODUCERS}
    # Once three of the four build on a result, it takes effect.
    back = next(iter(gone))
    run_to_round_end_without(s, gone - {back})
    assert elected(s) == {k.public_key for k in PRODUCERS} - gone


def test_without_quorum_the_current_producers_stay():
    # Voters hold 3 % of the supply; the quorum is 10 %.
    s = sim(balances={VOTERS[0]: 130 * RUFF}, PRODUCERS=4)
    _register_and_vote(s, OUTSIDERS, {VOTERS[0]: [OUTSIDERS[0]]})
    s.run_to_round_end()
    assert pending(s) == {k.public_key for k in PRODUCERS}
    # Quorum reached once the voter's stake grows past 10 %.
    big = Wallet(OUTSIDERS[1], s)
    big.nonce = 1
    s.next_block([big.send(VOTERS[0], 900 * RUFF)])
    s.run_to_round_end()
    assert pending(s) == {OUTSIDERS[0].public_key}


def test_with_more_candidates_than_the_limit_last_rounds_producers_cannot_be_re_elected():
    s = sim(CANDIDATE_LIMIT=3, PRODUCERS=4)
    everyone = PRODUCERS + OUTSIDERS[:1]  # 5 candidates > 3
    _register_and_vote(s, everyone, {VOTERS[0]: everyone})
    s.run_to_round_end()
    assert pending(s) == {OUTSIDERS[0].public_key}


def test_at_the_limit_producers_can_be_re_elected():
    s = sim(CANDIDATE_LIMIT=5, PRODUCERS=4)
    everyone = PRODUCERS + OUTSIDERS[:1]  # 5 candidates, not more than 5
    _register_and_vote(s, everyone, {VOTERS[0]: everyone[:4]})
    s.run_to_round_end()
    assert pending(s) == {k.public_key for k in PRODUCERS}


def test_a_ban_lasts_24_hours():
    # One-hour slots, so 24 h is 24 slots; the ban constant is the real one.
    s = sim(BLOCK_INTERVAL=3_600_000, PRODUCERS=4)
    for w in (Wallet(v, s) for v in VOTERS):
        w.valid_until = 10**10
    _register_and_vote(s, PRODUCERS, {v: PRODUCERS for v in VOTERS})
    absent = s.owner(s.state.head.slot + 1)
    s.next_block(skip=1)
    banned_at = s.state.head.timestamp
    assert s.state.get("ban", addr_of(absent)) == banned_at + 24 * 3_600_000
    s.run_to_round_end()
    assert absent not in pending(s) and len(pending(s)) == 3
    while s.state.head.timestamp < banned_at + 24 * 3_600_000:
        s.next_block()
    s.run_to_round_end()
    assert absent in pending(s)


def test_a_disqualification_poll_decided_by_the_candidates():
    s = sim(PRODUCERS=4)
    target, *others = OUTSIDERS
    _register_and_vote(s, OUTSIDERS + PRODUCERS[:2], {VOTERS[0]: [target]})
    opener = Wallet(PRODUCERS[0], s)
    opener.nonce = 1
    poll = opener.tx("disqualify_poll", {"target": addr(target), "reason": "offline"})
    s.next_block([poll])
    # 5 other candidates; 3 approvals is more than half.
    approvals = [Wallet(k, s) for k in others + [PRODUCERS[1]]]
    for w in approvals:
        w.nonce = 1
    s.next_block([w.tx("disqualify_vote", {"poll": poll.hash, "approve": True}) for w in approvals])
    assert s.state.get("dq", addr(target)) is None  # decided at the round's end
    s.run_to_round_end()
    assert s.state.get("dq", addr(target)) is not None
    assert target.public_key not in pending(s)
    assert s.state.items("poll") == [] and s.state.items("pvote") == []


def test_a_poll_without_a_majority_fails():
    s = sim(PRODUCERS=4)
    target = OUTSIDERS[0]
    _register_and_vote(s, OUTSIDERS + PRODUCERS[:2], {})
    opener = Wallet(PRODUCERS[0], s)
    opener.nonce = 1
    poll = opener.tx("disqualify_poll", {"target": addr(target)})
    yes, no = Wallet(OUTSIDERS[1], s), Wallet(OUTSIDERS[2], s)
    yes.nonce = no.nonce = 1
    s.next_block([poll, yes.tx("disqualify_vote", {"poll": poll.hash, "approve": True}),
                  no.tx("disqualify_vote", {"poll": poll.hash, "approve": False})])
    s.run_to_round_end()
    assert s.state.get("dq", addr(target)) is None and s.state.items("poll") == []


def test_equivocation_evidence_disqualifies_the_producer():
    s = sim(PRODUCERS=8)  # 8-block rounds over 4 producers: the cheat has a second turn this round
    s.next_block()
    slot = s.state.head.slot + 1
    cheat = s.keys[s.owner(slot)]
    fork = copy.deepcopy(s.state)
    a = build_block(s.state, cheat, slot, []).applied.block
    b = build_block(fork, cheat, slot, [Wallet(VOTERS[0], s).send(VOTERS[1], 1)]).applied.block
    assert a.hash != b.hash and a.header.slot == b.header.slot
    s.blocks.append(a)
    reporter = Wallet(VOTERS[2], s)
    s.next_block([reporter.tx("evidence", {"first": a.header.as_dict(), "second": b.header.as_dict()})])
    assert s.state.get("dq", addr(cheat)) == s.state.head.height
    # Its next slot is refused, so its turn becomes a miss for it.
    while s.owner(s.state.head.slot + 1) != cheat.public_key:
        assert s.state.head.height < 7, "the cheat's second turn is in this round"
        s.next_block()
    with pytest.raises(BlockRejected, match="disqualified"):
        s.next_block()
    s.next_block(skip=1)
    s.run_to_round_end()
    assert cheat.public_key not in pending(s) and len(pending(s)) == 3
    # The other three built on that election in the next round (the cheat's slots refused): it
    # takes effect.
    run_to_round_end_without(s, {cheat.public_key})
    assert elected(s) == pending(s) and cheat.public_key not in elected(s)


def test_blocks_out_of_turn_or_tampered_are_refused_and_change_nothing():
    s = sim()
    s.next_block()
    good_state = copy.deepcopy(s.state)
    slot = s.state.head.slot + 1
    owner = s.keys[s.owner(slot)]
    intruder = next(k for k in PRODUCERS if k.public_key != owner.public_key)
    tx = Wallet(VOTERS[0], s).send(VOTERS[1], 5)
    good = build_block(copy.deepcopy(s.state), owner, slot, [tx]).applied.block
    wrong_turn = build_block(copy.deepcopy(s.state), owner, slot, [tx]).applied.block
    def resign(header: Header, k=owner, **changes) -> Block:
        return Block(Header(**{**header.body(), **changes}).signed(k, s.genesis.hash), good.txs)

    cases = {
        "belongs to": resign(wrong_turn.header, intruder),
        "signature": Block(Header(**{**good.header.as_dict(), "sig": bytes(64)}), good.txs),
        "state hash": resign(good.header, state_hash=bytes(32)),
        "transactions root": resign(good.header, tx_root=bytes(32)),
        "timestamp": resign(good.header, timestamp=good.header.timestamp + 1),
        "does not follow": resign(good.header, height=5),
        "previous hash": resign(good.header, prev_hash=bytes(32)),
        "round": resign(good.header, round=7),
        "chain": resign(good.header, chain_id="other"),
    }
    for message, block in cases.items():
        with pytest.raises(BlockRejected, match=message):
            apply_block(s.state, block)
        assert s.state.digest() == good_state.digest() and s.state.head == good_state.head
    doubled = Block(Header(**{**good.header.body(), "tx_root": tx_root(good.txs * 2)}).signed(owner, s.genesis.hash), good.txs * 2)
    with pytest.raises(BlockRejected, match="appears twice|invalid"):
        apply_block(s.state, doubled)
    assert s.state.digest() == good_state.digest()
    apply_block(s.state, good)
    assert s.state.balance(addr(VOTERS[1])) == 10_000 * RUFF + 5


def test_the_rpc_shows_an_election_result_as_pending_until_it_takes_effect():
    from types import SimpleNamespace

    from hub.chain.node.rpc import views

    s = sim(PRODUCERS=4)
    _register_and_vote(s, OUTSIDERS[:1], {v: OUTSIDERS[:1] for v in VOTERS})
    s.run_to_round_end()
    node = SimpleNamespace(state=s.state, constants=s.c)
    (row,) = views.candidates(node, s.state.head.timestamp)["candidates"]
    assert row["pending"] and not row["elected"] and not row["producing"]
    s.next_block()
    s.run_to_round_end()  # all four producers signed round 2: the result takes effect
    (row,) = views.candidates(node, s.state.head.timestamp)["candidates"]
    assert row["elected"] and not row["pending"]
