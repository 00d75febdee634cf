"""The light client against chains built in-process with the protocol (and a full node beside it)."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hub.chain.light import LightClient, LightClientError, Reason, changes_proof, follow, sync_once
from hub.chain.node.node import ChainNode
from hub.chain.protocol import dpos
from hub.chain.protocol.block import Header
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.errors import BlockRejected
from hub.crypto import merkle
from hub.crypto.encoding import decode, encode

from tests.chain.chainkit import GENESIS_TIME, Sim, Wallet, addr, key, make_genesis

PRODUCERS = [key(f"producer{i}") for i in range(4)]
VOTERS = [key(f"voter{i}") for i in range(3)]
OUTSIDERS = [key(f"outsider{i}") for i in range(3)]
ALICE, BOB = key("alice"), key("bob")
CAND_FEE = 11 * RUFF


def genesis(**constants):
    funded = {k: 1000 * RUFF for k in PRODUCERS + OUTSIDERS}
    funded.update({v: 10_000 * RUFF for v in VOTERS})
    funded.update({ALICE: 100 * RUFF, BOB: 100 * RUFF})
    return make_genesis(PRODUCERS, funded, **constants)


class Chain:
    """A Sim that remembers every block's schedule proof (the encoded changes) by block hash."""

    def __init__(self, g=None) -> None:
        self.sim = Sim(g or genesis(), PRODUCERS + OUTSIDERS)
        self.proofs: dict[bytes, bytes] = {}

    def fork(self) -> "Chain":
        return copy.deepcopy(self)

    def step(self, txs=(), skip: int = 0):
        applied = self.sim.next_block(txs, skip=skip)
        self.proofs[applied.block.hash] = encode([list(c) for c in applied.changes])
        return applied.block

    def grow(self, n: int, rng: random.Random | None = None, miss: float = 0.0):
        return [self.step(skip=1 if rng and rng.random() < miss else 0) for _ in range(n)]

    def raw(self, blocks):
        return [b.header.encode() for b in blocks]

    def changes(self, blocks):
        return {b.hash: self.proofs[b.hash] for b in blocks if b.header.height % self.sim.c.PRODUCERS == 0}


def snapshot(lc: LightClient):
    return (lc.head, lc.final, dict(lc._canon), dict(lc._by_hash), dict(lc._elected))


def refused(lc: LightClient, item, reason: Reason, changes=None) -> LightClientError:
    before = snapshot(lc)
    with pytest.raises(LightClientError) as info:
        lc.add_headers([item], changes)
    assert info.value.reason is reason, info.value
    assert snapshot(lc) == before
    return info.value


def elect_outsiders(chain: Chain) -> None:
    txs = [Wallet(k, chain.sim).tx("register_candidate", {"name": f"c{i}"}, fee=CAND_FEE) for i, k in enumerate(OUTSIDERS)]
    txs += [Wallet(v, chain.sim).tx("vote", {"candidates": [addr(OUTSIDERS[i])]}) for i, v in enumerate(VOTERS)]
    chain.step(txs)


# --- following a valid chain ---------------------------------------------------------------------


def test_follows_several_rounds_with_missed_slots_and_an_election():
    chain = Chain()
    lc = LightClient(chain.sim.genesis)
    elect_outsiders(chain)
    rng = random.Random(1)
    blocks = [chain.sim.blocks[0]] + chain.grow(23, rng, miss=0.3)
    assert any(b.header.slot - a.header.slot > 1 for a, b in zip(blocks, blocks[1:]))  # missed slots
    assert lc.add_headers(chain.raw(blocks), chain.changes(blocks)) == 24
    assert lc.head.hash == chain.sim.state.head.hash and lc.head.height == 24
    # the producer set really changed, and the client knows each order: the result of round 1's
    # election waited through round 2 (the pending schedule) and produces from round 3
    outsiders = {k.public_key for k in OUTSIDERS}
    first = next(b.header.height for b in blocks if b.header.producer in outsiders)
    assert first > 8
    assert {b.header.producer for b in blocks[:8]}.isdisjoint(outsiders)
    assert lc.schedule() == dpos.schedule_after(chain.sim.state)
    for b in blocks:
        assert dpos.slot_owner(lc.schedule(b.header.height), b.header.slot) == b.header.producer
    assert lc.add_headers(chain.raw(blocks)) == 0  # known headers are skipped


