"""The WebSocket API at ``/api/ws``, in the shape Home Assistant's users know.

Each message is a JSON object with an ``id`` the client chooses and a ``type``; answers carry the same
id. Authentication: an ``Authorization: Bearer`` header on the upgrade, or (for browsers, which cannot
set headers) a first message ``{"type": "auth", "access_token": "..."}``.

Types: ``ping``; ``get_states``; ``subscribe_states`` (optional ``entity_ids``); ``subscribe_events``
(``event_type``, ``"*"`` for all); ``unsubscribe`` (``subscription``: the id of the subscribing
message); ``call`` (``entity_id``, ``command``, ``args``). Events arrive as
``{"id": <subscription>, "type": "event", "event": {...}}``.

Events are queued per connection; a client that reads too slowly to keep up is disconnected (close
code 1013) rather than allowed to hold up the hub. Revoking the session's token closes it (4001, see
hub/api/sessions.py). A message may be at most 1 MiB (close 1009, hub/api/limits.py), must be strict
JSON (no NaN or Infinity) nested at most 64 levels; a connection may have
:data:`MAX_PENDING` messages in progress and :data:`MAX_SUBSCRIPTIONS` subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from hub import __version__
from hub.api import jsonsafe
from hub.api.auth import token_from_header
from hub.api.routes import MAX_EVENT_TYPE_LENGTH
from hub.api.sessions import CLOSE_REVOKED
from hub.core.commands import CommandError
from hub.core.events import Event, StateChanged
from hub.core.state import iso

log = logging.getLogger("hub.api.ws")
router = APIRouter()

QUEUE_LIMIT = 10_000
AUTH_TIMEOUT = 10.0
#: Messages of one connection being handled at once (calls wait for their driver); more are refused.
MAX_PENDING = 32
#: Subscriptions one connection may hold; each entity of subscribe_states counts as one.
MAX_SUBSCRIPTIONS = 1000


def event_json(event: Event) -> dict[str, Any]:
    return {"event_type": event.event_type, "time": iso(event.time), "data": event.data()}


class Connection:
    def __init__(self, ws: WebSocket, hub, user: str) -> None:
        self.ws = ws
        self.hub = hub
        self.user = user
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_LIMIT)
        self.subscriptions: dict[Any, list] = {}
        self.sender: asyncio.Task | None = None
        #: (code, reason) the connection is to be closed with, once something decided it must end.
        self.close_with: tuple[int, str] | None = None

    def push(self, message: dict) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.end(1013, "client too slow; events dropped")

    def end(self, code: int, reason: str) -> None:
        """Stop sending at once (queued events included); the endpoint then closes with ``code``."""
        if self.close_with is None:
            self.close_with = (code, reason)
        if self.sender is not None:
            self.sender.cancel()

    async def send_loop(self) -> None:
        while True:
            message = await self.queue.get()
            await self.ws.send_text(jsonsafe.dumps(message))

    @property
    def subscription_count(self) -> int:
        return sum(len(unsubs) for unsubs in self.subscriptions.values())

    def reply(self, msg_id: Any, **fields: Any) -> None:
        self.push({"id": msg_id, "type": "result", **fields})

    def error(self, msg_id: Any, code: str, message: str, errors: list | None = None) -> None:
        err: dict[str, Any] = {"code": code, "message": message}
        if errors:
            err["errors"] = errors
        self.reply(msg_id, success=False, error=err)

    async def handle(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            self.error(None, "invalid_message", "a message must be a JSON object with 'id' and 'type'")
            return
        msg_id, kind = msg.get("id"), msg.get("type")
        handler = getattr(self, f"on_{kind}", None) if isinstance(kind, str) else None
        if handler is None:
            shown = repr(kind)[:100]  # the client's own text, echoed: keep the answer small
            self.error(msg_id, "unknown_type", f"unknown message type {shown}; known: {', '.join(TYPES)}")
            return
        try:
            await handler(msg_id, msg)
        except CommandError as exc:
            self.error(msg_id, exc.code, exc.message, exc.errors)
        except (KeyError, TypeError, ValueError) as exc:
            self.error(msg_id, "invalid_message", f"{kind}: {exc}")

    async def on_ping(self, msg_id, msg) -> None:
        self.push({"id": msg_id, "type": "pong"})

    async def on_get_states(self, msg_id, msg) -> None:
        self.reply(msg_id, success=True, result=[s.as_dict() for s in self.hub.states])

    def _subscribe(self, msg_id, event_type, entity_ids: list[str] | None) -> None:
        if msg_id in self.subscriptions:
            raise ValueError(f"id {msg_id!r} is already a subscription")
        wanted = len(entity_ids) if entity_ids else 1
        if self.subscription_count + wanted > MAX_SUBSCRIPTIONS:
            raise ValueError(f"a connection may hold {MAX_SUBSCRIPTIONS} subscriptions (one per entity); "
                             f"it holds {self.subscription_count}")

        def forward(event: Event) -> None:
            self.push({"id": msg_id, "type": "event", "event": event_json(event)})

        if entity_ids:
            unsubs = [self.hub.bus.subscribe(event_type, forward, entity_id=e) for e in entity_ids]
        else:
            unsubs = [self.hub.bus.subscribe(event_type, forward)]
        self.subscriptions[msg_id] = unsubs

    async def on_subscribe_states(self, msg_id, msg) -> None:
        entity_ids = msg.get("entity_ids")
        if entity_ids is not None and not (isinstance(entity_ids, list) and all(isinstance(e, str) for e in entity_ids)):
            raise ValueError("entity_ids must be a list of entity ids")
        if entity_ids:
            entity_ids = list(dict.fromkeys(entity_ids))  # a repeated id would deliver each event twice
        unknown = [e for e in entity_ids or [] if e not in self.hub.entities]
        if unknown:
            shown = ", ".join(repr(e[:100]) for e in unknown[:10])
            raise ValueError(f"unknown entity ids: {shown}{' ...' if len(unknown) > 10 else ''}")
        self._subscribe(msg_id, StateChanged, entity_ids)
        self.reply(msg_id, success=True, result=None)

    async def on_subscribe_events(self, msg_id, msg) -> None:
        event_type = msg.get("event_type", "*")
        if not isinstance(event_type, str) or not 0 < len(event_type) <= MAX_EVENT_TYPE_LENGTH:
            raise ValueError(f"event_type must be a string of 1 to {MAX_EVENT_TYPE_LENGTH} characters ('*' for all)")
        self._subscribe(msg_id, event_type, None)
        self.reply(msg_id, success=True, result=None)

    async def on_unsubscribe(self, msg_id, msg) -> None:
        unsubs = self.subscriptions.pop(msg.get("subscription"), None)
        if unsubs is None:
            raise ValueError(f"no subscription with id {msg.get('subscription')!r}")
        for unsubscribe in unsubs:
            unsubscribe()
        self.reply(msg_id, success=True, result=None)

    async def on_call(self, msg_id, msg) -> None:
        entity_id, command = msg.get("entity_id"), msg.get("command")
        if not isinstance(entity_id, str) or not isinstance(command, str):
            raise ValueError("'entity_id' and 'command' are required strings")
        result = await self.hub.commands.call(entity_id, command, msg.get("args"), source=f"ws:{self.user}")
        self.reply(msg_id, success=True, result=result)

    def close(self) -> None:
        for unsubs in self.subscriptions.values():
            for unsubscribe in unsubs:
                unsubscribe()
        self.subscriptions.clear()


TYPES = ("ping", "get_states", "subscribe_states", "subscribe_events", "unsubscribe", "call")


async def _authenticate(ws: WebSocket, hub) -> tuple[str, str] | None:
    """Returns (token name, token): the token, to check it again while the session lasts."""
    token = token_from_header(ws.headers.get("authorization"))
    if token is None:
        await ws.send_json({"type": "auth_required", "version": __version__})
        try:
            frame = await asyncio.wait_for(ws.receive(), AUTH_TIMEOUT)
            msg = jsonsafe.loads(frame.get("text") or frame.get("bytes") or b"")
        except (TimeoutError, ValueError):
            msg = None
        if isinstance(msg, dict) and msg.get("type") == "auth" and isinstance(msg.get("access_token"), str):
            token = msg["access_token"]
    name = hub.store.check_token(token) if token else None
    if name is None:
        await ws.send_json({"type": "auth_invalid", "message": "missing, invalid or revoked token"})
        await ws.close(code=CLOSE_REVOKED)
        return None
    await ws.send_json({"type": "auth_ok", "version": __version__})
    return name, token


@router.websocket("/api/ws")
async def websocket(ws: WebSocket) -> None:
    hub = ws.app.state.hub
    sessions = ws.app.state.sessions
    await ws.accept()
    try:
        auth = await _authenticate(ws, hub)
    except WebSocketDisconnect:
        return
    if auth is None:
        return
    user, token = auth
    conn = Connection(ws, hub, user)
    conn.sender = sender = asyncio.create_task(conn.send_loop())
    unregister = sessions.add(token, lambda: conn.end(CLOSE_REVOKED, "token revoked"))
    pending: set[asyncio.Task] = set()
    try:
        while not sender.done():
            receive = asyncio.create_task(ws.receive())
            done, _ = await asyncio.wait({receive, sender}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()
                break
            frame = receive.result()
            if frame["type"] == "websocket.disconnect":
                break
            if not sessions.valid(token):  # revoked since the last message: not one more call
                conn.end(CLOSE_REVOKED, "token revoked")
                break
            try:
                msg = jsonsafe.loads(frame.get("text") or frame.get("bytes") or b"")
            except ValueError as exc:
                conn.error(None, "invalid_json", f"not acceptable JSON: {exc}")
                continue
            if len(pending) >= MAX_PENDING:
                msg_id = msg.get("id") if isinstance(msg, dict) else None
                conn.error(msg_id, "too_many_requests",
                           f"{MAX_PENDING} messages of this connection are still being handled; wait for their results")
                continue
            # Commands may take seconds; run them beside the reader so pings and other calls go on.
            task = asyncio.create_task(conn.handle(msg))
            pending.add(task)
            task.add_done_callback(pending.discard)
    except WebSocketDisconnect:
        pass
    finally:
        unregister()
        conn.close()
        sender.cancel()
        if sender.done() and not sender.cancelled():
            sender.exception()  # a send to a client that went away; nothing to report
        for task in pending:
            task.cancel()
        if conn.close_with is not None:
            with contextlib.suppress(Exception):  # the client may be gone already
                await ws.close(*conn.close_with)
