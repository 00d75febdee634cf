"""Notice when something blocks the event loop, and name the plugin that did.

Everything in the hub shares one event loop: a plugin that calls ``time.sleep(5)`` or a blocking read
in a hook, sync or ``async``, freezes the API, the rules and every other driver, and nothing in the
loop can notice, since nothing in the loop runs. So the loop beats (a timer every ``beat`` seconds)
and a thread of its own watches the beat. When the beat has stopped for more than ``stall_after``
seconds, the thread samples the loop thread's stack (``sys._current_frames()``, as py-spy or
faulthandler do) and logs a warning naming the plugin whose code is on it; once the loop runs again,
``on_stall`` is called on the loop with the stall's length, so it can be shown by ``hub plugins``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("hub.watchdog")

STALL_AFTER = 1.0  # seconds without a beat that count as a stall
BEAT = 0.25  # 4 wake-ups a second on the loop and on the thread: +0.1 % of a core on an idle hub

#: Given the loop thread's innermost frame: (plugin name or None, "file.py:12 in function").
Locate = Callable[[FrameType | None], tuple[str | None, str]]
#: Called on the loop once it runs again: (seconds it was blocked, plugin or None, where).
OnStall = Callable[[float, str | None, str], None]


class LoopWatchdog:
    def __init__(self, locate: Locate, on_stall: OnStall, *, stall_after: float = STALL_AFTER, beat: float = BEAT) -> None:
        self.locate = locate
        self.on_stall = on_stall
        self.stall_after = stall_after
        self.beat = beat
        self._last_beat = time.monotonic()
        self._samples: list[tuple[str | None, str]] = []
        self._warned = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0

    def start(self) -> None:
        """Start watching the running loop; call it from the loop's thread."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._last_beat = time.monotonic()
        self._timer = self._loop.call_later(self.beat, self._heartbeat)
        self._thread = threading.Thread(target=self._watch, name="hub-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()

    # --- on the loop ------------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        now = time.monotonic()
        gap = now - self._last_beat - self.beat
        self._last_beat = now
        if gap > self.stall_after:
            with self._lock:
                samples, self._samples, self._warned = self._samples, [], False
            plugin, where = _culprit(samples)
            try:
                self.on_stall(gap, plugin, where)
            except Exception:  # noqa: BLE001 - reporting must never stop the beat
                log.exception("reporting a stall failed")
        if not self._stop.is_set():
            self._timer = self._loop.call_later(self.beat, self._heartbeat)

    # --- on the watchdog's thread -------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(self.beat):
            if self._loop is None or self._loop.is_closed():
                return  # a hub whose start failed is never stopped: its loop's end ends the watch
            if not self._loop.is_running():
                continue  # not blocked, just not running (between run_until_complete calls)
            blocked = time.monotonic() - self._last_beat - self.beat
            if blocked <= self.stall_after:
                continue
            frame = sys._current_frames().get(self._loop_thread)
            try:
                plugin, where = self.locate(frame)
            except Exception:  # noqa: BLE001 - a frame that vanished under us: try at the next beat
                continue
            finally:
                del frame
            with self._lock:
                self._samples.append((plugin, where))
                first = not self._warned
                self._warned = True
            if first:
                who = f"plugin {plugin}" if plugin else "code that is not a plugin's"
                log.warning("the event loop has been blocked for %.1f s by %s, in %s: the API, rules and "
                            "other plugins wait until it returns", blocked, who, where)


def _culprit(samples: list[tuple[str | None, str]]) -> tuple[str | None, str]:
    """The plugin seen in most samples, where it was first seen; a long stall may pass through
    several functions, and a sample may catch the hub's own code between two plugin calls."""
    named = Counter(plugin for plugin, _ in samples if plugin)
    if named:
        plugin = named.most_common(1)[0][0]
        return plugin, next(where for p, where in samples if p == plugin)
    return None, samples[0][1] if samples else "an unknown place (no sample was taken)"
