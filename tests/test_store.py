"""Behaviour of the SQLite store, against real files in tmp_path."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from hub.store import SCHEMA_VERSION, SchemaError, StateRow, Store, TokenError
from hub.store.schema import MIGRATIONS
from hub.store.store import _PURGE_HISTORY


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path):
    s = Store(data_dir)
    yield s
    s.close()


def state(entity_id: str, value, t: float, *, changed: float | None = None, **attributes) -> StateRow:
    return StateRow(
        entity_id=entity_id,
        value=value,
        attributes=attributes,
        available=True,
        last_changed=t if changed is None else changed,
        last_updated=t,
    )


def raw(store: Store) -> sqlite3.Connection:
    """A second, independent connection, as another process would have."""
    return sqlite3.connect(store.path)


# -- file and connection setup ---------------------------------------------------------------------


def test_creates_file_with_parents_in_wal_mode(tmp_path: Path) -> None:
    data_dir = tmp_path / "deep" / "er" / "data"
    with Store(data_dir) as s:
        assert s.path == data_dir / "hub.db"
        assert s.path.is_file()
        # WAL is a property of the file, so any other connection sees it too.
        conn = raw(s)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        finally:
            conn.close()
        assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert s._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert s._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000


def test_synchronous_full_is_available_and_junk_is_rejected(data_dir: Path) -> None:
    with Store(data_dir, synchronous="FULL") as s:
        assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    with pytest.raises(ValueError):
        Store(data_dir, synchronous="NORMAL; DROP TABLE tokens")


def test_refuses_a_database_from_a_newer_hub(data_dir: Path) -> None:
    Store(data_dir).close()
    conn = sqlite3.connect(data_dir / "hub.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaError):
        Store(data_dir)


def test_close_is_idempotent(store: Store) -> None:
    store.close()
    store.close()


# -- registries ------------------------------------------------------------------------------------


def test_devices_and_entities_survive_reopen(data_dir: Path) -> None:
    device = {"id": "dev-1", "platform": "modbus", "name": "Boiler", "connection": "tcp://10.0.0.5:502"}
    entity = {
        "entity_id": "sensor.boiler_temperature",
        "platform": "modbus",
        "unique_id": "dev-1:temp",
        "device_id": "dev-1",
        "options": {"min": 0, "max": 90.5},
    }
    with Store(data_dir) as s:
        s.save_device(device)
        s.save_entity(entity)
    with Store(data_dir) as s:
        assert s.load_devices() == [device]
        assert s.load_entities() == [entity]


def test_save_is_an_upsert(store: Store) -> None:
    store.save_device({"id": "d", "platform": "p", "name": "old"})
    store.save_device({"id": "d", "platform": "p", "name": "new"})
    assert store.load_devices() == [{"id": "d", "platform": "p", "name": "new"}]

    store.save_entity({"entity_id": "switch.a", "platform": "p", "unique_id": "u", "name": "old"})
    store.save_entity({"entity_id": "switch.a", "platform": "p", "unique_id": "u", "name": "new"})
    assert [e["name"] for e in store.load_entities()] == ["new"]


def test_remove_entity(store: Store) -> None:
    store.save_entity({"entity_id": "switch.a", "platform": "p", "unique_id": "a"})
    store.save_entity({"entity_id": "switch.b", "platform": "p", "unique_id": "b"})
    store.remove_entity("switch.a")
    store.remove_entity("switch.unknown")  # not an error
    assert [e["entity_id"] for e in store.load_entities()] == ["switch.b"]


def test_two_entity_ids_cannot_claim_the_same_unique_id(store: Store) -> None:
    store.save_entity({"entity_id": "switch.a", "platform": "p", "unique_id": "u"})
    with pytest.raises(sqlite3.IntegrityError):
        store.save_entity({"entity_id": "switch.b", "platform": "p", "unique_id": "u"})
    # Same unique_id on another platform is a different entity.
    store.save_entity({"entity_id": "switch.c", "platform": "q", "unique_id": "u"})
    assert [e["entity_id"] for e in store.load_entities()] == ["switch.a", "switch.c"]


@pytest.mark.parametrize("missing", ["entity_id", "platform", "unique_id"])
def test_entity_needs_its_keys(store: Store, missing: str) -> None:
    entity = {"entity_id": "switch.a", "platform": "p", "unique_id": "u"}
    del entity[missing]
    with pytest.raises(ValueError, match=missing):
        store.save_entity(entity)
    assert store.load_entities() == []


# -- states ----------------------------------------------------------------------------------------


def test_last_states_keep_only_the_latest_per_entity(data_dir: Path) -> None:
    with Store(data_dir) as s:
        s.write_states(
            [
                state("sensor.t", 20.5, 100.0, unit="°C"),
                state("switch.s", "off", 100.0),
                state("sensor.t", 21.0, 101.0, unit="°C"),
                state("sensor.t", 21.5, 102.0, changed=101.0, unit="°C"),
            ]
        )
        s.write_states([StateRow("switch.s", None, {}, False, 103.0, 103.0)])
    with Store(data_dir) as s:
        assert s.load_last_states() == [
            StateRow("sensor.t", 21.5, {"unit": "°C"}, True, 101.0, 102.0),
            StateRow("switch.s", None, {}, False, 103.0, 103.0),
        ]


def test_a_late_older_state_does_not_roll_back_the_latest(store: Store) -> None:
    store.write_states([state("sensor.t", "new", 200.0)])
    store.write_states([state("sensor.t", "old", 150.0)])
    assert [r.value for r in store.load_last_states()] == ["new"]
    # ... but it is still history.
    assert [r.value for r in store.history("sensor.t")] == ["old", "new"]


def test_values_keep_their_json_types(store: Store) -> None:
    values = ["on", 3, 2.25, None, True]
    store.write_states([state(f"sensor.v{i}", v, 1.0) for i, v in enumerate(values)])
    loaded = {r.entity_id: r.value for r in store.load_last_states()}
    assert [loaded[f"sensor.v{i}"] for i in range(len(values))] == values
    assert type(loaded["sensor.v1"]) is int and type(loaded["sensor.v4"]) is bool


def test_a_batch_with_an_unserialisable_value_writes_nothing(store: Store) -> None:
    with pytest.raises(TypeError):
        store.write_states([state("sensor.a", 1, 1.0), state("sensor.b", object(), 1.0)])
    assert store.load_last_states() == []
    assert store.history("sensor.a") == []


def test_history_range_is_inclusive_and_ascending(store: Store) -> None:
    # Written out of order and interleaved with another entity.
    store.write_states([state("sensor.t", t, t) for t in (5.0, 1.0, 3.0)])
    store.write_states([state("sensor.t", t, t) for t in (2.0, 4.0)] + [state("sensor.x", 0, 3.0)])

    def values(**kw) -> list:
        return [r.value for r in store.history("sensor.t", **kw)]

    assert values() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert values(start=2.0) == [2.0, 3.0, 4.0, 5.0]
    assert values(end=4.0) == [1.0, 2.0, 3.0, 4.0]
    assert values(start=2.0, end=4.0) == [2.0, 3.0, 4.0]
    assert values(start=2.5, end=2.9) == []
    assert values(limit=2) == [1.0, 2.0]
    assert values(limit=0) == []
    assert store.history("sensor.unknown") == []
    assert [r.entity_id for r in store.history("sensor.x")] == ["sensor.x"]


def test_each_rows_attributes_are_stored_whatever_mappings_the_batch_shares(store: Store) -> None:
    """The store encodes each distinct attributes object once per batch: rows sharing one must each
    get it, and rows with equal-looking but distinct objects, read-only views and None their own."""
    from types import MappingProxyType

    shared = MappingProxyType({"unit": "W", "device_class": "power"})
    other = MappingProxyType({"unit": "kW"})
    rows = [
        StateRow("sensor.a", 1.0, shared, True, 1.0, 1.0),
        StateRow("sensor.b", 2.0, other, True, 1.0, 1.0),
        StateRow("sensor.a", 3.0, shared, True, 2.0, 2.0),
        StateRow("sensor.b", 4.0, {"unit": "kW", "note": "plain dict"}, True, 2.0, 2.0),
        StateRow("sensor.b", 5.0, None, True, 3.0, 3.0),
        StateRow("sensor.a", 6.0, MappingProxyType({}), False, 3.0, 3.0),
    ]
    store.write_states(rows)
    assert [(r.value, r.attributes) for r in store.history("sensor.a")] == [
        (1.0, {"unit": "W", "device_class": "power"}), (3.0, {"unit": "W", "device_class": "power"}), (6.0, {}),
    ]
    assert [(r.value, r.attributes) for r in store.history("sensor.b")] == [
        (2.0, {"unit": "kW"}), (4.0, {"unit": "kW", "note": "plain dict"}), (5.0, {}),
    ]
    assert {r.entity_id: r.attributes for r in store.load_last_states()} == {"sensor.a": {}, "sensor.b": {}}


def test_rows_at_the_same_time_keep_their_order_within_each_entity(store: Store) -> None:
    # The store groups a batch by entity before inserting; history must still list each entity's
    # rows in the order they happened, also when their timestamps are equal.
    store.write_states([state(e, f"{e}-{n}", 7.0) for n in range(5) for e in ("sensor.b", "sensor.a", "sensor.c")])
    for e in ("sensor.a", "sensor.b", "sensor.c"):
        assert [r.value for r in store.history(e)] == [f"{e}-{n}" for n in range(5)]
    assert {r.entity_id: r.value for r in store.load_last_states()} == {e: f"{e}-4" for e in ("sensor.a", "sensor.b", "sensor.c")}


def test_history_rows_are_complete(store: Store) -> None:
    row = StateRow("light.l", "on", {"brightness": 128, "rgb": [1, 2, 3]}, False, 10.0, 12.5)
    store.write_states([row])
    assert store.history("light.l") == [row]


def test_purge_drops_old_history_but_keeps_last_states(store: Store) -> None:
    store.write_states([state("sensor.t", t, t) for t in (1.0, 2.0, 3.0)] + [state("sensor.old", "x", 1.0)])
    assert store.purge_history(older_than=3.0) == 3  # strictly older
    assert [r.value for r in store.history("sensor.t")] == [3.0]
    assert store.history("sensor.old") == []
    assert store.purge_history(older_than=1e12) == 1
    assert {r.entity_id: r.value for r in store.load_last_states()} == {"sensor.t": 3.0, "sensor.old": "x"}


def test_purge_mixes_entities_and_times_and_deletes_exactly_the_old_rows(store: Store) -> None:
    # Entity ids sorting around each other, times interleaved across batches, rows exactly at the cutoff.
    ids = ["a", "sensor.b", "sensor.b2", "sensor.ba", "z.last", "sensor.a'quote"]
    store.write_states([state(e, t, t) for t in (5.0, 1.0, 3.0, 2.0, 4.0) for e in ids])
    assert store.purge_history(older_than=3.0) == 2 * len(ids)
    for e in ids:
        assert [r.value for r in store.history(e)] == [3.0, 4.0, 5.0]
    assert store.purge_history(older_than=3.0) == 0
    plan = " ".join(str(row) for row in raw(store).execute("EXPLAIN QUERY PLAN " + _PURGE_HISTORY, (3.0,)))
    assert "SCAN history" not in plan  # one index range per entity, not a pass over the whole table


def test_a_version_2_database_loses_the_time_index_and_keeps_its_history(data_dir: Path) -> None:
    """Schema 3 drops ``history_time`` (a B-tree insert per state change that only the purge read)."""
    data_dir.mkdir(parents=True)
    conn = sqlite3.connect(data_dir / "hub.db", isolation_level=None)
    for statements in MIGRATIONS[:2]:
        for statement in statements:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.executemany(
        "INSERT INTO history (entity_id, value, attributes, available, last_changed, last_updated) VALUES (?, ?, ?, 1, ?, ?)",
        [("sensor.t", str(t), '{"unit":"W"}', t, t) for t in (1.0, 2.0, 3.0)],
    )
    conn.close()
    with Store(data_dir) as s:
        assert [r.value for r in s.history("sensor.t", start=2.0)] == [2.0, 3.0]
        assert s.history("sensor.t")[0].attributes == {"unit": "W"}
        assert s.purge_history(older_than=2.0) == 1
        s.write_states([state("sensor.t", 4.0, 4.0)])
    conn = sqlite3.connect(data_dir / "hub.db")
    indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    assert "history_time" not in indexes and "history_entity_time" in indexes


def test_reads_do_not_wait_for_a_write_in_progress(store: Store) -> None:
    """The API checks tokens on the event loop; waiting there for a recorder commit (seconds with a
    large batch) froze every request and WebSocket for as long. A read sees the last commit."""
    token = store.create_token("owner")
    store.write_states([state("sensor.t", 1.0, 1.0)])
    writing, release = threading.Event(), threading.Event()

    def long_commit() -> None:
        with store._write() as conn:
            conn.execute("INSERT INTO history (entity_id, value, attributes, available, last_changed, last_updated) "
                         "VALUES ('sensor.t', '2.0', '{}', 1, 2.0, 2.0)")
            writing.set()
            release.wait(30)

    writer = threading.Thread(target=long_commit)
    writer.start()
    try:
        assert writing.wait(10)
        answers: list = []
        reader = threading.Thread(target=lambda: answers.append(
            (store.check_token(token), [r.value for r in store.history("sensor.t")], store.list_tokens()[0]["name"])))
        reader.start()
        reader.join(10)
        assert answers == [("owner", [1.0], "owner")], "a read waited for the open write transaction"
    finally:
        release.set()
        writer.join()
    assert [r.value for r in store.history("sensor.t")] == [1.0, 2.0]
    assert store.check_token(token) == "owner" and store.list_tokens()[0]["last_used"] is not None


def test_the_file_shrinks_after_a_purge(store: Store) -> None:
    """Retention must give the space back: an SD card fills up otherwise, however old the rows."""

    def on_disk() -> int:
        return sum(p.stat().st_size for p in store.path.parent.glob("hub.db*"))

    for batch in range(20):
        store.write_states([state(f"sensor.e{i}", batch * 1000 + i, float(batch), note="n" * 100) for i in range(1000)])
    store.write_states([state("sensor.new", 1, 1e9)])
    assert store.reclaim() == 0  # nothing purged yet, nothing to give back
    full = on_disk()
    assert store.purge_history(older_than=1e8) == 20_000
    assert store.reclaim() > 0
    assert on_disk() < full / 4
    assert [r.value for r in store.history("sensor.new")] == [1]
    assert store.reclaim() == 0


# -- tokens ----------------------------------------------------------------------------------------


def test_only_the_hash_of_a_token_is_stored(data_dir: Path) -> None:
    with Store(data_dir) as s:
        token = s.create_token("cli")
        assert isinstance(token, str) and len(token) >= 40
        # While the hub runs the new row is in the WAL file; look at every file SQLite wrote.
        files = sorted(data_dir.iterdir())
        assert any(p.name.endswith("-wal") for p in files)
        for p in files:
            assert token.encode() not in p.read_bytes(), p.name
        conn = raw(s)
        try:
            rows = conn.execute("SELECT * FROM tokens").fetchall()
        finally:
            conn.close()
        assert len(rows) == 1
        assert hashlib.sha256(token.encode()).digest() in rows[0]
        assert not any(token in str(col) for col in rows[0])
    # After close the WAL has been checkpointed into the main file.
    assert token.encode() not in (data_dir / "hub.db").read_bytes()


def test_check_token(store: Store) -> None:
    token = store.create_token("kitchen-panel")
    other = store.create_token("phone")
    assert store.check_token(token) == "kitchen-panel"
    assert store.check_token(other) == "phone"
    assert store.check_token(token[:-1]) is None
    assert store.check_token(token + "x") is None
    assert store.check_token("") is None
    assert store.check_token("x" * 100_000) is None
    assert store.check_token(None) is None  # type: ignore[arg-type]

    assert store.revoke_token("kitchen-panel") is True
    assert store.revoke_token("kitchen-panel") is False
    assert store.check_token(token) is None
    assert store.check_token(other) == "phone"


def test_tokens_are_unique_and_random(store: Store) -> None:
    tokens = {store.create_token(f"t{i}") for i in range(20)}
    assert len(tokens) == 20


def test_duplicate_token_name(store: Store) -> None:
    first = store.create_token("cli")
    with pytest.raises(TokenError):
        store.create_token("cli")
    assert store.check_token(first) == "cli"
    assert [t["name"] for t in store.list_tokens()] == ["cli"]


@pytest.mark.parametrize(
    "name", ["", "a" * 65, "has space", "semi;colon", "slash/", "ünïcode", "trailing\n", "tab\t", None, 7]
)
def test_bad_token_names(store: Store, name) -> None:
    with pytest.raises(TokenError):
        store.create_token(name)
    assert store.list_tokens() == []


@pytest.mark.parametrize("name", ["a", "a" * 64, "ci_bot.v2@home-lab", "A-Z_0.9"])
def test_good_token_names(store: Store, name: str) -> None:
    assert store.check_token(store.create_token(name)) == name


def test_list_tokens_shows_no_secrets(store: Store) -> None:
    store._now = lambda: 1000.0
    token = store.create_token("cli")
    assert store.list_tokens() == [{"name": "cli", "created_at": 1000.0, "last_used": None}]
    assert token not in repr(store.list_tokens())


def test_last_used_is_written_at_most_once_a_minute(store: Store) -> None:
    now = [1000.0]
    store._now = lambda: now[0]
    token = store.create_token("cli")

    def last_used():
        return store.list_tokens()[0]["last_used"]

    store.check_token(token)
    assert last_used() == 1000.0
    now[0] = 1059.0
    store.check_token(token)
    assert last_used() == 1000.0
    now[0] = 1060.0
    store.check_token(token)
    assert last_used() == 1060.0
    store.check_token("wrong")
    assert last_used() == 1060.0


def test_second_instance_like_the_cli_shares_tokens(data_dir: Path) -> None:
    with Store(data_dir) as hub:
        with Store(data_dir) as cli:
            token = cli.create_token("from-cli")
        assert hub.check_token(token) == "from-cli"
        with Store(data_dir) as cli:
            assert cli.revoke_token("from-cli")
        assert hub.check_token(token) is None


def test_waits_for_another_writer_instead_of_failing(store: Store) -> None:
    """busy_timeout: the CLI holding the write lock briefly must not make the hub fail."""
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO outbox (kind, payload, created_at) VALUES ('x', '{}', 0)")
    release = threading.Timer(0.3, other.execute, args=("COMMIT",))
    release.start()
    try:
        started = time.monotonic()
        token = store.create_token("waited")
        assert time.monotonic() - started >= 0.2
    finally:
        release.join()
        other.close()
    assert store.check_token(token) == "waited"
    assert len(store.outbox_pending()) == 1


# -- command log -----------------------------------------------------------------------------------


def test_command_log_newest_first(store: Store) -> None:
    first = store.log_command(
        ts=10.0, entity_id="switch.a", command="turn_on", args={}, source="api:phone", ok=True
    )
    store.log_command(
        ts=12.0,
        entity_id="light.b",
        command="set_brightness",
        args={"brightness": 300},
        source="rule:evening",
        ok=False,
        error="brightness must be <= 255",
    )
    last = store.log_command(
        ts=12.0, entity_id="switch.a", command="turn_off", args={}, source="api:phone", ok=True,
        result={"took_ms": 40},
    )
    assert isinstance(first, int) and last > first

    log = store.command_log()
    assert [(e["entity_id"], e["command"]) for e in log] == [
        ("switch.a", "turn_off"),  # same ts as the light: insertion order breaks the tie
        ("light.b", "set_brightness"),
        ("switch.a", "turn_on"),
    ]
    assert log[1] == {
        "id": log[1]["id"],
        "ts": 12.0,
        "entity_id": "light.b",
        "command": "set_brightness",
        "args": {"brightness": 300},
        "source": "rule:evening",
        "ok": False,
        "error": "brightness must be <= 255",
        "result": None,
    }
    assert log[0]["result"] == {"took_ms": 40} and log[0]["ok"] is True
    assert [e["command"] for e in store.command_log("switch.a")] == ["turn_off", "turn_on"]
    assert [e["command"] for e in store.command_log(limit=1)] == ["turn_off"]
    assert store.command_log("switch.none") == []


# -- outbox ----------------------------------------------------------------------------------------


def test_outbox_survives_reopen(data_dir: Path) -> None:
    with Store(data_dir) as s:
        ids = [s.outbox_add("state", {"n": n}) for n in range(5)]
        s.outbox_mark_published(ids[:2], ts=50.0)
    with Store(data_dir) as s:
        pending = s.outbox_pending()
        assert [p["id"] for p in pending] == ids[2:]
        assert [p["payload"] for p in pending] == [{"n": 2}, {"n": 3}, {"n": 4}]
        assert {p["kind"] for p in pending} == {"state"}
        assert all(isinstance(p["created_at"], float) for p in pending)
        assert [p["id"] for p in s.outbox_pending(limit=2)] == ids[2:4]
        s.outbox_mark_published(ids[2:], ts=60.0)
        s.outbox_mark_published(ids[2:], ts=70.0)  # a retried publish is harmless
        s.outbox_mark_published([], ts=70.0)
        assert s.outbox_pending() == []
        conn = raw(s)
        try:
            published = conn.execute("SELECT published_at FROM outbox ORDER BY id").fetchall()
        finally:
            conn.close()
        assert [p for (p,) in published] == [50.0, 50.0, 60.0, 60.0, 60.0]
        assert s.outbox_add("state", {}) > ids[-1]


# -- threads ---------------------------------------------------------------------------------------


def test_concurrent_threads_share_one_store(store: Store) -> None:
    """The hub calls in from asyncio.to_thread workers; nothing may be lost or fail."""
    token = store.create_token("api")
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for batch in range(30):
                store.write_states([state(f"sensor.w{n}", batch, float(batch)) for _ in range(10)])
                assert store.check_token(token) == "api"
                store.log_command(ts=float(batch), entity_id=f"sensor.w{n}", command="c", args={},
                                  source="t", ok=True)
                store.history(f"sensor.w{n}", limit=5)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for n in range(6):
        assert len(store.history(f"sensor.w{n}")) == 300
        assert len(store.command_log(f"sensor.w{n}", limit=1000)) == 30
    assert {r.entity_id: r.value for r in store.load_last_states()} == {f"sensor.w{n}": 29 for n in range(6)}
