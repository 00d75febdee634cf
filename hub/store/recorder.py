"""The recorder: copies state changes and commands from the bus into the store.

State changes are batched and committed every ``commit_interval`` (5 s by default, as Home
Assistant's recorder) in one transaction on a worker thread. Every commit writes each page it touches
whole, however little changed on it, so the interval sets the SD card's wear more than the number of
changes does (bench_disk_writes.py, docs/benchmarks.md). What was committed survives a ``kill -9``;
what was still in the batch is at most one interval of history. The API flushes the batch before it
answers a history query, so readers never see the delay.

Commands are few and each is evidence (the anchored command log, hub/identity/anchor.py): they are
committed :data:`COMMAND_DELAY` after the first of them arrives, in one transaction for all that
came meanwhile, not at the states' cadence. A ``kill -9`` then loses at most that fraction of a
second of commands, at the cost of one small commit per burst of commands.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from hub.core.events import CommandCalled, StateChanged
from hub.core.supervisor import supervise

if TYPE_CHECKING:
    from hub.core.bus import EventBus
    from hub.store import Store

log = logging.getLogger("hub.recorder")

PURGE_EVERY = 3600.0
#: Seconds between a command's arrival and the commit of its row (with every command that came meanwhile).
COMMAND_DELAY = 0.2
#: Rows kept in memory, per kind, while commits fail.
MAX_BACKLOG = 100_000


class Recorder:
    def __init__(self, store: "Store", bus: "EventBus", *, commit_interval: float, history_days: float, now) -> None:
        self._store = store
        self._now = now
        self.commit_interval = commit_interval
        self.history_days = history_days
        self._states: list = []
        self._commands: list[CommandCalled] = []
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._command_task: asyncio.Task | None = None
        self._commands_waiting = asyncio.Event()
        self.crashes = 0
        self._unsubscribe = [
            bus.subscribe(StateChanged, self._on_state),
            bus.subscribe(CommandCalled, self._on_command),
        ]

    @property
    def backlog(self) -> int:
        """Rows waiting for the next commit (GET /api/metrics): one that grows says the disk is slow."""
        return len(self._states) + len(self._commands)

    def _on_state(self, event: StateChanged) -> None:
        # The state itself is queued: it is immutable (a change makes a new State), has the fields
        # write_states reads, and its attributes are a read-only view shared from one state to the
        # next. Building a StateRow per change cost the loop thread ~0.17 us a write (plus its GC churn).
        self._states.append(event.new_state)

    def _on_command(self, event: CommandCalled) -> None:
        self._commands.append(event)
        self._commands_waiting.set()

    def start(self) -> None:
        # Supervised: a recorder task that died on a bug would stop history without a word (its
        # exception surfaced only at stop, failing the hub's shutdown); now it is logged and restarted.
        self._task = asyncio.get_running_loop().create_task(
            supervise(self._loop, on_crash=self._crashed, on_start=lambda attempt: None), name="recorder"
        )
        self._command_task = asyncio.get_running_loop().create_task(
            supervise(self._command_loop, on_crash=self._crashed, on_start=lambda attempt: None), name="recorder-commands"
        )

    async def _command_loop(self) -> None:
        while True:
            await self._commands_waiting.wait()
            await asyncio.sleep(COMMAND_DELAY)
            self._commands_waiting.clear()
            async with self._lock:
                commands, self._commands = self._commands, []
                if commands:
                    await self._commit(self._write_commands, commands, self._commands, "command log")

    def _crashed(self, exc: BaseException, delay: float | None) -> None:
        self.crashes += 1
        log.error("recorder crashed; state history is not being written%s",
                  f"; restart in {delay:g} s" if delay is not None else "", exc_info=exc)

    async def _loop(self) -> None:
        since_purge = PURGE_EVERY  # purge once at start-up
        while True:
            if since_purge >= PURGE_EVERY:
                since_purge = 0.0
                cutoff = self._now() - self.history_days * 86400
                try:
                    removed = await asyncio.to_thread(self._store.purge_history, cutoff)
                    removed += await asyncio.to_thread(self._store.purge_command_log, cutoff)
                    if removed:
                        freed = await asyncio.to_thread(self._store.reclaim)
                        log.info("purged %d history and command-log rows (older than %g days, or beyond the "
                                 "command log's cap); %d pages freed", removed, self.history_days, freed)
                except Exception:
                    log.exception("history purge failed")
            await asyncio.sleep(self.commit_interval)
            since_purge += self.commit_interval
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            states, self._states = self._states, []
            commands, self._commands = self._commands, []
            if states:
                await self._commit(self._store.write_states, states, self._states, "states")
            if commands:
                await self._commit(self._write_commands, commands, self._commands, "command log")

    async def _commit(self, write, batch: list, queue: list, what: str) -> None:
        """A batch that fails for a passing reason (the CLI holding the lock) goes back to the front
        of the queue; one that can never be written (a value JSON cannot encode) is dropped with an
        error, so it does not block every later batch."""
        try:
            await asyncio.to_thread(write, batch)
        except (TypeError, ValueError):
            log.exception("recorder dropped %d %s rows that cannot be stored", len(batch), what)
        except Exception:
            log.exception("recorder commit of %d %s rows failed; retrying next interval", len(batch), what)
            queue[:0] = batch
            if len(queue) > MAX_BACKLOG:
                # A database that stays unwritable (disk full, a CLI holding the lock for hours) must
                # not take the hub's memory with it: the oldest rows go first.
                dropped = len(queue) - MAX_BACKLOG
                del queue[:dropped]
                log.error("recorder dropped the %d oldest %s rows: %d are waiting for the database", dropped, what, MAX_BACKLOG)

    def _write_commands(self, commands: list[CommandCalled]) -> None:
        self._store.log_commands([
            {"ts": c.time, "entity_id": c.entity_id, "command": c.command, "args": c.args, "source": c.source,
             "ok": c.ok, "error": c.error, "result": getattr(c, "result", None)}
            for c in commands
        ])

    async def stop(self) -> None:
        for task in (self._task, self._command_task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        await self.flush()