def test_a_round_without_its_schedule_proof_is_refused_until_the_proof_arrives():
    chain = Chain()
    elect_outsiders(chain)
    blocks = [chain.sim.blocks[0]] + chain.grow(7)
    lc = LightClient(chain.sim.genesis)
    with pytest.raises(LightClientError) as info:
        lc.add_headers(chain.raw(blocks))
    assert info.value.reason is Reason.SCHEDULE_UNPROVEN and info.value.height == 5 and info.value.accepted == 4
    assert lc.head.height == 4 and lc.needs_schedule_proof() == [(4, blocks[3].hash)]
    with pytest.raises(LightClientError) as bad:
        lc.add_schedule_proof(4, chain.proofs[blocks[2].hash])  # another block's changes
    assert bad.value.reason is Reason.BAD_SCHEDULE_PROOF
    # round 1's election is pending: round 2 is still the genesis producers'
    assert set(lc.add_schedule_proof(4, chain.proofs[blocks[3].hash])) == {k.public_key for k in PRODUCERS}
    assert lc.add_headers(chain.raw(blocks[4:7])) == 3
    more = blocks[7:] + chain.grow(4)
    with pytest.raises(LightClientError) as info:
        lc.add_headers(chain.raw(more))
    assert info.value.reason is Reason.SCHEDULE_UNPROVEN and info.value.height == 9
    assert set(lc.add_schedule_proof(8, chain.proofs[more[0].hash])) == {k.public_key for k in OUTSIDERS}
    assert lc.add_headers(chain.raw(more[1:])) == 4
    assert lc.head.hash == chain.sim.state.head.hash


def test_a_tampered_schedule_proof_is_refused():
    chain = Chain()
    elect_outsiders(chain)
    blocks = [chain.sim.blocks[0]] + chain.grow(3)
    lc = LightClient(chain.sim.genesis)
    lc.add_headers(chain.raw(blocks[:3]))
    proof = bytearray(chain.proofs[blocks[3].hash])
    proof[-1] ^= 1
    refused(lc, chain.raw(blocks[3:]) [0], Reason.BAD_SCHEDULE_PROOF, {4: bytes(proof)})


def test_assuming_an_unchanged_schedule_works_without_elections_and_fails_safe_with_one():
    quiet = Chain()
    blocks = quiet.grow(13, random.Random(2), miss=0.2)
    lc = LightClient(quiet.sim.genesis, assume_unchanged_schedule=True)
    lc.add_headers(quiet.raw(blocks))
    assert lc.head.hash == quiet.sim.state.head.hash
    chain = Chain()
    elect_outsiders(chain)
    blocks = [chain.sim.blocks[0]] + chain.grow(8)
    lc = LightClient(chain.sim.genesis, assume_unchanged_schedule=True)
    with pytest.raises(LightClientError) as info:
        lc.add_headers(chain.raw(blocks))
    assert info.value.reason is Reason.WRONG_PRODUCER and info.value.height == 9


def _forged_round_end(chain: Chain, honest, elected: list[bytes]):
    """``honest`` (a round's last block) re-signed by its producer over changes that name
    ``elected`` as the next producers: what a dishonest round-end producer can show a light client
    (full nodes refuse it: the state hash does not follow from the state)."""
    items = [item for item in decode(chain.proofs[honest.hash]) if item[:2] != ["meta", "elected"]]
    items = sorted(items + [["meta", "elected", elected]], key=lambda item: (item[0], encode(item[1])))
    proof = encode(items)
    parent = next(b for b in chain.sim.blocks if b.hash == honest.header.prev_hash)
    state_hash = hashlib.sha256(parent.header.state_hash + hashlib.sha256(proof).digest()).digest()
    k = {x.public_key: x for x in PRODUCERS + OUTSIDERS}[honest.header.producer]
    return _resign(honest.header, k, state_hash=state_hash), proof


def test_a_round_end_producer_cannot_move_the_client_to_a_set_of_its_making():
    chain = Chain()
    elect_outsiders(chain)
    blocks = [chain.sim.blocks[0]] + chain.grow(7)  # heights 1-8: round 2 ends with the election taking effect
    lc = LightClient(chain.sim.genesis)
    lc.add_headers(chain.raw(blocks[:7]), chain.changes(blocks[:7]))
    honest = blocks[7]
    puppets = sorted(key(f"puppet{i}").public_key for i in range(3))
    forged, proof = _forged_round_end(chain, honest, puppets)
    err = refused(lc, forged, Reason.BAD_SCHEDULE_PROOF, {8: proof})
    assert "not the one elected at the previous round end" in str(err)
    # the honest block, with the set elected a round earlier, is accepted
    assert lc.add_headers([honest.header.encode()], chain.changes([honest])) == 1
    assert set(lc.schedule()) == {k.public_key for k in OUTSIDERS}


def test_a_new_set_is_refused_where_no_more_than_two_thirds_built_on_its_election():
    chain = Chain()
    elect_outsiders(chain)
    while chain.sim.state.head.height < 4:  # round 1: the outsiders are elected, pending
        chain.step()
    gone = {chain.sim.owner(chain.sim.state.head.slot + 1), chain.sim.owner(chain.sim.state.head.slot + 2)}
    while chain.sim.state.head.height < 8:  # round 2: only two of the four producers sign
        skip = 0
        while chain.sim.owner(chain.sim.state.head.slot + 1 + skip) in gone:
            skip += 1
        chain.step(skip=skip)
    blocks = chain.sim.blocks
    assert set(chain.sim.state.meta("elected")) == {k.public_key for k in PRODUCERS}  # the protocol kept the set
    lc = LightClient(chain.sim.genesis)
    lc.add_headers(chain.raw(blocks[:7]), chain.changes(blocks[:7]))
    pending = sorted(chain.sim.state.meta("pending"))
    forged, proof = _forged_round_end(chain, blocks[7], pending)
    err = refused(lc, forged, Reason.BAD_SCHEDULE_PROOF, {8: proof})
    assert "only 2 of the round's 4 producers signed" in str(err)


# --- bad headers ---------------------------------------------------------------------------------


def _resign(h: Header, k, genesis_hash: bytes | None = None, **fields) -> Header:
    return Header(**{**h.body(), **fields}).signed(k, genesis_hash or genesis().hash)


def test_bad_headers_are_refused_with_their_reason_and_change_nothing():
    chain = Chain()
    blocks = chain.grow(3)
    lc = LightClient(chain.sim.genesis)
    lc.add_headers(chain.raw(blocks[:2]))
    good = blocks[2].header
    keys_by_pk = {k.public_key: k for k in PRODUCERS}
    owner = keys_by_pk[good.producer]
    other = next(k for k in PRODUCERS if k.public_key != good.producer)
    # signed by a producer that does not own the slot
    err = refused(lc, _resign(good, other), Reason.WRONG_PRODUCER)
    assert err.height == 3 and "slot" in str(err)
    # the slot's owner... of another slot: a producer signing outside its own slot
    order = dpos.schedule_after(chain.sim.state)
    other_slot = next(s for s in range(good.slot + 1, good.slot + 10) if dpos.slot_owner(order, s) != good.producer)
    refused(lc, _resign(good, owner, slot=other_slot, timestamp=GENESIS_TIME + other_slot * 500), Reason.WRONG_PRODUCER)
    refused(lc, _resign(good, owner, timestamp=good.timestamp + 1), Reason.BAD_TIMESTAMP)
    refused(lc, _resign(good, owner, slot=blocks[1].header.slot, timestamp=blocks[1].header.timestamp), Reason.BAD_SLOT)
    refused(lc, _resign(good, owner, chain_id="othernet"), Reason.WRONG_CHAIN)
    refused(lc, _resign(good, owner, prev_hash=b"\x07" * 32), Reason.UNKNOWN_PARENT)
    refused(lc, _resign(good, owner, height=4), Reason.BAD_HEIGHT)
    refused(lc, _resign(good, owner, round=2), Reason.BAD_ROUND)
    bad_sig = Header(**{**good.as_dict(), "sig": bytes([good.sig[0] ^ 1]) + good.sig[1:]})
    refused(lc, bad_sig.encode(), Reason.BAD_SIGNATURE)
    refused(lc, Header(**{**good.as_dict(), "tx_root": b"\x01" * 32}), Reason.BAD_SIGNATURE)  # content changed
    refused(lc, good.encode()[:-1], Reason.BAD_ENCODING)
    refused(lc, "zz", Reason.BAD_ENCODING)
    assert lc.add_headers([good]) == 1 and lc.head.hash == blocks[2].hash


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=400), st.builds(lambda i, b: (i, b), st.integers(0, 10_000), st.integers(0, 255))))
def test_random_bytes_only_ever_raise_the_clients_own_error(data):
    lc = _FUZZ_CLIENT
    if isinstance(data, tuple):  # a valid header with one byte changed
        raw = bytearray(_FUZZ_NEXT)
        i, b = data
        raw[i % len(raw)] = b
        data = bytes(raw)
        if data == _FUZZ_NEXT:
            return
    before = snapshot(lc)
    with pytest.raises(LightClientError):
        lc.add_headers([data])
    assert snapshot(lc) == before


