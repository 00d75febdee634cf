"""Bytes the embedded default (``hub run`` with no configuration: demo plugin + embedded chain)
writes to disk, extrapolated to a day. Issue #14: an SD card wears out by the bytes written to it.

Measured from outside, as a user would see it: ``write_bytes`` of ``/proc/<pid>/io`` (bytes the
process caused to be sent to the block layer, every thread included) and the growth of the data
directory, both over ``--seconds`` of steady running after the first ``GET /api/health``. The
first seconds (database creation, chain genesis) are left out: they happen once per install, not
every day. ``wchar`` (bytes passed to ``write()``) is printed too: on tmpfs or when the kernel
does not account block I/O, ``write_bytes`` stays 0 and ``wchar`` is the upper bound.
"""

from __future__ import annotations

import argparse
import json
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
            io0, size0, t0 = proc_io(proc.pid), sizes(data), time.monotonic()
            rows0 = history_rows(data / "hub.db")
            time.sleep(args.seconds)
            io1, size1, t1 = proc_io(proc.pid), sizes(data), time.monotonic()
            rows1 = history_rows(data / "hub.db")
        finally:
            stop(proc)
    per_day = DAY / (t1 - t0)
    written = io1["write_bytes"] - io0["write_bytes"]
    growth = sum(size1.values()) - sum(size0.values())
    print(json.dumps({
        "benchmark": "disk_writes_embedded_default",
        "seconds": round(t1 - t0, 1),
        "write_bytes": written,
        "wchar": io1["wchar"] - io0["wchar"],
        "write_syscalls": io1["syscw"] - io0["syscw"],
        "mb_written_per_day": round(written * per_day / 1e6, 1),
        "data_dir_growth_bytes": growth,
        "mb_growth_per_day": round(growth * per_day / 1e6, 1),
        "growth_by_entry": {k: size1.get(k, 0) - size0.get(k, 0) for k in sorted(set(size0) | set(size1))},
        "rows_added": {k: rows1.get(k, 0) - rows0.get(k, 0) for k in sorted(rows1)},
        "data_dir_bytes_at_end": size1,
    }))


if __name__ == "__main__":
    main()
