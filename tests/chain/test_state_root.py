"""The state root: one root per set of entries, whatever the order of changes, undos and restarts;
proofs of presence and absence that check, and every tampered proof refused."""

from __future__ import annotations

import hashlib

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.chain.node.node import ChainNode
from hub.chain.protocol import statetree
from hub.chain.protocol.block import Block, Header
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.errors import BlockRejected
from hub.chain.protocol.state import Head
from hub.chain.protocol.statetree import EMPTY_ROOT, StateProofError, build, verify

from tests.chain.chainkit import Sim, Wallet, addr, key, make_genesis

PRODUCERS = [key(f"sr-producer{i}") for i in range(4)]
ALICE, BOB = key("sr-alice"), key("sr-bob")


def genesis():
    return make_genesis(PRODUCERS, {ALICE: 100 * RUFF, BOB: 100 * RUFF})


def scratch_root(state) -> bytes:
    """The reference: a tree built from the whole ledger at once."""
    return build((ns, k, v) for ns, table in sorted(state.ns.items()) for k, v in sorted(table.items())).root()


# A few keys per namespace, so sequences overwrite, delete and re-create the same keys.
_ADDRESSES = [hashlib.sha256(bytes([i])).digest()[:20] for i in range(6)]
_WRITES = st.one_of(
    st.tuples(st.just("acct"), st.sampled_from(_ADDRESSES),
              st.one_of(st.none(), st.tuples(st.integers(0, 2**63 - 1), st.integers(0, 50)))),
    st.tuples(st.just("vote"), st.sampled_from(_ADDRESSES),
              st.one_of(st.none(), st.lists(st.sampled_from(_ADDRESSES), max_size=3, unique=True)
                        .map(lambda xs: tuple(sorted(xs))))),
    st.tuples(st.just("name"), st.sampled_from(["a", "b", "zz"]), st.one_of(st.none(), st.sampled_from(_ADDRESSES))),
    st.tuples(st.just("ban"), st.sampled_from(_ADDRESSES), st.one_of(st.none(), st.integers(0, 10**12))),
    st.tuples(st.just("meta"), st.sampled_from(["supply", "round", "x"]), st.one_of(st.none(), st.integers(0, 10**9))),
)
# A step: a block of writes (committed), or an undo of the newest block still applied.
_STEPS = st.lists(st.one_of(st.lists(_WRITES, max_size=8), st.just("undo")), max_size=25)


@settings(max_examples=60, deadline=None)
@given(_STEPS)
def test_random_changes_and_undos_give_the_root_of_a_from_scratch_build(steps):
    state = genesis().state()
    assert state.state_root() == scratch_root(state) != EMPTY_ROOT  # the genesis state has a root too
    undos: list[tuple[list, Head]] = []
    for step in steps:
        if step == "undo":
            if undos:
                undo, head = undos.pop()
                state.revert(undo, head)
        else:
            head = state.head
            state.begin()
            for ns, k, v in step:
                state.set(ns, k, v)
            _, undo = state.commit()
            undos.append((undo, head))
        assert state.state_root() == scratch_root(state)
    while undos:  # all the way back: the genesis root again
        state.revert(*undos.pop())
    assert state.state_root() == genesis().state().state_root()


