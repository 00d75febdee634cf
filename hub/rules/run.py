"""One run of a rule's actions: its variables, its trace, and where it is paused."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hub.rules.actions import ActionFailed, Pos, StopRun, run_sequence

if TYPE_CHECKING:
    from hub.rules.engine import LoadedRule, RuleEngine
    from hub.rules.trace import Trace


class Run:
    def __init__(self, engine: "RuleEngine", loaded: "LoadedRule", env: dict, trace: "Trace",
                 resume_path: list | None = None, resume_due: float | None = None) -> None:
        self.engine = engine
        self.loaded = loaded
        self.rule = loaded.rule
        self.env = env
        self.trace = trace
        self.scheduler = engine.scheduler
        self.resume_path = resume_path
        self.resume_due = resume_due
        self.iteration: dict[Pos, int] = {}
        self.unsaved = 0  # > 0 inside a ``parallel``: its pauses are not saved for a restart
        self.task: asyncio.Task | None = None
        self.key = f"run|{self.rule.id}|{trace.run_id}"
        self.response: dict | None = None  # what a 'stop' with response_variable returned

    def now(self) -> float:
        return self.engine.hub.now()

    async def call(self, entity_id: str, command: str, args: dict) -> Any:
        return await self.engine.hub.commands.call(entity_id, command, args, source=f"rule:{self.rule.id}")

    def _concrete(self, pos: Pos) -> list:
        """The resume path of a step: its position with the current iteration of every enclosing
        ``repeat`` filled in."""
        path: list = []
        for k, part in enumerate(pos):
            path.append(part)
            if part == "repeat":
                path.append(self.iteration[pos[:k]])
        return path

    def pause(self, pos: Pos, due: float) -> None:
        if self.unsaved:
            self.engine.drop_paused(self)  # a place saved before the parallel step is no longer true
            return
        self.engine.save_paused(self, self._concrete(pos), due)

    def unpause(self) -> None:
        self.engine.drop_paused(self)

    async def execute(self) -> None:
        trace = self.trace
        trace.outcome = "running"
        try:
            await run_sequence(self.rule.actions, self, self.resume_path)
            trace.finish("finished", self.now())
        except StopRun as stop:
            self.response = stop.response
            trace.finish("error" if stop.error else "stopped", self.now(), stop.reason)
        except ActionFailed as exc:
            trace.finish("error", self.now(), str(exc))
            self.engine.log.warning("rule %s: %s", self.rule.id, exc)
        except asyncio.CancelledError:
            trace.finish("cancelled", self.now())
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in one run must not take the engine down
            trace.finish("error", self.now(), f"{type(exc).__name__}: {exc}")
            self.engine.log.exception("rule %s failed", self.rule.id)
        finally:
            self.engine.run_done(self)