_FUZZ_CHAIN = Chain()
_FUZZ_BLOCKS = _FUZZ_CHAIN.grow(3)
_FUZZ_CLIENT = LightClient(_FUZZ_CHAIN.sim.genesis)
_FUZZ_CLIENT.add_headers(_FUZZ_CHAIN.raw(_FUZZ_BLOCKS[:2]))
_FUZZ_NEXT = _FUZZ_BLOCKS[2].header.encode()


# --- forks, reorganisations and finality ---------------------------------------------------------


def node_at(tmp_path, g, name="node") -> ChainNode:
    return ChainNode(tmp_path / name, g, None)


def feed(lc: LightClient, node: ChainNode, chain: Chain, blocks) -> None:
    """Give each block to the full node and its header to the light client; they must agree."""
    for b in blocks:
        node.receive_block(b)
        lc.add_headers([b.header.encode()], chain.changes([b]))
        assert (lc.head.height, lc.head.hash) == (node.head.height, node.head.hash)
        assert lc.final.height == node.lib
        assert lc.final.hash == node.store.canonical_hash(node.lib) or node.lib == 0


def test_finality_matches_a_full_node_across_rounds_misses_and_an_election(tmp_path):
    chain = Chain()
    node = node_at(tmp_path, chain.sim.genesis)
    lc = LightClient(chain.sim.genesis)
    elect_outsiders(chain)
    feed(lc, node, chain, chain.sim.blocks)
    rng = random.Random(7)
    libs = set()
    for _ in range(40):
        feed(lc, node, chain, chain.grow(1, rng, miss=0.35))
        libs.add(lc.final.height)
    assert len(libs) > 5 and lc.final.height > 20


def test_a_fork_and_a_reorganisation_above_finality_are_followed_like_a_full_node(tmp_path):
    chain = Chain()
    node = node_at(tmp_path, chain.sim.genesis)
    lc = LightClient(chain.sim.genesis)
    feed(lc, node, chain, chain.grow(1))
    fork = chain.fork()
    feed(lc, node, chain, chain.grow(2))
    # the fork skips a slot, then grows longer
    side = [fork.step(skip=1), fork.step()]
    feed(lc, node, fork, side)  # a side branch, then an equal height: the lower hash decides
    assert lc.get(side[0].hash) is not None
    b4 = fork.step()
    feed(lc, node, fork, [b4])
    assert lc.head.hash == fork.sim.state.head.hash == node.head.hash
    # a tie at equal height goes to the lower hash
    lc2, node2 = LightClient(chain.sim.genesis), node_at(tmp_path, chain.sim.genesis, "tie")
    c1 = Chain(chain.sim.genesis)
    feed(lc2, node2, c1, [c1.step()])
    c2 = c1.fork()
    x, y = c1.step(), c2.step(skip=1)
    feed(lc2, node2, c1, [x])
    feed(lc2, node2, c2, [y])
    assert lc2.head.hash == min(x.hash, y.hash)


def test_a_reorganisation_below_the_last_irreversible_header_is_refused(tmp_path):
    chain = Chain()
    node = node_at(tmp_path, chain.sim.genesis)
    lc = LightClient(chain.sim.genesis)
    early = chain.fork()
    feed(lc, node, chain, chain.grow(4))
    assert lc.final.height == node.lib >= 1
    # a longer branch that forks at the genesis, below the final header
    branch = [early.step(skip=1)] + early.grow(6)
    before = snapshot(lc)
    with pytest.raises(LightClientError) as info:
        lc.add_headers([b.header.encode() for b in branch])
    assert info.value.reason is Reason.BELOW_FINAL and info.value.accepted == 0
    assert snapshot(lc) == before
    with pytest.raises(BlockRejected):  # the full node refuses it too
        for b in branch:
            node.receive_block(b)
    assert node.head.hash == lc.head.hash


