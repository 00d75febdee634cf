"""How the hub's own features reach its chain: one interface over the embedded node and a remote one.

Identity, anchoring and chain-state control submit transactions, read state and follow blocks
without caring whether the chain runs inside ``hub run`` (:class:`EmbeddedAccess`, over the
in-process :class:`~hub.chain.node.node.ChainNode`) or on full nodes the hub follows as a light
client (:class:`RemoteAccess`, over :class:`~hub.chain.remote.RemoteChain`). The chain plugin offers
one of them as the service ``"chain"``.

Why one interface with two very different bodies: in remote mode nothing the node says is believed
unless it checks against a header the light client verified (state with a state proof, blocks with
their transactions' Merkle root), and the node may be down; in embedded mode the state is the hub's
own. Callers see the same answers and the same two failures: :class:`ChainUnavailable` (try again
later) and :class:`TxRefused` (this transaction will not be accepted as it is).

Nonces are chosen here, for every caller at once, so two features submitting with one key never
race each other for a nonce: the chain's nonce plus the transactions of that sender still pending.
Remotely the proven nonce comes first, and the node's count of pending ones (a hint: a wrong one
costs a refusal, after which the nonce is resynced once) keeps the hub from replacing a pending
transaction another client of the same key sent.
The fee is the minimum (``constants.fee_for(size)``), ``valid_until`` an hour ahead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.chain.protocol.constants import Constants
from hub.chain.protocol.errors import Reason, TxRejected
from hub.chain.protocol.tx import Transaction
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey
from hub.crypto.signing import Network

log = logging.getLogger("hub.chain.access")

TX_LIFETIME = 3_600_000  # ms from submission to valid_until
#: Refusals that mean the nonce this side chose is out of step with the chain: resync and retry once.
_NONCE_REASONS = frozenset({Reason.NONCE_TOO_LOW.value, Reason.NONCE_TOO_HIGH.value,
                            Reason.REPLACEMENT_FEE_TOO_LOW.value})


class ChainUnavailable(Exception):
    """The chain cannot be reached now (the remote node is down, or its answer did not verify)."""


class TxRefused(Exception):
    """The node refused the transaction: ``reason`` is its code (``nonce_too_low``, ``bad_payload``,
    a protocol rule's code...), ``message`` the sentence."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason, self.message = reason, message
        super().__init__(f"{reason}: {message}" if message else reason)


@dataclass(frozen=True)
class VerifiedBlock:
    """A block of the head chain whose transactions were checked against its (verified) header."""

    height: int
    hash: bytes
    timestamp: int
    final: bool
    txs: list[Transaction] = field(default_factory=list)


class ChainAccess(Protocol):
    network: Network
    constants: Constants

    def available(self) -> bool: ...

    def head(self) -> tuple[int, int]: ...

    async def submit(self, key: PrivateKey, tx_type: str, payload: dict) -> bytes: ...

    async def status(self, tx_hash: bytes) -> dict: ...

    async def state(self, ns: str, key: Any) -> Any: ...

    async def blocks_since(self, height: int, limit: int = 100) -> list[VerifiedBlock]: ...


def build_tx(key: PrivateKey, network: Network, constants: Constants, tx_type: str, payload: dict,
             nonce: int, now_ms: int) -> Transaction:
    """The signed transaction with the minimum fee; raises :class:`TxRefused` (``bad_payload``,
    ``unknown_type``) for a payload no node would accept, before anything is sent."""
    valid_until = now_ms + min(TX_LIFETIME, constants.MAX_TX_LIFETIME)
    draft = Transaction.create(key, network, tx_type, payload, nonce=nonce, fee=0, valid_until=valid_until)
    try:
        draft.model()
    except TxRejected as exc:
        raise TxRefused(exc.reason.value, exc.detail) from None
    fee = constants.fee_for(draft.size + 9)  # the fee field grows by at most 8 bytes once set
    if tx_type == "register_candidate":
        fee += constants.CANDIDATE_FEE
    return Transaction.create(key, network, tx_type, payload, nonce=nonce, fee=fee, valid_until=valid_until)


_STATUS = {"irreversible": "final"}


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class EmbeddedAccess:
    """The hub's own node. Every call that touches it runs in a worker thread under ``node.lock``
    (the producer loop does the same), so the event loop never waits on SQLite or a block commit."""

    def __init__(self, node: Any, clock: Callable[[], int] = _wall_ms) -> None:
        self.node = node
        self.clock = clock
        self.network: Network = node.genesis.network
        self.constants: Constants = node.constants

    def available(self) -> bool:
        return True

    def head(self) -> tuple[int, int]:
        node = self.node
        return node.head.height, node.lib

    async def submit(self, key: PrivateKey, tx_type: str, payload: dict) -> bytes:
        return await asyncio.to_thread(self._submit, key, tx_type, payload, self.clock())

    def _submit(self, key: PrivateKey, tx_type: str, payload: dict, now: int) -> bytes:
        node = self.node
        sender = address_of(key.public_key)
        with node.lock:
            # What the CLI queued for this key goes first, so a nonce is never taken twice.
            node.drain_inbox(now)
            queue = node.mempool.by_sender.get(sender) or {}
            nonce = max(node.state.nonce(sender), max(queue, default=0)) + 1
            tx = build_tx(key, self.network, self.constants, tx_type, payload, nonce, now)
            try:
                node.submit(tx.raw, now)
            except TxRejected as exc:
                raise TxRefused(exc.reason.value, exc.detail) from None
        return tx.hash

    async def status(self, tx_hash: bytes) -> dict:
        return await asyncio.to_thread(self._status, tx_hash)

    def _status(self, tx_hash: bytes) -> dict:
        from hub.chain.node.rpc.views import transaction

        with self.node.lock:
            found = transaction(self.node, tx_hash)
        if found is None:
            return {"status": "unknown", "height": None, "reason": None}
        status = _STATUS.get(found["status"], found["status"])
        return {"status": status, "height": found.get("height"), "reason": found.get("reason"),
                "message": found.get("message")}

    async def state(self, ns: str, key: Any) -> Any:
        return await asyncio.to_thread(self._state, ns, key)

    def _state(self, ns: str, key: Any) -> Any:
        with self.node.lock:
            if ns not in self.node.state.ns:
                raise ValueError(f"no state namespace {ns!r}; there are {', '.join(sorted(self.node.state.ns))}")
            return self.node.state.get(ns, key)

    async def blocks_since(self, height: int, limit: int = 100) -> list[VerifiedBlock]:
        return await asyncio.to_thread(self._blocks_since, height, limit)

    def _blocks_since(self, height: int, limit: int) -> list[VerifiedBlock]:
        node = self.node
        blocks = []
        with node.lock:  # only the reads: decoding (up to 10,000 transactions a block) waits for no one
            last = min(node.head.height, height + max(limit, 0))
            lib = node.lib
            for h in range(max(height, 0) + 1, last + 1):
                block = node.store.canonical_block(h)
                if block is None:  # cannot happen below the head; stop rather than skip a block
                    break
                blocks.append(block)
        return [VerifiedBlock(b.header.height, b.hash, b.header.timestamp, b.header.height <= lib,
                              [Transaction.from_bytes(raw) for raw in b.txs]) for b in blocks]


class RemoteAccess:
    """A full node's chain through the hub's light client. Use from the event loop only (the light
    client is not thread-safe). Nothing the node says is returned unless it checks against a header
    the light client verified; a node that cannot be reached, or whose answer does not check, is
    :class:`ChainUnavailable`."""

    def __init__(self, remote: Any, clock: Callable[[], int] = _wall_ms) -> None:
        self.remote = remote
        self.clock = clock
        self.network: Network = remote.light.network
        self.constants: Constants = remote.light.constants
        # sender address -> {nonce: valid_until} of transactions this hub submitted and the chain
        # has not shown included yet: the next nonce goes after them.
        self._pending: dict[bytes, dict[int, int]] = {}
        self._locks: dict[bytes, asyncio.Lock] = {}

    def available(self) -> bool:
        return self.remote.connected is True

    def head(self) -> tuple[int, int]:
        light = self.remote.light
        return light.head.height, light.final.height

    # --- submitting --------------------------------------------------------------------------------
    async def submit(self, key: PrivateKey, tx_type: str, payload: dict) -> bytes:
        sender = address_of(key.public_key)
        lock = self._locks.setdefault(sender, asyncio.Lock())
        async with lock:
            nonce = await self._next_nonce(sender)
            try:
                return await self._send(key, tx_type, payload, nonce, sender)
            except TxRefused as exc:
                if exc.reason not in _NONCE_REASONS:
                    raise
                # Out of step (another client of this key, or a pending one dropped): forget what
                # this side thought pending and take the node's count, then try once more.
                log.info("chain: nonce %d for %s refused (%s); resyncing with the node", nonce,
                         encode_address(sender), exc.reason)
                self._pending.pop(sender, None)
                return await self._send(key, tx_type, payload, await self._next_nonce(sender), sender)

    async def _send(self, key: PrivateKey, tx_type: str, payload: dict, nonce: int, sender: bytes) -> bytes:
        from hub.chain.remote import NodeAnswered

        now = self.clock()
        tx = build_tx(key, self.network, self.constants, tx_type, payload, nonce, now)
        try:
            await self._call(self.remote.post_json("/tx", {"tx": tx.raw.hex()}))
        except NodeAnswered as exc:
            raise TxRefused(exc.code or "refused", exc.message) from None
        self._pending.setdefault(sender, {})[nonce] = tx.valid_until
        return tx.hash

    async def _next_nonce(self, sender: bytes) -> int:
        """After the proven nonce, this hub's pending ones and what the node has pending for the key
        (another client of it, the CLI): a transaction with a pending nonce and a higher fee would
        replace that one in the node's mempool, so taking the node's count too avoids ever doing so."""
        proven = (await self._account(sender))[1]
        now = self.clock()
        pending = {n: until for n, until in self._pending.get(sender, {}).items() if n > proven and until > now}
        self._pending[sender] = pending
        return max(proven, max(pending, default=0), await self._node_next_nonce(sender) - 1) + 1

    async def _account(self, sender: bytes) -> tuple[int, int]:
        from hub.chain.remote import NodeAnswered, StateRefused

        try:
            found = await self._call(self.remote.account(encode_address(sender)))
        except StateRefused as exc:
            raise ChainUnavailable(f"the node's account state does not verify: {exc.message}") from None
        except NodeAnswered as exc:
            raise ChainUnavailable(f"the node at {self.remote.url} answered {exc}") from None
        return found["balance"], found["nonce"]

    async def _node_next_nonce(self, sender: bytes) -> int:
        """The node's own count (mempool included): only a hint, a wrong one costs a refusal."""
        try:
            info = await self._call(self.remote.get_json(f"/accounts/{encode_address(sender)}"))
            return int(info.get("next_nonce", int(info["nonce"]) + 1))
        except (KeyError, TypeError, ValueError, AttributeError):
            return 0

    async def _call(self, awaitable: Any) -> Any:
        from hub.chain.remote import NodeUnreachable

        try:
            return await awaitable
        except NodeUnreachable as exc:
            raise ChainUnavailable(f"the node at {self.remote.url} cannot be reached: {exc}") from None

    # --- reading -----------------------------------------------------------------------------------
    async def status(self, tx_hash: bytes) -> dict:
        from hub.chain.remote import NodeAnswered

        try:
            found = await self._call(self.remote.transaction(tx_hash))
            if found is not None and found.get("height") is not None and not found.get("verified"):
                await self._sync()  # the node is ahead of the light client: catch up once
                found = await self._call(self.remote.transaction(tx_hash))
        except NodeAnswered as exc:
            raise ChainUnavailable(f"the node at {self.remote.url} answered {exc}") from None
        if found is None:
            return {"status": "unknown", "height": None, "reason": None}
        if found.get("verified"):
            status = "final" if found.get("final") else "included"
        elif found.get("status") in ("refused", "dropped", "pending"):
            status = found["status"]
        else:  # the node says included, but that is not proven against a verified header (yet)
            status = "pending"
        return {"status": status, "height": found.get("height") if found.get("verified") else None,
                "reason": found.get("reason"), "message": found.get("message"),
                "verification": found.get("verification")}

    async def _sync(self) -> None:
        from hub.chain.light import LightClientError
        from hub.chain.remote import NodeAnswered, NodeUnreachable

        try:
            await self.remote.sync()
        except (LightClientError, NodeAnswered, NodeUnreachable) as exc:
            log.debug("chain: catching up before a proof failed: %s", exc)

    async def state(self, ns: str, key: Any) -> Any:
        """The value at ``(ns, key)`` proven against the state root of a header the light client
        verified on its head chain; None when the proof shows the key absent."""
        from hub.chain.light import LightClientError
        from hub.chain.protocol.state import NAMESPACES, freeze
        from hub.chain.remote import NodeAnswered
        from hub.crypto.encoding import encode

        if ns not in NAMESPACES:
            raise ValueError(f"no state namespace {ns!r}; there are {', '.join(NAMESPACES)}")
        try:
            found = await self._call(self.remote.get_json(f"/state/{ns}/proof?key={encode(key).hex()}"))
        except NodeAnswered as exc:
            if exc.status == 404:
                raise ChainUnavailable(f"the node at {self.remote.url} has no state namespace {ns!r}: "
                                       f"{exc.message}") from None
            raise ChainUnavailable(f"the node at {self.remote.url} answered {exc}") from None
        light = self.remote.light
        try:
            block_hash = bytes.fromhex(found["hash"])
            proof = found["proof"]
        except (KeyError, TypeError, ValueError):
            raise ChainUnavailable(f"the node's state answer for {ns} has no block hash or proof") from None
        if light.get(block_hash) is None:
            await self._sync()
        try:
            header, present, value = light.verify_state(ns, key, proof, block_hash=block_hash)
        except LightClientError as exc:
            raise ChainUnavailable(f"the node's {ns} state does not verify: {exc}") from None
        if light.header_at(header.height) != header:
            raise ChainUnavailable(f"the node's {ns} state is proven at block {header.hash.hex()[:16]}, "
                                   "which is not on the light client's head chain")
        return freeze(value) if present else None

    async def blocks_since(self, height: int, limit: int = 100) -> list[VerifiedBlock]:
        """Blocks of the light client's head chain above ``height``, each fetched from the node and
        kept only if its header is the verified one and its transactions hash to its ``tx_root``.
        Blocks the light client no longer keeps a header for (more than its window below the head)
        cannot be verified and are left out: the caller sees the gap in the heights."""
        from hub.chain.protocol.block import Block, BlockFormatError, tx_root
        from hub.chain.remote import NodeAnswered

        light = self.remote.light
        head, final = light.head.height, light.final.height
        start = max(height, 0) + 1
        if light.header_at(start) is None and start <= head:
            start = max(start, light.lowest_kept())  # below the window: the gap shows in the heights
        out: list[VerifiedBlock] = []
        for h in range(start, min(head, start - 1 + max(limit, 0)) + 1):
            entry = light.header_at(h)
            if entry is None:
                continue
            try:
                raw = await self._call(self.remote.get_bytes(f"/blocks/{h}/raw"))
            except NodeAnswered as exc:
                raise ChainUnavailable(f"the node at {self.remote.url} has no block {h}: {exc.message}") from None
            try:
                block = Block.decode(raw)
                txs = [Transaction.from_bytes(t) for t in block.txs]
            except (BlockFormatError, TxRejected) as exc:
                raise ChainUnavailable(f"the node's block {h} is malformed: {exc}") from None
            if block.hash != entry.hash:
                break  # the node moved to another branch since the light client synced: later
            if tx_root(block.txs) != entry.tx_root:
                raise ChainUnavailable(f"the node's block {h} carries transactions that do not match its "
                                       "verified header's tx_root")
            out.append(VerifiedBlock(h, block.hash, entry.timestamp, h <= final, txs))
        return out


__all__ = ["ChainAccess", "ChainUnavailable", "EmbeddedAccess", "RemoteAccess", "TxRefused", "VerifiedBlock",
           "build_tx"]
