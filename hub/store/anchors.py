"""The command log's leaves and batches in hub.db (schema version 4): the storage side of anchoring.

Leaves are appended in the very transaction that writes their ``command_log`` rows
(:func:`append_leaves`, called by ``Store.log_commands``), so every committed command has its leaf,
at the next contiguous index, whatever happens next: a purge of old rows, a ``kill -9``, a chain
that stays unreachable for a week. Batches are cut from the leaves in index order by
:meth:`LogAnchors.seal`; the publishing (``hub/identity/anchor.py``) only moves a batch's fields.

Leaves are purged only once their whole batch is final on chain and none of its commands is still in
``command_log`` (:func:`purge_leaves`): a proof needs every hash of its batch, and nobody can ask for
the proof of a command the log no longer holds.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.crypto.merkle import inclusion_proof_of_hashes, root_of_hashes
from hub.store.logleaf import hashed, ts_ms

if TYPE_CHECKING:
    from hub.store.store import Store

_COLUMNS = "id, ts, entity_id, command, args, source, ok, error, result"
_BATCH = "first, count, root, first_time, last_time, keeper, chain_first, tx, submitted_at, height, final"
_NEXT_LEAF = ("SELECT coalesce((SELECT max(idx) + 1 FROM log_leaves), "
              "(SELECT max(first + count) FROM log_batches), 0)")


@dataclass
class Batch:
    first: int
    count: int
    root: bytes
    first_time: int
    last_time: int
    keeper: bytes | None = None
    chain_first: int | None = None
    tx: bytes | None = None
    submitted_at: float | None = None
    height: int | None = None
    final: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"first": self.first, "count": self.count, "root": self.root.hex(), "first_time": self.first_time,
                "last_time": self.last_time, "keeper": self.keeper.hex() if self.keeper else None,
                "chain_first": self.chain_first, "tx": self.tx.hex() if self.tx else None,
                "height": self.height, "final": self.final}


def _batch(row: tuple) -> Batch:
    *head, final = row
    return Batch(*head, final=bool(final))


def append_leaves(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """Leaves for freshly inserted rows ``(id, ts, entity_id, ..., result)``, in the caller's transaction."""
    if not rows:
        return
    start = conn.execute(_NEXT_LEAF).fetchone()[0]
    conn.executemany("INSERT INTO log_leaves (idx, log_id, ts, hash) VALUES (?, ?, ?, ?)",
                     [(start + i, row[0], ts_ms(row[1]), hashed(row)) for i, row in enumerate(rows)])


def needs_backfill(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM command_log WHERE id > coalesce((SELECT max(log_id) FROM log_leaves), 0) "
                        "LIMIT 1").fetchone() is not None


