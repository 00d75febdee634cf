"""Bytes the embedded default (``hub run`` with no configuration: demo plugin + embedded chain)
writes to disk, extrapolated to a day. Issue #14: an SD card wears out by the bytes written to it.

Measured from outside, as a user would see it: ``write_bytes`` of ``/proc/<pid>/io`` (bytes the
process caused to be sent to the block layer, every thread included) and the growth of the data
directory, both over ``--seconds`` of steady running after the first ``GET /api/health``. The
first seconds (database creation, chain genesis) are left out: they happen once per install, not
every day. ``wchar`` (bytes passed to ``write()``) is printed too: on tmpfs or when the kernel
does not account block I/O, ``write_bytes`` stays 0 and ``wchar`` is the upper bound.

A WAL only grows until SQLite checkpoints it into the database (every 1,000 pages), so a short run
would see the WAL, not the database. The benchmark therefore checkpoints both databases (hub.db and
the chain's) itself, from a second connection as the ``hub`` CLI would, at the start and at the end:
``db_growth`` is then what the databases really grew by, and the bytes the final checkpoint wrote
(this process's own ``write_bytes``) are added to the total. Checkpointing every run is more often
than SQLite would, so that part is an upper bound.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from _hubproc import free_port, start, stop, wait_healthy

DAY = 86400.0


def proc_io(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = int(value)
    return fields


def sizes(data: Path) -> dict[str, int]:
    """Bytes per top-level entry of the data directory (a folder counts with everything in it)."""
    out = {}
    for entry in sorted(data.iterdir()):
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        out[entry.name] = sum(p.stat().st_size for p in files)
    return out


def databases(data: Path) -> list[Path]:
    return sorted(p for p in data.rglob("*.db") if p.is_file())


def checkpoint(data: Path) -> int:
    """PASSIVE-checkpoint every database under ``data``; return the bytes this process wrote doing it."""
    before = proc_io(os.getpid())["write_bytes"]
    for db in databases(data):
        conn = sqlite3.connect(db, timeout=5)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()
    os.sync()  # so the checkpoint's writes are accounted now, not at the next writeback
    return proc_io(os.getpid())["write_bytes"] - before


def db_bytes(data: Path) -> dict[str, int]:
    return {str(p.relative_to(data)): p.stat().st_size for p in databases(data)}


def history_rows(db: Path) -> dict[str, int]:
    """Rows per table of hub.db, read through a separate connection as ``hub`` CLI commands do."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to measure (default 120)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds left out after start-up (default 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "hub-data"
        port = free_port()
        proc = start(data, port)
        try:
            wait_healthy(proc, port)
            time.sleep(args.warmup)
            checkpoint(data)
            io0, db0, t0 = proc_io(proc.pid), db_bytes(data), time.monotonic()
            rows0 = history_rows(data / "hub.db")
            time.sleep(args.seconds)
            io1, t1 = proc_io(proc.pid), time.monotonic()
            checkpointed = checkpoint(data)
            db1, size1 = db_bytes(data), sizes(data)
            rows1 = history_rows(data / "hub.db")
        finally:
            stop(proc)
    per_day = DAY / (t1 - t0)
    written = io1["write_bytes"] - io0["write_bytes"]
    print(json.dumps({
        "benchmark": "disk_writes_embedded_default",
        "seconds": round(t1 - t0, 1),
        "hub_write_bytes": written,
        "checkpoint_write_bytes": checkpointed,
        "wchar": io1["wchar"] - io0["wchar"],
        "write_syscalls": io1["syscw"] - io0["syscw"],
        "mb_written_per_day": round((written + checkpointed) * per_day / 1e6, 1),
        "db_growth_bytes": {name: size - db0.get(name, 0) for name, size in db1.items()},
        "mb_db_growth_per_day": round((sum(db1.values()) - sum(db0.values())) * per_day / 1e6, 1),
        "rows_added": {k: rows1.get(k, 0) - rows0.get(k, 0) for k in sorted(rows1)},
        "data_dir_bytes_at_end": size1,
    }))


if __name__ == "__main__":
    main()
