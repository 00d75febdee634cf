"""The state transition: ``apply_block(state, block) -> Applied`` and its twin for producers.

Pure in the Ethereum-specs sense: the result depends on the state and the block only (no clock, no
I/O, no randomness, no floats, every iteration sorted). ``state`` is advanced in place and the
returned :class:`Applied` carries the block's sorted changes and their undo record; if the block is
invalid, :class:`BlockRejected` is raised and the state is exactly as before (and so it is whatever
else is raised: the node shell counts on that to refuse a block that trips a bug).

Signature checks dominate the cost, so ``verify`` can be a cache (the node remembers the hashes of
transactions whose signatures it already checked on mempool entry); without one every signature is
checked, which is what a block from elsewhere with unknown transactions gets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from hub.chain.protocol import dpos
from hub.chain.protocol.block import Block, Header, tx_root
from hub.chain.protocol.errors import BlockRejected, TxRejected
from hub.chain.protocol.headers import Parent, check_header
from hub.chain.protocol.rules import REWARDED_TYPES, BlockContext, apply_tx
from hub.chain.protocol.state import Change, Head, State, chain_state_hash
from hub.chain.protocol.tx import Transaction
from hub.crypto import keys
from hub.crypto.address import address_of
from hub.crypto.signing import Network

Verifier = Callable[[Transaction], bool]


@dataclass
class Applied:
    block: Block
    txs: list[Transaction]
    changes: list[Change]
    undo: list[Change]
    parent: Head  # the head before the block, which reverting it restores


def signature_verifier(network: Network) -> Verifier:
    def verify(tx: Transaction) -> bool:
        return keys.verify(tx.sender, tx.signing_bytes(network), tx.signature)
    return verify


#: Signatures :class:`_AheadVerifier` checks in one go; the most an invalid block makes it check
#: beyond the transaction that rejects it (~35 ms).
VERIFY_AHEAD = 512


class _AheadVerifier:
    """``apply_block``'s verifier when it is given none: when a transaction's verdict is asked for,
    the signatures of it and of the next ``VERIFY_AHEAD - 1`` of the block's transactions are
    checked back to back, and their verdicts remembered by transaction hash (the hash covers every
    byte the check reads).

    Verdicts are exactly ``signature_verifier``'s (a verdict depends on the transaction and the
    network only, never on the state or on the order of checks); only the time changes. Checked one at a
    time between the other rules' Python, the same checks took 0.15-0.25 s longer over a block of
    10,000 (``benchmarks/bench_chain_apply.py``), most likely because each libsodium call started
    with its tables pushed out of the CPU caches."""

    __slots__ = ("_txs", "_network", "_next", "_verdicts")

    def __init__(self, txs: list[Transaction], network: Network) -> None:
        self._txs = txs
        self._network = network
        self._next = 0
        self._verdicts: dict[bytes, bool] = {}

    def __call__(self, tx: Transaction) -> bool:
        verdict = self._verdicts.get(tx.hash)
        while verdict is None and self._next < len(self._txs):
            self._check_next()
            verdict = self._verdicts.get(tx.hash)
        if verdict is None:  # not one of the block's transactions
            verdict = keys.verify(tx.sender, tx.signing_bytes(self._network), tx.signature)
        return verdict

    def _check_next(self) -> None:
        network, verdicts, verify = self._network, self._verdicts, keys.verify
        start = self._next
        self._next = end = min(start + VERIFY_AHEAD, len(self._txs))
        for tx in self._txs[start:end]:
            if tx.hash not in verdicts:
                verdicts[tx.hash] = verify(tx.sender, tx.signing_bytes(network), tx.signature)


def _check_position(state: State, h: Header, *, signed: bool = True) -> tuple[bytes, ...]:
    """The header rules (:func:`headers.check_header`, the head as parent) and those only the
    state can judge; returns the round's producer order."""
    order = dpos.schedule_after(state)
    head = state.head
    if h.prev_hash != head.hash:
        raise BlockRejected("previous hash is not the head's hash")
    check_header(h, Parent(head.height, head.slot), state.network, state.genesis_time, state.constants, order,
                 signed=signed)
    if state.get("dq", address_of(h.producer)) is not None:
        raise BlockRejected("the producer is disqualified")
    return order


def _prologue(state: State, h: Header, order: tuple[bytes, ...]) -> BlockContext:
    c = state.constants
    if state.head.height % c.PRODUCERS == 0:
        state.set("meta", "order", order)
        state.set("meta", "round", h.round)
    for pk, count in dpos.missed_slots(order, state.head.slot + 1, h.slot):
        address = address_of(pk)
        state.set("miss", address, state.get("miss", address, 0) + count)
        state.set("ban", address, max(state.get("ban", address, 0), h.timestamp + c.BAN_DURATION))
    return BlockContext(h.height, h.timestamp, h.round, frozenset(address_of(pk) for pk in order))


def _epilogue(state: State, h: Header, fees: int, rewarded: bool) -> None:
    c = state.constants
    producer = address_of(h.producer)
    reward = c.BLOCK_REWARD if rewarded else 0
    if fees or reward:
        bal, nonce = state.get("acct", producer, (0, 0))
        state.set("acct", producer, (bal + fees + reward, nonce))
    if reward:
        state.set("meta", "supply", state.meta("supply") + reward)
        state.set("meta", "minted", state.meta("minted", 0) + reward)
    state.set("prod", producer, state.get("prod", producer, 0) + 1)
    dpos.note_signer(state, h.producer)
    if dpos.is_round_end(h.height, c):
        dpos.decide_polls(state, h.round)
        dpos.end_round(state, h.timestamp)


