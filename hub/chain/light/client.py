"""A light client of the Ruff chain: headers, producer schedules, fork choice, finality, proofs.

It keeps no block bodies and no state. It checks every header the way ``apply_block`` checks a
block's position (chain id, height, round, previous hash, slot after the parent's, timestamp at the
slot's start, producer = the slot's owner in the round's order, producer signature), applies the
full nodes' fork choice (most blocks, ties by lower hash) and their last-irreversible rule
(BitShares-style, the same walk as ``ChainNode._compute_lib``), and never reverts below its last
irreversible header. Transaction inclusion is checked with RFC 6962 audit paths against a stored
header's ``tx_root``, and any state entry (a balance, a candidacy, a vote; its presence or its
absence) with a state proof against a stored header's ``state_root`` (:meth:`LightClient.verify_state`).

**How it learns each round's producers** (the part a stateless client cannot compute: the election
needs balances and votes). The genesis producer set is trusted (the genesis hash commits to it).
For every later round it needs a *schedule proof* for the previous round's last block B: the
deterministic-CBOR list of B's sorted state changes (``[[namespace, key, new value], ...]``, exactly
what the state hash commits to). The header's state hash is
``SHA-256(parent.state_hash ‖ SHA-256(changes))`` and both state hashes are in signed headers, so
the list is exactly what B's producer committed to. The elected set is the value of
``("meta", "elected")`` in it; when that key is absent the set stays (``State.commit`` records only
changed keys). Round r's order is then ``producer_order(set, B.hash)``.

A new set is accepted only as the protocol lets it take effect (the pending schedule,
``dpos.end_round``): it must be the ``("meta", "pending")`` result committed at the round end before
B, and more than 2/3 of the producers of B's round must have signed one of its headers. So one
dishonest round-end producer cannot move the client to a set of its making: the set was committed a
round earlier and more than 2/3 of the producers built on it. What stays unverified is that the
election itself was computed correctly (that needs the state). Without a proof the headers of the
next round are refused with ``schedule_unproven`` (or, with ``assume_unchanged_schedule=True``, the
set is assumed unchanged: fine for devnets without elections, a liveness risk only, see
docs/light-client.md).

Errors are :class:`LightClientError` with a :class:`Reason`, the height (when known) and a message;
a refused header changes nothing (headers before it in the same call stay accepted).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hub.chain.protocol import dpos, forkchoice, statetree
from hub.chain.protocol.block import BlockFormatError, Header
from hub.chain.protocol.genesis import Genesis
from hub.chain.protocol.headers import HeaderRejected, Parent, check_header
from hub.crypto import merkle
from hub.crypto.encoding import DecodeError, decode, encode

#: Canonical headers kept below the head (and below the last irreversible header) at the least.
DEFAULT_WINDOW = 1024


class Reason(StrEnum):
    BAD_ENCODING = "bad_encoding"  # not a canonical signed header
    WRONG_CHAIN = "wrong_chain"
    UNKNOWN_PARENT = "unknown_parent"  # the previous hash names no header this client holds
    BAD_HEIGHT = "bad_height"  # height is not the parent's + 1
    BAD_ROUND = "bad_round"
    BAD_SLOT = "bad_slot"  # slot not after the parent's
    BAD_TIMESTAMP = "bad_timestamp"  # not the start of its slot
    WRONG_PRODUCER = "wrong_producer"  # not the owner of its slot in the round's order
    BAD_SIGNATURE = "bad_signature"
    SCHEDULE_UNPROVEN = "schedule_unproven"  # the round's producer set is not known (no proof yet)
    BAD_SCHEDULE_PROOF = "bad_schedule_proof"  # the changes list does not hash to the state hash
    BELOW_FINAL = "below_final"  # a branch that forks below the last irreversible header
    NOT_STORED = "not_stored"  # a height outside the kept window (inclusion proofs)
    BAD_STATE_PROOF = "bad_state_proof"  # a state proof that does not lead to the header's state root


class LightClientError(ValueError):
    def __init__(self, reason: Reason, message: str, height: int | None = None, accepted: int = 0) -> None:
        self.reason = reason
        self.height = height
        self.detail = message
        self.accepted = accepted  # headers of the same add_headers call accepted before this one
        where = f" at height {height}" if height is not None else ""
        super().__init__(f"{reason.value}{where}: {message}")


@dataclass(frozen=True)
class LightHeader:
    """A stored header (the genesis has ``header`` None). ``anchor`` is the hash of the last block of
    the previous round on this header's branch: the seed of its round's order."""

    height: int
    hash: bytes
    slot: int
    timestamp: int
    prev_hash: bytes
    state_hash: bytes
    tx_root: bytes
    producer: bytes
    anchor: bytes
    schedule_size: int
    header: Header | None
    state_root: bytes = b"\x00" * 32


def _decode_header(item: Any) -> Header:
    if isinstance(item, Header):
        try:  # a Header built in memory gets the same field checks as decoded bytes
            return Header.from_dict(item.as_dict())
        except BlockFormatError as exc:
            raise LightClientError(Reason.BAD_ENCODING, str(exc)) from None
    if isinstance(item, str):
        try:
            item = bytes.fromhex(item)
        except ValueError:
            raise LightClientError(Reason.BAD_ENCODING, "header text is not hex") from None
    if not isinstance(item, (bytes, bytearray, memoryview)):
        raise LightClientError(Reason.BAD_ENCODING, f"expected header bytes, got {type(item).__name__}")
    try:
        header = Header.from_dict(decode(bytes(item)))
    except (DecodeError, BlockFormatError) as exc:
        raise LightClientError(Reason.BAD_ENCODING, str(exc)) from None
    return header


def schedule_from_changes(changes: bytes, parent_state_hash: bytes, state_hash: bytes,
                          height: int) -> tuple[tuple[bytes, ...] | None, tuple[bytes, ...] | None]:
    """Check a schedule proof (the encoded change list of a round's last block) against the header
    hashes and return what it writes to ``("meta", "elected")`` (the next round's producers) and to
    ``("meta", "pending")`` (the result waiting a round), each sorted; None where it writes nothing."""
    if sha256(parent_state_hash + sha256(changes)) != state_hash:
        raise LightClientError(Reason.BAD_SCHEDULE_PROOF, "the changes do not hash to the header's state hash", height)
    try:
        items = decode(changes)
    except DecodeError as exc:  # pragma: no cover - hashed bytes came from an encoder
        raise LightClientError(Reason.BAD_SCHEDULE_PROOF, f"changes are not canonical CBOR: {exc}", height) from None
    if not isinstance(items, list):
        raise LightClientError(Reason.BAD_SCHEDULE_PROOF, "changes are not a list", height)
    found: dict[str, tuple[bytes, ...]] = {}
    for item in items:
        if isinstance(item, list) and len(item) == 3 and item[0] == "meta" and item[1] in ("elected", "pending"):
            value = item[2]
            if (not isinstance(value, list) or not value or len(set(value)) != len(value)
                    or not all(isinstance(pk, bytes) and len(pk) == 32 for pk in value)):
                raise LightClientError(Reason.BAD_SCHEDULE_PROOF, f"the {item[1]} set in the changes is malformed", height)
            found[item[1]] = tuple(sorted(value))
    return found.get("elected"), found.get("pending")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class LightClient:
    """Follows one chain's headers from its genesis. Not thread-safe: use one task or a lock."""

    def __init__(self, genesis: Genesis, *, window: int = DEFAULT_WINDOW, assume_unchanged_schedule: bool = False) -> None:
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.network = genesis.network
        self.constants = genesis.rules()
        self.genesis_time = genesis.genesis_time
        self.assume_unchanged_schedule = assume_unchanged_schedule
        self.window = max(window, 1)
        state = genesis.state()
        producers = tuple(sorted(state.meta("elected")))
        g = LightHeader(0, genesis.hash, 0, genesis.genesis_time, b"\x00" * 32, state.head.state_hash,
                        b"\x00" * 32, b"", genesis.hash, len(producers), None, state.state_root())
        self._by_hash: dict[bytes, LightHeader] = {g.hash: g}
        self._canon: dict[int, bytes] = {0: g.hash}
        # round-end hash (or the genesis hash) -> the set elected there (None: not proven yet)
        self._elected: dict[bytes, tuple[bytes, ...] | None] = {g.hash: producers}
        # round-end hash -> the result pending there, () for none; absent: not known
        self._pending: dict[bytes, tuple[bytes, ...]] = {g.hash: ()}
        self._orders: dict[bytes, tuple[bytes, ...]] = {}
        self._head = g
        self._final = g
        self._since_prune = 0

    # --- reading -----------------------------------------------------------------------------------
    @property
    def head(self) -> LightHeader:
        return self._head

    @property
    def final(self) -> LightHeader:
        """The last irreversible header (the genesis until one is)."""
        return self._final

    def header_at(self, height: int) -> LightHeader | None:
        """The head chain's header at ``height`` if it is still in the window."""
        h = self._canon.get(height)
        return self._by_hash[h] if h is not None else None

    def lowest_kept(self) -> int:
        """The lowest height above the genesis whose head-chain header is still kept (0: none)."""
        return min((h for h in self._canon if h > 0), default=0)

    def get(self, block_hash: bytes) -> LightHeader | None:
        return self._by_hash.get(block_hash)

    def schedule(self, height: int | None = None) -> tuple[bytes, ...] | None:
        """The producer order of the round of the head chain's block at ``height`` (default: the
        block after the head); None when that round's set is not proven."""
        if height is None:
            parent = self._head
        else:
            parent = self.header_at(height - 1) if height > 0 else None
            if parent is None:
                return None
        anchor = parent.hash if parent.height % self.constants.PRODUCERS == 0 else parent.anchor
        return self._order(anchor)

    def needs_schedule_proof(self) -> list[tuple[int, bytes]]:
        """(height, hash) of stored round-end headers whose schedule proof is still missing."""
        out = []
        for blk_hash, elected in self._elected.items():
            if elected is None and blk_hash in self._by_hash:
                out.append((self._by_hash[blk_hash].height, blk_hash))
        return sorted(out)

    # --- ingesting ---------------------------------------------------------------------------------
    def add_headers(self, headers: Iterable[Any], changes: Mapping[int | bytes, bytes] | None = None) -> int:
        """Check and store headers in order (raw bytes, hex or :class:`Header`); ``changes`` maps the
        height (or hash) of a round's last block to its schedule proof. Returns how many were new. Raises
        :class:`LightClientError` at the first bad header (``accepted`` counts those stored before)."""
        added = 0
        for item in headers:
            try:
                header = _decode_header(item)
                proof = (changes.get(header.hash, changes.get(header.height)) if changes else None)
                if self._add(header, proof):
                    added += 1
            except LightClientError as exc:
                exc.accepted = added
                raise
        return added

    def add_header(self, item: Any, changes: bytes | None = None) -> bool:
        """One header; True if it was new."""
        header = _decode_header(item)
        return self._add(header, changes)

    def add_schedule_proof(self, block: int | bytes, changes: bytes | list) -> tuple[bytes, ...]:
        """Prove the set elected at a stored round-end header (by height on the head chain, or hash)
        after the fact; returns the set."""
        entry = self._by_hash.get(block) if isinstance(block, bytes) else self.header_at(block)
        if entry is None or entry.height == 0 or entry.height % self.constants.PRODUCERS:
            raise LightClientError(Reason.NOT_STORED, "no stored round-end header there",
                                   block if isinstance(block, int) else None)
        parent = self._by_hash.get(entry.prev_hash)
        if parent is None:
            raise LightClientError(Reason.NOT_STORED, "the header's parent is no longer stored", entry.height)
        raw = changes if isinstance(changes, bytes) else encode([list(c) for c in changes])
        order = self._order(entry.anchor) or ()
        signers = {entry.producer} | self._round_signers(parent, entry.anchor)
        elected, pending = self._check_schedule(raw, parent, entry.state_hash, entry.anchor, order, signers, entry.height)
        self._elected[entry.hash] = elected
        if pending is not None:
            self._pending[entry.hash] = pending
        return elected

    def _round_signers(self, cursor: LightHeader, anchor: bytes) -> set[bytes]:
        """The producers of ``cursor`` and its ancestors down to (not including) ``anchor``."""
        out: set[bytes] = set()
        while cursor.hash != anchor:
            out.add(cursor.producer)
            previous = self._by_hash.get(cursor.prev_hash)
            if previous is None:
                raise LightClientError(Reason.NOT_STORED, "the round's headers are no longer all kept, so who "
                                       "signed in it cannot be counted", cursor.height)
            cursor = previous
        return out

    def _check_schedule(self, raw: bytes, parent: LightHeader, state_hash: bytes, anchor: bytes,
                        order: tuple[bytes, ...], signers: set[bytes], height: int
                        ) -> tuple[tuple[bytes, ...], tuple[bytes, ...] | None]:
        """The next round's set and the pending result at a round end, from its schedule proof,
        refusing a set that the protocol would not have let take effect there."""
        elected, pending = schedule_from_changes(raw, parent.state_hash, state_hash, height)
        before = self._pending.get(anchor)
        if pending is None:
            pending = before  # unchanged (None if the previous round end's was never proven)
        if elected is None or elected == tuple(sorted(order)):
            return tuple(sorted(order)), pending
        if before is None:
            raise LightClientError(Reason.BAD_SCHEDULE_PROOF, "the producer set changes, but the previous round end's "
                                   "schedule proof (where it was elected) is missing", height)
        if elected != before:
            raise LightClientError(Reason.BAD_SCHEDULE_PROOF, "the new producer set is not the one elected at the "
                                   "previous round end", height)
        if len(signers) * 3 <= 2 * len(order):
            raise LightClientError(Reason.BAD_SCHEDULE_PROOF, f"the producer set changes, but only {len(signers)} of "
                                   f"the round's {len(order)} producers signed a block in it (more than 2/3 must)", height)
        return elected, pending

    def _order(self, anchor: bytes) -> tuple[bytes, ...] | None:
        order = self._orders.get(anchor)
        if order is None:
            elected = self._elected.get(anchor)
            if elected is None:
                return None
            order = self._orders[anchor] = dpos.producer_order(elected, anchor)
        return order

    def _add(self, h: Header, proof: bytes | list | None) -> bool:
        c = self.constants
        block_hash = h.hash
        if block_hash in self._by_hash:
            return False
        height = h.height
        parent = self._by_hash.get(h.prev_hash)
        if parent is None:
            if height <= self._final.height + 1:
                raise LightClientError(Reason.BELOW_FINAL, f"the header forks at or below the last irreversible "
                                       f"header {self._final.height}", height)
            raise LightClientError(Reason.UNKNOWN_PARENT, "the previous hash names no header this client holds", height)
        if self._canon.get(parent.height) == parent.hash and parent.height < self._final.height:
            raise LightClientError(Reason.BELOW_FINAL, f"the header forks at height {parent.height}, below the last "
                                   f"irreversible header {self._final.height}", height)
        anchor = parent.hash if parent.height % c.PRODUCERS == 0 else parent.anchor
        order = self._order(anchor)
        try:  # the rules full nodes apply to a header, the same function
            if order is None:  # every rule but the slot owner's (and the signature), then ask for the proof
                check_header(h, Parent(parent.height, parent.slot), self.network, self.genesis_time, c, None, signed=False)
                end = self._by_hash.get(anchor)
                raise LightClientError(Reason.SCHEDULE_UNPROVEN, f"the producers of round {h.round} are not proven: add "
                                       f"the schedule proof of block {end.height if end else '?'} (the previous round's "
                                       "last)", height)
            check_header(h, Parent(parent.height, parent.slot), self.network, self.genesis_time, c, order)
        except HeaderRejected as exc:
            raise LightClientError(Reason(exc.fault.value), str(exc), height) from None
        elected: tuple[bytes, ...] | None = None
        pending: tuple[bytes, ...] | None = None
        if height % c.PRODUCERS == 0:
            if proof is not None:
                raw = proof if isinstance(proof, bytes) else encode([list(x) for x in proof])
                signers = {h.producer} | self._round_signers(parent, anchor)
                elected, pending = self._check_schedule(raw, parent, h.state_hash, anchor, order, signers, height)
            elif self.assume_unchanged_schedule:
                elected = tuple(sorted(order))
        entry = LightHeader(height, block_hash, h.slot, h.timestamp, h.prev_hash, h.state_hash, h.tx_root,
                            h.producer, anchor, len(order), h, h.state_root)
        # Fork choice, checked before anything is written.
        branch: list[LightHeader] = []
        if parent.hash != self._head.hash and forkchoice.better(height, block_hash, self._head.height, self._head.hash):
            branch = self._branch(entry)
            if branch[0].height - 1 < self._final.height:
                raise LightClientError(Reason.BELOW_FINAL, f"the branch forks at height {branch[0].height - 1}, below "
                                       f"the last irreversible header {self._final.height}", height)
        # --- from here on, nothing raises ---
        self._by_hash[block_hash] = entry
        if height % c.PRODUCERS == 0:
            self._elected[block_hash] = elected
            if pending is not None:
                self._pending[block_hash] = pending
        if parent.hash == self._head.hash:
            self._move([entry])
        elif branch:
            self._move(branch)
        return True

    def _branch(self, tip: LightHeader) -> list[LightHeader]:
        """From the first header off the head chain up to ``tip`` (which is not stored yet)."""
        out = [tip]
        cursor = self._by_hash[tip.prev_hash]
        while self._canon.get(cursor.height) != cursor.hash:
            out.append(cursor)
            cursor = self._by_hash[cursor.prev_hash]
        return out[::-1]

    def _move(self, branch: list[LightHeader]) -> None:
        first = branch[0].height
        for height in range(first, self._head.height + 1):  # the old head chain above the fork
            self._canon.pop(height, None)
        for entry in branch:
            self._canon[entry.height] = entry.hash
        self._head = branch[-1]
        # The full node's walk: the blocks just applied, then 3 x PRODUCERS below them.
        walk = []
        for height in range(self._head.height, max(first - 1 - 3 * self.constants.PRODUCERS, 0), -1):
            blk = self._canon.get(height)
            if blk is None:
                break
            walk.append((height, self._by_hash[blk].producer))
        found = forkchoice.last_irreversible(walk, self._head.schedule_size)
        if found is not None and found > self._final.height:
            self._final = self._by_hash[self._canon[found]]
        # Pruning is a pass over what is kept, so it runs every so often, not per header; until it
        # runs, a stale side branch can still collect headers but never win (``_add`` checks where
        # a winning branch forks).
        self._since_prune += len(branch)
        if self._since_prune >= max(32, self.window // 4):
            self._prune()

    def _prune(self) -> None:
        """Drop headers that can never matter again: head-chain headers far below the head and the
        last irreversible header, and branches that fork below the last irreversible header."""
        self._since_prune = 0
        final = self._final.height
        keep_from = min(final - 3 * self.constants.PRODUCERS - 1, self._head.height - self.window)
        for height in [x for x in self._canon if x < keep_from and x > 0]:
            del self._canon[height]
        canonical = set(self._canon.values())
        kept: dict[bytes, LightHeader] = {}
        for entry in sorted(self._by_hash.values(), key=lambda e: e.height):
            if entry.hash in canonical or entry.height == 0:
                kept[entry.hash] = entry
            elif entry.prev_hash in kept and (entry.prev_hash not in canonical or kept[entry.prev_hash].height >= final):
                kept[entry.hash] = entry  # a branch off the head chain at or above the final header
        self._by_hash = kept
        self._elected = {k: v for k, v in self._elected.items() if k in kept or k == self.genesis.hash}
        self._pending = {k: v for k, v in self._pending.items() if k in kept or k == self.genesis.hash}
        self._orders = {k: v for k, v in self._orders.items() if k in self._elected}

    # --- proofs ------------------------------------------------------------------------------------
    def verify_inclusion(self, tx: bytes | str, height: int, proof: Any, *, index: int | None = None,
                         size: int | None = None, final_only: bool = False) -> bool:
        """Does ``proof`` show transaction ``tx`` in the head chain's block at ``height``?

        ``tx`` is the transaction's wire bytes (or hex), or its 32-byte hash when ``proof`` carries
        the wire bytes as ``raw``. ``proof`` is the RPC's map ``{index, tree_size, path[, raw]}``
        (hex or bytes) or a bare audit path with ``index`` and ``size`` given. Raises ``not_stored``
        for a height outside the window (or above the last irreversible header with ``final_only``)."""
        entry = self.header_at(height)
        if entry is None or height == 0 or (final_only and height > self._final.height):
            raise LightClientError(Reason.NOT_STORED, "no header kept for this height"
                                   + (" (or it is not final yet)" if final_only else ""), height)
        try:
            raw = bytes.fromhex(tx) if isinstance(tx, str) else bytes(tx)
            if isinstance(proof, Mapping):
                index = int(proof["index"])
                size = int(proof.get("tree_size", proof.get("size")))
                path = [_bytes(p) for p in proof["path"]]
                if len(raw) == 32 and "raw" in proof:
                    leaf = _bytes(proof["raw"])
                    if sha256(leaf) != raw:
                        return False
                    raw = leaf
            else:
                path = [_bytes(p) for p in proof]
            if index is None or size is None or len(raw) == 32:
                return False
            return merkle.verify_inclusion(raw, index, size, path, entry.tx_root)
        except (ValueError, TypeError, KeyError):
            return False


    def verify_state(self, ns: str, key: Any, proof: Any, *, block_hash: bytes | None = None,
                     height: int | None = None, final_only: bool = False) -> tuple[LightHeader, bool, Any]:
        """Check a state proof (:func:`hub.chain.protocol.statetree.verify`'s shape, bytes or hex) of
        ``(ns, key)`` against the state root of a header this client holds: the one named by
        ``block_hash``, else the head chain's at ``height``. Returns (that header, present, value);
        value is None when the proof shows the key absent. Raises ``not_stored`` when no such header
        is held (or, with ``final_only``, it is not final) and ``bad_state_proof`` when the proof does
        not lead to its root: then nothing the node said about that state may be shown."""
        entry = self._by_hash.get(block_hash) if block_hash is not None else (
            self.header_at(height) if height is not None else self._head)
        if entry is None or (final_only and (entry.height > self._final.height
                                             or self._canon.get(entry.height) != entry.hash)):
            where = block_hash.hex()[:16] if block_hash is not None else height
            raise LightClientError(Reason.NOT_STORED, f"no {'final ' if final_only else ''}header {where} held "
                                   f"(light head {self._head.height}, final {self._final.height})",
                                   entry.height if entry else height)
        try:
            present, value = statetree.verify(entry.state_root, ns, key, proof)
        except statetree.StateProofError as exc:
            raise LightClientError(Reason.BAD_STATE_PROOF, f"{ns} {_show(key)}: {exc}", entry.height) from None
        return entry, present, value


def _show(key: Any) -> str:
    return key.hex() if isinstance(key, bytes) else repr(key)


def _bytes(value: Any) -> bytes:
    return bytes.fromhex(value) if isinstance(value, str) else bytes(value)
