"""The in-process event bus.

Dispatch is synchronous and in order: a state write reaches every subscriber before ``publish``
returns, which keeps the hot path free of task scheduling (the state-write benchmark runs through
here). A subscriber that needs to do I/O is an ``async def``; the bus starts it as a task. One
subscriber's exception is logged and never reaches the publisher or the other subscribers.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from hub.core.events import Event
from hub.core.supervisor import is_hub_cancellation

log = logging.getLogger("hub.bus")

Callback = Callable[[Any], Any]
MATCH_ALL = "*"


class EventBus:
    def __init__(self) -> None:
        self._by_type: dict[str, list[Callback]] = {}
        self._by_entity: dict[tuple[str, str], list[Callback]] = {}
        self._tasks: set[asyncio.Task] = set()
        #: Told of every subscriber's failure after it is logged: the hub records it against the
        #: plugin whose code raised, so ``hub plugins`` shows it.
        self.on_error: Callable[[BaseException], None] | None = None

    @staticmethod
    def _name(event_type: type[Event] | str) -> str:
        return event_type if isinstance(event_type, str) else event_type.event_type

    def subscribe(
        self, event_type: type[Event] | str, callback: Callback, *, entity_id: str | None = None
    ) -> Callable[[], None]:
        """Subscribe to one event type (a class or its name; ``"*"`` for all), optionally only for
        one entity. Returns a function that unsubscribes."""
        name = self._name(event_type)
        handler = self._wrap(callback)
        if entity_id is None:
            bucket = self._by_type.setdefault(name, [])
        else:
            bucket = self._by_entity.setdefault((name, entity_id), [])
        # Copy on write: publish iterates the list it found, so (un)subscribing inside a callback
        # never skips or repeats a delivery.
        bucket = [*bucket, handler]
        if entity_id is None:
            self._by_type[name] = bucket
        else:
            self._by_entity[(name, entity_id)] = bucket

        def unsubscribe() -> None:
            table: dict = self._by_type if entity_id is None else self._by_entity
            key = name if entity_id is None else (name, entity_id)
            current = table.get(key, [])
            remaining = [h for h in current if h is not handler]
            if remaining:
                table[key] = remaining
            else:
                table.pop(key, None)

        return unsubscribe

    def _wrap(self, callback: Callback) -> Callback:
        if inspect.iscoroutinefunction(callback):

            def start(event: Event) -> None:
                task = asyncio.get_running_loop().create_task(self._contained(callback(event)))
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

            start.__wrapped__ = callback  # type: ignore[attr-defined]
            return start
        return callback

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)

    async def _contained(self, subscriber) -> None:
        """asyncio re-raises a SystemExit or KeyboardInterrupt that reaches a task's top out of the
        event loop, ending the hub: an async subscriber's are logged like any other failure."""
        try:
            await subscriber
        except BaseException as exc:  # noqa: BLE001
            if is_hub_cancellation(exc):
                raise
            self._failed(exc, "event subscriber failed")

    def _failed(self, exc: BaseException, message: str, *args: Any) -> None:
        log.error(message, *args, exc_info=exc)
        if self.on_error is not None:
            try:
                self.on_error(exc)
            except Exception:  # noqa: BLE001 - reporting must not fail the publisher
                log.exception("reporting a subscriber's failure failed")

    def publish(self, event: Event) -> None:
        name = event.event_type
        handlers = self._by_type.get(name)
        if handlers:
            self._deliver(handlers, event)
        entity_id = event.entity_id
        if entity_id is not None and self._by_entity:
            handlers = self._by_entity.get((name, entity_id))
            if handlers:
                self._deliver(handlers, event)
        handlers = self._by_type.get(MATCH_ALL)
        if handlers:
            self._deliver(handlers, event)

    def _deliver(self, handlers: list[Callback], event: Event) -> None:
        for handler in handlers:
            try:
                handler(event)
            except BaseException as exc:  # noqa: BLE001 - sys.exit() in a subscriber must not reach the publisher
                if is_hub_cancellation(exc):
                    raise
                self._failed(exc, "event subscriber %r failed on %s", handler, event.event_type)

    async def drain(self) -> None:
        """Wait for the async subscribers started so far: tests and shutdown use it."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
