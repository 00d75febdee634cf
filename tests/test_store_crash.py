"""kill -9 the writer mid-stream: every batch it reported must be there, and no batch by halves."""

from __future__ import annotations

import collections
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.store import StateRow, Store

REPO_ROOT = Path(__file__).resolve().parents[1]
ENTITIES = 10
ROWS_PER_ENTITY = 200  # 2,000 rows a batch: big enough that a kill can land inside a write

WRITER = f"""
import sys
from pathlib import Path
from hub.store import StateRow, Store

store = Store(Path(sys.argv[1]))
print("ready", flush=True)
batch = 0
while True:
    batch += 1
    store.write_states([
        StateRow(f"sensor.e{{e}}", batch, {{"batch": batch, "i": i}}, True,
                 float(batch), batch + i * 1e-6)
        for e in range({ENTITIES})
        for i in range({ROWS_PER_ENTITY})
    ])
    print(batch, flush=True)  # only after write_states returned: the batch is committed
"""


def _read_lines(proc: subprocess.Popen, buf: bytearray, want: int, timeout: float) -> list[str]:
    """Read until ``want`` complete lines have arrived; never block past ``timeout``."""
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    while buf.count(b"\n") < want:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"writer too slow; stdout so far: {bytes(buf)!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"writer exited early: {proc.wait()} {proc.stderr.read()!r}")
            buf += chunk
    return buf.decode().splitlines()


@pytest.mark.parametrize(("kill_after", "delay"), [(1, 0.0), (5, 0.004), (20, 0.013)])
def test_kill_9_loses_no_reported_batch_and_leaves_no_half_batch(
    tmp_path: Path, kill_after: int, delay: float
) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    data_dir = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    buf = bytearray()
    try:
        _read_lines(proc, buf, 1 + kill_after, timeout=10.0)
        time.sleep(delay)  # vary where in the next write the kill lands
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)
        buf += proc.stdout.read()  # lines printed between our read and the kill count too
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    lines = buf.decode().splitlines()
    assert lines[0] == "ready"
    reported = [int(n) for n in lines[1:]]
    assert reported == list(range(1, len(reported) + 1))
    acknowledged = reported[-1]
    assert acknowledged >= kill_after

    with Store(data_dir) as store:
        counts: collections.Counter[int] = collections.Counter()
        for e in range(ENTITIES):
            for row in store.history(f"sensor.e{e}", limit=10**9):
                assert row.attributes["batch"] == row.value
                counts[row.value] += 1
        present = sorted(counts)
        # Batches are whole or absent, and a later batch never exists without the earlier ones.
        assert present == list(range(1, len(present) + 1))
        assert all(counts[b] == ENTITIES * ROWS_PER_ENTITY for b in present), counts
        # At most one batch beyond what was reported can have been committed unreported.
        newest = present[-1]
        assert acknowledged <= newest <= acknowledged + 1

        last = store.load_last_states()
        assert [r.entity_id for r in last] == [f"sensor.e{e}" for e in range(ENTITIES)]
        for r in last:
            assert r.value == newest
            assert r.attributes == {"batch": newest, "i": ROWS_PER_ENTITY - 1}

        # The file is sound and the hub can carry on writing after the restart.
        store.write_states([StateRow("sensor.e0", "after", {}, True, 1e9, 1e9)])
        assert store.load_last_states()[0].value == "after"

    conn = sqlite3.connect(data_dir / "hub.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
