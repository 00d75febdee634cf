"""The command log's leaves (hub/store/anchors.py): every committed command has its leaf at the next
contiguous index, the leaf outlives its row until its batch is final, and ids are never reused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hub.crypto import merkle
from hub.store import Store
from hub.store.anchors import LogAnchors
from hub.store.logleaf import leaf


def _log(store: Store, n: int, start: float = 1_000.0) -> list[int]:
    return store.log_commands([
        {"ts": start + i, "entity_id": "switch.s", "command": "turn_on", "args": {"i": i}, "source": "api:owner",
         "ok": i % 3 != 0, "error": None if i % 3 else "replayed: counter 3 is not above 7", "result": {"n": i}}
        for i in range(n)])


def test_each_command_gets_the_next_leaf_and_a_proof_to_its_batch_root(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        ids = _log(store, 5) + [store.log_command(ts=2_000.0, entity_id="lock.door", command="unlock", args={},
                                                  source="rule:door", ok=True)]
        anchors = LogAnchors(store)
        assert anchors.unbatched() == (0, 6, 1_000_000)
        batch = anchors.seal(4)
        assert (batch.first, batch.count, batch.first_time, batch.last_time) == (0, 4, 1_000_000, 1_003_000)
        rest = anchors.seal(100)
        assert (rest.first, rest.count) == (4, 2)
        assert anchors.seal(100) is None
        for log_id in ids:
            e = anchors.entry(log_id)
            data = leaf(*e["row"])  # the leaf is rebuilt from the stored row alone
            b = e["batch"]
            proof = anchors.path(b, e["index"])
            assert merkle.verify_inclusion(data, e["index"] - b.first, b.count, proof, b.root)
        # a row changed after it was logged no longer matches its leaf
        e = anchors.entry(ids[1])
        forged = leaf(*(e["row"][:5] + (e["row"][5], 0) + e["row"][7:]))
        assert not merkle.verify_inclusion(forged, e["index"], 4, anchors.path(e["batch"], e["index"]), batch.root)


def test_leaves_outlive_purged_rows_until_their_batch_is_final(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        _log(store, 30)
        anchors = LogAnchors(store)
        first = anchors.seal(10)
        store.purge_command_log(older_than=0.0, keep=5)  # rows 1..25 gone; nothing anchored yet
        assert anchors.unbatched() == (10, 20, 1_010_000)  # every leaf is still there
        second = anchors.seal(100)
        assert second.count == 20
        anchors.update(first.first, height=3, final=True)
        store.purge_command_log(older_than=0.0, keep=5)
        # batch 0 is final and has no row left: its leaves may go; batch 10 holds surviving rows
        assert store._read("SELECT min(idx), count(*) FROM log_leaves")[0] == (10, 20)
        anchors.update(second.first, height=4, final=True)
        store.purge_command_log(older_than=0.0, keep=5)
        assert store._read("SELECT min(idx) FROM log_leaves")[0] == (10,)  # rows 26..30 still need batch 10
        # ids and leaf indexes go on after everything is purged: never reused
        store.purge_command_log(older_than=10_000.0, keep=0)
        assert store._read("SELECT count(*) FROM log_leaves")[0] == (0,)
        [new_id] = store.log_commands([{"ts": 5_000.0, "entity_id": "switch.s", "command": "turn_off",
                                        "source": "api", "ok": True}])
        assert new_id == 31
        assert anchors.entry(new_id)["index"] == 30


def test_a_version_3_database_gets_its_rows_leafed_in_id_order(tmp_path: Path) -> None:
    from hub.store import schema

    conn = sqlite3.connect(tmp_path / "hub.db", isolation_level=None)
    with conn:
        conn.execute("BEGIN")
        for statements in schema.MIGRATIONS[:3]:
            for statement in statements:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 3")
        conn.executemany("INSERT INTO command_log (ts, entity_id, command, args, source, ok, error, result) "
                         "VALUES (?, 'switch.s', 'turn_on', '{}', 'api', 1, NULL, 'null')", [(1.0,), (2.0,), (3.0,)])
    conn.close()
    with Store(tmp_path) as store:
        assert store._read("SELECT idx, log_id FROM log_leaves ORDER BY idx") == [(0, 1), (1, 2), (2, 3)]
        assert store.log_command(ts=4.0, entity_id="switch.s", command="turn_off", args={}, source="api", ok=True) == 4
        assert LogAnchors(store).entry(4)["index"] == 3
