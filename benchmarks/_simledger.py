"""The shared block tree of the network simulation: every block applied once, by the real protocol.

``apply_block`` and ``build_block`` are pure functions of (state at the parent, block): the same
block on the same parent gives the same changes, undo record, head and verdict on every node. So the
simulation keeps ONE :class:`State` and moves it between branches (revert with the undo record,
replay with the recorded changes, exactly as ``ChainNode`` does in a reorganisation), applies each
block the first time any node receives it, and lets the 105 simulated nodes share the result keyed
by the block hash (which commits to the parent hash). Nodes keep their own view: which blocks they
know, their head and their last irreversible block. Fork choice and finality are the protocol's
``forkchoice.better`` and ``forkchoice.last_irreversible`` computed over each node's own chain, with
``ChainNode``'s window (3 x PRODUCERS blocks) and its rule ``lib = max(lib, found)``.
"""

from __future__ import annotations

from hub.chain.protocol import dpos, forkchoice
from hub.chain.protocol.block import Block
from hub.chain.protocol.errors import BlockRejected
from hub.chain.protocol.genesis import Genesis
from hub.chain.protocol.state import Head
from hub.chain.protocol.transition import apply_block, build_block
from hub.chain.protocol.tx import Transaction
from hub.crypto import keys


class Ledger:
    def __init__(self, genesis: Genesis) -> None:
        self.state = genesis.state()
        self.c = self.state.constants
        g = self.state.head
        self.genesis_hash = g.hash
        self.heads: dict[bytes, Head] = {g.hash: g}
        self.parent: dict[bytes, bytes] = {}
        self.blocks: dict[bytes, Block] = {}
        self.producer: dict[bytes, bytes] = {}
        self.diff: dict[bytes, tuple[list, list]] = {}
        self.sched: dict[bytes, tuple[bytes, ...]] = {g.hash: dpos.schedule_after(self.state)}
        self.lib_at: dict[bytes, int] = {g.hash: 0}
        self.lib_hash_at: dict[bytes, bytes] = {g.hash: g.hash}
        self.invalid: set[bytes] = set()
        self.pos = g.hash
        self.applies = 0
        self._verdicts: dict[bytes, bool] = {}

    # --- walking the tree ----------------------------------------------------------------------------
    def ancestor_at(self, h: bytes, height: int) -> bytes:
        heads, parent = self.heads, self.parent
        while heads[h].height > height:
            h = parent[h]
        return h

    def common_ancestor(self, a: bytes, b: bytes) -> bytes:
        heads, parent = self.heads, self.parent
        while heads[a].height > heads[b].height:
            a = parent[a]
        while heads[b].height > heads[a].height:
            b = parent[b]
        while a != b:
            a, b = parent[a], parent[b]
        return a

    def move_to(self, target: bytes) -> None:
        """Put the shared state at ``target`` (revert to the common ancestor, replay the changes)."""
        if target == self.pos:
            return
        anc = self.common_ancestor(self.pos, target)
        state, heads, parent = self.state, self.heads, self.parent
        h = self.pos
        while h != anc:
            p = parent[h]
            state.revert(self.diff[h][1], heads[p])
            h = p
        path = []
        h = target
        while h != anc:
            path.append(h)
            h = parent[h]
        ns = state.ns
        for h in reversed(path):
            for name, key, value in self.diff[h][0]:
                if value is None:
                    ns[name].pop(key, None)
                else:
                    ns[name][key] = value
            state.tree.update(self.diff[h][0])  # the state root's tree follows the ledger
            state.head = heads[h]
        self.pos = target

    # --- applying ------------------------------------------------------------------------------------
    def validate(self, block: Block) -> bool:
        """Apply ``block`` on its parent with the real ``apply_block`` (once per block network-wide)."""
        h = block.hash
        if h in self.heads:
            return True
        if h in self.invalid or block.header.prev_hash not in self.heads:
            return False
        self.move_to(block.header.prev_hash)
        try:
            applied = apply_block(self.state, block)
        except BlockRejected:
            self.invalid.add(h)
            return False
        self._record(block, applied.changes, applied.undo)
        return True

    def verify(self, tx: Transaction) -> bool:
        v = self._verdicts.get(tx.hash)
        if v is None:
            v = self._verdicts[tx.hash] = keys.verify(tx.sender, tx.signing_bytes(self.state.network), tx.signature)
        return v

    def build(self, parent: bytes, key: keys.PrivateKey, slot: int, candidates: list[Transaction]) -> Block:
        self.move_to(parent)
        built = build_block(self.state, key, slot, candidates, self.verify)
        block = built.applied.block
        self._record(block, built.applied.changes, built.applied.undo)
        return block

    def _record(self, block: Block, changes: list, undo: list) -> None:
        h = block.hash
        self.applies += 1
        self.blocks[h] = block
        self.parent[h] = block.header.prev_hash
        self.producer[h] = block.header.producer
        self.heads[h] = self.state.head
        self.diff[h] = (changes, undo)
        self.sched[h] = dpos.schedule_after(self.state)
        self.pos = h
        # ChainNode._compute_lib: walk the chain newest first over 3 x PRODUCERS blocks, with the
        # schedule size of the head's state.
        size = len(self.state.meta("order") or ())
        walk: list[tuple[int, bytes]] = []
        hashes: list[bytes] = []
        cursor = h
        for _ in range(3 * self.c.PRODUCERS):
            if cursor == self.genesis_hash:
                break
            walk.append((self.heads[cursor].height, self.producer[cursor]))
            hashes.append(cursor)
            cursor = self.parent[cursor]
        found = forkchoice.last_irreversible(walk, size)
        if found:
            self.lib_at[h] = found
            self.lib_hash_at[h] = hashes[self.heads[h].height - found]
        else:
            self.lib_at[h] = 0
            self.lib_hash_at[h] = self.genesis_hash


