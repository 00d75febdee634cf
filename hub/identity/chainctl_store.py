"""What chain-state control remembers, in identity.db (migration 2 of ``hub/identity/store.py``).

- ``chain_cursor``: per chain (its genesis hash), the last final block whose transactions were all
  handled. A new genesis (a fresh embedded chain) starts a new cursor.
- ``chain_commands``: every ``control_command`` the hub took for one of its devices. The row is
  committed *before* the command runs (``outcome`` NULL), the outcome after; so after a kill -9 a
  row with no outcome is a command that may or may not have run, and it is reported failed
  ("interrupted"), never run again. ``report_tx``/``reported``: the ``state_change`` that reports it.

Its own connection to the same file (WAL), so it needs nothing of the gate's store but its path.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.identity.store import connect


@dataclass(frozen=True)
class Taken:
    tx_hash: bytes
    device_id: str
    height: int
    outcome: dict[str, Any] | None
    report_tx: bytes | None
    reported: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"tx": self.tx_hash.hex(), "device_id": self.device_id, "height": self.height,
                "outcome": self.outcome, "report_tx": self.report_tx.hex() if self.report_tx else None,
                "reported": self.reported}


class ChainctlStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = connect(self.path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _exec(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()  # autocommit: each write is its own commit

    # --- the cursor ----------------------------------------------------------------------------------
    def cursor(self, genesis: bytes) -> int | None:
        rows = self._exec("SELECT height FROM chain_cursor WHERE genesis = ?", (genesis,))
        return rows[0][0] if rows else None

    def set_cursor(self, genesis: bytes, height: int, block_hash: bytes | None) -> None:
        self._exec("INSERT INTO chain_cursor (genesis, height, hash) VALUES (?, ?, ?) ON CONFLICT (genesis) "
                   "DO UPDATE SET height = excluded.height, hash = excluded.hash", (genesis, height, block_hash))

    def follow_start(self, genesis: bytes, now_ms: int) -> int:
        """When chain control first wanted to follow this chain (ms): ``now_ms`` the first time asked."""
        self._exec("INSERT OR IGNORE INTO chain_follow_start (genesis, since) VALUES (?, ?)", (genesis, int(now_ms)))
        return self._exec("SELECT since FROM chain_follow_start WHERE genesis = ?", (genesis,))[0][0]

    # --- commands ------------------------------------------------------------------------------------
    def take(self, tx_hash: bytes, device_id: str, height: int, now: float) -> bool:
        """Record the command as taken; False if it was taken before (it never runs twice)."""
        with self._lock:
            before = self._conn.total_changes
            self._conn.execute("INSERT OR IGNORE INTO chain_commands (tx_hash, device_id, height, taken_at) "
                               "VALUES (?, ?, ?, ?)", (tx_hash, device_id, height, now))
            return self._conn.total_changes > before

    def done(self, tx_hash: bytes, outcome: dict[str, Any], now: float) -> None:
        self._exec("UPDATE chain_commands SET outcome = ?, done_at = ? WHERE tx_hash = ?",
                   (json.dumps(outcome, sort_keys=True), now, tx_hash))

    def interrupted(self, now: float) -> list[bytes]:
        """Commands taken whose outcome never came (the hub stopped while they ran): failed."""
        rows = self._exec("SELECT tx_hash FROM chain_commands WHERE outcome IS NULL")
        outcome = json.dumps({"ok": False, "reason": "interrupted", "message": "the hub stopped while the command "
                              "ran; it is not run again", "entity": "", "value": None}, sort_keys=True)
        for (tx_hash,) in rows:
            self._exec("UPDATE chain_commands SET outcome = ?, done_at = ? WHERE tx_hash = ?", (outcome, now, tx_hash))
        return [bytes(r[0]) for r in rows]

    def unreported(self, limit: int = 50) -> list[Taken]:
        rows = self._exec("SELECT tx_hash, device_id, height, outcome, report_tx, reported FROM chain_commands "
                          "WHERE reported IS NULL AND outcome IS NOT NULL ORDER BY height, taken_at LIMIT ?", (limit,))
        return [_taken(r) for r in rows]

    def get(self, tx_hash: bytes) -> Taken | None:
        rows = self._exec("SELECT tx_hash, device_id, height, outcome, report_tx, reported FROM chain_commands "
                          "WHERE tx_hash = ?", (tx_hash,))
        return _taken(rows[0]) if rows else None

    def recent(self, limit: int = 100) -> list[Taken]:
        rows = self._exec("SELECT tx_hash, device_id, height, outcome, report_tx, reported FROM chain_commands "
                          "ORDER BY height DESC, taken_at DESC LIMIT ?", (limit,))
        return [_taken(r) for r in rows]

    def set_report(self, tx_hash: bytes, report_tx: bytes | None, reported: str | None = None) -> None:
        self._exec("UPDATE chain_commands SET report_tx = ?, reported = ? WHERE tx_hash = ?",
                   (report_tx, reported, tx_hash))


def _taken(row: tuple) -> Taken:
    return Taken(bytes(row[0]), row[1], row[2], json.loads(row[3]) if row[3] else None,
                 bytes(row[4]) if row[4] is not None else None, row[5])
