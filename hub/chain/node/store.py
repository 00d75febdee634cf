"""The chain's SQLite file: blocks (every branch), the canonical index, the state, undo records.

Crash consistency is the point of the layout: one SQLite transaction moves the head, whether it adds
one block or reorganises several, and writes the block, its state changes, its undo record, the
canonical index, the transaction index and the head pointer together. A node killed at any moment
reopens at a head whose state is exactly the state of that block. WAL with ``synchronous=NORMAL``
makes a commit durable against ``kill -9`` (not against power loss in the last moments; the same
trade the hub store makes, see its docstring).

``inbox`` is how the command line hands a signed transaction to the node (issue #5 has no RPC yet):
the CLI inserts it, the running node moves it into its mempool within a second and writes back
``pending`` or ``rejected: <reason>``; the row goes when a block includes the transaction. The CLI
reads the rows to pick its next nonce and to tell the user what became of a transaction.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hub.chain.protocol.block import Block, Header
from hub.chain.protocol.state import Change, Head
from hub.chain.protocol.transition import Applied
from hub.crypto.encoding import decode, encode

DB_NAME = "chain.db"
PAGE_SIZE = 2048
SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks(hash BLOB PRIMARY KEY, height INTEGER NOT NULL, prev BLOB NOT NULL,
    slot INTEGER NOT NULL, producer BLOB NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blocks_prev ON blocks(prev);
CREATE INDEX IF NOT EXISTS blocks_producer ON blocks(producer, slot);
CREATE TABLE IF NOT EXISTS headers(hash BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes(hash BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS canon(height INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS undo(hash BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state(ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY(ns, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS txindex(hash BLOB PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS inbox(hash BLOB PRIMARY KEY, raw BLOB NOT NULL, sender BLOB NOT NULL,
    nonce INTEGER NOT NULL, added REAL NOT NULL, status TEXT) WITHOUT ROWID;
"""


def head_of(header: Header, state_hash: bytes | None = None) -> Head:
    return Head(header.height, header.hash, header.slot, header.timestamp, state_hash or header.state_hash)


