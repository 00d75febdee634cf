"""Open WebSocket sessions by token, so that revoking a token ends the sessions that used it.

An HTTP request checks its token each time; a WebSocket checks it once, when it opens, and could then
go on receiving events and calling commands for days. ``hub token revoke`` is usually run by another
process (the CLI writes the SQLite store directly, with or without a hub running), so the hub cannot
be told; it looks instead. The token of every message a session sends is checked again before the
message is handled, and one task checks each distinct token with open sessions every
:data:`CHECK_INTERVAL` seconds, so an idle subscriber is cut off within that time too. A check is one
read of the small tokens table per distinct token, not per session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("hub.api.sessions")

CHECK_INTERVAL = 0.5

#: WebSocket close code for a token that is missing, invalid or revoked (4000-4999: application).
CLOSE_REVOKED = 4001


class Sessions:
    def __init__(self, store, interval: float = CHECK_INTERVAL) -> None:
        self._store = store
        self._interval = interval
        self._ends: dict[str, dict[int, Callable[[], None]]] = {}
        self._task: asyncio.Task | None = None

    def valid(self, token: str) -> bool:
        return self._store.check_token(token) is not None

    def add(self, token: str, end: Callable[[], None]) -> Callable[[], None]:
        """Register a session; ``end`` is called (once) if its token is revoked. Returns the
        function that unregisters it."""
        key = id(end)
        self._ends.setdefault(token, {})[key] = end
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="ws-token-watch")

        def remove() -> None:
            ends = self._ends.get(token)
            if ends is not None:
                ends.pop(key, None)
                if not ends:
                    del self._ends[token]

        return remove

    def check_now(self) -> None:
        for token in list(self._ends):
            try:
                revoked = not self.valid(token)
            except Exception:  # a locked or failing store is no reason to cut sessions off
                log.warning("could not check a session's token", exc_info=True)
                continue
            if revoked:
                ends = self._ends.pop(token, {})
                log.info("token revoked: closing %d WebSocket session(s)", len(ends))
                for end in ends.values():
                    end()

    async def _watch(self) -> None:
        while self._ends:
            await asyncio.sleep(self._interval)
            self.check_now()