def test_proofs_of_presence_and_absence_check_and_tampered_ones_are_refused():
    state = genesis().state()
    root = state.state_root()
    alice = addr(ALICE)
    proof = state.tree.prove("acct", alice)
    assert verify(root, "acct", alice, proof) == (True, (100 * RUFF, 0))
    assert verify(root, "acct", alice, statetree.encode_proof(proof)) == (True, (100 * RUFF, 0))  # hex form
    nobody = b"\x07" * 20
    absent = state.tree.prove("acct", nobody)
    assert verify(root, "acct", nobody, absent) == (False, None)
    elected = state.tree.prove("meta", "elected")  # any namespace: here the producer set
    assert verify(root, "meta", "elected", elected)[1] == tuple(sorted(k.public_key for k in PRODUCERS))

    entry = proof["entries"][0]
    richer = entry[:-1] + bytes([entry[-1] ^ 1])  # the nonce (last byte) changed
    tampered = {
        "value changed": {**proof, "entries": [richer]},
        "entry dropped (the key shown absent)": {**proof, "entries": []},
        "sibling changed": {**proof, "path": [bytes(32)] + proof["path"][1:]},
        "path too short": {**proof, "path": proof["path"][:-1]},
        "another bucket": {**proof, "bucket": proof["bucket"] ^ 1},
        "entry repeated": {**proof, "entries": [entry, entry]},
        "not CBOR": {**proof, "entries": [b"\xff"]},
        "not a map": [proof["bucket"], proof["entries"], proof["path"]],
    }
    for what, bad in tampered.items():
        with pytest.raises(StateProofError):
            verify(root, "acct", alice, bad)
            pytest.fail(what)
    with pytest.raises(StateProofError):  # a real proof of another key says nothing about this one
        verify(root, "acct", nobody, proof)
    with pytest.raises(StateProofError):  # nor does a proof against another root
        verify(hashlib.sha256(b"other").digest(), "acct", alice, proof)


def _naive_root(entries) -> bytes:
    """The definition in docs/chain.md, written out plainly: every one of the 2**16 buckets hashed,
    then the levels pairwise."""
    sha = lambda b: hashlib.sha256(b).digest()  # noqa: E731
    buckets: dict[int, list[bytes]] = {}
    for ns, k, v in entries:
        b = int.from_bytes(sha(cbor2.dumps([ns, k], canonical=True))[:4], "big") >> 16
        buckets.setdefault(b, []).append(cbor2.dumps([ns, k, v], canonical=True))
    level = [sha(b"\x00" + b"".join(sorted(buckets.get(i, [])))) for i in range(2**16)]
    while len(level) > 1:
        level = [sha(b"\x01" + level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def test_the_root_of_a_fixed_state_is_pinned():
    """Golden vector: the encoding, bucket choice, prefixes and tree shape, all at once, against a
    plain reading of the definition. A change here is a hard fork."""
    entries = [("acct", b"\x01" * 20, (5, 1)), ("meta", "supply", 5), ("name", "n", b"\x01" * 20)]
    assert build(entries).root() == _naive_root(entries)
    assert build(entries).root().hex() == "71c782740faeedf95fd92002c8df138a0cd0f34c5be3e058b51ecaceb0a0fdfd"
    assert EMPTY_ROOT == build([]).root() == _naive_root([])


def test_a_block_whose_state_root_is_wrong_is_refused_and_changes_nothing(tmp_path):
    g = genesis()
    sim = Sim(g, PRODUCERS)
    node = ChainNode(tmp_path / "node", g)
    node.receive_block(sim.next_block([Wallet(ALICE, g).send(BOB, RUFF)]).block)
    good = sim.next_block().block
    owner = next(k for k in PRODUCERS if k.public_key == good.header.producer)
    lie = hashlib.sha256(b"lie").digest()
    lying = Block(Header(**{**good.header.body(), "state_root": lie}).signed(owner, g.hash), good.txs)
    before = node.state.digest(), node.head, node.state.state_root()
    with pytest.raises(BlockRejected, match="state root"):
        node.receive_block(lying)
    assert (node.state.digest(), node.head, node.state.state_root()) == before
    assert node.receive_block(good).status == "applied"
    assert node.state.state_root() == good.header.state_root == sim.state.state_root()
    node.close()


def test_a_restarted_node_has_the_root_of_its_head(tmp_path):
    g = genesis()
    node = ChainNode(tmp_path / "node", g, PRODUCERS[0])
    sim = Sim(g, PRODUCERS)
    wallet = Wallet(ALICE, g)
    for i in range(6):
        node.receive_block(sim.next_block([wallet.send(key(f"sr-new{i}"), RUFF)]).block)
    head_root = sim.blocks[-1].header.state_root
    assert node.state.state_root() == head_root
    node.close()
    again = ChainNode(tmp_path / "node", g, PRODUCERS[0])
    assert again.state.state_root() == head_root == scratch_root(again.state)
    again.close()
