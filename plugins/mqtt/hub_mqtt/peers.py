"""Other Ruff Hubs on the same broker: their devices mirrored here, commandable through their gate.

Each hub describes its devices on ``<base>/<node>/device/<device id>`` (retained: the device and its
published entities, with whether each takes commands) and its states on ``<base>/<node>/state/...``
(``states``). This part reads every other node's descriptions and states and shows each device here
as ``peer:<node>:<device id>``, with the same capabilities, options, units and classes, its names
followed by ``(<node>)``. A command on a mirror is sent to the other hub's
``<base>/<node>/set/<entity id>`` and its answer awaited: the other hub's own command gate decides,
exactly as for any other MQTT command (its command log says ``mqtt:peer:<this node>``).

Loops cannot form: a mirror is never published (``expose.published``), and a description naming a
mirror (``mqtt:peer:...``), should a hub of another version send one, is not mirrored.

Made for a standby hub: topics name what a thing is (the hub-wide device id, the same on any hub
that runs the same driver configuration) under who serves it now (the node); replies go to the
asker's topic (``reply_to``, MQTT 5 response topic), so a hub that takes over a node's devices
answers commands without knowing who asks. See docs/plugins/mqtt.md, "Two hubs".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.core.commands import CommandFailed, CommandRefused, EntityUnavailable
from hub.core.events import EntityRegistered, EntityRemoved
from hub.devices.model import Device, EntitySpec

from hub_mqtt.expose import commandable, published
from hub_mqtt.rules import parse_json

log = logging.getLogger("hub.plugins.mqtt")

#: Bounds on what other hubs can make this one hold, whatever the broker carries.
MAX_MIRRORED_DEVICES = 2000
MAX_ENTITIES_PER_DEVICE = 256
MAX_PENDING = 100  # below the API's 256 connections, so a burst of callers meets it, not the socket limit
#: States kept for entities whose description has not arrived yet (retained messages come in any order).
MAX_EARLY_STATES = 10_000
#: Seconds after a connection by which the broker has sent every retained description: a mirror this
#: hub kept from an earlier run that none of them describes was removed by its hub meanwhile.
PRUNE_AFTER = 5.0
#: Nodes remembered as offline (a dead hub's retained status outlives it; anyone can publish one).
MAX_OFFLINE_NODES = 10_000

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")
_REFUSED = ("not_exposed", "command_refused", "invalid_arguments")


def encode_device_id(device_id: str) -> str:
    """A device id as one topic level: characters outside ``[A-Za-z0-9_.:-]`` percent-encoded, so
    ``/``, ``+``, ``#`` and spaces can never change the topic's shape."""
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in device_id)


class _Device(BaseModel):
    model_config = ConfigDict(extra="ignore")  # a newer hub may describe more

    id: str = Field(min_length=1, max_length=512)
    name: str = Field(min_length=1, max_length=512)
    manufacturer: str | None = Field(None, max_length=512)
    model: str | None = Field(None, max_length=512)
    sw_version: str | None = Field(None, max_length=512)


class _Entity(BaseModel):
    model_config = ConfigDict(extra="ignore")

    entity_id: str = Field(min_length=3, max_length=255, pattern=r"^[a-z0-9_]+\.[^/#+\s]+$")
    key: str = Field(min_length=1, max_length=64)
    capability: str = Field(max_length=64)
    name: str = Field(min_length=1, max_length=255)
    device_class: str | None = Field(None, max_length=64)
    unit: str | None = Field(None, max_length=64)
    options: dict = Field(default_factory=dict)
    commandable: bool = False


class _Description(BaseModel):
    model_config = ConfigDict(extra="ignore")

    device: _Device
    entities: list[_Entity] = Field(max_length=MAX_ENTITIES_PER_DEVICE)


@dataclass
class _Mirror:
    local_id: str  # as given to add_device
    handles: dict[str, Any] = field(default_factory=dict)  # the other hub's entity id -> our handle


