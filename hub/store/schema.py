"""Schema and migrations, versioned by ``PRAGMA user_version``.

Migrations are append-only lists of statements: a database at version N runs migrations N+1..
in order. All pending ones run in a single ``BEGIN IMMEDIATE`` transaction, and the version is
re-read after taking the write lock, so the hub and the CLI opening an old file at the same
moment cannot both migrate it, and a crash mid-migration leaves the old version intact.

The DDL avoids ``STRICT`` tables and ``RETURNING`` on purpose: edge devices often ship an older
system SQLite (Debian bullseye has 3.34) and both need 3.35+/3.37+.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[tuple[str, ...]] = [
    # 1: initial schema
    (
        # Registries: the hub owns the dict shape; the store only needs the keys it looks up by.
        """CREATE TABLE devices (
            id TEXT PRIMARY KEY,
            platform TEXT,
            data TEXT NOT NULL
        )""",
        """CREATE TABLE entities (
            entity_id TEXT PRIMARY KEY,
            platform TEXT NOT NULL,
            unique_id TEXT NOT NULL,
            data TEXT NOT NULL,
            UNIQUE (platform, unique_id)
        )""",
        # Append-only state history; value/attributes are JSON text.
        """CREATE TABLE history (
            id INTEGER PRIMARY KEY,
            entity_id TEXT NOT NULL,
            value TEXT NOT NULL,
            attributes TEXT NOT NULL,
            available INTEGER NOT NULL,
            last_changed REAL NOT NULL,
            last_updated REAL NOT NULL
        )""",
        "CREATE INDEX history_entity_time ON history (entity_id, last_updated)",
        "CREATE INDEX history_time ON history (last_updated)",
        # Latest state per entity, kept apart from history so purging history never loses it
        # and startup does not have to scan history to restore states.
        """CREATE TABLE last_states (
            entity_id TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            attributes TEXT NOT NULL,
            available INTEGER NOT NULL,
            last_changed REAL NOT NULL,
            last_updated REAL NOT NULL
        )""",
        """CREATE TABLE tokens (
            name TEXT PRIMARY KEY,
            token_hash BLOB NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            last_used REAL
        )""",
        """CREATE TABLE command_log (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            entity_id TEXT NOT NULL,
            command TEXT NOT NULL,
            args TEXT NOT NULL,
            source TEXT NOT NULL,
            ok INTEGER NOT NULL,
            error TEXT,
            result TEXT
        )""",
        "CREATE INDEX command_log_entity_ts ON command_log (entity_id, ts)",
        "CREATE INDEX command_log_ts ON command_log (ts)",
        # AUTOINCREMENT so an id is never reused even after published rows are deleted: the
        # chain side may use the id to de-duplicate.
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at REAL NOT NULL,
            published_at REAL
        )""",
        "CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL",
    ),
]

# 2: the rule engine's state that must survive a restart: which rules the user disabled, and the
# `for:` timers and paused runs that are still waiting.
MIGRATIONS.append(
    (
        """CREATE TABLE rule_settings (
            rule_id TEXT PRIMARY KEY,
            enabled INTEGER NOT NULL
        )""",
        """CREATE TABLE rule_pending (
            key TEXT PRIMARY KEY,
            rule_id TEXT NOT NULL,
            digest TEXT NOT NULL,
            data TEXT NOT NULL
        )""",
    )
)

# 3: history loses its index on time alone. Every state change paid for a third B-tree insert
# (history_time) whose only reader was the hourly purge; the purge now walks the
# (entity_id, last_updated) index once per entity instead (Store.purge_history).
MIGRATIONS.append(("DROP INDEX IF EXISTS history_time",))

# 4: the command log, anchored (hub/identity/anchor.py, docs/identity.md). command_log is rebuilt with
# AUTOINCREMENT, so an id is never reused after a purge empties the table: a leaf names its row by id.
# log_leaves holds each command's RFC 6962 leaf hash (hub/store/logleaf.py) at a contiguous index; it
# is written in the same transaction as the row, so no purge and no kill -9 can lose a command before
# it is anchored. log_batches holds the roots published (or to publish) as `command_log` transactions.
MIGRATIONS.append(
    (
        """CREATE TABLE command_log_v4 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            entity_id TEXT NOT NULL,
            command TEXT NOT NULL,
            args TEXT NOT NULL,
            source TEXT NOT NULL,
            ok INTEGER NOT NULL,
            error TEXT,
            result TEXT
        )""",
        "INSERT INTO command_log_v4 SELECT id, ts, entity_id, command, args, source, ok, error, result FROM command_log",
        "DROP TABLE command_log",
        "ALTER TABLE command_log_v4 RENAME TO command_log",
        "CREATE INDEX command_log_entity_ts ON command_log (entity_id, ts)",
        "CREATE INDEX command_log_ts ON command_log (ts)",
        """CREATE TABLE log_leaves (
            idx INTEGER PRIMARY KEY,
            log_id INTEGER NOT NULL UNIQUE,
            ts INTEGER NOT NULL,
            hash BLOB NOT NULL
        )""",
        # first/count: leaf indexes; keeper: the address that anchors it and chain_first its `first`
        # on chain (fixed before the first submission, so a batch can never land at two places);
        # height: the block that holds its anchor; final: that block is irreversible.
        """CREATE TABLE log_batches (
            first INTEGER PRIMARY KEY,
            count INTEGER NOT NULL,
            root BLOB NOT NULL,
            first_time INTEGER NOT NULL,
            last_time INTEGER NOT NULL,
            keeper BLOB,
            chain_first INTEGER,
            tx BLOB,
            submitted_at REAL,
            height INTEGER,
            final INTEGER NOT NULL DEFAULT 0
        )""",
    )
)


SCHEMA_VERSION = len(MIGRATIONS)


class SchemaError(RuntimeError):
    """The database was written by a newer hub; refusing to guess at its layout."""


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring ``conn``'s database to :data:`SCHEMA_VERSION`; return the version found.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so the explicit BEGIN here is
    the only transaction.
    """
    found = user_version(conn)
    if found == SCHEMA_VERSION:
        return found
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        found = user_version(conn)  # someone else may have migrated while we waited
        if found > SCHEMA_VERSION:
            raise SchemaError(
                f"database schema version {found} is newer than this hub supports ({SCHEMA_VERSION})"
            )
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                conn.execute(statement)
        # PRAGMA does not take parameters; SCHEMA_VERSION is an int constant.
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
    return found