def backfill(conn: sqlite3.Connection) -> int:
    """Leaves for rows logged before schema version 4 (or by anything that skipped them), in id order."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM command_log WHERE id > coalesce((SELECT max(log_id) FROM log_leaves), 0) "
        "ORDER BY id").fetchall()
    append_leaves(conn, rows)
    return len(rows)


def purge_leaves(conn: sqlite3.Connection) -> int:
    """Drop the leaves no proof will ever need again (see the module docstring); returns how many."""
    oldest_row = conn.execute(
        "SELECT idx FROM log_leaves WHERE log_id = (SELECT min(id) FROM command_log)").fetchone()
    unfinal = conn.execute("SELECT min(first) FROM log_batches WHERE final = 0").fetchone()[0]
    unbatched = conn.execute("SELECT coalesce(max(first + count), 0) FROM log_batches").fetchone()[0]
    bound = unbatched if unfinal is None else unfinal
    if oldest_row is not None:
        holder = conn.execute("SELECT first FROM log_batches WHERE first <= ? AND ? < first + count",
                              (oldest_row[0], oldest_row[0])).fetchone()
        bound = min(bound, holder[0] if holder is not None else oldest_row[0])
    return conn.execute("DELETE FROM log_leaves WHERE idx < ?", (bound,)).rowcount


class LogAnchors:
    """Reads and moves batches; every write is one transaction of the hub's store."""

    def __init__(self, store: "Store") -> None:
        self._store = store

    def unbatched(self) -> tuple[int, int, int | None]:
        """(index of the first leaf in no batch, how many such leaves, time in ms of the oldest)."""
        rows = self._store._read(
            # Leaves are contiguous, so the count is a difference of indexes, not a scan of a week's backlog.
            "SELECT b.next, coalesce((SELECT max(idx) + 1 FROM log_leaves), b.next) - b.next, "
            "(SELECT ts FROM log_leaves WHERE idx = b.next) "
            "FROM (SELECT coalesce(max(first + count), 0) AS next FROM log_batches) AS b")
        return rows[0]

    def seal(self, max_count: int) -> Batch | None:
        """Cut the next batch: up to ``max_count`` leaves in no batch yet, root computed now."""
        with self._store._write() as conn:
            start = conn.execute("SELECT coalesce(max(first + count), 0) FROM log_batches").fetchone()[0]
            rows = conn.execute("SELECT idx, ts, hash FROM log_leaves WHERE idx >= ? ORDER BY idx LIMIT ?",
                                (start, max_count)).fetchall()
            if not rows:
                return None
            if rows[0][0] != start or rows[-1][0] != start + len(rows) - 1:
                raise RuntimeError(f"the command log's leaves from {start} are not contiguous")
            batch = Batch(start, len(rows), root_of_hashes([h for _, _, h in rows]),
                          min(t for _, t, _ in rows), max(t for _, t, _ in rows))
            conn.execute("INSERT INTO log_batches (first, count, root, first_time, last_time) VALUES (?, ?, ?, ?, ?)",
                         (batch.first, batch.count, batch.root, batch.first_time, batch.last_time))
            return batch

    def open_batches(self, limit: int = 10) -> list[Batch]:
        """Batches not final yet, oldest first: they are published in this order."""
        return [_batch(r) for r in self._store._read(
            f"SELECT {_BATCH} FROM log_batches WHERE final = 0 ORDER BY first LIMIT ?", (limit,))]

    def last_placed(self, before: int) -> Batch | None:
        """The latest batch before leaf ``before`` with a place on chain (its successor's place follows it)."""
        rows = self._store._read(f"SELECT {_BATCH} FROM log_batches WHERE first < ? AND chain_first IS NOT NULL "
                                 "ORDER BY first DESC LIMIT 1", (before,))
        return _batch(rows[0]) if rows else None

    def update(self, first: int, **fields: Any) -> None:
        allowed = {"keeper", "chain_first", "tx", "submitted_at", "height", "final"}
        if not fields or not set(fields) <= allowed:
            raise ValueError(f"unknown batch fields {sorted(set(fields) - allowed)}")
        names = sorted(fields)
        with self._store._write() as conn:
            conn.execute(f"UPDATE log_batches SET {', '.join(f'{n} = ?' for n in names)} WHERE first = ?",
                         [int(fields[n]) if n == "final" else fields[n] for n in names] + [first])

    def counts(self) -> dict[str, int]:
        """For the API and the metrics: leaves logged, in batches, anchored (included), final."""
        leaves, batched, included, final = self._store._read(
            "SELECT (" + _NEXT_LEAF + "), coalesce((SELECT max(first + count) FROM log_batches), 0), "
            "coalesce((SELECT sum(count) FROM log_batches WHERE height IS NOT NULL), 0), "
            "coalesce((SELECT sum(count) FROM log_batches WHERE final = 1), 0)")[0]
        return {"logged": leaves, "batched": batched, "anchored": included, "final": final}

    def entry(self, log_id: int) -> dict[str, Any] | None:
        """A logged command with its leaf index and batch (None: no such command in the log)."""
        rows = self._store._read(f"SELECT {_COLUMNS} FROM command_log WHERE id = ?", (log_id,))
        if not rows:
            return None
        row = rows[0]
        leaf = self._store._read("SELECT idx, hash FROM log_leaves WHERE log_id = ?", (log_id,))
        idx, stored = leaf[0] if leaf else (None, None)
        batch = None
        if idx is not None:
            found = self._store._read(f"SELECT {_BATCH} FROM log_batches WHERE first <= ? AND ? < first + count",
                                      (idx, idx))
            batch = _batch(found[0]) if found else None
        return {"row": row, "index": idx, "hash": stored, "batch": batch}

    def path(self, batch: Batch, index: int) -> list[bytes]:
        """The inclusion proof of leaf ``index`` in ``batch``'s tree."""
        hashes = [h for (h,) in self._store._read(
            "SELECT hash FROM log_leaves WHERE idx >= ? AND idx < ? ORDER BY idx", (batch.first, batch.first + batch.count))]
        if len(hashes) != batch.count:
            raise LookupError(f"the leaves of batch {batch.first} are no longer kept")
        return inclusion_proof_of_hashes(hashes, index - batch.first)

    def entries_with_status(self, entity_ids: list[str] | None, limit: int) -> list[dict[str, Any]]:
        """Recent commands (newest first), each with its leaf index and its batch's anchor status."""
        sql = ("SELECT c.id, c.ts, c.entity_id, c.command, c.source, c.ok, c.error, l.idx, "
               "b.first, b.height, b.final, b.tx FROM command_log c LEFT JOIN log_leaves l ON l.log_id = c.id "
               "LEFT JOIN log_batches b ON l.idx >= b.first AND l.idx < b.first + b.count")
        params: list[Any] = []
        if entity_ids is not None:
            sql += f" WHERE c.entity_id IN ({', '.join('?' for _ in entity_ids)})" if entity_ids else " WHERE 0"
            params += entity_ids
        sql += " ORDER BY c.id DESC LIMIT ?"
        params.append(limit)
        out = []
        for id_, ts, entity, command, source, ok, error, idx, first, height, final, tx in self._store._read(sql, params):
            status = ("final" if final else "anchored" if height is not None else "submitted" if tx is not None
                      else "batched" if first is not None else "logged")
            out.append({"id": id_, "ts": ts, "entity_id": entity, "command": command, "source": source, "ok": bool(ok),
                        "error": error, "leaf": idx, "status": status, "height": height})
        return out
