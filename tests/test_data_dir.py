"""The data directory of a real ``hub run``: private to its user, and laid out to spare SD cards."""

from __future__ import annotations

import json
import sqlite3
import stat
import time
from pathlib import Path

from hub.store import StateRow, Store
from hub.store import store as store_module
from tests.hubproc import HubProcess


def modes(root: Path) -> dict[str, int]:
    """Permission bits of the directory and of everything under it, by relative path."""
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        out[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return out


def test_a_fresh_data_directory_is_readable_by_the_hub_user_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    hub = HubProcess(data).start()
    try:
        # The embedded chain has made its keys and database once the first block exists.
        hub.wait_for(lambda: (data / "chain").exists() and any((data / "chain").rglob("*.db-wal")),
                     timeout=30, what="the embedded chain's database")
        found = modes(data)
    finally:
        hub.stop()
    for name in ("hub.db", "hub.db-wal", "hub.db-shm", "owner-token", "run.json"):
        assert name in found, sorted(found)
    assert any(name.startswith("chain/keys/") for name in found), sorted(found)
    loose = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert not loose, f"readable by other users: {loose}"
    assert found["."] == 0o700
    assert found["hub.db"] == 0o600


def test_run_json_names_the_api_as_soon_as_it_answers(tmp_path: Path) -> None:
    """``hub`` commands find a running hub's address in run.json: a script that waited for
    /api/health must find it there (it was written after the API answered, and on a loaded machine
    the commands went to the default port meanwhile)."""
    data = tmp_path / "data"
    hub = HubProcess(data).start()  # returns as soon as /api/health answers
    try:
        assert json.loads((data / "run.json").read_text())["url"] == hub.url
    finally:
        assert hub.stop() == 0
    assert not (data / "run.json").exists()


def test_an_old_loose_data_directory_is_tightened_and_its_database_rebuilt(tmp_path: Path) -> None:
    """What an older hub left: a 0755 directory, a 0644 hub.db with 4 KiB pages and no auto-vacuum.
    The history in it must survive the rebuild."""
    data = tmp_path / "data"
    hour_ago = time.time() - 3600
    # Today's schema with a history row, then the old layout and modes put back.
    with Store(data) as s:
        # An hour ago: inside the retention, so the purge at start keeps it.
        s.write_states([StateRow("sensor.outside_temperature", 21.5, {}, True, hour_ago, hour_ago)])
    conn = sqlite3.connect(data / "hub.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("PRAGMA auto_vacuum = NONE")
    conn.execute("VACUUM")
    conn.execute("PRAGMA journal_mode = WAL")
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
    conn.close()
    data.chmod(0o755)
    (data / "hub.db").chmod(0o644)

    hub = HubProcess(data).start()
    try:
        history = hub.get(f"/api/history/sensor.outside_temperature?start={hour_ago - 1}&end={hour_ago + 1}")
    finally:
        hub.stop()
    assert [s["state"] for s in history["states"]] == [21.5], history
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "hub.db").stat().st_mode) == 0o600
    log = hub.log()
    assert "was readable by other users" in log and str(data) in log
    conn = sqlite3.connect(data / "hub.db")
    try:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == store_module.PAGE_SIZE
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == store_module.AUTO_VACUUM_INCREMENTAL
    finally:
        conn.close()
