"""Opening a SQLite file of the hub's own beside hub.db (identity.db, market.db): one set-up.

Autocommit (``isolation_level=None``: each writer issues its own BEGIN), WAL so readers never wait
for a writer, ``synchronous = NORMAL`` (a kill -9 loses nothing committed; a power cut may lose the
last commits), and the file's migrations run before anyone uses it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

BUSY_TIMEOUT = 10.0  # seconds a writer waits for another's lock


def open_wal(path: Path, migrate: Callable[[sqlite3.Connection], object]) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise sqlite3.OperationalError(f"could not enable WAL on {path} (got {mode!r})")
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn
