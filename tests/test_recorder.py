"""The recorder: what reaches the store, when, and what is purged."""

import asyncio

from hub.core.bus import EventBus
from hub.core.commands import CommandRegistry
from hub.core.registry import EntityRegistry
from hub.core.state import StateMachine
from hub.store import StateRow, Store
from hub.store.recorder import Recorder


class Clock:
    t = 1_000_000.0

    def __call__(self):
        return self.t


async def test_batches_commit_together_and_stop_flushes(tmp_path):
    store, bus, clock = Store(tmp_path), EventBus(), Clock()
    states = StateMachine(bus, clock)
    recorder = Recorder(store, bus, commit_interval=3600, history_days=10, now=clock)
    recorder.start()
    for i in range(5):
        clock.t += 1
        states.set("sensor.t", float(i))
    await asyncio.sleep(0.05)
    assert store.history("sensor.t") == []  # not committed before the interval
    await recorder.stop()
    assert [r.value for r in store.history("sensor.t")] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert store.load_last_states()[0].value == 4.0
    store.close()


async def test_history_older_than_retention_is_purged_at_start(tmp_path):
    store, bus, clock = Store(tmp_path), EventBus(), Clock()
    day = 86400
    store.write_states([
        StateRow("sensor.t", 1.0, {}, True, clock.t - 3 * day, clock.t - 3 * day),
        StateRow("sensor.t", 2.0, {}, True, clock.t - 1 * day, clock.t - 1 * day),
    ])
    recorder = Recorder(store, bus, commit_interval=0.01, history_days=2, now=clock)
    recorder.start()
    for _ in range(100):
        if len(store.history("sensor.t")) == 1:
            break
        await asyncio.sleep(0.01)
    await recorder.stop()
    assert [r.value for r in store.history("sensor.t")] == [2.0]
    store.close()


async def test_commands_are_logged_with_outcome(tmp_path):
    from hub.core.commands import UnknownEntity

    store, bus, clock = Store(tmp_path), EventBus(), Clock()
    entities = EntityRegistry()
    commands = CommandRegistry(entities, StateMachine(bus, clock), bus, clock)
    recorder = Recorder(store, bus, commit_interval=3600, history_days=10, now=clock)
    try:
        await commands.call("switch.ghost", "turn_on", source="api:owner")
    except UnknownEntity:
        pass
    await recorder.stop()
    [row] = store.command_log()
    assert (row["entity_id"], row["command"], row["source"], row["ok"]) == ("switch.ghost", "turn_on", "api:owner", False)
    assert "unknown entity" in row["error"]
    store.close()


async def test_a_database_that_stays_locked_does_not_take_the_hubs_memory(tmp_path, monkeypatch):
    import sqlite3

    from hub.store import recorder as recorder_module

    monkeypatch.setattr(recorder_module, "MAX_BACKLOG", 50)
    store, bus, clock = Store(tmp_path), EventBus(), Clock()
    states = StateMachine(bus, clock)
    recorder = Recorder(store, bus, commit_interval=3600, history_days=10, now=clock)
    # Another process (a CLI left open) holding the write lock, as a real second connection.
    other = sqlite3.connect(store.path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    store._conn.execute("PRAGMA busy_timeout = 0")
    for i in range(200):
        clock.t += 1
        states.set("sensor.t", float(i))
    await recorder.flush()
    other.execute("ROLLBACK")
    other.close()
    await recorder.stop()
    # The newest 50 survive; the 150 oldest were dropped rather than kept in memory forever.
    assert [r.value for r in store.history("sensor.t", limit=1000)] == [float(i) for i in range(150, 200)]
    store.close()


def test_the_command_log_keeps_at_most_the_newest_rows(tmp_path):
    with Store(tmp_path) as store:
        for i in range(30):
            store.log_command(ts=1_000.0 + i, entity_id="switch.s", command="turn_on", args={"i": i}, source="api", ok=True)
        assert store.purge_command_log(older_than=0.0, keep=10) == 20
        assert [r["args"]["i"] for r in store.command_log(limit=100)] == list(range(29, 19, -1))
        assert store.purge_command_log(older_than=1_025.0, keep=10) == 5
        assert store.purge_command_log(older_than=0.0, keep=10) == 0


async def test_commands_are_committed_soon_not_at_the_states_interval(tmp_path):
    """A command is evidence: a kill -9 must not take the last five seconds of them with it."""
    from hub.core.commands import UnknownEntity

    store, bus, clock = Store(tmp_path), EventBus(), Clock()
    commands = CommandRegistry(EntityRegistry(), StateMachine(bus, clock), bus, clock)
    recorder = Recorder(store, bus, commit_interval=3600, history_days=10, now=clock)
    recorder.start()
    for _ in range(3):
        try:
            await commands.call("switch.ghost", "turn_on", source="api:owner")
        except UnknownEntity:
            pass
    for _ in range(500):
        if len(store.command_log()) == 3:
            break
        await asyncio.sleep(0.01)
    assert len(store.command_log()) == 3  # committed while the states' hour-long interval runs
    await recorder.stop()
    store.close()