class Peers:
    def __init__(self, hub: Any, link: Any) -> None:
        self.hub = hub
        self.link = link
        self.config = hub.config
        self.node = hub.config.node_id
        self.base = hub.config.base_topic
        self.reply_topic = f"{hub.config.prefix}/reply"
        self.offline: set[str] = set()  # nodes whose status says offline (a hub is online until it says not)
        self.mirrors: dict[tuple[str, str], _Mirror] = {}  # (node, their device id) -> mirror
        self.targets: dict[str, tuple[str, str]] = {}  # our entity id -> (node, their entity id)
        self.handles: dict[tuple[str, str], Any] = {}  # (node, their entity id) -> our handle
        self.states: dict[tuple[str, str], dict] = {}  # (node, their entity id) -> last state message
        self.pending: dict[str, tuple[asyncio.Future, str]] = {}  # command id -> (answer, node)
        self._dirty: set[str] = set()
        self._announced: set[str] = set()  # this hub's devices described on the broker now
        self._prune_timer: asyncio.TimerHandle | None = None
        self._sender: asyncio.Task | None = None
        self._warned: set[str] = set()

    # --- describing this hub's devices -------------------------------------------------------------
    def device_topic(self, device_id: str, node: str | None = None) -> str:
        return f"{self.base}/{node or self.node}/device/{encode_device_id(device_id)}"

    def describe(self, device_id: str, entries: list[Any]) -> bytes:
        device = self.hub.get_device(device_id)
        if device is None or not entries:
            return b""
        body = {"device": device.as_dict(),
                "entities": [{**e.as_dict(), "commandable": commandable(self.config, e)} for e in entries]}
        return json.dumps(body, default=str).encode()

    def _published_by_device(self) -> dict[str, list[Any]]:
        by_device: dict[str, list[Any]] = {}
        for entry in self.hub.all_entities():
            if published(self.config, entry):
                by_device.setdefault(entry.device_id, []).append(entry)
        return by_device

    def announce_all(self) -> None:
        """After each (re)connection: every device with published entities, retained."""
        by_device = self._published_by_device()
        self._announced = set(by_device)
        self._dirty |= set(by_device)
        self._start_sending()
        loop = asyncio.get_running_loop()
        if self._prune_timer is not None:
            self._prune_timer.cancel()
        self._prune_timer = loop.call_later(PRUNE_AFTER, self._prune)

    def _start_sending(self) -> None:
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_dirty(), name="mqtt:peers:describe")

    async def _send_dirty(self) -> None:
        """Describe the devices marked, leaving the link's bounded queue room (as Home Assistant
        discovery does): thousands of devices must not push the hub's own states out of it. While
        off the broker nothing is sent: the next connection describes everything."""
        while self._dirty and self.link.connected:
            by_device = self._published_by_device()  # once per round; changes meanwhile mark a device again
            batch = sorted(self._dirty)
            self._dirty = set()
            for i, device_id in enumerate(batch):
                if not await self.link.room():
                    self._dirty.update(batch[i:])
                    return
                entries = by_device.get(device_id, [])
                if entries:
                    self._announced.add(device_id)
                else:
                    self._announced.discard(device_id)
                try:
                    payload = self.describe(device_id, entries)
                except Exception:  # noqa: BLE001 - one odd device must not keep the others off the broker
                    log.exception("mqtt: describing %s failed", device_id)
                    continue
                self.link.publish(self.device_topic(device_id), payload, qos=1, retain=True)
                if i % 100 == 99:
                    await asyncio.sleep(0)

    def broker_lost(self) -> None:
        """Without the broker this hub cannot know the other hubs' states: their mirrors go
        unavailable (as Home Assistant's MQTT entities do) until the broker sends them again."""
        for handle in list(self.handles.values()):
            handle.set_unavailable()

    def _prune(self) -> None:
        """Mirrors restored from the store that no retained description has confirmed since the
        connection: their hub removed them while this one was away."""
        self._prune_timer = None
        if not self.link.connected:
            return
        kept = {f"{self.hub.name}:{m.local_id}" for m in self.mirrors.values()}
        stale = {e.device_id for e in self.hub.all_entities()
                 if e.platform == self.hub.name and e.device_id.startswith(f"{self.hub.name}:peer:")} - kept
        for device_id in stale:
            log.info("mqtt: %s: no hub describes it any more; removed", device_id)
            try:
                self.hub.remove_device(device_id.split(":", 1)[1])
            except KeyError:
                pass

    def _changed(self, event: Any) -> None:
        if event.device_id.startswith("mqtt:peer:"):
            return  # a mirror: never described
        self._dirty.add(event.device_id)  # a burst of one device's entities is described once
        if self.link.connected:
            try:
                self._start_sending()
            except RuntimeError:
                pass  # no loop yet: the announcement at connection covers it

    # --- reading the other hubs --------------------------------------------------------------------
    def _split(self, topic: str, kind: str) -> tuple[str, str] | None:
        """``<base>/<node>/<kind>/<rest>`` as (node, rest)."""
        head = f"{self.base}/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head):].split("/")
        if len(parts) != 3 or parts[1] != kind or not parts[0] or not parts[2]:
            return None
        return parts[0], parts[2]

    def _skip(self, topic: str, why: str) -> None:
        """One log line per topic and reason, however often a broken hub repeats it. The topic is in
        the line's template, so the log's rate limit (hub.net.lograte: a few lines per template per
        window) counts topics apart and one broken hub cannot hide another's lines."""
        key = f"{topic}|{why}"
        if key not in self._warned and len(self._warned) < 10_000:
            self._warned.add(key)
            log.warning("mqtt: " + topic.replace("%", "%%") + " skipped: %s", str(why).splitlines()[0])

    def on_status(self, message: Any) -> None:
        head, tail = f"{self.base}/", "/status"
        node = message.topic[len(head):-len(tail)] if message.topic.startswith(head) else ""
        if not node or "/" in node or node == self.node:
            return
        if message.payload == b"online":
            self.offline.discard(node)
            return
        if len(self.offline) < MAX_OFFLINE_NODES or any(n == node for n, _ in self.mirrors):
            self.offline.add(node)  # "offline" (its last will), or its status cleared
        for (other, _), handle in list(self.handles.items()):
            if other == node:
                handle.set_unavailable()
        for command_id, (future, target) in list(self.pending.items()):
            if target == node and not future.done():
                future.set_exception(EntityUnavailable(f"hub {node} went offline before it answered"))

    def on_device(self, message: Any) -> None:
        where = self._split(message.topic, "device")
        if where is None:
            return
        node, encoded = where
        device_id = unquote(encoded)
        if node == self.node:
            self._own_description(message, device_id)
            return
        if device_id.startswith("mqtt:peer:"):
            self._skip(message.topic, "a mirror of a mirror is never made")
            return
        if not message.payload:
            self._forget(node, device_id)
            return
        data = parse_json(message.payload)
        if not isinstance(data, dict):
            self._skip(message.topic, "not a JSON object")
            return
        try:
            description = _Description.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where_ = ".".join(str(p) for p in first["loc"])
            self._skip(message.topic, f"not a device description: {where_}: {first['msg']}")
            return
        if description.device.id != device_id:
            self._skip(message.topic, f"it describes device {description.device.id!r}, not {device_id!r}")
            return
        self._mirror(message.topic, node, description)

    def _own_description(self, message: Any, device_id: str) -> None:
        """A retained description of this hub's from an earlier run, of a device it no longer has or
        no longer publishes: withdrawn, or the other hubs would mirror it for ever. (Retained
        messages come after the announcement at connection, which fills ``_announced``.)"""
        if message.retain and message.payload and device_id not in self._announced:
            self.link.publish(message.topic, b"", qos=1, retain=True)

    def _local_id(self, node: str, device_id: str) -> str:
        local = f"peer:{node}:{device_id}"
        if len(local) <= 128:
            return local
        # Device ids are at most 128 characters; a long one is named by its digest, stably.
        return f"peer:{node}:sha256-{hashlib.sha256(device_id.encode()).hexdigest()[:40]}"

    def _mirror(self, topic: str, node: str, description: _Description) -> None:
        device = description.device
        mirror = self.mirrors.get((node, device.id))
        if mirror is None and len(self.mirrors) >= MAX_MIRRORED_DEVICES:
            self._skip(topic, f"already {MAX_MIRRORED_DEVICES} devices mirrored from other hubs")
            return
        specs: list[EntitySpec] = []
        theirs: list[str] = []
        for entity in description.entities:
            if entity.key in {s.key for s in specs}:
                continue
            object_id = entity.entity_id.split(".", 1)[1]
            try:
                specs.append(EntitySpec(key=entity.key, capability=entity.capability, name=f"{entity.name} ({node})",
                                        device_class=entity.device_class, unit=entity.unit,
                                        object_id=f"{node}_{object_id}", options=entity.options))
            except ValidationError as exc:
                self._skip(f"{topic} {entity.entity_id}", exc.errors(include_url=False)[0]["msg"])
                continue
            theirs.append(entity.entity_id)
        local_id = mirror.local_id if mirror is not None else self._local_id(node, device.id)
        ours = Device(id=local_id, name=f"{device.name} ({node})"[:128], manufacturer=device.manufacturer,
                      model=device.model, sw_version=device.sw_version, connection=f"mqtt: hub {node}")
        if mirror is not None and set(mirror.handles) - set(theirs):
            self._forget(node, device.id, keep_states=True)  # an entity left the other hub, so it leaves here
            mirror = None
        if not specs:
            self._forget(node, device.id)
            return
        try:
            handles = self.hub.add_device(ours, specs)
        except Exception as exc:  # noqa: BLE001 - one hub's odd device must not stop the others'
            self._skip(topic, f"could not be added: {exc}")
            return
        mirror = self.mirrors[(node, device.id)] = _Mirror(local_id)
        for their_id, spec in zip(theirs, specs):
            handle = handles[spec.key]
            mirror.handles[their_id] = self.handles[(node, their_id)] = handle
            self.targets[handle.entity_id] = (node, their_id)
            self._apply(node, their_id)

    def _forget(self, node: str, device_id: str, *, keep_states: bool = False) -> None:
        mirror = self.mirrors.pop((node, device_id), None)
        if mirror is None:
            return
        for their_id, handle in mirror.handles.items():
            self.targets.pop(handle.entity_id, None)
            self.handles.pop((node, their_id), None)
            if not keep_states:
                self.states.pop((node, their_id), None)
        try:
            self.hub.remove_device(mirror.local_id)
        except KeyError:
            pass

    def on_state(self, message: Any) -> None:
        where = self._split(message.topic, "state")
        if where is None or where[0] == self.node:
            return
        key = where
        if not message.payload:
            self.states.pop(key, None)
            return
        data = parse_json(message.payload)
        if not isinstance(data, dict) or not isinstance(data.get("available", True), bool) \
                or not isinstance(data.get("attributes", {}), dict):
            self._skip(message.topic, "not a state (a JSON object with value, available, attributes)")
            return
        if key not in self.states and len(self.states) >= MAX_EARLY_STATES and key not in self.handles:
            return  # no such mirror, and no room to wait for its description
        self.states[key] = data
        self._apply(*key)

    def _apply(self, node: str, their_id: str) -> None:
        data = self.states.get((node, their_id))
        handle = self.handles.get((node, their_id)) if data is not None else None
        if handle is None:
            return
        if node in self.offline or not data.get("available", True):
            handle.set_unavailable()
            return
        attributes = {k: v for k, v in (data.get("attributes") or {}).items()
                      if isinstance(k, str) and k != "friendly_name"}
        try:
            handle.set(data.get("value"), **attributes)
        except (ValueError, TypeError) as exc:
            self._skip(f"{self.base}/{node}/state/{their_id}", f"its value does not fit: {exc}")

    # --- commands ----------------------------------------------------------------------------------
    def on_reply(self, message: Any) -> None:
        data = parse_json(message.payload)
        command_id = data.get("id") if isinstance(data, dict) else None
        if command_id is None and message.correlation_data:
            command_id = message.correlation_data.decode(errors="replace")
        entry = self.pending.get(command_id) if isinstance(command_id, str) else None
        if entry is None:
            return  # late (after the timeout), or not ours
        if not isinstance(data, dict):
            data = {"ok": False, "error": "bad_payload", "message": "the answer was not a JSON object"}
        if not entry[0].done():
            entry[0].set_result(data)

    async def command(self, entity: Any, command: str, args: Any) -> Any:
        target = self.targets.get(entity.entity_id)
        if target is None:
            raise EntityUnavailable(f"{entity.entity_id} is unavailable: no other hub describes it now")
        node, their_id = target
        if node in self.offline:
            raise EntityUnavailable(f"{entity.entity_id} is unavailable: hub {node} is offline")
        if not self.link.connected:
            # Not queued: a command that waited for the broker would be carried out long after it was asked.
            raise EntityUnavailable(f"{entity.entity_id} is unavailable: the broker is not connected")
        if len(self.pending) >= MAX_PENDING:
            raise CommandFailed(f"{MAX_PENDING} commands already wait for other hubs' answers")
        command_id = uuid.uuid4().hex
        if hasattr(args, "model_dump"):
            args = args.model_dump(mode="json", exclude_none=True)
        body = {"command": command, "args": args or {}, "id": command_id, "reply_to": self.reply_topic,
                "from": self.node}
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.pending[command_id] = (future, node)
        try:
            self.link.publish(f"{self.base}/{node}/set/{their_id}", json.dumps(body).encode(), qos=1,
                              properties=self._properties(command_id))
            # No deadline of its own: the hub's command gate bounds every command (command_timeout).
            answer = await future
        finally:
            self.pending.pop(command_id, None)
        return _result(node, answer)

    def _properties(self, command_id: str) -> Any:
        if self.config.protocol == "3.1.1":
            return None  # reply_to in the body says the same
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.reply_topic
        props.CorrelationData = command_id.encode()
        return props


