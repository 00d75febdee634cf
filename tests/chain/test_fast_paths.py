"""The fast paths of block application agree with the general ones on every input.

``apply_block``'s hot loop has shortcuts (signing bytes cut out of the wire bytes, the envelope's
field checks written out, signatures checked a chunk ahead when no verifier is given). Each is held
here to the plain form it replaces: same acceptance, same reason codes, same messages.
"""

from __future__ import annotations

import copy
import hashlib
import dataclasses
import enum

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.chain.protocol import transition
from hub.chain.protocol.block import Block, Header, tx_root
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.errors import BlockRejected, Reason, TxRejected
from hub.chain.protocol.state import chain_state_hash
from hub.chain.protocol.transition import apply_block, build_block, signature_verifier
from hub.chain.protocol.tx import Transaction
from hub.crypto import keys
from hub.crypto.encoding import encode
from hub.crypto.signing import Network, signing_bytes

from tests.chain.chainkit import CHAIN, Sim, Wallet, addr, key, make_genesis

_FIELDS = ("fee", "nonce", "payload", "sender", "sig", "type", "valid_until")


def reference_from_dict(d, raw=None) -> Transaction:
    """``Transaction.from_dict`` as first written: one isinstance test per field, in order."""
    if not isinstance(d, dict) or d.keys() != set(_FIELDS):
        have = sorted(d) if isinstance(d, dict) else type(d).__name__
        raise TxRejected(Reason.BAD_ENCODING, f"a transaction is a map of {', '.join(_FIELDS)}; got {have}")
    for name, kind in (("type", str), ("sender", bytes), ("sig", bytes), ("payload", dict)):
        if not isinstance(d[name], kind):
            raise TxRejected(Reason.BAD_ENCODING, f"{name} must be {kind.__name__}")
    for name in ("nonce", "fee", "valid_until"):
        v = d[name]
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**64:
            raise TxRejected(Reason.BAD_ENCODING, f"{name} must be an unsigned 64-bit integer")
    if len(d["sender"]) != keys.PUBLIC_KEY_SIZE:
        raise TxRejected(Reason.BAD_ENCODING, "sender must be a 32-byte public key")
    return Transaction(d["type"], d["sender"], d["nonce"], d["fee"], d["valid_until"], d["payload"], d["sig"], raw=raw)


class Small(enum.IntEnum):
    ONE = 1


class Bytes(bytes):
    pass


class Text(str):
    pass


class Map(dict):
    pass


_tricky = [True, False, Small.ONE, -1, 0, 2**64 - 1, 2**64, 1.0, None, "transfer", Text("transfer"), bytes(31),
           bytes(32), bytearray(32), Bytes(bytes(32)), memoryview(bytes(32)), bytes(64), Bytes(bytes(64)), {}, Map(), []]
_values = st.one_of(
    st.sampled_from(_tricky), st.integers(), st.floats(allow_nan=False), st.binary(max_size=70), st.text(max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.lists(st.integers(), max_size=2),
)
_good = {"fee": 10_000, "nonce": 1, "payload": {}, "sender": bytes(32), "sig": bytes(64), "type": "transfer",
         "valid_until": 5}


@st.composite
def envelope_dicts(draw):
    d = dict(_good)
    for name in draw(st.lists(st.sampled_from(_FIELDS), min_size=1, max_size=3)):  # a few fields off
        d[name] = draw(_values)
    if draw(st.integers(0, 9)) == 0:
        d.pop(draw(st.sampled_from(_FIELDS)))
    if draw(st.integers(0, 9)) == 0:
        d[draw(st.text(max_size=4))] = 0
    return d


def _outcome(fn, d):
    try:
        tx = fn(d, raw=b"raw")
    except TxRejected as exc:
        return ("rejected", exc.reason, str(exc))
    return ("ok", tx.type, tx.sender, tx.nonce, tx.fee, tx.valid_until, tx.payload, tx.signature)


@pytest.mark.parametrize("name", _FIELDS)
def test_from_dict_agrees_with_the_reference_on_each_awkward_field_value(name):
    for value in _tricky:
        d = {**_good, name: value}
        assert _outcome(Transaction.from_dict, d) == _outcome(reference_from_dict, d), (name, value)


@settings(max_examples=1000, deadline=None)
@given(envelope_dicts())
def test_from_dict_agrees_with_the_reference(d):
    assert _outcome(Transaction.from_dict, d) == _outcome(reference_from_dict, d)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["transfer", "vote", "x" * 30]),
       st.one_of(st.integers(0, 30), st.integers(0, 2**64 - 1)),
       st.one_of(st.integers(0, 30), st.integers(0, 2**64 - 1)),
       st.integers(0, 2**64 - 1),
       st.dictionaries(st.text(max_size=8), st.one_of(st.integers(0, 2**40), st.binary(max_size=40)), max_size=3),
       st.one_of(st.just(bytes(64)), st.binary(max_size=80)),
       st.sampled_from(["testnet", "", "m" * 40, "é"]), st.binary(min_size=32, max_size=32))
