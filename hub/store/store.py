"""The hub's single SQLite file: registries, state history, tokens, command log, outbox.

Why these choices:

* **One writing connection, one lock; one reading connection, its own lock.** The hub calls in
  from worker threads (``asyncio.to_thread``); SQLite serialises writers anyway, and one writing
  connection guarded by an ``RLock`` avoids "database is locked" fights between our own threads.
  Reads go through a second, query-only connection, so they see the last commit without waiting
  for a write under way (the API checks tokens on the event loop). ``check_same_thread=False`` is
  safe only because of those locks.
* **WAL + busy_timeout.** The CLI (``hub token create``) opens the same file while the hub runs.
  WAL lets readers proceed during a write; the 5 s busy timeout makes the two processes queue for
  the write lock instead of failing.
* **synchronous=NORMAL.** In WAL mode a commit is durable against a process crash or
  ``kill -9`` with NORMAL (the WAL is written before the commit returns; only the fsync is
  deferred to checkpoints). That is the requirement. A power cut may lose the last commits but not
  corrupt the file; pass ``synchronous="FULL"`` if losing them is unacceptable, at the cost of an
  fsync per transaction (slow on SD cards).
* **BEGIN IMMEDIATE per write method.** Each write method is exactly one transaction, so a crash
  never leaves half a batch. IMMEDIATE takes the write lock up front, so the busy timeout applies;
  a DEFERRED transaction that upgrades from read to write can fail at once with SQLITE_BUSY.
* **Small pages, incremental auto-vacuum.** Edge hubs run on SD cards, which wear by the bytes
  written. 1 KiB pages make each small commit write a quarter of what 4 KiB pages write; after a
  retention purge, :meth:`reclaim` hands the freed pages back to the filesystem, so the file
  shrinks instead of staying at its high-water mark. (bench_disk_writes.py measures the result.)
"""

from __future__ import annotations

import hmac
import json
import logging
import operator
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hub.store import anchors as _anchors
from hub.store import tokens as _tokens
from hub.store.codec import MAX_TEXT
from hub.store.codec import dumps as _dumps
from hub.store.codec import summary as _summary
from hub.store.files import private_dir, private_file
from hub.store.models import StateRow
from hub.store.schema import migrate
from hub.store.tokens import TokenError

log = logging.getLogger(__name__)

DB_NAME = "hub.db"
BUSY_TIMEOUT = 5.0
SYNCHRONOUS_MODES = frozenset({"NORMAL", "FULL", "EXTRA"})
#: Bytes per database page. A commit writes every page it touches to the WAL whole: a one-row history
#: commit touched four (the table, its two indexes, last_states), 18 KB at SQLite's default 4 KiB
#: pages, 5.5 KB at 1 KiB; three since schema 3 dropped the time index. Rows are ~150 bytes, so small
#: pages cost little in tree depth.
PAGE_SIZE = 1024
AUTO_VACUUM_INCREMENTAL = 2
#: An error message is one line for a person; a longer one quotes input, which the log does not keep.
MAX_ERROR = 1024
#: Rows of the command log kept at most (with rows of at most ~5 KB, under 500 MB in the worst case).
MAX_COMMAND_ROWS = 100_000
#: SQLite's page cache, KiB. The default 2 MiB is 2,000 of our 1 KiB pages, fewer than a history
#: commit touches: each sensor's rows go to its own leaf of the (entity_id, last_updated) index, so
#: 1,000 sensors keep 1,000 leaves hot, and with the default they were read back from the OS for every
#: batch (write_states cost ~40% more). The cache fills only as pages are used.
CACHE_KIB = 16 * 1024