def apply_block(state: State, block: Block, verify: Verifier | None = None,
                decoded: Mapping[bytes, Transaction] | None = None) -> Applied:
    """``decoded``: transactions already decoded, keyed by their wire bytes (a node's mempool's
    and those its signature pre-check decoded). Decoding is pure, so reusing them changes nothing
    but the ~15 µs per transaction that every node would otherwise spend decoding each one a second
    time. Keyed by the bytes themselves, not their hash, so the lookup costs no SHA-256 (the
    block's bytes objects are the keys)."""
    h = block.header
    order = _check_position(state, h)
    if tx_root(block.txs) != h.tx_root:
        raise BlockRejected("transactions root does not match the transactions")
    if sum(len(t) for t in block.txs) > state.constants.MAX_BLOCK_BYTES:
        raise BlockRejected(f"transactions exceed {state.constants.MAX_BLOCK_BYTES} bytes")
    # Decoding is pure, so it is done first (up to the first undecodable transaction, whose
    # rejection is raised in its turn below, after the transactions before it were judged).
    txs: list[Transaction] = []
    undecodable: TxRejected | None = None
    for raw in block.txs:
        known = decoded.get(raw) if decoded else None
        if known is not None:
            txs.append(known)
            continue
        try:
            txs.append(Transaction.from_bytes(raw))
        except TxRejected as exc:
            undecodable = exc
            break
    verify = verify or _AheadVerifier(txs, state.network)
    parent = state.head
    state.begin()
    try:
        ctx = _prologue(state, h, order)
        fees = 0
        seen: set[bytes] = set()
        for index, tx in enumerate(txs):
            try:
                if tx.hash in seen:
                    raise BlockRejected(f"transaction {index} appears twice", tx_index=index)
                seen.add(tx.hash)
                fees += apply_tx(state, tx, ctx, verify)
            except TxRejected as exc:
                raise BlockRejected(f"transaction {index} is invalid: {exc}", tx_index=index, tx_reason=exc.reason) from None
        if undecodable is not None:
            index = len(txs)
            raise BlockRejected(f"transaction {index} is invalid: {undecodable}", tx_index=index,
                                tx_reason=undecodable.reason)
        _epilogue(state, h, fees, any(t.type in REWARDED_TYPES for t in txs))
    except BaseException:
        state.rollback()
        raise
    changes, undo = state.commit()
    try:  # whatever is raised from here on, the state is put back as it was
        state_hash = chain_state_hash(parent.state_hash, changes)
        if state_hash != h.state_hash:
            raise BlockRejected("state hash does not match the state the block leads to")
        if state.state_root() != h.state_root:
            raise BlockRejected("state root does not match the state the block leads to")
        state.head = Head(h.height, block.hash, h.slot, h.timestamp, state_hash)
    except BaseException:
        state.revert(undo, parent)
        raise
    return Applied(block, txs, changes, undo, parent)


@dataclass
class Built:
    applied: Applied
    rejected: list[tuple[Transaction, TxRejected]]


def build_block(state: State, key: keys.PrivateKey, slot: int, candidates: Iterable[Transaction],
                verify: Verifier | None = None) -> Built:
    """Produce the block for ``slot`` from ``candidates`` (in the order given, skipping invalid ones
    and ones that no longer fit) and advance ``state`` to it."""
    c = state.constants
    parent = state.head
    height = parent.height + 1
    draft = Header(state.chain_id, height, dpos.round_of(height, c), slot, dpos.slot_time(slot, state.genesis_time, c),
                   parent.hash, b"\x00" * 32, b"\x00" * 32, key.public_key)
    order = _check_position(state, draft, signed=False)
    verify = verify or signature_verifier(state.network)
    included: list[Transaction] = []
    rejected: list[tuple[Transaction, TxRejected]] = []
    room = c.MAX_BLOCK_BYTES
    state.begin()
    try:
        ctx = _prologue(state, draft, order)
        fees = 0
        for tx in candidates:
            if tx.size > room:
                continue
            try:
                fees += apply_tx(state, tx, ctx, verify)
            except TxRejected as exc:
                rejected.append((tx, exc))
                continue
            included.append(tx)
            room -= tx.size
        _epilogue(state, draft, fees, any(t.type in REWARDED_TYPES for t in included))
    except BaseException:
        state.rollback()
        raise
    changes, undo = state.commit()
    try:  # as in apply_block: whatever is raised from here on, the state is put back
        state_hash = chain_state_hash(parent.state_hash, changes)
        raws = tuple(t.raw for t in included)
        header = Header(**{**draft.body(), "tx_root": tx_root(raws), "state_hash": state_hash,
                           "state_root": state.state_root()}).signed(key, state.genesis_hash)
        block = Block(header, raws)
        state.head = Head(height, block.hash, slot, header.timestamp, state_hash)
    except BaseException:
        state.revert(undo, parent)
        raise
    return Built(Applied(block, included, changes, undo, parent), rejected)