def test_signing_bytes_cut_from_the_wire_form_equal_the_generic_encoding(tx_type, fee, nonce, valid_until, payload, sig,
                                                                         chain_id, genesis_hash):
    tx = Transaction(tx_type, bytes(range(32)), nonce, fee, valid_until, payload, sig)
    network = Network(chain_id, genesis_hash)
    assert tx.signing_bytes(network) == signing_bytes("tx", network, tx.body())


# --- apply_block without a verifier checks signatures ahead, with the same verdicts -------------------

SENDERS = [key(f"ahead-sender{i}") for i in range(3)]
PRODUCER = key("ahead-producer")
KINDS = ["ok", "ok", "ok", "bad_sig", "foreign", "garbage", "nonce_high", "duplicate"]


def _sim() -> Sim:
    return Sim(make_genesis([PRODUCER], {k: 1000 * RUFF for k in SENDERS}), [PRODUCER])


def _block(s: Sim, items: list[tuple[str, int]]) -> tuple[Block, tuple[int, str | None] | None]:
    """A block of the given kinds of transaction (state hash left zero) and its first bad one."""
    wallets = [Wallet(k, s) for k in SENDERS]
    raws: list[bytes] = []
    first_bad = None
    for index, (kind, who) in enumerate(items):
        w = wallets[who]
        if kind == "garbage":
            raw, reason = b"\xa1\x61x\x01" + bytes([index % 256]), Reason.BAD_ENCODING
        elif kind == "duplicate" and raws:
            raw, reason = raws[-1], None
        elif kind == "nonce_high":
            raw, reason = w.tx("transfer", {"to": addr(SENDERS[0]), "amount": 1}, nonce=w.nonce + 5).raw, Reason.NONCE_TOO_HIGH
        elif kind == "foreign":
            raw, reason = Wallet(w.key, Network(s.network.chain_id, bytes(32))).tx("transfer", {"to": addr(SENDERS[0]), "amount": 1}, nonce=w.nonce + 1).raw, Reason.BAD_SIGNATURE
        elif kind == "bad_sig":
            t = w.tx("transfer", {"to": addr(SENDERS[0]), "amount": 1}, nonce=w.nonce + 1)
            forged = bytes([t.signature[0] ^ 1]) + t.signature[1:]
            raw, reason = Transaction(t.type, t.sender, t.nonce, t.fee, t.valid_until, t.payload, forged).raw, Reason.BAD_SIGNATURE
        else:
            raw, reason = w.send(SENDERS[(who + 1) % 3], 1 + index).raw, "ok"
        raws.append(raw)
        if reason != "ok" and first_bad is None:
            first_bad = (index, reason)
    slot = s.state.head.slot + 1
    draft = build_block(copy.deepcopy(s.state), PRODUCER, slot, []).applied.block.header
    header = Header(**{**draft.body(), "tx_root": tx_root(raws), "state_hash": bytes(32)}).signed(PRODUCER, s.genesis.hash)
    return Block(header, tuple(raws)), first_bad


def _apply(s: Sim, block: Block, verify):
    state = copy.deepcopy(s.state)
    try:
        apply_block(state, block, verify)
    except BlockRejected as exc:
        assert state.digest() == s.state.digest() and state.head == s.state.head
        return (str(exc), exc.tx_index, exc.tx_reason)
    raise AssertionError("a block with a zero state hash was accepted")