_STATE_COLUMNS = "entity_id, value, attributes, available, last_changed, last_updated"
#: History has no index on time alone (one B-tree insert less per state change, schema version 3),
#: so the purge takes each entity's old rows from the (entity_id, last_updated) index: the recursive
#: part lists the distinct entity ids with one index seek each, then each entity's rows before the
#: cutoff are one range of that index. Cost: seeks per entity plus the rows deleted, not a table scan.
#: (DELETE comes first, not WITH: sqlite3's rowcount counts only statements that start with it.)
_PURGE_HISTORY = """
    DELETE FROM history WHERE last_updated < ? AND entity_id IN (
        WITH RECURSIVE entity(id) AS (
            SELECT min(entity_id) FROM history
            UNION ALL
            SELECT (SELECT min(entity_id) FROM history WHERE entity_id > entity.id) FROM entity WHERE entity.id IS NOT NULL
        )
        SELECT id FROM entity WHERE id IS NOT NULL
    )
"""


_entity_of = operator.itemgetter(0)


def _state_row(row: tuple) -> StateRow:
    entity_id, value, attributes, available, last_changed, last_updated = row
    return StateRow(
        entity_id=entity_id,
        value=json.loads(value),
        attributes=json.loads(attributes),
        available=bool(available),
        last_changed=last_changed,
        last_updated=last_updated,
    )


def _set_layout(conn: sqlite3.Connection, path: Path) -> None:
    """Small pages and incremental auto-vacuum, for the SD card's sake (see the module docstring).

    Both must be chosen before the first table exists; a database made by an older hub (4 KiB pages,
    no auto-vacuum) is rebuilt once with VACUUM, which needs the rollback journal because WAL cannot
    change the page size. If another process has the file open (the hub and the CLI starting
    together) the rebuild is left to the next start: the layout is an optimisation, not a format.
    """
    if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE:d}")
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        return
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    auto_vacuum = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
    if page_size == PAGE_SIZE and auto_vacuum == AUTO_VACUUM_INCREMENTAL:
        return
    log.info("rebuilding %s once with %d-byte pages and incremental auto-vacuum (was %d, %d)",
             path, PAGE_SIZE, page_size, auto_vacuum)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE:d}")
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("VACUUM")
    except sqlite3.OperationalError as exc:
        log.warning("could not rebuild %s now (%s); it keeps its layout until the next start", path, exc)


def _short(text: str | None, limit: int = MAX_TEXT) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def _require_str(obj: dict, key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} needs a non-empty string {key!r}, got {value!r}")
    return value


