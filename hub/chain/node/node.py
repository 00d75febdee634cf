"""One chain node: the state, the store, the mempool, fork choice and reorganisations.

Everything that changes the head goes through :meth:`ChainNode._move`, which updates the state in
memory and the store in one SQLite transaction, in that order, and puts the in-memory state back if
the store refuses. Methods are thread-safe (one lock), so the hub's event loop can call them through
``asyncio.to_thread`` while the CLI reads the same file.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hub.chain.protocol import dpos, forkchoice
from hub.chain.protocol.block import Block, Header
from hub.chain.protocol.errors import BlockRejected, ParentUnknown, Reason, TxRejected
from hub.chain.protocol.genesis import Genesis
from hub.chain.protocol.headers import Parent, check_header
from hub.chain.protocol.state import Head, State
from hub.chain.protocol.transition import Applied, apply_block, build_block
from hub.chain.protocol.tx import Transaction
from hub.chain.node.clockwatch import ClockWatch
from hub.chain.node.equivocation import EquivocationWatch
from hub.chain.node.mempool import Mempool
from hub.chain.node.store import ChainStore, head_of
from hub.chain.node.verify import preverify
from hub.crypto import keys
from hub.crypto.address import address_of

log = logging.getLogger("hub.chain")
_KEEP_IN_MEMPOOL = {Reason.NONCE_TOO_HIGH, Reason.INSUFFICIENT_BALANCE}
EVIDENCE_LIFETIME = 3_600_000  # ms an evidence transaction stays valid (capped by MAX_TX_LIFETIME)
#: Longest a transaction batch pauses for block work before it goes on anyway (seconds), so a long
#: sync cannot starve admission altogether.
BLOCK_PRIORITY_WAIT = 0.5
#: Signature checks between two looks at whether block work is waiting (~5 ms of them).
YIELD_EVERY = 64
#: Hashes of transactions in recent canonical blocks that the node remembers, so gossip that
#: arrives after the block is dropped unread (about 50 blocks of 2,000 transfers).
RECENTLY_INCLUDED = 100_000


class ChainError(RuntimeError):
    """The node cannot open its store (wrong genesis, damaged file); the message says which."""


@dataclass
class Received:
    status: str  # "applied", "reorganised", "side", "known"
    head: Head


class ChainNode:
    def __init__(self, directory: Path, genesis: Genesis, key: keys.PrivateKey | None = None, *,
                 max_mempool: int | None = None, synchronous: str = "NORMAL") -> None:
        self.directory = Path(directory)
        self.genesis = genesis
        self.key = key
        self.lock = threading.RLock()
        self.admissions: dict[str, int] = {}  # "admitted" or a refusal reason -> transactions judged
        self.store = ChainStore(self.directory, synchronous=synchronous)
        self.state = genesis.state()
        stored = self.store.get_meta("genesis")
        if stored is None:
            fresh = genesis.state()
            self.store.initialise(genesis.hash, sorted(
                (ns, k, v) for ns in fresh.ns for k, v in fresh.ns[ns].items()), fresh.head)
        elif stored != genesis.hash:
            raise ChainError(f"{self.store.path} belongs to another chain (genesis {stored.hex()[:16]}, "
                             f"this genesis file is {genesis.hash.hex()[:16]})")
        else:
            self._reload_state()
        self.lib = self.store.get_meta("lib") or 0
        self._genesis_head_cache: Head | None = None
        # The last slot this key signed a block for, side branches included (they stay in the store).
        self.signed_slot = self.store.last_slot_of(key.public_key) if key is not None else 0
        self.mempool = Mempool(genesis.network, **({"max_txs": max_mempool} if max_mempool else {}))
        # Two rounds of slots: evidence about older slots still counts on chain, but a node that
        # was not watching then has nothing to compare with anyway.
        self.watch = EquivocationWatch(2 * self.constants.PRODUCERS, genesis.hash)
        self.equivocations: list[tuple[Header, Header]] = []  # seen since start, newest last
        self._block_work = 0
        self._blocks_done = threading.Condition()
        self._included: OrderedDict[bytes, None] = OrderedDict()
        self._tripped: OrderedDict[bytes, None] = OrderedDict()  # blocks whose unexpected failure was logged
        self.clock_watch = ClockWatch(self.constants.BLOCK_INTERVAL)

    @contextmanager
    def block_work(self) -> Iterator[None]:
        """Mark a block being received or produced: transaction admission pauses until it is done.

        Why: under load a node's threads share its GIL and the machine's cores, and a block that
        waits behind thousands of signature checks reaches the next producer too late, which forks
        the chain and throws a slot's work away. Blocks first, as full nodes generally do; a
        transaction waiting a little longer costs nothing."""
        with self._blocks_done:
            self._block_work += 1
        try:
            yield
        finally:
            with self._blocks_done:
                self._block_work -= 1
                if not self._block_work:
                    self._blocks_done.notify_all()

    def _yield_to_blocks(self) -> None:
        # Never while holding the node lock (the CLI inbox is admitted under it): the block work
        # waits for that lock, so waiting here would only stall both for BLOCK_PRIORITY_WAIT.
        # (RLock._is_owned is what threading.Condition itself relies on.)
        if self._block_work and not self.lock._is_owned():  # a stale read: one batch waits or not
            with self._blocks_done:
                self._blocks_done.wait_for(lambda: not self._block_work, timeout=BLOCK_PRIORITY_WAIT)

    def close(self) -> None:
        with self.lock:
            self.store.close()

    @property
    def head(self) -> Head:
        return self.state.head

    @property
    def constants(self):
        return self.state.constants

    # --- transactions ------------------------------------------------------------------------------
    def submit(self, raw: bytes, now: int) -> Transaction:
        """Admit a transaction to the mempool; raises TxRejected with the reason."""
        result = self.submit_many([raw], now)[0]
        if isinstance(result, TxRejected):
            raise result
        return result

    def submit_many(self, raws: list[bytes], now: int) -> list[Transaction | TxRejected]:
        """Admit a batch: for each, the transaction or why it was refused.

        Decoding and the signature checks (most of the cost) run before the node lock is taken, so
        a big batch does not hold up a block being applied; the verifier remembers what passed, and
        ``Mempool.add`` then judges everything else under the lock.

        All are decoded before the first signature is checked: back to back, libsodium's tables
        stay in the CPU caches, and decoding and checking took 7-9 % less time than with each
        check between two decodes (``benchmarks/bench_verify_order.py``)."""
        decoded: list[Transaction | TxRejected] = []
        max_bytes = self.constants.MAX_TX_BYTES
        for index, raw in enumerate(raws):
            if not index % YIELD_EVERY:
                self._yield_to_blocks()
            try:
                decoded.append(Transaction.from_bytes(raw, max_bytes))
            except TxRejected as exc:
                decoded.append(exc)
        verify = self.mempool.verify
        for index, item in enumerate(decoded):
            if not index % YIELD_EVERY:
                self._yield_to_blocks()
            if not isinstance(item, TxRejected):
                verify(item)  # a failure is found again, with its reason, by add()
        out: list[Transaction | TxRejected] = []
        self._yield_to_blocks()
        mempool = self.mempool
        with self.lock:
            for raw, item in zip(raws, decoded):
                if isinstance(item, TxRejected):
                    mempool.refused(hashlib.sha256(raw).digest(), item)
                    out.append(item)
                    continue
                try:
                    mempool.add(item, self.state, now)
                except TxRejected as exc:
                    mempool.refused(item.hash, exc)
                    out.append(exc)
                else:
                    out.append(item)
            counts = self.admissions  # GET /metrics: admission rate and refusals by reason
            for item in out:
                outcome = item.reason.value if isinstance(item, TxRejected) else "admitted"
                counts[outcome] = counts.get(outcome, 0) + 1
            self._publish_drops()  # the ones replaced or evicted
        return out

    def drain_inbox(self, now: int) -> list[tuple[bytes, str]]:
        """Move what the CLI queued into the mempool; a bad one is marked and logged, never fatal."""
        if not self.store.inbox_waiting():
            return []
        results = []
        for tx_hash, raw in self.store.take_inbox():
            try:
                self.submit(raw, now)
                results.append((tx_hash, "pending"))
            except TxRejected as exc:
                log.warning("chain: queued transaction %s refused: %s", tx_hash.hex()[:16], exc)
                results.append((tx_hash, f"rejected: {exc}"))
        self.store.mark_inbox(results)
        return results

    # --- equivocation --------------------------------------------------------------------------------
    def observe(self, header: Header, now: int) -> Transaction | None:
        """Look at a header a peer sent (accepted or not). When it and one seen before prove that
        its producer signed two blocks for one slot, put an ``evidence`` transaction signed with our
        producer key in the mempool and return it for gossip; a node without a key logs the proof.

        Only producers of the current schedule or the elected set are watched: anyone else's
        double signing disqualifies nobody who matters and would let strangers fill the watch."""
        with self.lock:
            current = dpos.slot_at(now, self.state.genesis_time, self.constants)
            producers = set(self.state.meta("order") or ()) | set(self.state.meta("elected") or ())
            if header.producer not in producers or header.slot + self.watch.window < current:
                return None
            pair = self.watch.observe(header, current)
            if pair is None:
                return None
            offender = address_of(header.producer)
            if self.state.get("dq", offender) is not None or any(a.producer == header.producer for a, _ in self.equivocations):
                return None
            self.equivocations.append(pair)
            log.warning("chain: producer %s signed two blocks for slot %d: %s and %s", header.producer.hex()[:16],
                        header.slot, pair[0].hash.hex()[:16], pair[1].hash.hex()[:16])
            if self.key is None:
                log.warning("chain: this node has no producer key to pay for an evidence transaction; "
                            "a producer that saw both blocks submits it")
                return None
            return self._submit_evidence(pair, now)

    def _submit_evidence(self, pair: tuple[Header, Header], now: int) -> Transaction | None:
        sender = address_of(self.key.public_key)
        nonce = self.state.nonce(sender) + len(self.mempool.by_sender.get(sender, {})) + 1
        payload = {"first": pair[0].as_dict(), "second": pair[1].as_dict()}
        valid_until = now + min(EVIDENCE_LIFETIME, self.constants.MAX_TX_LIFETIME)
        network = self.state.network
        draft = Transaction.create(self.key, network, "evidence", payload, nonce=nonce, fee=0, valid_until=valid_until)
        fee = self.constants.fee_for(draft.size + 9)  # the fee field grows by at most 8 bytes
        tx = Transaction.create(self.key, network, "evidence", payload, nonce=nonce, fee=fee, valid_until=valid_until)
        try:
            self.mempool.add(tx, self.state, now)
        except TxRejected as exc:
            log.warning("chain: evidence against %s not submitted: %s", pair[0].producer.hex()[:16], exc)
            return None
        log.warning("chain: submitted evidence %s against producer %s", tx.hash.hex()[:16], pair[0].producer.hex()[:16])
        return tx

    # --- producing ---------------------------------------------------------------------------------
    def slot_owner(self, slot: int) -> bytes:
        return dpos.slot_owner(dpos.schedule_after(self.state), slot)

    def produce(self, now: int) -> Block | None:
        """Produce the block of the slot containing ``now`` if it is ours and not yet filled."""
        if self.key is None:
            return None
        with self.lock:
            slot = dpos.slot_at(now, self.state.genesis_time, self.constants)
            # Never sign a second block for one slot: a reorganisation can put the head back below
            # a slot this node already produced in, and a second block there is equivocation.
            if slot <= self.head.slot or slot <= self.signed_slot or self.slot_owner(slot) != self.key.public_key:
                return None
            if self.state.get("dq", address_of(self.key.public_key)) is not None:
                return None  # its block would be refused; producer_standing says why, once
            # Only the expiry sweep when due: blocks already pruned their senders, and what
            # expired since is refused by build_block and dropped below.
            self.mempool.prune(self.state, dpos.slot_time(slot, self.state.genesis_time, self.constants), ())
            built = build_block(self.state, self.key, slot, self.mempool.select(), self.mempool.verify)
            try:
                self._commit([], [built.applied])
            except BaseException:
                self.state.revert(built.applied.undo, built.applied.parent)
                raise
            self.signed_slot = slot
            self.mempool.remove(built.applied.txs)
            for tx, exc in built.rejected:
                if exc.reason not in _KEEP_IN_MEMPOOL:
                    self.mempool.discard(tx, exc.reason, exc.detail)
            self._publish_drops()
            return built.applied.block

    def producer_standing(self, now: int) -> str | None:
        """Why this node's producer key does not produce normally, in words, or None when it does
        (or has no key). Read without the lock: a stale answer only delays a log line."""
        if self.key is None:
            return None
        state, address = self.state, address_of(self.key.public_key)
        dq = state.get("dq", address)
        if dq is not None:
            return (f"this node's producer key {self.key.public_key.hex()[:16]} was disqualified at height {dq} "
                    "(evidence of double signing, or a poll); it no longer produces, and its slots stay empty "
                    "until the next election replaces it")
        ban = state.get("ban", address, 0)
        if ban > now:
            return (f"this node's producer key {self.key.public_key.hex()[:16]} is banned until "
                    f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(ban / 1000))} for missing slots "
                    f"({state.get('miss', address, 0)} missed); elections leave it out until then. Is this node's "
                    "clock right, and was it running and connected in its slots?")
        if self.key.public_key not in set(dpos.schedule_after(state)) | set(state.meta("elected") or ()):
            return (f"this node's producer key {self.key.public_key.hex()[:16]} is not in the schedule; "
                    "it produces once elected")
        return None

    # --- receiving ---------------------------------------------------------------------------------
    def receive_block(self, block: Block) -> Received:
        """Apply a block that extends the head, keep one of another branch, and switch to that
        branch when it becomes the best one (unless that would revert an irreversible block)."""
        with self.block_work(), self.lock:
            if self.store.has_block(block.hash):
                return Received("known", self.head)
            h = block.header
            if h.prev_hash == self.head.hash:
                applied = self._apply(block)
                try:
                    self._commit([], [applied])
                except BaseException:
                    self.state.revert(applied.undo, applied.parent)
                    raise
                self.mempool.remove(applied.txs)
                self.mempool.prune(self.state, h.timestamp, {tx.sender_address for tx in applied.txs})
                self._publish_drops()
                return Received("applied", self.head)
            if h.prev_hash == self.genesis.hash:
                parent = None
            else:
                parent = self.store.header(h.prev_hash)
                if parent is None:
                    raise ParentUnknown("unknown parent: the block's predecessor has not been received")
            self._check_side_header(h, parent)
            self.store.put_block(block)
            if not forkchoice.better(h.height, block.hash, self.head.height, self.head.hash):
                return Received("side", self.head)
            return self._reorganise(block)

    def _check_side_header(self, h: Header, parent: Header | None) -> None:
        """The header rules ``apply_block`` applies (one function, :func:`check_header`), for a
        block kept on another branch.

        Without them anyone holding a producer key could fill the store with side blocks for any
        slot. The slot owner can be checked only where the schedule is known: a block of this
        head's round whose parent is on this chain uses this round's order."""
        c = self.constants
        order = None
        if dpos.round_of(h.height, c) == dpos.round_of(self.head.height, c) \
                and self.store.canonical_hash(h.height - 1) == h.prev_hash:
            order = self.state.meta("order")
        position = Parent(parent.height, parent.slot) if parent is not None else Parent(0, 0)
        check_header(h, position, self.state.network, self.state.genesis_time, c, order)

    def _branch_to(self, tip: Block) -> tuple[list[Block], int]:
        """The blocks from the common ancestor (exclusive) up to ``tip``, and the ancestor's height."""
        branch = [tip]
        cursor = tip
        while True:
            prev_height = cursor.header.height - 1
            if self.store.canonical_hash(prev_height) == cursor.header.prev_hash:
                return branch[::-1], prev_height
            cursor = self.store.block(cursor.header.prev_hash)
            if cursor is None:
                raise ParentUnknown("the branch does not connect to this chain: a block below it is missing")
            branch.append(cursor)

    def _reorganise(self, tip: Block) -> Received:
        branch, ancestor = self._branch_to(tip)
        if ancestor < self.lib:
            raise BlockRejected(f"the branch forks at height {ancestor}, below the last irreversible block {self.lib}")
        # Whatever goes wrong from here to the commit, the node ends where it was: a block that
        # fails (for a reason or through a bug, which _apply turns into a reason) is dropped; any
        # other failure (the store, the process) is raised as it is, after the state is put back.
        reverted: list[Applied] = []
        applied: list[Applied] = []
        try:
            for height in range(self.head.height, ancestor, -1):
                block = self.store.canonical_block(height)
                undo = self.store.undo_record(block.hash)
                parent_head = head_of(self.store.header(block.header.prev_hash)) if height > 1 else self._genesis_head()
                txs = [Transaction.from_bytes(raw) for raw in block.txs]
                reverted.append(Applied(block, txs, [], undo, parent_head))
                self.state.revert(undo, parent_head)
            for block in branch:
                applied.append(self._apply(block))
            self._commit(reverted, applied)
        except BlockRejected:
            self._restore(reverted, applied)
            self.store.delete_block(tip.hash)
            raise
        except BaseException:
            self._restore(reverted, applied)
            raise
        log.warning("chain: reorganised %d block(s) back to height %d, new head %d",
                    len(reverted), ancestor, self.head.height)
        # Their transactions go back to the mempool if still valid, oldest block first: ``reverted``
        # is newest first, and a sender's later nonce re-added before its earlier one leaves a gap
        # and is refused, so it would be lost (the 4-node benchmark lost thousands that way).
        for r in reversed(reverted):
            for tx in r.txs:
                try:
                    self.mempool.add(tx, self.state, self.head.timestamp)
                except TxRejected:
                    pass
        self.mempool.remove([t for a in applied for t in a.txs])
        self.mempool.prune(self.state, self.head.timestamp)
        self._publish_drops()
        return Received("reorganised", self.head)

    def _publish_drops(self) -> None:
        """Write why pending transactions were dropped into the CLI's inbox rows, so that
        ``hub chain tx`` and ``--wait`` (which read the store, not this process) say so."""
        drops = self.mempool.take_new_drops()
        if drops:
            try:
                self.store.mark_inbox([(tx_hash, str(fate)) for tx_hash, fate in drops])
            except Exception:  # noqa: BLE001 - a status row is a courtesy; the block is committed
                log.exception("chain: recording dropped transactions in the inbox failed")

    def _apply(self, block: Block) -> Applied:
        """``apply_block`` on the node's state, with anything it raises made a rejection.

        ``apply_block`` leaves the state as it was whatever it raises. A rejection is the block's
        fault; anything else is a bug that this block trips (the code or a dependency), and the
        same block would trip it again on every node running this code: so it is refused like an
        invalid block, with the exception named, and logged with its traceback once per block,
        never left half-applied or let through to stop the caller's loop."""
        decoded = self._preverify(block)  # the node's own work: what it raises is not the block's fault
        try:
            return apply_block(self.state, block, self.mempool.verify, decoded)
        except BlockRejected:
            raise
        except Exception as exc:
            if block.hash not in self._tripped:
                self._tripped[block.hash] = None
                while len(self._tripped) > 1024:
                    self._tripped.popitem(last=False)
                log.error("chain: block %d %s could not be applied (%s: %s); refused as invalid",
                          block.header.height, block.hash.hex()[:16], type(exc).__name__, exc, exc_info=True)
            raise BlockRejected(f"the block could not be applied ({type(exc).__name__}: {exc}); "
                                "refused as invalid") from exc

    def _restore(self, reverted: list[Applied], applied: list[Applied]) -> None:
        """Put the state back at the stored head after a switch of branch failed before its
        commit: undo what was applied, re-apply what was reverted, oldest first. Should that fail
        too, reload the state from the store, which the failed switch did not touch."""
        try:
            for a in reversed(applied):
                self.state.revert(a.undo, a.parent)
            for r in reversed(reverted):
                apply_block(self.state, r.block, self.mempool.verify)
            if self.state.head != self.store.head():
                raise RuntimeError("the restored head is not the stored head")
        except Exception:
            log.exception("chain: putting the old branch back failed; reloading the state from the store")
            self._reload_state()

    def _reload_state(self) -> None:
        self.state.ns = {name: {} for name in self.state.ns}
        self.state.load(self.store.state_rows())
        self.state.head = self.store.head()

    def _preverify(self, block: Block) -> dict[bytes, Transaction]:
        """The block's transactions this node has decoded, keyed by their wire bytes, for
        ``apply_block`` not to decode them again: the mempool's, and the others, decoded here while
        their signatures are checked (on every core; those the mempool has were checked on entry)."""
        by_hash, sha256 = self.mempool.by_hash, hashlib.sha256
        decoded: dict[bytes, Transaction] = {}
        others = []
        for raw in block.txs:
            tx = by_hash.get(sha256(raw).digest())  # a transaction's hash is that of its wire bytes
            if tx is None:
                others.append(raw)
            else:
                decoded[raw] = tx
        if others:
            checked = preverify(others, self.state.network, self.mempool.verified)
            for tx_hash in checked.valid:
                self.mempool.remember(tx_hash)
            decoded.update(checked.decoded)
        return decoded

    def _genesis_head(self) -> Head:
        if self._genesis_head_cache is None:  # building the genesis state is not free (every balance)
            self._genesis_head_cache = self.genesis.state().head
        return self._genesis_head_cache

    # --- committing --------------------------------------------------------------------------------
    def _commit(self, reverted: list[Applied], applied: list[Applied]) -> None:
        lib = self._compute_lib(applied)
        self.store.move_head(reverted, applied, lib, keep_changes=lambda height: dpos.is_round_end(height, self.constants))
        self.lib = lib
        included = self._included
        for a in reverted:
            for tx in a.txs:
                included.pop(tx.hash, None)
        for a in applied:
            included.update(dict.fromkeys(tx.hash for tx in a.txs))
        while len(included) > RECENTLY_INCLUDED:
            included.popitem(last=False)

    def recently_included(self, tx_hash: bytes) -> bool:
        """Is the transaction in one of the last blocks of the head chain? (False when unsure.)

        Under load gossip of a transaction often comes after the block that includes it; this
        answers without decoding it, for the network to drop such copies unread."""
        return tx_hash in self._included

    def _compute_lib(self, applied: list[Applied]) -> int:
        """Walk the new head's chain backwards: the blocks just applied (not stored yet), then the
        stored canonical ones below them."""
        size = len(self.state.meta("order") or ())
        walk = [(a.block.header.height, a.block.header.producer) for a in reversed(applied)]
        below = applied[0].block.header.height - 1 if applied else self.head.height
        walk += self.store.recent_producers(below, 3 * self.constants.PRODUCERS)
        found = forkchoice.last_irreversible(walk, size)
        return max(self.lib, found or 0)
