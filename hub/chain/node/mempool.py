"""Transactions waiting for a block: checked on entry, ordered for assembly, bounded in size.

Local policy, not consensus (a producer may order its block as it likes; validity is judged by
``apply_block``). What it promises:

* a transaction enters only if it would be valid after the sender's pending ones (signature, fee,
  expiry, nonce with no gap, balance for all of them) and its type's rules hold against the head
  state (the checks ``apply_block`` runs, :func:`~hub.chain.protocol.rules.check_type`), and the
  reason is given otherwise; so an invalid transaction never displaces a valid one (by replacement
  or eviction), and is never gossiped;
* per account, transactions leave in nonce order; across accounts, by fee per byte, highest first;
* a pending transaction is replaced by one with the same sender and nonce and a higher fee;
* expired ones are dropped; when full, the cheapest evictable transaction (the last of its sender's
  queue, so no gap is left) makes room for a better one, else the new one is refused;
* why a transaction was refused or dropped is remembered (the last ``REMEMBERED_FATES``), so a
  client asking about it hears ``dropped: <reason>`` instead of nothing.

Signatures are checked once here, and their hashes remembered so that applying the block that
includes them does not check them again (the dominant cost of ``apply_block``).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from hub.chain.protocol.errors import Reason, TxRejected
from hub.chain.protocol.rules import TYPES_WITHOUT_RULES, check_envelope, check_type, next_block_context
from hub.chain.protocol.rules import spend as spend_of
from hub.chain.protocol.state import State
from hub.chain.protocol.tx import Transaction
from hub.chain.protocol.transition import signature_verifier
from hub.crypto.signing import Network

DEFAULT_MAX_TXS = 50_000
VERIFIED_CACHE = 200_000
SWEEP_MS = 10_000  # chain time between full sweeps for expired transactions
REMEMBERED_FATES = 20_000  # refused or dropped transactions whose reason is kept


class Fate:
    """Why a transaction is not pending: ``refused`` on entry or ``dropped`` after it."""

    __slots__ = ("status", "reason", "detail")

    def __init__(self, status: str, reason: Reason, detail: str) -> None:
        self.status, self.reason, self.detail = status, reason, detail

    def __str__(self) -> str:
        return f"{self.status}: {self.reason.value}" + (f": {self.detail}" if self.detail else "")


def _spend(tx: Transaction) -> int:
    # The transfer case inline: most of the load, and a call of rules.spend (spend_of) costs more than it.
    return tx.fee + tx.model().amount if tx.type == "transfer" else spend_of(tx)


def _priority(tx: Transaction) -> tuple[int, bytes]:
    # fee per byte, scaled to stay an integer; ties by hash so the order never depends on arrival
    return (-(tx.fee * 1_000_000 // tx.size), tx.hash)


class Mempool:
    def __init__(self, network: Network, max_txs: int = DEFAULT_MAX_TXS) -> None:
        self.max_txs = max_txs
        self.by_hash: dict[bytes, Transaction] = {}
        self.by_sender: dict[bytes, dict[int, Transaction]] = {}
        self.spend: dict[bytes, int] = {}  # per sender: what its pending transactions spend in all
        self._next_sweep = 0  # chain time (ms) of the next full expiry sweep in prune()
        self._verify_sig = signature_verifier(network)
        self.verified: OrderedDict[bytes, None] = OrderedDict()
        self.fates: OrderedDict[bytes, Fate] = OrderedDict()
        self.new_drops: list[tuple[bytes, Fate]] = []  # since the node last took them (for its CLI inbox)
        self._producers: tuple[bytes, frozenset[bytes]] | None = None  # (head hash, next block's producers)

    def __len__(self) -> int:
        return len(self.by_hash)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self.by_hash

    def verify(self, tx: Transaction) -> bool:
        """A signature check that remembers success: the verifier ``apply_block`` gets."""
        if tx.hash in self.verified:
            return True
        if self._verify_sig(tx):
            self.remember(tx.hash)
            return True
        return False

    def remember(self, tx_hash: bytes) -> None:
        """Record a transaction whose signature was checked (its hash covers the signature)."""
        self.verified[tx_hash] = None
        if len(self.verified) > VERIFIED_CACHE:
            self.verified.popitem(last=False)

    def fate(self, tx_hash: bytes) -> Fate | None:
        """Why the transaction was refused or dropped, if this node remembers it."""
        return self.fates.get(tx_hash)

    def refused(self, tx_hash: bytes, exc: TxRejected) -> None:
        """Remember a refusal (a duplicate is not one: the transaction is known)."""
        if exc.reason is not Reason.DUPLICATE:
            self._remember_fate(tx_hash, Fate("refused", exc.reason, exc.detail))

    def _remember_fate(self, tx_hash: bytes, fate: Fate) -> None:
        fates = self.fates
        fates[tx_hash] = fate
        fates.move_to_end(tx_hash)
        if len(fates) > REMEMBERED_FATES:
            fates.popitem(last=False)

    def discard(self, tx: Transaction, reason: Reason, detail: str = "") -> None:
        """Drop a pending transaction for ``reason`` and remember why."""
        if self.by_hash.get(tx.hash) is tx:
            self._drop(tx)
            fate = Fate("dropped", reason, detail)
            self._remember_fate(tx.hash, fate)
            self.new_drops.append((tx.hash, fate))
            if len(self.new_drops) > REMEMBERED_FATES:
                del self.new_drops[:-REMEMBERED_FATES]

    def take_new_drops(self) -> list[tuple[bytes, Fate]]:
        drops, self.new_drops = self.new_drops, []
        return drops

    def _check_type(self, tx: Transaction, state: State, now: int) -> None:
        # The next block's producers change only with the head; their addresses cost a hash each.
        if self._producers is None or self._producers[0] != state.head.hash:
            ctx = next_block_context(state, now)
            self._producers = (state.head.hash, ctx.producers)
        else:
            ctx = next_block_context(state, now, self._producers[1])
        check_type(state, tx, ctx)

    def add(self, tx: Transaction, state: State, now: int) -> None:
        """Admit ``tx`` or raise TxRejected with the reason."""
        if tx.hash in self.by_hash:
            raise TxRejected(Reason.DUPLICATE, "already in the mempool")
        sender = tx.sender_address
        queue = self.by_sender.get(sender)
        base = state.nonce(sender)
        if queue:
            replacing = queue.get(tx.nonce)
            # The envelope is checked as if the sender's pending transactions before it were applied.
            expected = base + 1
            if tx.nonce > base and (tx.nonce <= base + len(queue) + 1):
                expected = tx.nonce
            view = _NonceView(state, sender, expected - 1)
        else:  # nothing pending: the state as it is (most transactions, and this runs for each)
            replacing, view = None, state
        try:
            check_envelope(view, tx, now, self.verify)
        except TxRejected as exc:
            if exc.reason is Reason.NONCE_TOO_HIGH:
                raise TxRejected(Reason.NONCE_TOO_HIGH, f"nonce {tx.nonce} leaves a gap: the next nonce is {base + len(queue or ()) + 1}") from None
            raise
        if replacing is not None and tx.fee <= replacing.fee:
            raise TxRejected(Reason.REPLACEMENT_FEE_TOO_LOW, f"a pending transaction has nonce {tx.nonce} and fee {replacing.fee}; pay more to replace it")
        spend = _spend(tx)
        pending = self.spend.get(sender, 0) - (_spend(replacing) if replacing is not None else 0)
        balance = state.balance(sender)
        if pending + spend > balance:
            raise TxRejected(Reason.INSUFFICIENT_BALANCE, f"needs {pending + spend} with the pending transactions, the account holds {balance}")
        if tx.type not in TYPES_WITHOUT_RULES:  # last of the checks: nothing was changed before it
            self._check_type(tx, state, now)
        if replacing is None and len(self.by_hash) >= self.max_txs:
            self._make_room(tx)
        if replacing is not None:
            self.discard(replacing, Reason.REPLACED, f"replaced by {tx.hash.hex()}, which pays a higher fee")
        self.fates.pop(tx.hash, None)
        self.by_hash[tx.hash] = tx
        self.by_sender.setdefault(sender, {})[tx.nonce] = tx
        self.spend[sender] = self.spend.get(sender, 0) + spend

    def _make_room(self, tx: Transaction) -> None:
        lasts = [q[max(q)] for q in self.by_sender.values() if q]
        worst = max(lasts, key=_priority)
        if _priority(worst) <= _priority(tx):
            raise TxRejected(Reason.MEMPOOL_FULL, f"the mempool holds {self.max_txs} transactions paying more per byte")
        self.discard(worst, Reason.MEMPOOL_FULL, "evicted for a transaction paying more per byte")

    def _drop(self, tx: Transaction) -> None:
        self.by_hash.pop(tx.hash, None)
        sender = tx.sender_address
        queue = self.by_sender.get(sender)
        if queue is not None and queue.get(tx.nonce) is tx:
            del queue[tx.nonce]
            if queue:
                self.spend[sender] -= _spend(tx)
            else:  # the usual case after a block: the sender's last pending one
                del self.by_sender[sender]
                del self.spend[sender]

    def remove(self, txs: list[Transaction]) -> None:
        for tx in txs:
            known = self.by_hash.get(tx.hash)
            if known is not None:
                self._drop(known)

    def prune(self, state: State, now: int, senders: Iterable[bytes] | None = None) -> None:
        """Drop expired transactions, ones made stale by a block, and their now-gapped successors.

        ``senders``: only a block's senders can have gone stale (nonces move for senders only), so
        after a block only those are looked at; every sender is, when ``senders`` is None or an
        expiry sweep is due (every ``SWEEP_MS`` of chain time). Walking all of them after every
        block cost 6 ms with 6,000 pending transactions, per block and per node. Between sweeps an
        expired one may wait in the pool; ``build_block`` refuses it and the producer drops it.

        A sweep also checks again the type rules of pending transactions other than transfers:
        another sender's transaction can break them (a vote's candidate disqualified, a poll
        against the same target included first). Each reason is remembered (:meth:`fate`)."""
        if senders is None or now >= self._next_sweep:
            senders = self.by_sender
            self._next_sweep = now + SWEEP_MS
            sweep = True
        else:
            sweep = False
        for sender in sorted(set(senders) & self.by_sender.keys()):
            queue = self.by_sender[sender]
            expected = state.nonce(sender) + 1
            for nonce in sorted(queue):
                tx = queue[nonce]
                if nonce < expected:
                    self.discard(tx, Reason.NONCE_TOO_LOW, f"a block used nonce {nonce} for another transaction of this sender")
                elif nonce != expected:
                    self.discard(tx, Reason.NONCE_TOO_HIGH, f"nonce {nonce} follows a transaction of this sender that was dropped")
                elif tx.valid_until < now:
                    self.discard(tx, Reason.EXPIRED, f"valid until {tx.valid_until}, expired before a block included it")
                elif sweep and tx.type not in TYPES_WITHOUT_RULES and (failed := self._still_valid(tx, state, now)) is not None:
                    self.discard(tx, failed.reason, failed.detail)  # another's transaction changed the state it relied on
                else:
                    expected += 1

    def _still_valid(self, tx: Transaction, state: State, now: int) -> TxRejected | None:
        try:
            self._check_type(tx, state, now)
        except TxRejected as exc:
            return exc
        return None

    def select(self) -> Iterator[Transaction]:
        """Highest fee per byte first, each sender's transactions in nonce order."""
        heap = []
        for sender, queue in self.by_sender.items():
            nonces = sorted(queue)
            heap.append((_priority(queue[nonces[0]]), sender, 0, nonces))
        heapq.heapify(heap)
        while heap:
            _, sender, i, nonces = heapq.heappop(heap)
            yield self.by_sender[sender][nonces[i]]
            if i + 1 < len(nonces) and nonces[i + 1] in self.by_sender.get(sender, {}):
                heapq.heappush(heap, (_priority(self.by_sender[sender][nonces[i + 1]]), sender, i + 1, nonces))


class _NonceView:
    """The state as ``check_envelope`` should see it for one sender with pending transactions."""

    def __init__(self, state: State, sender: bytes, nonce: int) -> None:
        self._state, self._sender, self._nonce = state, sender, nonce
        self.constants = state.constants

    def nonce(self, address: bytes) -> int:
        return self._nonce if address == self._sender else self._state.nonce(address)
