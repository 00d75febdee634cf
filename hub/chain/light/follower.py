"""Keeping a :class:`LightClient` up to date from any source of headers.

The source is a callable ``fetch_headers(from_height, count) -> list[bytes | hex str]`` (plain or
async), the head chain's headers from ``from_height`` on (the node RPC's ``GET /headers?from=&count=``
fits; so does a peer). Schedule proofs come from an optional ``fetch_changes(height) -> bytes``
(the encoded change list of a round's last block, see :func:`hub.chain.light.serve.changes_proof`).
No transport here: the caller wraps HTTP, p2p or an in-process node.

When the source is on a branch the client has not seen, the first header it sends names an unknown
parent; the follower then steps back (1, 2, 4, ... headers, never below the last irreversible
header) until the branch connects, and lets the client's fork choice decide.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from hub.chain.light.client import LightClient, LightClientError, Reason, _decode_header

log = logging.getLogger("hub.chain.light")

FetchHeaders = Callable[[int, int], Any]
FetchChanges = Callable[[int], Any]


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def sync_once(client: LightClient, fetch_headers: FetchHeaders, *, batch: int = 100,
                    fetch_changes: FetchChanges | None = None) -> int:
    """Pull headers until the source has no more; returns how many new headers were accepted.
    Raises :class:`LightClientError` when the source sends a bad header or a branch that cannot
    connect above the last irreversible header; whatever was accepted before stays."""
    c = client.constants
    added = 0
    start = client.head.height + 1
    back = 0
    while True:
        raw = await _call(fetch_headers, start, batch)
        if not raw:
            return added
        headers, bad = [], None
        for item in raw:
            try:
                headers.append(_decode_header(item))
            except LightClientError as exc:  # keep what came before it, then report it
                bad = exc
                break
        changes: dict[int | bytes, bytes] = {}
        if fetch_changes is not None:
            for h in headers:
                if h.height and h.height % c.PRODUCERS == 0 and client.get(h.hash) is None:
                    changes[h.hash] = await _call(fetch_changes, h.height)
        try:
            added += client.add_headers(headers, changes)
        except LightClientError as exc:
            if exc.reason is Reason.UNKNOWN_PARENT and exc.accepted == 0 and start > client.final.height + 1:
                back = max(1, back * 2)
                start = max(client.final.height + 1, start - back)
                log.info("light client: the source is on another branch, stepping back to height %d", start)
                continue
            raise
        if bad is not None:
            raise bad
        if len(raw) < batch or not headers or headers[-1].height < start:
            return added  # the source has no more (or does not answer what was asked)
        start = headers[-1].height + 1


async def follow(client: LightClient, fetch_headers: FetchHeaders, *, batch: int = 100, interval: float = 1.0,
                 fetch_changes: FetchChanges | None = None, stop: asyncio.Event | None = None,
                 on_error: Callable[[BaseException], Any] | None = None) -> None:
    """Sync, wait ``interval`` seconds, repeat until ``stop`` is set (or the task is cancelled).
    A bad header or a failing source is logged (and given to ``on_error``) and retried later; it
    never stops the loop."""
    while stop is None or not stop.is_set():
        try:
            await sync_once(client, fetch_headers, batch=batch, fetch_changes=fetch_changes)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a source's failure must not end the follower
            log.warning("light client: %s", exc)
            if on_error is not None:
                on_error(exc)
        if stop is None:
            await asyncio.sleep(interval)
        else:
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except asyncio.TimeoutError:
                pass
