"""``<data>/market/market.db``: what the hub's market must not forget across a kill -9.

A file of its own (0600, WAL, ``synchronous = NORMAL``: a commit survives a kill -9 of the hub),
not hub.db (its writes would wait behind the recorder's batches) nor identity.db (the gate's
counter commits are its hot path). Migrations are versioned with ``PRAGMA user_version`` and
append-only, like ``hub/identity/store.py``. The cheque book keeps its own tables in the same file
(``hub/market/cheques.py``), on a connection of its own.

The rule that makes the market restart-safe: **persist before acting**. A call's row is
written before its grant opens; its end (``ended_at``, ``used``) before the closing grant and the
``return`` go out; a transaction's hash right after submission. Everything done from these rows
is idempotent (a grant is deterministic: Ed25519 signs the same statement to the same bytes; the
chain refuses a second ``return``), so redoing after a crash repeats nothing that matters.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hub.store.sqlite import open_wal
from hub.store.files import private_dir, private_file

DB_DIR = "market"
DB_NAME = "market.db"

MIGRATIONS: list[tuple[str, ...]] = [
    # 1: contracts, calls, receipts, payments (earnings), the cursor, submitted transactions
    (
        """CREATE TABLE cursor (
            genesis BLOB PRIMARY KEY,
            height INTEGER NOT NULL,
            hash BLOB
        ) WITHOUT ROWID""",
        # Contracts on this hub's devices under its controller key. status: pending (submitted),
        # live (in a final block), ended (the device changed hands), refused (the chain said no).
        """CREATE TABLE contracts (
            id BLOB PRIMARY KEY,
            device_id TEXT NOT NULL,
            device BLOB NOT NULL,
            controller BLOB NOT NULL,
            commands TEXT NOT NULL,
            terms TEXT NOT NULL,
            endpoint TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            height INTEGER,
            time INTEGER,
            created_at REAL NOT NULL,
            note TEXT
        ) WITHOUT ROWID""",
        # Calls on those contracts. state: open (grant opened) -> ended (access over, usage fixed,
        # return due) -> returned | refunded; refused (the deposit did not cover the terms).
        """CREATE TABLE calls (
            id BLOB PRIMARY KEY,
            contract BLOB NOT NULL,
            device_id TEXT NOT NULL,
            renter BLOB NOT NULL,
            kind TEXT NOT NULL,
            deposit INTEGER NOT NULL,
            channel BLOB NOT NULL DEFAULT x'',
            windows INTEGER NOT NULL DEFAULT 0,
            start INTEGER NOT NULL,
            until INTEGER NOT NULL,
            height INTEGER NOT NULL,
            state TEXT NOT NULL,
            start_reading INTEGER,
            ended_at INTEGER,
            end_reason TEXT,
            used INTEGER,
            return_tx BLOB,
            return_status TEXT,
            note TEXT
        ) WITHOUT ROWID""",
        "CREATE INDEX calls_state ON calls (state)",
        # Every receipt the hub issued: a cheque names one by its hash (hash_object of its body).
        """CREATE TABLE receipts (
            hash BLOB PRIMARY KEY,
            call BLOB NOT NULL,
            reading INTEGER NOT NULL,
            time INTEGER NOT NULL,
            usage INTEGER NOT NULL,
            cost INTEGER NOT NULL,
            signed TEXT NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX receipts_call ON receipts (call, time)",
        # Money received, one row per (transaction, call): what `hub market earnings` sums.
        """CREATE TABLE payments (
            tx BLOB NOT NULL,
            call BLOB NOT NULL,
            kind TEXT NOT NULL,
            time INTEGER NOT NULL,
            height INTEGER NOT NULL,
            device_id TEXT NOT NULL,
            contract BLOB NOT NULL,
            amount INTEGER NOT NULL,
            PRIMARY KEY (tx, call)
        ) WITHOUT ROWID""",
        "CREATE INDEX payments_time ON payments (time)",
        # Per channel from a renter to this hub: what the chain paid out of it so far (returns,
        # settles, a refund after a challenge), so the next payment is counted as the difference.
        """CREATE TABLE channels (
            channel BLOB PRIMARY KEY,
            renter BLOB NOT NULL,
            paid INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID""",
        # settle transactions the hub sent (withdrawals), so one is never sent twice for one cheque.
        """CREATE TABLE settles (
            channel BLOB NOT NULL,
            amount INTEGER NOT NULL,
            tx BLOB,
            status TEXT NOT NULL,
            PRIMARY KEY (channel, amount)
        ) WITHOUT ROWID""",
    ),
]