def test_random_forks_agree_with_a_full_node(tmp_path):
    rng = random.Random(11)
    chain = Chain()
    node = node_at(tmp_path, chain.sim.genesis)
    lc = LightClient(chain.sim.genesis)
    branches = [chain]
    reorgs = refusals = 0
    for _ in range(120):
        head_before = lc.head
        src = rng.choice(branches)
        if rng.random() < 0.25:
            src = src.fork()
            branches.append(src)
        b = src.step(skip=rng.choice([0, 0, 0, 1, 2]))
        try:
            node.receive_block(b)
            node_ok = True
        except BlockRejected:
            node_ok = False
        try:
            lc.add_headers([b.header.encode()], src.changes([b]))
            lc_ok = True
        except LightClientError as exc:
            assert exc.reason in (Reason.BELOW_FINAL, Reason.UNKNOWN_PARENT)
            lc_ok = False
            refusals += 1
        if node_ok and not lc_ok:
            # the client refuses a side branch forking below finality at once; the node keeps it on
            # the side (it can never become canonical there either)
            assert node.head.hash == lc.head.hash
        assert (lc.head.hash, lc.final.height) == (node.head.hash, node.lib)
        reorgs += lc.head.prev_hash != head_before.hash and lc.head.hash != head_before.hash
        branches = branches[-4:]
    assert reorgs >= 5 and refusals >= 1 and lc.final.height > 10


# --- inclusion proofs ----------------------------------------------------------------------------


def test_inclusion_proofs_of_real_transactions():
    chain = Chain()
    w = Wallet(ALICE, chain.sim)
    txs = [w.send(BOB, i + 1) for i in range(5)]
    blocks = chain.grow(1) + [chain.step(txs)] + chain.grow(1)
    lc = LightClient(chain.sim.genesis)
    lc.add_headers(chain.raw(blocks))
    body = list(blocks[1].txs)
    for i, tx in enumerate(txs):
        path = merkle.inclusion_proof(body, i)
        rpc = {"tx_root": blocks[1].header.tx_root.hex(), "tree_size": len(body), "index": i, "path": [p.hex() for p in path]}
        assert lc.verify_inclusion(tx.raw, 2, rpc)
        assert lc.verify_inclusion(tx.raw.hex(), 2, path, index=i, size=len(body))
        assert lc.verify_inclusion(tx.hash, 2, {**rpc, "raw": tx.raw.hex()})
        assert not lc.verify_inclusion(tx.hash, 2, rpc)  # a hash alone is not a leaf
        assert not lc.verify_inclusion(tx.raw, 3, rpc)  # another block
        assert not lc.verify_inclusion(tx.raw, 2, {**rpc, "index": (i + 1) % 5})
    tampered = bytearray(txs[0].raw)
    tampered[-1] ^= 1
    path = merkle.inclusion_proof(body, 0)
    assert not lc.verify_inclusion(bytes(tampered), 2, path, index=0, size=5)
    assert not lc.verify_inclusion(txs[0].raw, 2, [path[0][:-1] + b"\x00"] + path[1:], index=0, size=5)
    assert not lc.verify_inclusion(txs[0].raw, 2, {"index": "x", "path": []})
    assert not lc.verify_inclusion(txs[1].hash, 2, {**merkle_rpc(body, 1), "raw": txs[0].raw.hex()})
    with pytest.raises(LightClientError) as info:
        lc.verify_inclusion(txs[0].raw, 9, path, index=0, size=5)
    assert info.value.reason is Reason.NOT_STORED
    with pytest.raises(LightClientError):
        lc.verify_inclusion(txs[0].raw, 2, path, index=0, size=5, final_only=True)


def merkle_rpc(body, i):
    return {"tree_size": len(body), "index": i, "path": [p.hex() for p in merkle.inclusion_proof(body, i)]}


# --- the window, the follower and the node-side proof --------------------------------------------


def test_the_window_keeps_memory_bounded():
    chain = Chain()
    lc = LightClient(chain.sim.genesis, window=8)
    blocks = chain.grow(200)
    lc.add_headers(chain.raw(blocks), chain.changes(blocks))
    assert lc.head.height == 200 and lc.final.height >= 196
    assert len(lc._by_hash) <= 8 + 3 * 4 + 2 + 32 and len(lc._elected) < 20  # pruned every 32 headers
    assert lc.header_at(200) is not None and lc.header_at(100) is None