@pytest.fixture(scope="module")
def ahead_sim() -> Sim:
    return _sim()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 2)), max_size=14), st.integers(1, 5))
def test_checking_signatures_ahead_gives_the_one_at_a_time_verdicts(ahead_sim, monkeypatch, items, ahead):
    monkeypatch.setattr(transition, "VERIFY_AHEAD", ahead)
    block, first_bad = _block(ahead_sim, items)
    default = _apply(ahead_sim, block, None)
    assert default == _apply(ahead_sim, block, signature_verifier(ahead_sim.network))
    message, index, reason = default
    if first_bad is None:
        assert "state hash" in message and index is None
    else:
        assert (index, reason) == first_bad
        assert message.startswith(f"transaction {index} ")


def test_signatures_are_checked_at_most_a_chunk_beyond_the_rejected_transaction(monkeypatch):
    s = _sim()
    monkeypatch.setattr(transition, "VERIFY_AHEAD", 4)
    calls = []
    real = keys.verify
    monkeypatch.setattr(keys, "verify", lambda *a: calls.append(1) or real(*a))
    block, first_bad = _block(s, [("ok", i % 3) for i in range(5)] + [("nonce_high", 0)] + [("ok", 1)] * 20)
    assert _apply(s, block, None)[1:] == first_bad == (5, Reason.NONCE_TOO_HIGH)
    assert len(calls) == 1 + 8  # the producer's signature, then two chunks of four


def test_reusing_already_decoded_transactions_changes_nothing():
    """A node hands ``apply_block`` its mempool's decoded transactions; the state, changes and
    transactions must be those of decoding the block's bytes, for known and unknown ones mixed."""
    alice, bob = key("reuse-alice"), key("reuse-bob")
    producers = [key(f"reuse-p{i}") for i in range(4)]
    sim = Sim(make_genesis(producers, {alice: 100 * RUFF}), producers)
    wallet = Wallet(alice, sim)
    txs = [wallet.send(bob, i + 1) for i in range(20)]
    plain, reused = copy.deepcopy(sim.state), copy.deepcopy(sim.state)
    block = sim.next_block(txs).block
    known = {tx.raw: Transaction.from_bytes(tx.raw) for tx in txs[::2]}  # half of them "in the mempool"
    a = apply_block(plain, block)
    b = apply_block(reused, block, decoded=known)
    assert a.changes == b.changes and plain.digest() == reused.digest() and plain.head == reused.head
    assert [t.raw for t in a.txs] == [t.raw for t in b.txs] == list(block.txs)
    assert all(b.txs[i] is known[txs[i].raw] for i in range(0, 20, 2))


def test_a_blocks_remembered_encoding_is_the_one_its_fields_give():
    """A block keeps its encoding (made once, or the bytes it was decoded from), so a node does
    not encode a block of thousands of transactions again to store and to relay it."""
    alice, bob = key("enc-alice"), key("enc-bob")
    producers = [key(f"enc-p{i}") for i in range(4)]
    sim = Sim(make_genesis(producers, {alice: 100 * RUFF}), producers)
    wallet = Wallet(alice, sim)
    block = sim.next_block([wallet.send(bob, i + 1) for i in range(5)]).block
    generic = lambda b: encode({"header": b.header.as_dict(), "txs": list(b.txs)})  # noqa: E731
    wire = block.encode()
    assert wire == generic(block)
    received = Block.decode(wire)
    assert received == block and received.encode() == wire
    other = dataclasses.replace(received, txs=received.txs[:2])  # not the bytes it was decoded from
    assert other.encode() == generic(other) != wire


def test_the_state_hash_encodes_each_change_as_a_three_element_array():
    """The consensus definition, written out with lists, against the tuples the node hands over."""
    changes = [("acct", bytes(range(20)), (10**12, 7)), ("ban", bytes(20), None), ("meta", "order", (bytes(32), b"\x01" * 32)),
               ("name", "alice", bytes(20)), ("pvote", bytes(52), True)]
    previous = bytes(range(32))
    plain = hashlib.sha256(previous + hashlib.sha256(encode([[ns, k, list(v) if isinstance(v, tuple) else v]
                                                             for ns, k, v in changes])).digest()).digest()
    assert chain_state_hash(previous, changes) == plain
