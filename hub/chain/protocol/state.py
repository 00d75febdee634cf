"""The ledger: namespaced key-value maps, changed only inside a block's journal.

Why a flat key-value shape: a block's effect is then just a list of ``(namespace, key, new value)``
changes, which is what the header's state hash commits to (and what the state root's tree,
``statetree``, is updated with: only the changed buckets' paths), what the store writes in the same
SQLite transaction as the block, and whose inverse (the old values) is the undo record that lets a
reorganisation step back one block in time proportional to that block, not to the ledger.

Values are immutable (ints, bytes, str, bools and tuples of them); ``None`` means absent. Every
namespace and its value shape:

``acct``  address -> (balance, nonce)         ``cand``  address -> (name, public key, height)
``name``  candidate name -> address           ``vote``  voter address -> sorted tuple of addresses
``dq``    address -> height disqualified      ``ban``   address -> banned until (ms)
``poll``  poll id -> (target, opener, round)  ``pvote`` poll id + voter address -> approve
``miss``  producer address -> slots missed    ``prod``  producer address -> blocks produced
``meta``  "supply", "minted", "round", "order" (this round's producer keys), "elected" (next round's),
          "pending" (the last election's result, not yet in effect), "signers" (keys that signed a
          block of this round, sorted)

Devices (``devices.py``, docs/chain.md "Device transactions"):

``dev``    device public key -> (controller public key, or b"" after a factory reset, seq, time, epoch)
``ctl``    control_command tx hash -> (device public key, height): a command not reported yet
``done``   control_command tx hash -> (ok, reason, height of the state_change that reported it)
``clog``   command-log keeper address -> (next entry index, batches anchored)
``anchor`` keeper address + first index (8 bytes, big-endian) -> (root, count, first_time, last_time, height)

The market (``market.py``, docs/chain.md "Market transactions"); times in ms, amounts in base units:

``contract`` create_contract tx hash -> (device key, controller key, sorted commands, terms, endpoint,
           height, time); terms = (kind, price, window, rate, meter, interval, deposit, max_duration)
``call``     call tx hash -> (contract, renter key, escrow (prepaid; 0 metered), channel id (metered) or
           b"", time, windows paid (prepaid; 0 metered), status "open"/"returned"/"refunded", used,
           ended at (time of the return or refund; 0 while open))
``chan``     channel id -> (renter key, payee key, deposit (all top-ups), withdrawn, closing amount,
           closing_at (the end of a renter's close's challenge; 0 while none), opened height,
           closed height (0 while not paid out)); it holds deposit - withdrawn until closed
``chanof``   renter address + payee address -> (current channel id, openings)
``rev``      contract id or device key -> (returned calls, negative reviews)
``reviewed`` call tx hash -> height of its review
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterator

from hub.chain.protocol.constants import Constants
from hub.chain.protocol.statetree import StateTree, build
from hub.crypto.encoding import encode
from hub.crypto.signing import Network

NAMESPACES = ("acct", "anchor", "ban", "call", "cand", "chan", "chanof", "clog", "contract", "ctl", "dev", "done", "dq",
              "meta", "miss", "name", "poll", "prod", "pvote", "rev", "reviewed", "vote")
ZERO_HASH = b"\x00" * 32
_MISSING = object()

Change = tuple[str, Any, Any]  # (namespace, key, value or None)


@dataclass(frozen=True)
class Head:
    """Where the state is: the last applied block. Not part of the hashed state (the block hash
    depends on the state hash, so it cannot also be inside it)."""

    height: int
    hash: bytes
    slot: int
    timestamp: int
    state_hash: bytes


def chain_state_hash(previous: bytes, changes: list[Change]) -> bytes:
    """SHA-256(previous state hash ‖ SHA-256(CBOR of the sorted changes)), each change a 3-array.

    The changes are tuples, encoded as the arrays they stand for: copying each into a list first
    gave the same bytes at twice the cost (cbor2 pays ~1 µs per container)."""
    digest = hashlib.sha256(encode(changes)).digest()
    return hashlib.sha256(previous + digest).digest()


def freeze(value: Any) -> Any:
    """Decoded CBOR arrays come back as lists; the state holds tuples, which compare and hash."""
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


class State:
    __slots__ = ("chain_id", "constants", "genesis_time", "genesis_hash", "ns", "head", "_journal", "tree")

    def __init__(self, chain_id: str, constants: Constants, genesis_time: int, genesis_hash: bytes, head: Head) -> None:
        self.chain_id = chain_id
        self.constants = constants
        self.genesis_time = genesis_time
        self.genesis_hash = genesis_hash
        self.ns: dict[str, dict[Any, Any]] = {name: {} for name in NAMESPACES}
        self.head = head
        self._journal: dict[tuple[str, Any], Any] | None = None
        self.tree = StateTree()  # the state root's tree, kept in step by commit, revert and load

    @property
    def network(self) -> Network:
        """What signatures on this chain are bound to."""
        return Network(self.chain_id, self.genesis_hash)

    # --- reading ---------------------------------------------------------------------------------
    def get(self, ns: str, key: Any, default: Any = None) -> Any:
        return self.ns[ns].get(key, default)

    def items(self, ns: str) -> list[tuple[Any, Any]]:
        """Sorted, so nothing that iterates the state depends on insertion order."""
        return sorted(self.ns[ns].items())

    def balance(self, address: bytes) -> int:
        acct = self.ns["acct"].get(address)
        return acct[0] if acct else 0

    def nonce(self, address: bytes) -> int:
        acct = self.ns["acct"].get(address)
        return acct[1] if acct else 0

    def meta(self, key: str, default: Any = None) -> Any:
        return self.ns["meta"].get(key, default)

    def state_root(self) -> bytes:
        """The root of the tree over every namespace (``hub.chain.protocol.statetree``): what a
        header's ``state_root`` commits to and a state proof is checked against."""
        return self.tree.root()

    # --- writing (inside a block only) -------------------------------------------------------------
    def set(self, ns: str, key: Any, value: Any) -> None:
        journal = self._journal
        if journal is None:
            raise RuntimeError("state changes happen only inside a block (begin/commit)")
        table = self.ns[ns]
        jk = (ns, key)
        if jk not in journal:
            journal[jk] = table.get(key, _MISSING)
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value

    def begin(self) -> None:
        if self._journal is not None:
            raise RuntimeError("a block is already being applied")
        self._journal = {}

    def commit(self) -> tuple[list[Change], list[Change]]:
        """End the block: its sorted changes, and the undo record (old values, None = absent)."""
        journal, self._journal = self._journal, None
        changes: list[Change] = []
        undo: list[Change] = []
        tables = self.ns
        # Sorting the (namespace, key) pairs themselves, not the items by a key function: the same
        # order (the pairs are unique), a quarter less time for a block's thousands of changes.
        for jk in sorted(journal):
            ns, key = jk
            old = journal[jk]
            if old is _MISSING:
                old = None
            new = tables[ns].get(key)
            if new != old:
                changes.append((ns, key, new))
                undo.append((ns, key, old))
        self.tree.update(changes)
        return changes, undo

    def rollback(self) -> None:
        """Abandon the block: every key back to its value before ``begin``."""
        journal, self._journal = self._journal, None
        for (ns, key), old in (journal or {}).items():
            if old is _MISSING:
                self.ns[ns].pop(key, None)
            else:
                self.ns[ns][key] = old

    def revert(self, undo: list[Change], head: Head) -> None:
        """Step back one block with its undo record (reorganisations).

        Undo records read back from the store are decoded CBOR, whose arrays are lists: they are
        frozen here, as in :meth:`load`, or a reverted value would compare unequal to the same value
        written again (tuple != list) and the next block would record a change that is none."""
        restored = []
        for ns, key, old in undo:
            key = freeze(key)
            if old is None:
                self.ns[ns].pop(key, None)
            else:
                old = self.ns[ns][key] = freeze(old)
            restored.append((ns, key, old))
        self.tree.update(restored)
        self.head = head

    def load(self, rows: Iterator[Change]) -> None:
        """Add ``rows`` to the ledger (a state restored from the store), then rebuild the tree from
        the whole ledger, so the root is the one the same entries give on any node."""
        for ns, key, value in rows:
            self.ns[ns][freeze(key)] = freeze(value)
        self.tree = build((ns, k, v) for ns in NAMESPACES for k, v in self.ns[ns].items())

    def digest(self) -> bytes:
        """Hash of the whole ledger (tests compare two nodes with it; consensus uses the chained hash)."""
        h = hashlib.sha256()
        for name in NAMESPACES:
            h.update(encode([name, [[k, v] for k, v in sorted(self.ns[name].items())]]))
        return h.digest()