class ChainStore:
    def __init__(self, directory: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(directory) / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._producers: dict[bytes, bytes] = {}  # block hash -> producer, for recent_producers
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
        # New files only (a no-op on an existing one): an empty block touches ~10 pages, written whole
        # to the WAL, so 2 KiB pages halve what the embedded node writes to an SD card. Not 1 KiB: a
        # WITHOUT ROWID row keeps at most ~230 bytes in its page there, and a block row (~440) or a
        # header row (~350) would each need an overflow page, which doubled the file's growth.
        self.conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # --- meta ------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return decode(row[0]) if row else None

    def _set_meta(self, conn: sqlite3.Connection, key: str, value: Any) -> None:
        conn.execute("INSERT OR REPLACE INTO meta VALUES(?,?)", (key, encode(value)))

    # --- writing ---------------------------------------------------------------------------------
    def initialise(self, genesis_hash: bytes, genesis_changes: list[Change], head: Head) -> None:
        """Write the genesis state once, in one transaction with the head pointer."""
        with self.transaction() as conn:
            self._write_changes(conn, genesis_changes)
            self._set_meta(conn, "genesis", genesis_hash)
            self._set_meta(conn, "head", [head.height, head.hash, head.slot, head.timestamp, head.state_hash])
            self._set_meta(conn, "lib", 0)
            conn.execute("INSERT OR REPLACE INTO canon VALUES(0, ?)", (genesis_hash,))

    def put_block(self, block: Block) -> None:
        """Keep a block of any branch (not yet applied)."""
        with self.transaction() as conn:
            self._insert_block(conn, block)

    def move_head(self, reverted: list[Applied], applied: list[Applied], lib: int,
                  keep_changes: Callable[[int], bool] = lambda height: False) -> None:
        """Revert ``reverted`` (newest first), apply ``applied`` (oldest first): one transaction.

        ``keep_changes(height)``: also keep that block's encoded state changes, the schedule proof
        light clients ask for at each round end (rebuilding it later means reading every undo
        record from there to the head)."""
        with self.transaction() as conn:
            # The CLI's queue is nearly always empty: one look instead of a DELETE per transaction.
            inbox = conn.execute("SELECT EXISTS(SELECT 1 FROM inbox)").fetchone()[0]
            for a in reverted:
                self._write_changes(conn, a.undo)
                conn.execute("DELETE FROM canon WHERE height=?", (a.block.header.height,))
                conn.execute("DELETE FROM undo WHERE hash=?", (a.block.hash,))
                conn.executemany("DELETE FROM txindex WHERE hash=?", [(t.hash,) for t in a.txs])
            for a in applied:
                h = a.block.header
                self._insert_block(conn, a.block)
                self._write_changes(conn, a.changes)
                conn.execute("INSERT INTO undo VALUES(?,?)", (a.block.hash, encode(a.undo)))
                if keep_changes(h.height):
                    conn.execute("INSERT OR REPLACE INTO changes VALUES(?,?)",
                                 (a.block.hash, encode(a.changes)))
                conn.execute("INSERT OR REPLACE INTO canon VALUES(?,?)", (h.height, a.block.hash))
                conn.executemany("INSERT OR REPLACE INTO txindex VALUES(?,?,?)",
                                 [(t.hash, h.height, i) for i, t in enumerate(a.txs)])
                if inbox:
                    conn.executemany("DELETE FROM inbox WHERE hash=?", [(t.hash,) for t in a.txs])
            tip = applied[-1] if applied else None
            if tip is not None:
                head = head_of(tip.block.header)
            else:
                head = reverted[-1].parent
            self._set_meta(conn, "head", [head.height, head.hash, head.slot, head.timestamp, head.state_hash])
            self._set_meta(conn, "lib", lib)

    def _insert_block(self, conn: sqlite3.Connection, block: Block) -> None:
        h = block.header
        self._producers[block.hash] = h.producer
        conn.execute("INSERT OR IGNORE INTO blocks VALUES(?,?,?,?,?,?)",
                     (block.hash, h.height, h.prev_hash, h.slot, h.producer, block.encode()))
        conn.execute("INSERT OR IGNORE INTO headers VALUES(?,?)", (block.hash, h.encode()))

    @staticmethod
    def _write_changes(conn: sqlite3.Connection, changes: list[Change]) -> None:
        upserts = [(ns, encode(key), encode(value)) for ns, key, value in changes if value is not None]
        deletes = [(ns, encode(key)) for ns, key, value in changes if value is None]
        if upserts:
            conn.executemany("INSERT OR REPLACE INTO state VALUES(?,?,?)", upserts)
        if deletes:
            conn.executemany("DELETE FROM state WHERE ns=? AND key=?", deletes)

    def set_lib(self, lib: int) -> None:
        with self.transaction() as conn:
            self._set_meta(conn, "lib", lib)

    def delete_block(self, block_hash: bytes) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM blocks WHERE hash=?", (block_hash,))
            conn.execute("DELETE FROM headers WHERE hash=?", (block_hash,))

    # --- reading ---------------------------------------------------------------------------------
    def head(self) -> Head | None:
        v = self.get_meta("head")
        return Head(*v) if v else None

    def state_rows(self) -> Iterator[Change]:
        for ns, key, value in self.conn.execute("SELECT ns, key, value FROM state"):
            yield ns, decode(key), decode(value)

    def state_value(self, ns: str, key: Any) -> Any:
        row = self.conn.execute("SELECT value FROM state WHERE ns=? AND key=?", (ns, encode(key))).fetchone()
        return decode(row[0]) if row else None

    def block(self, block_hash: bytes) -> Block | None:
        row = self.conn.execute("SELECT data FROM blocks WHERE hash=?", (block_hash,)).fetchone()
        return Block.decode(row[0]) if row else None

    def header(self, block_hash: bytes) -> Header | None:
        """A block's header without decoding its transactions (up to 3 MB for a header of 300 B).
        Stores written before the headers table fall back to the block."""
        row = self.conn.execute("SELECT data FROM headers WHERE hash=?", (block_hash,)).fetchone()
        if row is not None:
            return Header.from_dict(decode(row[0]))
        block = self.block(block_hash)
        return block.header if block is not None else None

    def canonical_header(self, height: int) -> Header | None:
        h = self.canonical_hash(height)
        return self.header(h) if h is not None else None

    def changes(self, block_hash: bytes) -> bytes | None:
        """A block's encoded state changes, if ``move_head`` was asked to keep them."""
        row = self.conn.execute("SELECT data FROM changes WHERE hash=?", (block_hash,)).fetchone()
        return row[0] if row else None

    def has_block(self, block_hash: bytes) -> bool:
        return self.conn.execute("SELECT 1 FROM blocks WHERE hash=?", (block_hash,)).fetchone() is not None

    def canonical_hash(self, height: int) -> bytes | None:
        row = self.conn.execute("SELECT hash FROM canon WHERE height=?", (height,)).fetchone()
        return row[0] if row else None

    def canonical_block(self, height: int) -> Block | None:
        h = self.canonical_hash(height)
        return self.block(h) if h is not None else None

    def undo_record(self, block_hash: bytes) -> list[Change]:
        row = self.conn.execute("SELECT data FROM undo WHERE hash=?", (block_hash,)).fetchone()
        return [tuple(u) for u in decode(row[0])]

    def last_slot_of(self, producer: bytes) -> int:
        """The last slot ``producer`` signed a block for, on any branch (0: none)."""
        row = self.conn.execute("SELECT MAX(slot) FROM blocks WHERE producer=?", (producer,)).fetchone()
        return row[0] or 0

    def recent_producers(self, head_height: int, count: int) -> list[tuple[int, bytes]]:
        """(height, producer) of the canonical blocks in (head_height - count, head_height], newest
        first. The canon table is small and fast to scan; a block's producer never changes, so it is
        remembered by hash (the join into ``blocks``, whose rows hold whole blocks, costs ~30 µs a row)."""
        rows = self.conn.execute("SELECT height, hash FROM canon WHERE height>? AND height<=? ORDER BY height DESC",
                                 (head_height - count, head_height)).fetchall()
        cache = self._producers
        missing = [h for _, h in rows if h not in cache]
        for block_hash in missing:
            row = self.conn.execute("SELECT producer FROM blocks WHERE hash=?", (block_hash,)).fetchone()
            if row is not None:
                cache[block_hash] = row[0]
        out = [(height, cache[h]) for height, h in rows if h in cache]
        while len(cache) > 4096:
            cache.pop(next(iter(cache)))
        return out

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        row = self.conn.execute("SELECT height, idx FROM txindex WHERE hash=?", (tx_hash,)).fetchone()
        return (row[0], row[1]) if row else None

    # --- the CLI's inbox --------------------------------------------------------------------------
    def add_to_inbox(self, tx_hash: bytes, raw: bytes, sender: bytes = b"", nonce: int = 0) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO inbox VALUES(?,?,?,?,?,NULL)", (tx_hash, raw, sender, nonce, time.time()))

    def inbox_waiting(self) -> bool:
        """Whether the CLI queued anything not yet looked at: a read, so the node can poll it
        several times a second without taking its lock or opening a write transaction."""
        # Callers do not hold the node lock, so the store's own lock must keep close() out:
        # closing a SQLite connection while another thread runs a statement on it can crash
        # the process (it did, at a hub's shutdown).
        with self._lock:
            return self.conn.execute("SELECT 1 FROM inbox WHERE status IS NULL LIMIT 1").fetchone() is not None

    def take_inbox(self) -> list[tuple[bytes, bytes]]:
        """Rows not yet looked at, oldest first; forgets rows older than a day (expired by then)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM inbox WHERE added < ?", (time.time() - 86_400,))
            return conn.execute("SELECT hash, raw FROM inbox WHERE status IS NULL ORDER BY added, nonce").fetchall()

    def mark_inbox(self, results: list[tuple[bytes, str]]) -> None:
        if results:
            with self.transaction() as conn:
                conn.executemany("UPDATE inbox SET status=? WHERE hash=?", [(s, h) for h, s in results])

    def inbox_status(self, tx_hash: bytes) -> str | None:
        row = self.conn.execute("SELECT coalesce(status, 'queued') FROM inbox WHERE hash=?", (tx_hash,)).fetchone()
        return row[0] if row else None

    def inbox_next_nonce(self, sender: bytes) -> int:
        """The highest nonce the CLI queued for ``sender`` that is not known to be rejected."""
        row = self.conn.execute("SELECT max(nonce) FROM inbox WHERE sender=? AND (status IS NULL OR status='pending')",
                                (sender,)).fetchone()
        return row[0] or 0
