"""The hub's one connection to the broker, kept up whatever the broker does.

Everything else in the plugin talks to the broker through :class:`Link` and never to aiomqtt: it
publishes with :meth:`Link.publish` (which never blocks and never fails: while the broker is away
messages wait in a bounded queue, the oldest dropped first and counted) and subscribes with
:meth:`Link.subscribe` (kept across reconnections). aiomqtt's client is not re-entrant and is
rebuilt on every connection, so it stays inside this module.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from hub_mqtt.config import MqttConfig

log = logging.getLogger("hub.plugins.mqtt")

#: A message larger than this from the broker is dropped with a log line: a device's state or a
#: discovery config is a few kB; anything far beyond is a mistake or an attack on the hub's memory.
MAX_INCOMING = 256 * 1024


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 0
    #: MQTT 5 request/response: where the sender wants its answer, and what to echo back.
    response_topic: str | None = None
    correlation_data: bytes | None = None

    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")


@dataclass(slots=True)
class Outgoing:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: Any = None


Callback = Callable[[Incoming], Any]


@dataclass
class LinkStats:
    sent: int = 0
    received: int = 0
    dropped: int = 0  # outgoing messages dropped from a full queue while the broker was away
    oversized: int = 0  # incoming messages refused for their size
    connections: int = 0
    last_error: str | None = None
    queued: Callable[[], int] = field(default=lambda: 0, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "received": self.received, "dropped": self.dropped,
                "oversized": self.oversized, "connections": self.connections,
                "queued": self.queued(), "last_error": self.last_error}


def _encode(payload: Any) -> bytes:
    if payload is None:
        return b""
    if isinstance(payload, bytes):
        return payload
    return str(payload).encode()


class Link:
    def __init__(self, config: MqttConfig) -> None:
        self.config = config
        self.status_topic = f"{config.prefix}/status"
        self.connected = False
        self.stats = LinkStats()
        self._queue: deque[Outgoing] = deque()
        self.stats.queued = lambda: len(self._queue)
        self._wake = asyncio.Event()
        self._subs: dict[str, list[tuple[Callback, int]]] = {}
        self._on_connect: list[Callable[[], Any]] = []
        self._client: aiomqtt.Client | None = None
        self._tasks: set[asyncio.Task] = set()

    # --- what the rest of the plugin uses --------------------------------------------------------
    def publish(self, topic: str, payload: Any = b"", *, qos: int = 0, retain: bool = False,
                properties: Any = None) -> None:
        """Queue a message; the sender sends it as soon as the broker is there. Never blocks."""
        if len(self._queue) >= self.config.queue_size:
            self._queue.popleft()
            self.stats.dropped += 1
        self._queue.append(Outgoing(topic, _encode(payload), qos, retain, properties))
        self._wake.set()

    def subscribe(self, topic_filter: str, callback: Callback, *, qos: int = 1) -> Callable[[], None]:
        """Call ``callback(Incoming)`` (sync, or async: started as a task) for each message matching
        ``topic_filter``, from now on and after every reconnection. Returns an unsubscribe."""
        entries = self._subs.setdefault(topic_filter, [])
        entry = (callback, qos)
        entries.append(entry)
        if len(entries) == 1 and self._client is not None and self.connected:
            self._spawn(self._client.subscribe(topic_filter, qos))

        def unsubscribe() -> None:
            current = self._subs.get(topic_filter, [])
            if entry in current:
                current.remove(entry)
            if not current:
                self._subs.pop(topic_filter, None)
                if self._client is not None and self.connected:
                    self._spawn(self._client.unsubscribe(topic_filter))

        return unsubscribe

    def on_connect(self, callback: Callable[[], Any]) -> None:
        """Called after each (re)connection, once subscriptions are back: republish retained state."""
        self._on_connect.append(callback)

    # --- the connection --------------------------------------------------------------------------
    def _client_for(self) -> aiomqtt.Client:
        cfg = self.config
        tls = None
        if cfg.tls is not None:
            tls = aiomqtt.TLSParameters(
                ca_certs=str(cfg.tls.ca) if cfg.tls.ca else None,
                certfile=str(cfg.tls.certificate) if cfg.tls.certificate else None,
                keyfile=str(cfg.tls.key) if cfg.tls.key else None,
            )
        return aiomqtt.Client(
            cfg.host, cfg.broker_port,
            identifier=cfg.client_identifier,
            username=cfg.username,
            password=cfg.password.get_secret_value() if cfg.password is not None else None,
            keepalive=cfg.keepalive,
            protocol=aiomqtt.ProtocolVersion.V5 if cfg.protocol != "3.1.1" else aiomqtt.ProtocolVersion.V311,
            will=aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True),
            tls_params=tls,
            tls_insecure=cfg.tls.insecure if cfg.tls is not None else None,
            timeout=10,
        )

    async def run(self) -> None:
        """Connect, and connect again whenever the connection is lost, with a back-off."""
        delay = 1.0
        while True:
            try:
                async with self._client_for() as client:
                    self._client = client
                    self.connected = True
                    self.stats.connections += 1
                    self.stats.last_error = None
                    delay = 1.0
                    log.info("mqtt: connected to %s:%s as %s", self.config.host, self.config.broker_port,
                             self.config.client_identifier)
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                self.stats.last_error = str(exc)
                log.warning("mqtt: broker %s:%s: %s; retrying in %g s", self.config.host,
                            self.config.broker_port, exc, delay)
            finally:
                self.connected = False
                self._client = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_max)

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.publish(self.status_topic, b"online", qos=1, retain=True)
        for topic_filter, entries in list(self._subs.items()):
            await client.subscribe(topic_filter, max(q for _, q in entries))
        for callback in list(self._on_connect):
            self._call(callback)
        sender = asyncio.get_running_loop().create_task(self._send(client))
        try:
            async for message in client.messages:
                self._dispatch(message)
        finally:
            sender.cancel()

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            out = self._queue.popleft()
            try:
                await client.publish(out.topic, out.payload, qos=out.qos, retain=out.retain,
                                     properties=out.properties)
            except aiomqtt.MqttError:
                self._queue.appendleft(out)  # not acknowledged: it goes again after the reconnection
                raise
            self.stats.sent += 1

    def _dispatch(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else _encode(message.payload)
        topic = message.topic.value
        if len(payload) > MAX_INCOMING:
            self.stats.oversized += 1
            log.warning("mqtt: %s: a message of %d bytes dropped (the limit is %d)", topic, len(payload), MAX_INCOMING)
            return
        self.stats.received += 1
        props = message.properties
        incoming = Incoming(topic, payload, bool(message.retain), message.qos,
                            getattr(props, "ResponseTopic", None) if props is not None else None,
                            getattr(props, "CorrelationData", None) if props is not None else None)
        for topic_filter, entries in list(self._subs.items()):
            if message.topic.matches(topic_filter):
                for callback, _ in list(entries):
                    self._call(callback, incoming)

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        topic = args[0].topic if args else "(connect)"
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                self._spawn(result, topic)
        except Exception:  # noqa: BLE001 - one bad message or handler must not end the connection
            log.exception("mqtt: handling %s failed", topic)

    def _spawn(self, awaitable: Any, topic: str = "") -> None:
        async def contained() -> None:
            try:
                await awaitable
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("mqtt: handling %s failed", topic or "a subscription")

        task = asyncio.get_running_loop().create_task(contained())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