class SimNode:
    """One node's view: known blocks (closed under ancestors), head, last irreversible block."""

    __slots__ = ("index", "key", "pk", "ledger", "known", "head", "lib", "lib_hash", "reorgs",
                 "max_reorg", "refused", "violations", "lib_times")

    def __init__(self, index: int, key: keys.PrivateKey | None, ledger: Ledger) -> None:
        self.index = index
        self.key = key
        self.pk = key.public_key if key else None
        self.ledger = ledger
        self.known = {ledger.genesis_hash}
        self.head = ledger.genesis_hash
        self.lib = 0
        self.lib_hash = ledger.genesis_hash
        self.reorgs = 0
        self.max_reorg = 0
        self.refused = 0
        self.violations = 0  # LIB decreased or an irreversible block reverted (must stay 0)
        self.lib_times: list[tuple[int, bytes]] = []  # (time, newly irreversible block)

    def _set_head(self, h: bytes, now: int) -> None:
        self.head = h
        found = self.ledger.lib_at[h]
        if found > self.lib:
            self.lib = found
            self.lib_hash = self.ledger.lib_hash_at[h]
            self.lib_times.append((now, self.lib_hash))

    def receive(self, block: Block, now: int) -> str:
        """ChainNode.receive_block's decisions: extend, keep a side block, reorganise to a better
        branch unless it forks below the last irreversible block."""
        h = block.hash
        if h in self.known:
            return "known"
        prev = block.header.prev_hash
        if prev not in self.known:
            return "orphan"
        ledger = self.ledger
        if not ledger.validate(block):
            return "invalid"
        self.known.add(h)
        if prev == self.head:
            self._set_head(h, now)
            return "applied"
        new, cur = ledger.heads[h], ledger.heads[self.head]
        if not forkchoice.better(new.height, h, cur.height, cur.hash):
            return "side"
        anc = ledger.common_ancestor(h, self.head)
        anc_height = ledger.heads[anc].height
        if anc_height < self.lib:
            self.refused += 1
            return "refused"
        # independent check: the new chain still holds this node's irreversible block
        if ledger.ancestor_at(h, self.lib) != self.lib_hash:
            self.violations += 1
        depth = cur.height - anc_height
        self.reorgs += 1
        self.max_reorg = max(self.max_reorg, depth)
        old_lib = self.lib
        self._set_head(h, now)
        if self.lib < old_lib:
            self.violations += 1
        return "reorganised"

    def produce(self, slot: int, candidates: list[Transaction], now: int) -> Block | None:
        """ChainNode.produce: the block of ``slot`` on this node's head, if the slot is ours."""
        ledger = self.ledger
        head = ledger.heads[self.head]
        if self.key is None or slot <= head.slot or dpos.slot_owner(ledger.sched[self.head], slot) != self.pk:
            return None
        block = ledger.build(self.head, self.key, slot, candidates)
        self.known.add(block.hash)
        self._set_head(block.hash, now)
        return block
