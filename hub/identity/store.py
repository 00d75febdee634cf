"""``<data>/identity/identity.db``: device identities, the counters the gate accepted, grants.

A file of its own, not ``hub.db``: the counter of every signed command is committed before the
command runs (a kill -9 must never re-open it for a replay), and on ``hub.db`` that commit would
wait behind the recorder's batch commits (seconds with a large batch) for the one write lock.
WAL with ``synchronous = NORMAL``: a commit survives a kill -9 of the hub (it is in the OS's
cache once written); a power cut may lose the last commits, which docs/identity.md says.

Migrations are versioned like ``hub/store/schema.py`` (``PRAGMA user_version``, append-only);
chainlink and anchor append theirs to :data:`MIGRATIONS`. One connection, one lock: the gate
writes from the event loop, the CLI from its own process.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.store.sqlite import open_wal
from hub.store.files import private_dir, private_file

DB_DIR = "identity"
DB_NAME = "identity.db"


def connect(path: Path) -> sqlite3.Connection:
    """An autocommit connection to identity.db in WAL mode, migrated: the gate's store and
    chain-state control's each open one, so the two never wait on one Python lock."""
    return open_wal(path, migrate)

MIGRATIONS: list[tuple[str, ...]] = [
    # 1: identities, counters, grants
    (
        # record: the light node's record (controller, seq, time, epoch, grants) as JSON, for a
        # keyless device the hub verifies for; for a key-holding one, the hub's mirror of what it
        # delivered. Counters live in their own table: one small row per signed command.
        """CREATE TABLE identities (
            device_id TEXT PRIMARY KEY,
            public_key BLOB NOT NULL UNIQUE,
            holds_key INTEGER NOT NULL,
            record TEXT,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE counters (
            device_id TEXT NOT NULL,
            signer BLOB NOT NULL,
            counter INTEGER NOT NULL,
            PRIMARY KEY (device_id, signer)
        ) WITHOUT ROWID""",
        # The counter of the commands the hub signs itself (as controller), per device.
        """CREATE TABLE issued (
            device_id TEXT PRIMARY KEY,
            counter INTEGER NOT NULL
        ) WITHOUT ROWID""",
        # Grants the hub made or was given, for the owner's view and for delivery to key-holding
        # devices; ``revoked`` once a Revoke of a higher epoch was recorded.
        """CREATE TABLE grants (
            signature BLOB PRIMARY KEY,
            device_id TEXT NOT NULL,
            grantee BLOB NOT NULL,
            statement TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            not_after INTEGER NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX grants_device ON grants (device_id)",
    ),
    # 2: chain-state control (hub/identity/chainctl_store.py): how far the hub followed the chain,
    # and each control_command taken, its outcome and its state_change report
    (
        """CREATE TABLE chain_cursor (
            genesis BLOB PRIMARY KEY,
            height INTEGER NOT NULL,
            hash BLOB
        ) WITHOUT ROWID""",
        """CREATE TABLE chain_commands (
            tx_hash BLOB PRIMARY KEY,
            device_id TEXT NOT NULL,
            height INTEGER NOT NULL,
            taken_at REAL NOT NULL,
            outcome TEXT,
            done_at REAL,
            report_tx BLOB,
            reported TEXT
        ) WITHOUT ROWID""",
        "CREATE INDEX chain_commands_open ON chain_commands (reported) WHERE reported IS NULL",
    ),
    # 3: when chain control first wanted to follow each chain (hub clock, ms): its first look may come
    # much later (the node unreachable, the light client syncing), and its cursor then starts no
    # later than this moment, so a command sent meanwhile is not skipped (hub/chain/first_cursor.py)
    (
        """CREATE TABLE chain_follow_start (
            genesis BLOB PRIMARY KEY,
            since INTEGER NOT NULL
        ) WITHOUT ROWID""",
    ),
]


class IdentitySchemaError(RuntimeError):
    """identity.db was written by a newer hub."""


def migrate(conn: sqlite3.Connection) -> int:
    version = len(MIGRATIONS)
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found == version:
        return found
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found > version:
            raise IdentitySchemaError(f"identity.db schema version {found} is newer than this hub supports ({version})")
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version:d}")
    return found


@dataclass(frozen=True)
class IdentityRow:
    device_id: str
    public_key: bytes
    holds_key: bool
    record: dict[str, Any] | None


class IdentityStore:
    def __init__(self, data_dir: Path) -> None:
        folder = private_dir(Path(data_dir) / DB_DIR)
        self.path = folder / DB_NAME
        for suffix in ("", "-wal", "-shm"):
            if suffix == "" or self.path.with_name(DB_NAME + suffix).exists():
                private_file(self.path.with_name(DB_NAME + suffix))
        self._lock = threading.RLock()
        self._conn = connect(self.path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _write(self, statements: list[tuple[str, tuple]]) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    self._conn.execute(sql, params)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # --- identities -----------------------------------------------------------------------------
    def set_identity(self, device_id: str, public_key: bytes, holds_key: bool, now: float) -> None:
        """A device's key. A new key is a new device: its record and counters start afresh."""
        current = self.identity(device_id)
        if current is not None and current.public_key == public_key and current.holds_key == holds_key:
            return
        self._write([
            ("DELETE FROM identities WHERE device_id = ? OR public_key = ?", (device_id, public_key)),
            ("DELETE FROM counters WHERE device_id = ?", (device_id,)),
            ("INSERT INTO identities (device_id, public_key, holds_key, record, updated_at) VALUES (?, ?, ?, NULL, ?)",
             (device_id, public_key, int(holds_key), now)),
        ])

    def identity(self, device_id: str) -> IdentityRow | None:
        rows = self._read("SELECT device_id, public_key, holds_key, record FROM identities WHERE device_id = ?", (device_id,))
        return _row(rows[0]) if rows else None

    def identities(self) -> list[IdentityRow]:
        return [_row(r) for r in self._read("SELECT device_id, public_key, holds_key, record FROM identities ORDER BY device_id")]

    def device_for_key(self, public_key: bytes) -> str | None:
        rows = self._read("SELECT device_id FROM identities WHERE public_key = ?", (public_key,))
        return rows[0][0] if rows else None

    def save_record(self, device_id: str, record: dict[str, Any], now: float) -> None:
        """The record without its counters (they have their own rows), and every counter in it."""
        counters = record.get("counters") or {}
        body = {k: v for k, v in record.items() if k != "counters"}
        statements = [("UPDATE identities SET record = ?, updated_at = ? WHERE device_id = ?",
                       (json.dumps(body, sort_keys=True), now, device_id))]
        statements += [_upsert_counter(device_id, bytes.fromhex(s), c) for s, c in counters.items()]
        self._write(statements)

    def load_record(self, device_id: str) -> dict[str, Any] | None:
        row = self.identity(device_id)
        if row is None or row.record is None:
            return None
        return {**row.record, "counters": {s.hex(): c for s, c in self.counters(device_id).items()}}

    # --- counters -------------------------------------------------------------------------------
    def save_counter(self, device_id: str, signer: bytes, counter: int) -> None:
        """One statement in autocommit mode: its own transaction, committed when it returns (a
        third of the cost of BEGIN, upsert, COMMIT on the gate's hot path)."""
        with self._lock:
            self._conn.execute(*_upsert_counter(device_id, signer, counter))

    def counters(self, device_id: str) -> dict[bytes, int]:
        return dict(self._read("SELECT signer, counter FROM counters WHERE device_id = ?", (device_id,)))

    def next_issued(self, device_id: str, at_least: int) -> int:
        """The next counter for a command the hub signs: above every one it signed, durable first."""
        with self._lock:
            rows = self._conn.execute("SELECT counter FROM issued WHERE device_id = ?", (device_id,)).fetchall()
            counter = max(at_least, rows[0][0] + 1 if rows else 0)
            self._write([("INSERT INTO issued (device_id, counter) VALUES (?, ?) "
                          "ON CONFLICT (device_id) DO UPDATE SET counter = excluded.counter", (device_id, counter))])
            return counter

    # --- grants ---------------------------------------------------------------------------------
    def add_grant(self, device_id: str, signature: bytes, grantee: bytes, statement: dict, epoch: int, not_after: int) -> None:
        self._write([("INSERT OR IGNORE INTO grants (signature, device_id, grantee, statement, epoch, not_after) "
                      "VALUES (?, ?, ?, ?, ?, ?)",
                      (signature, device_id, grantee, json.dumps(statement, sort_keys=True), epoch, not_after))])

    def revoke_grants(self, device_id: str, below_epoch: int) -> int:
        with self._lock:
            before = self._conn.total_changes
            self._write([("UPDATE grants SET revoked = 1 WHERE device_id = ? AND epoch < ? AND revoked = 0",
                          (device_id, below_epoch))])
            return self._conn.total_changes - before

    def grants(self, device_id: str, *, include_revoked: bool = False) -> list[dict[str, Any]]:
        sql = "SELECT statement, revoked FROM grants WHERE device_id = ?" + ("" if include_revoked else " AND revoked = 0")
        return [{**json.loads(s), "revoked": bool(r)} for s, r in self._read(sql + " ORDER BY rowid", (device_id,))]


def _upsert_counter(device_id: str, signer: bytes, counter: int) -> tuple[str, tuple]:
    return ("INSERT INTO counters (device_id, signer, counter) VALUES (?, ?, ?) "
            "ON CONFLICT (device_id, signer) DO UPDATE SET counter = excluded.counter", (device_id, signer, counter))


def _row(row: tuple) -> IdentityRow:
    return IdentityRow(row[0], bytes(row[1]), bool(row[2]), json.loads(row[3]) if row[3] else None)


class SqliteFlash:
    """A keyless device's flash, as the hub keeps it: a committed row in identity.db."""

    def __init__(self, store: IdentityStore, device_id: str, now) -> None:
        self._store = store
        self._device_id = device_id
        self._now = now

    def load(self) -> dict[str, Any] | None:
        return self._store.load_record(self._device_id)

    def save(self, record: dict[str, Any]) -> None:
        self._store.save_record(self._device_id, record, self._now())

    def save_counter(self, signer_hex: str, counter: int) -> None:
        self._store.save_counter(self._device_id, bytes.fromhex(signer_hex), counter)