def test_changes_proof_served_by_a_full_node_matches_the_committed_changes(tmp_path):
    chain = Chain()
    node = node_at(tmp_path, chain.sim.genesis)
    elect_outsiders(chain)
    chain.grow(10, random.Random(3), miss=0.3)
    for b in chain.sim.blocks:
        node.receive_block(b)
    for b in chain.sim.blocks:
        assert changes_proof(node, b.header.height) == chain.proofs[b.hash]
    # Round ends are kept as they are committed (served without reading undo records); other
    # blocks' are rebuilt, and both give the committed bytes above.
    kept = [b for b in chain.sim.blocks if node.store.changes(b.hash) is not None]
    assert kept and all(dpos.is_round_end(b.header.height, node.constants) for b in kept)
    assert len(kept) == sum(dpos.is_round_end(b.header.height, node.constants) for b in chain.sim.blocks)
    assert changes_proof(node, 0) is None and changes_proof(node, 99) is None


def test_the_follower_syncs_and_steps_back_to_a_new_branch(tmp_path):
    chain = Chain()
    elect_outsiders(chain)
    common = chain.grow(5)
    fork = chain.fork()
    chain.grow(2)
    fork.step(skip=1)
    fork.grow(4)
    source = {"chain": chain}
    calls = []

    async def fetch_headers(start, count):
        calls.append(start)
        blocks = source["chain"].sim.blocks
        return [b.header.encode().hex() for b in blocks if start <= b.header.height < start + count]

    def fetch_changes(height):
        blocks = source["chain"].sim.blocks
        return source["chain"].proofs[blocks[height - 1].hash]

    lc = LightClient(chain.sim.genesis)
    assert asyncio.run(sync_once(lc, fetch_headers, batch=3, fetch_changes=fetch_changes)) == 8
    assert lc.head.hash == chain.sim.state.head.hash
    source["chain"] = fork  # the source reorganised onto a longer branch
    assert asyncio.run(sync_once(lc, fetch_headers, batch=3, fetch_changes=fetch_changes)) == 5
    assert lc.head.hash == fork.sim.state.head.hash and len(common) == 5

    async def run_follow():
        stop = asyncio.Event()
        errors = []
        more = fork.grow(3)
        task = asyncio.create_task(follow(lc, fetch_headers, batch=2, interval=0.01, fetch_changes=fetch_changes,
                                          stop=stop, on_error=errors.append))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if lc.head.hash == more[-1].hash:
                break
        stop.set()
        await task
        return errors

    assert asyncio.run(run_follow()) == [] and lc.head.hash == fork.sim.state.head.hash


def test_the_follower_survives_a_lying_source():
    chain = Chain()
    blocks = chain.grow(3)
    lc = LightClient(chain.sim.genesis)

    def liar(start, count):
        if start == 1:
            return [blocks[0].header.encode(), b"\x00garbage"]
        raise ConnectionError("source down")

    async def run():
        errors = []
        stop = asyncio.Event()
        task = asyncio.create_task(follow(lc, liar, interval=0.01, stop=stop, on_error=errors.append))
        await asyncio.sleep(0.05)
        stop.set()
        await task
        return errors

    errors = asyncio.run(run())
    assert lc.head.height == 1
    assert any(isinstance(e, LightClientError) and e.reason is Reason.BAD_ENCODING for e in errors)
    assert any(isinstance(e, ConnectionError) for e in errors)


def test_the_follower_against_a_full_node_through_an_election(tmp_path):
    chain = Chain()
    node = node_at(tmp_path, chain.sim.genesis)
    elect_outsiders(chain)
    chain.grow(14, random.Random(5), miss=0.3)
    for b in chain.sim.blocks:
        node.receive_block(b)

    def fetch_headers(start, count):  # what GET /headers?from=&count= gives, "raw" of each
        out = []
        for height in range(start, min(start + count, node.head.height + 1)):
            out.append(node.store.canonical_block(height).header.encode().hex())
        return out

    lc = LightClient(chain.sim.genesis)
    added = asyncio.run(sync_once(lc, fetch_headers, batch=4, fetch_changes=lambda h: changes_proof(node, h)))
    assert added == 15 and lc.head.hash == node.head.hash and lc.final.height == node.lib
    assert lc.needs_schedule_proof() == []
