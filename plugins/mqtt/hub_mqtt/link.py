"""The hub's one connection to the broker, kept up whatever the broker does.

Everything else in the plugin talks to the broker through :class:`Link` and never to aiomqtt: it
publishes with :meth:`Link.publish` (which never blocks and never fails: while the broker is away
messages wait in a bounded queue, the oldest dropped first and counted) and subscribes with
:meth:`Link.subscribe` (kept across reconnections). aiomqtt's client is not re-entrant and is
rebuilt on every connection, so it stays inside this module.

Delivery: a QoS 1 message is forgotten only once the broker acknowledged it; one still unacknowledged
when the connection drops goes again after the reconnection (at least once). QoS 0 messages in
flight at that moment may be lost (the states part republishes every state on each connection).
Up to :data:`WINDOW` messages are in flight at once, as awaiting each acknowledgement before the
next message would cap the link at one message per round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
import ssl
import time
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
#: Messages published and not yet confirmed, at most (paho's ``max_inflight_messages`` for QoS 1).
WINDOW = 512
MAX_QUEUED_INCOMING = 10_000
#: Connection refusals that mean "this broker does not speak MQTT 5" (3.1.1's code 1, MQTT 5's 132).
_UNSUPPORTED_PROTOCOL = {1, 132}
_BAD_CREDENTIALS = {4, 134}
_NOT_AUTHORISED = {5, 135}


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
    resent: int = 0  # QoS 1 messages sent again after a reconnection, never acknowledged before it
    replaced: int = 0  # retained messages superseded in the queue by a newer one for the same topic
    connections: int = 0
    last_error: str | None = None
    queued: Callable[[], int] = field(default=lambda: 0, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "received": self.received, "dropped": self.dropped,
                "oversized": self.oversized, "resent": self.resent, "replaced": self.replaced, "connections": self.connections,
                "queued": self.queued(), "last_error": self.last_error}


def _encode(payload: Any) -> bytes:
    if payload is None:
        return b""
    if isinstance(payload, bytes):
        return payload
    return str(payload).encode()


def _code(exc: BaseException) -> int | None:
    rc = getattr(exc, "rc", None)
    return getattr(rc, "value", rc) if rc is not None else None


def describe(exc: BaseException, *, tls: bool = False) -> str:
    """What went wrong, in the words a user acts on (the log, ``hub mqtt status``, ``hub plugins``)."""
    code = _code(exc)
    text = str(exc)
    if code in _BAD_CREDENTIALS or code in _NOT_AUTHORISED:
        return f"not authorised: the broker refused the username/password ({text})"
    if code in _UNSUPPORTED_PROTOCOL:
        return f"the broker refused the MQTT protocol version ({text})"
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return f"TLS: the broker's certificate is not trusted (check tls.ca): {text}"
    if isinstance(exc, ssl.SSLError) or "SSL" in text or "TLS" in text:
        return f"TLS: {text}"
    if tls and "timed out" in text:
        # A broker that requires a client certificate closes the TLS session without a CONNACK.
        return f"broker unreachable: {text} (with TLS: does the broker require a client certificate?)"
    return f"broker unreachable: {text}"


class Link:
    def __init__(self, config: MqttConfig, *, note: Callable[[str | None], None] | None = None) -> None:
        self.config = config
        self.status_topic = f"{config.prefix}/status"
        self.connected = False
        #: The MQTT version of the current (or last) connection: "5" or "3.1.1".
        self.protocol: str | None = None
        self.stats = LinkStats()
        self._note = note or (lambda text: None)
        self._queue: deque[Outgoing] = deque()
        #: The queued retained message of each topic. A retained topic is a last-value store (an
        #: entity's state, a discovery config), so a newer one takes the queued one's place instead
        #: of queueing behind it: a sensor that changes 1,000 times while the broker is away takes
        #: one place in the queue, not 1,000, and pushes no other entity's state out of it.
        self._retained: dict[str, Outgoing] = {}
        self.stats.queued = lambda: len(self._queue)
        self._wake = asyncio.Event()
        self._subs: dict[str, list[tuple[Callback, int, bool, bool]]] = {}
        #: MQTT 5 subscription identifiers: a broker sends a message once per matching subscription
        #: (mosquitto 2 does), each copy naming its own, so overlapping filters (``ruffhub/#`` of a
        #: rule and ``ruffhub/+/state/+`` of the peers) each get it once, not once per copy.
        self._sub_ids: dict[str, int] = {}
        self._by_sub_id: dict[int, str] = {}
        self._next_sub_id = 1
        self._on_connect: list[Callable[[], Any]] = []
        self._on_disconnect: list[Callable[[], Any]] = []
        self._client: aiomqtt.Client | None = None
        self._tasks: set[asyncio.Task] = set()
        #: Handed to paho and not yet confirmed, by message id in send order: the QoS 1 ones go back
        #: to the queue if the connection drops.
        self._inflight: dict[int, Outgoing] = {}
        self._v311 = config.protocol == "3.1.1"  # auto falls back to 3.1.1 once the broker refuses 5
        self._dropped_in_outage = 0
        self._drop_logged = 0.0

    # --- what the rest of the plugin uses --------------------------------------------------------
    def publish(self, topic: str, payload: Any = b"", *, qos: int = 0, retain: bool = False,
                properties: Any = None) -> None:
        """Queue a message; the sender sends it as soon as the broker is there. Never blocks."""
        if retain:
            queued = self._retained.get(topic)
            if queued is not None:
                queued.payload, queued.qos, queued.properties = _encode(payload), max(qos, queued.qos), properties
                self.stats.replaced += 1
                return
            out = self._retained[topic] = Outgoing(topic, _encode(payload), qos, retain, properties)
            self._queue.append(out)
        else:
            self._queue.append(Outgoing(topic, _encode(payload), qos, retain, properties))
        if len(self._queue) > self.config.queue_size:
            self._drop_oldest()
        self._wake.set()

    def _drop_oldest(self) -> None:
        while len(self._queue) > self.config.queue_size:
            self._unqueued(self._queue.popleft())
            self.stats.dropped += 1
            if not self.connected:
                self._dropped_in_outage += 1
        if self.connected and time.monotonic() - self._drop_logged > 60:
            # Connected and still overflowing: the hub writes faster than the broker takes.
            self._drop_logged = time.monotonic()
            log.warning("mqtt: outgoing queue full (%d): the oldest messages are dropped; %d so far",
                        self.config.queue_size, self.stats.dropped)

    def subscribe(self, topic_filter: str, callback: Callback, *, qos: int = 1,
                  retain_as_published: bool = False, no_local: bool = False) -> Callable[[], None]:
        """Call ``callback(Incoming)`` (sync, or async: started as a task) for each message matching
        ``topic_filter``, from now on and after every reconnection. Returns an unsubscribe.

        ``retain_as_published`` (MQTT 5): a message its sender published retained keeps its retain
        flag when it arrives live too (a broker clears it by default), so the command intake can
        refuse a retained command the moment it is sent, not only when it is replayed.

        ``no_local`` (MQTT 5): the broker does not send back what this hub publishes itself. The
        peers' ``<base>/+/state/+`` matches the hub's own state topics: without it every state the hub
        publishes came back to it, which doubled the bridge's cost at 10,000 states/s. (With 3.1.1
        they come back and are ignored.)"""
        entries = self._subs.setdefault(topic_filter, [])
        if topic_filter not in self._sub_ids:
            self._sub_ids[topic_filter] = self._next_sub_id
            self._by_sub_id[self._next_sub_id] = topic_filter
            self._next_sub_id += 1
        entry = (callback, qos, retain_as_published, no_local)
        entries.append(entry)
        if len(entries) == 1 and self._client is not None and self.connected:
            self._spawn(self._subscribe(self._client, topic_filter))

        def unsubscribe() -> None:
            current = self._subs.get(topic_filter, [])
            if entry in current:
                current.remove(entry)
            if not current:
                self._subs.pop(topic_filter, None)
                self._by_sub_id.pop(self._sub_ids.pop(topic_filter, 0), None)
                if self._client is not None and self.connected:
                    self._spawn(self._client.unsubscribe(topic_filter))

        return unsubscribe

    async def _subscribe(self, client: aiomqtt.Client, topic_filter: str) -> None:
        entries = self._subs.get(topic_filter)
        if not entries:
            return
        qos = max(e[1] for e in entries)
        if self._v311:
            await client.subscribe(topic_filter, qos)
        else:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties
            from paho.mqtt.subscribeoptions import SubscribeOptions

            options = SubscribeOptions(qos=qos, retainAsPublished=any(e[2] for e in entries),
                                       noLocal=all(e[3] for e in entries))
            properties = Properties(PacketTypes.SUBSCRIBE)
            properties.SubscriptionIdentifier = self._sub_ids[topic_filter]
            await client.subscribe(topic_filter, options=options, properties=properties)

    def on_connect(self, callback: Callable[[], Any]) -> None:
        """Called after each (re)connection, once subscriptions are back: republish retained state."""
        self._on_connect.append(callback)

    def on_disconnect(self, callback: Callable[[], Any]) -> None:
        """Called each time a connection is lost (not at a failed attempt): what follows the broker's
        devices marks them unavailable."""
        self._on_disconnect.append(callback)

    async def room(self) -> bool:
        """Wait until the queue is at most half full, for a part that sends many messages at once
        (every state, every discovery config after a connection): it must not push its own or the
        others' messages out of the bounded queue. False when the connection went meanwhile (the
        next connection sends everything again)."""
        room = max(self.config.queue_size // 2, 1)
        while len(self._queue) >= room:
            if not self.connected:
                return False
            await asyncio.sleep(0.01)
        return self.connected

    # --- the connection --------------------------------------------------------------------------
    def _tls_context(self) -> ssl.SSLContext | None:
        """Built here rather than by paho so a missing or unreadable file is named in the error."""
        tls = self.config.tls
        if tls is None:
            return None
        try:
            context = ssl.create_default_context(cafile=str(tls.ca) if tls.ca else None)
            if tls.certificate is not None:
                context.load_cert_chain(str(tls.certificate), str(tls.key))
        except (OSError, ssl.SSLError) as exc:
            raise aiomqtt.MqttError(f"TLS files (tls.ca {tls.ca}, tls.certificate {tls.certificate}): {exc}") from None
        if tls.insecure:
            context.check_hostname = False
        return context

    def _client_for(self) -> aiomqtt.Client:
        cfg = self.config
        client = aiomqtt.Client(
            cfg.host, cfg.broker_port,
            identifier=cfg.client_identifier,
            username=cfg.username,
            password=cfg.password.get_secret_value() if cfg.password is not None else None,
            keepalive=cfg.keepalive,
            protocol=aiomqtt.ProtocolVersion.V311 if self._v311 else aiomqtt.ProtocolVersion.V5,
            will=aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True),
            tls_context=self._tls_context(),
            max_inflight_messages=WINDOW,
            # Received and not yet handled, at most: past it aiomqtt discards (and logs) rather than
            # let a broker that outpaces the hub grow its memory.
            max_queued_incoming_messages=MAX_QUEUED_INCOMING,
            # No Nagle: a state change goes out now, not when the previous one is acknowledged
            # (with the peer's delayed ACKs, Nagle held messages for tens of ms at a few thousand/s).
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            timeout=10,
        )
        return client

    async def run(self) -> None:
        """Connect, and connect again whenever the connection is lost, with a back-off."""
        delay = 1.0
        while True:
            try:
                async with self._client_for() as client:
                    self._client = client
                    self.connected = True
                    self._connected_now()
                    delay = 1.0
                    try:
                        await self._session(client)
                    except asyncio.CancelledError:
                        # The hub stops: say so, since a clean disconnect makes the broker drop the
                        # last will.
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(
                                client.publish(self.status_topic, b"offline", qos=1, retain=True), 2)
                        raise
            except aiomqtt.MqttError as exc:
                if (self.config.protocol == "auto" and not self._v311 and not self.connected
                        and _code(exc) in _UNSUPPORTED_PROTOCOL):
                    self._v311 = True
                    log.warning("mqtt: broker %s:%s refused MQTT 5 (%s); using MQTT 3.1.1",
                                self.config.host, self.config.broker_port, exc)
                    continue
                reason = f"connection lost: {exc}" if self.connected else describe(exc, tls=self.config.tls is not None)
                self.stats.last_error = reason
                self._note(reason)
                log.warning("mqtt: broker %s:%s: %s; retrying in %g s", self.config.host,
                            self.config.broker_port, reason, delay)
            finally:
                was_connected, self.connected = self.connected, False
                self._client = None
                self._requeue()
                if was_connected:
                    for callback in list(self._on_disconnect):
                        self._call(callback)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_max)

    def _connected_now(self) -> None:
        version = "3.1.1" if self._v311 else "5"
        if self.protocol != version:
            log.info("mqtt: using MQTT %s with %s:%s", version, self.config.host, self.config.broker_port)
        self.protocol = version
        self.stats.connections += 1
        self._note(None)
        log.info("mqtt: connected to %s:%s as %s", self.config.host, self.config.broker_port,
                 self.config.client_identifier)
        if self._dropped_in_outage:
            log.warning("mqtt: %d outgoing messages were dropped while the broker was away (queue_size %d)",
                        self._dropped_in_outage, self.config.queue_size)
            self._dropped_in_outage = 0

    def _unqueued(self, out: Outgoing) -> None:
        if out.retain and self._retained.get(out.topic) is out:
            del self._retained[out.topic]

    def _requeue(self) -> None:
        """Unconfirmed QoS 1 messages go back to the front of the queue, in their order; a retained
        one whose topic has a newer message queued is superseded by it."""
        again = []
        for out in self._inflight.values():
            if out.qos == 0 or (out.retain and out.topic in self._retained):
                continue
            if out.retain:
                self._retained[out.topic] = out
            again.append(out)
        self._inflight.clear()
        if again:
            self.stats.resent += len(again)
            self._queue.extendleft(reversed(again))
            if len(self._queue) > self.config.queue_size:
                self._drop_oldest()

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.publish(self.status_topic, b"online", qos=1, retain=True)
        for topic_filter in list(self._subs):
            await self._subscribe(client, topic_filter)
        for callback in list(self._on_connect):
            self._call(callback)
        loop = asyncio.get_running_loop()
        reader, sender = loop.create_task(self._read(client)), loop.create_task(self._send(client))
        try:
            # Either ending ends the session: the connection lost (reader), or paho refusing to
            # send (sender), which a reconnection mends.
            done, _ = await asyncio.wait({reader, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            sender.cancel()
        for task in done:
            if task.exception() is not None:
                raise task.exception()
        raise aiomqtt.MqttError("the connection ended")

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self._dispatch(message)

    async def _send(self, client: aiomqtt.Client) -> None:
        """Hand queued messages to paho, up to WINDOW of them unconfirmed.

        paho directly rather than ``aiomqtt.Client.publish``: that one awaits each confirmation in a
        coroutine of its own and counts every pending call on each publish, which at thousands of
        messages a second costs more than the rest of the hub. Confirmations come back through paho's
        ``on_publish`` (after the write for QoS 0, the broker's PUBACK for QoS 1), chained in front of
        aiomqtt's own handler."""
        paho = client._client  # noqa: SLF001 - the paho client aiomqtt wraps
        theirs = paho.on_publish

        def confirmed(c: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
            if self._inflight.pop(mid, None) is not None:
                self.stats.sent += 1
                if self._queue:
                    self._wake.set()
            else:  # one of aiomqtt's own publishes (the status topic): its handler wakes its caller
                theirs(c, userdata, mid, reason, properties)

        paho.on_publish = confirmed
        inflight = self._inflight
        queue = self._queue
        v311 = self._v311
        while True:
            while queue and len(inflight) < WINDOW:
                out = queue.popleft()
                if out.retain:
                    self._unqueued(out)
                try:
                    info = paho.publish(out.topic, out.payload, out.qos, out.retain,
                                        None if v311 else out.properties)
                except (ValueError, TypeError) as exc:  # a topic or payload MQTT cannot carry
                    log.warning("mqtt: %s: message not sent: %s", out.topic[:200], exc)
                    continue
                if info.rc != 0:
                    queue.appendleft(out)
                    if out.retain:
                        self._retained[out.topic] = out
                    raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
                if not info.is_published():  # QoS 0 written at once is already done
                    inflight[info.mid] = out
                else:
                    self.stats.sent += 1
            self._wake.clear()
            await self._wake.wait()

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
        ids = getattr(props, "SubscriptionIdentifier", None) if props is not None else None
        if ids:
            # This copy is for these subscriptions only (the broker sends one per subscription).
            filters = [self._by_sub_id[i] for i in (ids if isinstance(ids, list) else [ids]) if i in self._by_sub_id]
        else:  # MQTT 3.1.1: no identifiers; every matching filter
            filters = [f for f in self._subs if message.topic.matches(f)]
        for topic_filter in filters:
            for callback, *_ in list(self._subs.get(topic_filter, ())):
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
                log.exception("mqtt: handling %s failed", topic)

        task = asyncio.get_running_loop().create_task(contained())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