def _result(node: str, answer: dict) -> Any:
    if answer.get("ok") is True:
        return answer.get("result")
    code = answer.get("error")
    message = f"hub {node}: {answer.get('message') or code or 'the command failed'}"
    if code in _REFUSED:
        raise CommandRefused(message)
    if code == "entity_unavailable":
        raise EntityUnavailable(message)
    raise CommandFailed(message)


def setup(hub: Any, link: Any) -> None:
    peers = hub.data["peers"] = Peers(hub, link)
    # In this order: on (re)connection the broker sends the retained messages of each subscription
    # in turn, so a dead hub's "offline" is known before its last states arrive.
    link.subscribe(f"{peers.base}/+/status", peers.on_status)
    link.subscribe(f"{peers.base}/+/device/+", peers.on_device)
    link.subscribe(f"{peers.base}/+/state/+", peers.on_state, no_local=True)  # not its own states back
    link.subscribe(peers.reply_topic, peers.on_reply)
    link.on_connect(peers.announce_all)
    link.on_disconnect(peers.broker_lost)
    hub.bus.subscribe(EntityRegistered, peers._changed)
    hub.bus.subscribe(EntityRemoved, peers._changed)


async def handle_command(hub: Any, entity: Any, command: str, args: Any) -> Any:
    return await hub.data["peers"].command(entity, command, args)