class Store:
    """Thread-safe access to ``<data_dir>/hub.db``. Create one per process; call :meth:`close`."""

    def __init__(self, data_dir: Path, *, synchronous: str = "NORMAL") -> None:
        sync = synchronous.upper()
        if sync not in SYNCHRONOUS_MODES:
            raise ValueError(
                f"synchronous must be one of {', '.join(sorted(SYNCHRONOUS_MODES))}, got {synchronous!r}"
            )
        data_dir = private_dir(Path(data_dir))
        self.path: Path = data_dir / DB_NAME
        for suffix in ("", "-wal", "-shm"):
            if suffix == "" or self.path.with_name(DB_NAME + suffix).exists():
                private_file(self.path.with_name(DB_NAME + suffix))
        # Tests replace this to exercise the last_used throttle without sleeping.
        self._now = time.time
        self._lock = threading.RLock()
        # isolation_level=None: no implicit BEGINs; _write() issues BEGIN IMMEDIATE itself.
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            _set_layout(conn, self.path)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                # e.g. a filesystem without shared-memory support; the durability and
                # hub-plus-CLI concurrency described above would not hold, so say so loudly.
                raise sqlite3.OperationalError(f"could not enable WAL on {self.path} (got {mode!r})")
            conn.execute(f"PRAGMA synchronous = {sync}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA cache_size = {-CACHE_KIB:d}")
            migrate(conn)
            if _anchors.needs_backfill(conn):
                with conn:
                    conn.execute("BEGIN IMMEDIATE")
                    _anchors.backfill(conn)
        except BaseException:
            conn.close()
            raise
        try:
            # Reads have their own connection and lock: in WAL mode a reader sees the last commit
            # while a write is under way, so a token check on the event loop no longer waits for the
            # recorder's commit (seconds with a large batch), which froze the API and every
            # WebSocket for as long. query_only: nothing written through it, by mistake or not.
            reader = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
            reader.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            reader.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._reader = reader
        self._read_lock = threading.Lock()
        self._closed = False

    # -- plumbing ---------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock, self._read_lock:
            if not self._closed:
                self._closed = True
                self._reader.close()
                self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed on normal exit, rolled back on any exception."""
        with self._lock, self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            yield self._conn

    def _read(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    # -- registries -------------------------------------------------------------------------------

    def save_device(self, device: dict) -> None:
        device_id = _require_str(device, "id", "device")
        platform = device.get("platform")
        data = _dumps(device)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO devices (id, platform, data) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET platform = excluded.platform, data = excluded.data",
                (device_id, platform, data),
            )

    def load_devices(self) -> list[dict]:
        return [json.loads(data) for (data,) in self._read("SELECT data FROM devices ORDER BY id")]

    def save_entity(self, entity: dict) -> None:
        """Upsert by ``entity_id``.

        ``(platform, unique_id)`` is unique too: saving a second entity_id for the same pair raises
        :class:`sqlite3.IntegrityError` rather than silently dropping the other row, since that
        means two entities claim one device feature. To rename, remove the old id first.
        """
        self.save_entities([entity])

    def save_entities(self, entities: list[dict]) -> None:
        """Several upserts in one transaction: a driver adding a device with many entities (a
        Modbus map, a Zigbee coordinator's network) would otherwise commit once per entity."""
        rows = [
            (
                _require_str(entity, "entity_id", "entity"),
                _require_str(entity, "platform", "entity"),
                _require_str(entity, "unique_id", "entity"),
                _dumps(entity),
            )
            for entity in entities
        ]
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO entities (entity_id, platform, unique_id, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (entity_id) DO UPDATE SET platform = excluded.platform, "
                "unique_id = excluded.unique_id, data = excluded.data",
                rows,
            )

    def load_entities(self) -> list[dict]:
        return [
            json.loads(data) for (data,) in self._read("SELECT data FROM entities ORDER BY entity_id")
        ]

    def remove_entity(self, entity_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM entities WHERE entity_id = ?", (entity_id,))

    def remove_device(self, device_id: str | None, entity_ids: list[str]) -> None:
        """A deleted device (None: it stays) and its deleted entities, in one transaction (history is
        kept, as it is for a renamed entity: it ages out with ``history_days``)."""
        with self._write() as conn:
            conn.executemany("DELETE FROM entities WHERE entity_id = ?", [(e,) for e in entity_ids])
            conn.executemany("DELETE FROM last_states WHERE entity_id = ?", [(e,) for e in entity_ids])
            if device_id is not None:
                conn.execute("DELETE FROM devices WHERE id = ?", (device_id,))

    # -- states -----------------------------------------------------------------------------------

    def write_states(self, rows: list[StateRow]) -> None:
        """Append ``rows`` to history and advance ``last_states``, all in one transaction.

        A row is anything with :class:`StateRow`'s fields (the recorder passes the hub's immutable
        ``State`` objects themselves); ``attributes`` any mapping, or None for none.

        JSON encoding happens before the lock is taken, so a non-serialisable value fails the
        whole batch without writing anything and without holding up other threads. A state only
        replaces the stored latest one if it is not older, so a late batch cannot roll an entity
        back; within a batch, the last row wins on equal timestamps.
        """
        if not rows:
            return
        # A sensor's attributes are one read-only mapping shared by all its states until they
        # change, so a batch holds far fewer distinct mappings than rows: each is encoded once (the
        # rows keep them alive, so an id is not reused within the batch). Encoding per row cost
        # about as much as the inserts.
        encoded: dict[int, str] = {}
        history = []
        append = history.append
        for r in rows:
            attributes = r.attributes
            key = id(attributes)
            attrs = encoded.get(key)
            if attrs is None:
                attrs = encoded[key] = _dumps({} if attributes is None else dict(attributes))
            append((r.entity_id, _dumps(r.value), attrs, 1 if r.available else 0,
                    float(r.last_changed), float(r.last_updated)))
        latest: dict[str, tuple] = {}
        for params in history:
            prev = latest.get(params[0])
            if prev is None or params[5] >= prev[5]:
                latest[params[0]] = params
        # Grouped by entity (a stable sort: each entity's rows keep their order, and history is read
        # per entity, by time), each entity's index leaf takes its rows one after another instead of
        # 1,000 leaves taking turns: ~10% less per row, sort included.
        history.sort(key=_entity_of)
        with self._write() as conn:
            conn.executemany(
                f"INSERT INTO history ({_STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", history
            )
            conn.executemany(
                f"INSERT INTO last_states ({_STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (entity_id) DO UPDATE SET value = excluded.value, "
                "attributes = excluded.attributes, available = excluded.available, "
                "last_changed = excluded.last_changed, last_updated = excluded.last_updated "
                "WHERE excluded.last_updated >= last_states.last_updated",
                list(latest.values()),
            )

    def load_last_states(self) -> list[StateRow]:
        rows = self._read(f"SELECT {_STATE_COLUMNS} FROM last_states ORDER BY entity_id")
        return [_state_row(r) for r in rows]

    def history(
        self,
        entity_id: str,
        start: float | None = None,
        end: float | None = None,
        limit: int = 10000,
    ) -> list[StateRow]:
        """States of one entity with ``start <= last_updated <= end``, oldest first.

        ``limit`` keeps the *oldest* matching rows, so a caller can page forward by passing the
        last row's ``last_updated`` as the next ``start`` (rows at that exact time repeat).
        """
        if limit <= 0:
            return []
        sql = f"SELECT {_STATE_COLUMNS} FROM history WHERE entity_id = ?"
        params: list[Any] = [entity_id]
        if start is not None:
            sql += " AND last_updated >= ?"
            params.append(start)
        if end is not None:
            sql += " AND last_updated <= ?"
            params.append(end)
        sql += " ORDER BY last_updated, id LIMIT ?"
        params.append(limit)
        return [_state_row(r) for r in self._read(sql, params)]

    def purge_history(self, older_than: float) -> int:
        """Delete history before ``older_than``; ``last_states`` is a separate table and stays."""
        with self._write() as conn:
            return conn.execute(_PURGE_HISTORY, (older_than,)).rowcount

    def purge_command_log(self, older_than: float, keep: int | None = None) -> int:
        """The command log is kept as long as the history: without a purge it grows forever. It is
        also cut to the newest ``keep`` rows (:data:`MAX_COMMAND_ROWS`): a client sending commands in
        a loop, refused or not, would otherwise fill the card within the retention time."""
        keep = MAX_COMMAND_ROWS if keep is None else keep
        with self._write() as conn:
            removed = conn.execute(
                "DELETE FROM command_log WHERE ts < ? "
                "OR id <= (SELECT id FROM command_log ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (older_than, keep),
            ).rowcount
            # Each row's leaf outlives it until its batch is final on chain (hub.store.anchors).
            _anchors.purge_leaves(conn)
            return removed

    def reclaim(self) -> int:
        """Give the pages freed by purges back to the filesystem; return how many.

        Without it a database never shrinks: deleted rows only put pages on SQLite's free list. The
        truncating checkpoint then also empties the WAL, which otherwise keeps its largest size.
        """
        with self._lock:
            free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
            if free:
                # The pragma frees one page per step, and execute() steps once (fetchall() does
                # not step it further, as it yields no rows); executescript() runs it to the end.
                self._conn.executescript("PRAGMA incremental_vacuum")
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            return free

    # -- rule engine ------------------------------------------------------------------------------

    def rule_settings(self) -> dict[str, bool]:
        """Rules the user enabled or disabled (through the API or CLI), by id."""
        return {rule_id: bool(enabled) for rule_id, enabled in self._read("SELECT rule_id, enabled FROM rule_settings")}

    def set_rule_enabled(self, rule_id: str, enabled: bool) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO rule_settings (rule_id, enabled) VALUES (?, ?) "
                "ON CONFLICT (rule_id) DO UPDATE SET enabled = excluded.enabled",
                (rule_id, int(enabled)),
            )

    def save_rule_pending(self, upserts: list[tuple[str, str, str, dict]], deletes: list[str]) -> None:
        """Pending ``for:`` timers and paused runs, changed since the last save, in one transaction:
        (key, rule id, rule digest, data) to write, keys to delete."""
        rows = [(key, rule_id, digest, _dumps(data)) for key, rule_id, digest, data in upserts]
        with self._write() as conn:
            if deletes:
                conn.executemany("DELETE FROM rule_pending WHERE key = ?", [(k,) for k in deletes])
            if rows:
                conn.executemany(
                    "INSERT INTO rule_pending (key, rule_id, digest, data) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET rule_id = excluded.rule_id, digest = excluded.digest, "
                    "data = excluded.data",
                    rows,
                )

    def load_rule_pending(self) -> list[dict]:
        return [
            {"key": key, "rule_id": rule_id, "digest": digest, "data": json.loads(data)}
            for key, rule_id, digest, data in self._read("SELECT key, rule_id, digest, data FROM rule_pending ORDER BY key")
        ]

    # -- tokens -----------------------------------------------------------------------------------

    def create_token(self, name: str) -> str:
        """Create a token and return it; this is the only time the plaintext exists."""
        _tokens.validate_name(name)
        token = _tokens.new_token()
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO tokens (name, token_hash, created_at) VALUES (?, ?, ?)",
                    (name, _tokens.hash_token(token), self._now()),
                )
        except sqlite3.IntegrityError:
            raise TokenError(f"a token named {name!r} already exists") from None
        return token

    def list_tokens(self) -> list[dict]:
        rows = self._read("SELECT name, created_at, last_used FROM tokens ORDER BY created_at, name")
        return [{"name": n, "created_at": c, "last_used": u} for n, c, u in rows]

    def revoke_token(self, name: str) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount > 0

    def check_token(self, token: str) -> str | None:
        """Return the name of the token, or None.

        The table is read on every call (it holds a handful of rows) so a token created or
        revoked by the CLI takes effect at once. Every stored hash is compared with
        :func:`hmac.compare_digest`, without stopping at a match, so timing reveals nothing about
        which or how many hashes matched. ``last_used`` is best effort: written at most once per
        :data:`~hub.store.tokens.TOUCH_INTERVAL`, and a busy database does not fail the request.
        """
        if not isinstance(token, str) or not token or len(token) > _tokens.MAX_TOKEN_LENGTH:
            return None
        digest = _tokens.hash_token(token)
        rows = self._read("SELECT name, token_hash, last_used FROM tokens")
        match = None
        for name, stored, last_used in rows:
            if hmac.compare_digest(stored, digest):
                match = (name, last_used)
        if match is None:
            return None
        name, last_used = match
        now = self._now()
        # Not if a write is under way: the check runs on the event loop, which must not wait for a
        # recorder commit; a later request will touch it.
        if (last_used is None or now - last_used >= _tokens.TOUCH_INTERVAL) and self._lock.acquire(blocking=False):
            try:
                with self._write() as conn:
                    # The WHERE re-check keeps other threads/processes from touching it twice.
                    conn.execute(
                        "UPDATE tokens SET last_used = ? WHERE name = ? "
                        "AND (last_used IS NULL OR last_used <= ?)",
                        (now, name, now - _tokens.TOUCH_INTERVAL),
                    )
            except sqlite3.OperationalError as exc:
                log.warning("could not record last use of token %r: %s", name, exc)
            finally:
                self._lock.release()
        return name

    # -- command log ------------------------------------------------------------------------------

    def log_command(
        self,
        *,
        ts: float,
        entity_id: str,
        command: str,
        args: dict,
        source: str,
        ok: bool,
        error: str | None = None,
        result: Any = None,
    ) -> int:
        """One command, bounded: names and texts cut to a few hundred characters, arguments and result
        to a summary of at most a few kilobytes (:func:`hub.store.codec.summary`), whatever was sent."""
        return self.log_commands([{"ts": ts, "entity_id": entity_id, "command": command, "args": args,
                                   "source": source, "ok": ok, "error": error, "result": result}])[0]

    def log_commands(self, commands: list[dict]) -> list[int]:
        """Several commands (``log_command``'s keywords each) in one transaction, each with its leaf
        in the anchored log (:mod:`hub.store.anchors`) in that same transaction; returns their ids."""
        rows = [
            (
                float(c["ts"]),
                _short(c["entity_id"]),
                _short(c["command"]),
                _dumps(_summary(c.get("args") if c.get("args") is not None else {})),
                _short(c["source"]),
                1 if c["ok"] else 0,
                _short(c.get("error"), MAX_ERROR),
                _dumps(_summary(c.get("result"))),
            )
            for c in commands
        ]
        if not rows:
            return []
        with self._write() as conn:
            stored = []
            for params in rows:
                cur = conn.execute(
                    "INSERT INTO command_log (ts, entity_id, command, args, source, ok, error, result) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    params,
                )
                stored.append((cur.lastrowid, *params))
            _anchors.append_leaves(conn, stored)
            return [row[0] for row in stored]

    def command_log(self, entity_id: str | None = None, limit: int = 100) -> list[dict]:
        """Most recent first (by ``ts``, then by insertion order)."""
        if limit <= 0:
            return []
        sql = "SELECT id, ts, entity_id, command, args, source, ok, error, result FROM command_log"
        params: list[Any] = []
        if entity_id is not None:
            sql += " WHERE entity_id = ?"
            params.append(entity_id)
        sql += " ORDER BY ts DESC, id DESC LIMIT ?"
        params.append(limit)
        return [
            {
                "id": id_,
                "ts": ts,
                "entity_id": eid,
                "command": command,
                "args": json.loads(args),
                "source": source,
                "ok": bool(ok),
                "error": error,
                "result": json.loads(result) if result is not None else None,
            }
            for id_, ts, eid, command, args, source, ok, error, result in self._read(sql, params)
        ]

    # -- outbox -----------------------------------------------------------------------------------

    def outbox_add(self, kind: str, payload: dict) -> int:
        data = _dumps(payload)
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO outbox (kind, payload, created_at) VALUES (?, ?, ?)",
                (kind, data, self._now()),
            )
            return cur.lastrowid

    def outbox_pending(self, limit: int = 100) -> list[dict]:
        if limit <= 0:
            return []
        rows = self._read(
            "SELECT id, kind, payload, created_at FROM outbox WHERE published_at IS NULL "
            "ORDER BY id LIMIT ?",
            (limit,),
        )
        return [
            {"id": id_, "kind": kind, "payload": json.loads(payload), "created_at": created_at}
            for id_, kind, payload, created_at in rows
        ]

    def outbox_mark_published(self, ids: list[int], ts: float) -> None:
        """Idempotent: a retried publish does not move the original publication time."""
        if not ids:
            return
        with self._write() as conn:
            conn.executemany(
                "UPDATE outbox SET published_at = ? WHERE id = ? AND published_at IS NULL",
                [(ts, i) for i in ids],
            )