MIGRATIONS.append((
    # 2: when access was first given (ms): a prepaid charge counts from it, not from the call, so a
    # renter whose owner's hub was down when the call landed pays only for the access it had
    "ALTER TABLE calls ADD COLUMN granted_at INTEGER",
))


MIGRATIONS.append((
    # 3: when the market first wanted to follow each chain (hub clock, ms). Its first look at the
    # chain may come much later (the node unreachable, the light client still syncing); the cursor
    # then starts at a block no later than this moment, so nothing sent after it is skipped.
    """CREATE TABLE follow_start (
        genesis BLOB PRIMARY KEY,
        since INTEGER NOT NULL
    ) WITHOUT ROWID""",
))


class MarketSchemaError(RuntimeError):
    """market.db was written by a newer hub."""


def connect(path: Path) -> sqlite3.Connection:
    """An autocommit connection in WAL mode, migrated. Each part of the market (the follower, the
    cheques) may open its own."""
    return open_wal(path, migrate)


def migrate(conn: sqlite3.Connection) -> int:
    version = len(MIGRATIONS)
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found == version:
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found > version:
            raise MarketSchemaError(f"market.db schema version {found} is newer than this hub supports ({version})")
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version:d}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return found


def db_path(data_dir: Path) -> Path:
    """The file, private (0600 in a 0700 directory) before SQLite first opens it."""
    folder = private_dir(Path(data_dir) / DB_DIR)
    path = folder / DB_NAME
    for suffix in ("", "-wal", "-shm"):
        if suffix == "" or path.with_name(DB_NAME + suffix).exists():
            private_file(path.with_name(DB_NAME + suffix))
    return path


@dataclass(frozen=True)
class Contract:
    id: bytes
    device_id: str
    device: bytes
    controller: bytes
    commands: tuple[str, ...]
    terms: dict[str, Any]
    endpoint: str
    status: str
    height: int | None
    time: int | None
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(id=self.id.hex(), device=self.device.hex(), controller=self.controller.hex(),
                   commands=list(self.commands))
        return out


@dataclass(frozen=True)
class CallRow:
    id: bytes
    contract: bytes
    device_id: str
    renter: bytes
    kind: str
    deposit: int
    channel: bytes
    windows: int
    start: int  # ms, the call's block time: the grant's not_before
    until: int  # ms, the grant's not_after as opened
    height: int
    state: str
    start_reading: int | None
    ended_at: int | None
    end_reason: str | None
    used: int | None
    return_tx: bytes | None
    return_status: str | None
    note: str | None
    granted_at: int | None = None  # ms: when the grant first reached the device (or its light node)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(id=self.id.hex(), contract=self.contract.hex(), renter=self.renter.hex(),
                   channel=self.channel.hex() if self.channel else None,
                   return_tx=self.return_tx.hex() if self.return_tx else None)
        return out


_CONTRACT = "id, device_id, device, controller, commands, terms, endpoint, status, height, time, note"
_CALL = ("id, contract, device_id, renter, kind, deposit, channel, windows, start, until, height, state, "
         "start_reading, ended_at, end_reason, used, return_tx, return_status, note, granted_at")


class MarketStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = db_path(data_dir)
        self._lock = threading.RLock()
        self._conn = connect(self.path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _exec(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()  # autocommit: each write its own commit

    def _changed(self, sql: str, params: tuple = ()) -> bool:
        with self._lock:
            before = self._conn.total_changes
            self._conn.execute(sql, params)
            return self._conn.total_changes > before

    # --- the cursor ----------------------------------------------------------------------------------
    def cursor(self, genesis: bytes) -> int | None:
        rows = self._exec("SELECT height FROM cursor WHERE genesis = ?", (genesis,))
        return rows[0][0] if rows else None

    def set_cursor(self, genesis: bytes, height: int, block_hash: bytes | None) -> None:
        self._exec("INSERT INTO cursor (genesis, height, hash) VALUES (?, ?, ?) ON CONFLICT (genesis) "
                   "DO UPDATE SET height = excluded.height, hash = excluded.hash", (genesis, height, block_hash))

    def follow_start(self, genesis: bytes, now_ms: int) -> int:
        """When the market first wanted to follow this chain (ms): ``now_ms`` the first time asked."""
        self._exec("INSERT OR IGNORE INTO follow_start (genesis, since) VALUES (?, ?)", (genesis, int(now_ms)))
        return self._exec("SELECT since FROM follow_start WHERE genesis = ?", (genesis,))[0][0]

    # --- contracts -----------------------------------------------------------------------------------
    def add_contract(self, contract_id: bytes, device_id: str, device: bytes, controller: bytes,
                     commands: list[str] | tuple[str, ...], terms: dict[str, Any], endpoint: str, status: str,
                     now: float, height: int | None = None, time: int | None = None) -> bool:
        return self._changed(
            f"INSERT OR IGNORE INTO contracts ({_CONTRACT}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
            (contract_id, device_id, device, controller, json.dumps(list(commands)),
             json.dumps(terms, sort_keys=True), endpoint, status, height, time, now))

    def set_contract(self, contract_id: bytes, status: str, *, height: int | None = None, time: int | None = None,
                     note: str | None = None) -> None:
        self._exec("UPDATE contracts SET status = ?, height = COALESCE(?, height), time = COALESCE(?, time), "
                   "note = ? WHERE id = ?", (status, height, time, note, contract_id))

    def contract(self, contract_id: bytes) -> Contract | None:
        rows = self._exec(f"SELECT {_CONTRACT} FROM contracts WHERE id = ?", (contract_id,))
        return _contract(rows[0]) if rows else None

    def contracts(self, *, device_id: str | None = None, status: str | None = None) -> list[Contract]:
        sql, params = f"SELECT {_CONTRACT} FROM contracts WHERE 1", []
        if device_id is not None:
            sql += " AND device_id = ?"
            params.append(device_id)
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        return [_contract(r) for r in self._exec(sql + " ORDER BY created_at", tuple(params))]

    # --- calls ---------------------------------------------------------------------------------------
    def add_call(self, row: CallRow) -> bool:
        """The call, before its grant opens; False if it was known already."""
        values = tuple(getattr(row, f.strip()) for f in _CALL.split(","))
        return self._changed(f"INSERT OR IGNORE INTO calls ({_CALL}) VALUES ({', '.join('?' * len(values))})", values)

    def call(self, call_id: bytes) -> CallRow | None:
        rows = self._exec(f"SELECT {_CALL} FROM calls WHERE id = ?", (call_id,))
        return _call(rows[0]) if rows else None

    def calls(self, *, states: tuple[str, ...] | None = None, contract: bytes | None = None,
              until_after: int | None = None, limit: int = 1000) -> list[CallRow]:
        """Calls, oldest first; ``until_after`` (ms): only those whose grant as opened ends later."""
        sql, params = f"SELECT {_CALL} FROM calls WHERE 1", []
        if until_after is not None:
            sql += " AND until > ?"
            params.append(until_after)
        if states:
            sql += f" AND state IN ({', '.join('?' * len(states))})"
            params += list(states)
        if contract is not None:
            sql += " AND contract = ?"
            params.append(contract)
        return [_call(r) for r in self._exec(sql + " ORDER BY height, id LIMIT ?", (*params, limit))]

    def channels_used(self) -> dict[bytes, bytes]:
        """Each channel this hub's calls went through -> its latest call."""
        rows = self._exec("SELECT channel, id FROM calls WHERE channel != x'' ORDER BY height, id")
        return {bytes(r[0]): bytes(r[1]) for r in rows}

    def call_counts(self) -> dict[bytes, tuple[int, int]]:
        """Per contract: (calls, calls open now)."""
        rows = self._exec("SELECT contract, COUNT(*), SUM(state = 'open') FROM calls GROUP BY contract")
        return {bytes(r[0]): (r[1], r[2] or 0) for r in rows}

    def end_call(self, call_id: bytes, ended_at: int, reason: str, used: int) -> bool:
        """Access over and the charge fixed, once: a second end (a restart, a late renter) changes nothing."""
        return self._changed("UPDATE calls SET state = 'ended', ended_at = ?, end_reason = ?, used = ? "
                             "WHERE id = ? AND state = 'open'", (ended_at, reason, used, call_id))

    def set_used(self, call_id: bytes, used: int) -> None:
        self._exec("UPDATE calls SET used = ? WHERE id = ?", (used, call_id))

    def set_return(self, call_id: bytes, tx: bytes | None, status: str | None, note: str | None = None) -> None:
        self._exec("UPDATE calls SET return_tx = ?, return_status = ?, note = COALESCE(?, note) WHERE id = ?",
                   (tx, status, note, call_id))

    def set_state(self, call_id: bytes, state: str, note: str | None = None) -> None:
        self._exec("UPDATE calls SET state = ?, note = COALESCE(?, note) WHERE id = ?", (state, note, call_id))

    def set_granted(self, call_id: bytes, at: int) -> None:
        self._exec("UPDATE calls SET granted_at = ? WHERE id = ? AND granted_at IS NULL", (at, call_id))

    def set_start_reading(self, call_id: bytes, reading: int) -> None:
        self._exec("UPDATE calls SET start_reading = ? WHERE id = ? AND start_reading IS NULL", (reading, call_id))

    # --- receipts ------------------------------------------------------------------------------------
    def add_receipt(self, receipt_hash: bytes, call_id: bytes, reading: int, time: int, usage: int, cost: int,
                    signed: dict[str, Any]) -> None:
        self._exec("INSERT OR IGNORE INTO receipts (hash, call, reading, time, usage, cost, signed) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", (receipt_hash, call_id, reading, time, usage, cost,
                                                    json.dumps(signed, sort_keys=True)))

    def receipt(self, receipt_hash: bytes) -> dict[str, Any] | None:
        rows = self._exec("SELECT hash, call, reading, time, usage, cost, signed FROM receipts WHERE hash = ?",
                          (receipt_hash,))
        return _receipt(rows[0]) if rows else None

    def latest_receipt(self, call_id: bytes, before: int | None = None) -> dict[str, Any] | None:
        """The call's latest receipt, or its latest issued at ``before`` (ms) or earlier."""
        rows = self._exec("SELECT hash, call, reading, time, usage, cost, signed FROM receipts WHERE call = ? "
                          "AND time <= ? ORDER BY time DESC, reading DESC LIMIT 1",
                          (call_id, 2**63 - 1 if before is None else before))
        return _receipt(rows[0]) if rows else None

    # --- payments ------------------------------------------------------------------------------------
    def add_payment(self, tx: bytes, call_id: bytes, kind: str, time: int, height: int, device_id: str,
                    contract: bytes, amount: int) -> bool:
        """A payment received; False if that transaction was booked already (a block seen twice)."""
        return self._changed("INSERT OR IGNORE INTO payments (tx, call, kind, time, height, device_id, contract, "
                             "amount) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (tx, call_id, kind, time, height, device_id, contract, amount))

    def payments(self, *, device_id: str | None = None, since: int | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT time, device_id, contract, call, amount, kind, tx, height FROM payments WHERE 1", []
        if device_id is not None:
            sql += " AND device_id = ?"
            params.append(device_id)
        if since is not None:
            sql += " AND time >= ?"
            params.append(since)
        rows = self._exec(sql + " ORDER BY time, height, tx", tuple(params))
        return [{"time": r[0], "device": r[1], "contract": bytes(r[2]).hex(), "call": bytes(r[3]).hex(),
                 "amount": r[4], "kind": r[5], "tx": bytes(r[6]).hex(), "height": r[7]} for r in rows]

    # --- channels -----------------------------------------------------------------------------------
    def channel_paid(self, channel: bytes) -> int:
        rows = self._exec("SELECT paid FROM channels WHERE channel = ?", (channel,))
        return rows[0][0] if rows else 0

    def set_channel_paid(self, channel: bytes, renter: bytes, paid: int) -> None:
        """Paid so far only rises (a block seen again changes nothing)."""
        self._exec("INSERT INTO channels (channel, renter, paid) VALUES (?, ?, ?) ON CONFLICT (channel) "
                   "DO UPDATE SET paid = MAX(paid, excluded.paid)", (channel, renter, paid))

    # --- settles -------------------------------------------------------------------------------------
    def settle(self, channel: bytes, amount: int) -> tuple[bytes | None, str] | None:
        rows = self._exec("SELECT tx, status FROM settles WHERE channel = ? AND amount = ?", (channel, amount))
        return (bytes(rows[0][0]) if rows[0][0] is not None else None, rows[0][1]) if rows else None

    def set_settle(self, channel: bytes, amount: int, tx: bytes | None, status: str) -> None:
        self._exec("INSERT INTO settles (channel, amount, tx, status) VALUES (?, ?, ?, ?) ON CONFLICT (channel, amount) "
                   "DO UPDATE SET tx = excluded.tx, status = excluded.status", (channel, amount, tx, status))


def _contract(row: tuple) -> Contract:
    return Contract(bytes(row[0]), row[1], bytes(row[2]), bytes(row[3]), tuple(json.loads(row[4])),
                    json.loads(row[5]), row[6], row[7], row[8], row[9], row[10])


def _call(row: tuple) -> CallRow:
    values = list(row)
    for i in (0, 1, 3, 6):
        values[i] = bytes(values[i])
    values[16] = bytes(values[16]) if values[16] is not None else None
    return CallRow(*values)


def _receipt(row: tuple) -> dict[str, Any]:
    return {"hash": bytes(row[0]), "call": bytes(row[1]), "reading": row[2], "time": row[3], "usage": row[4],
            "cost": row[5], "signed": json.loads(row[6])}
