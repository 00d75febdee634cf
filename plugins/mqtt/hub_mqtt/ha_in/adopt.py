"""The adopted devices in the hub, and the broker's topics routed to their entities.

Entities are grouped into hub devices by ``device.identifiers`` (local id ``ha:<identifier>``), or
each is its own device (``ha:<unique_id>``). The registry adds a device with all its entities at
once, so a device whose entity set changes is added again whole; an entity removed from a device
that keeps others is removed by removing the device and adding the rest back.

Several entities often share a topic (all of a Zigbee2MQTT device's entities read
``zigbee2mqtt/<name>``), and a retained message comes only once per subscription, so the last
message of each routed topic is kept and given to an entity that starts reading the topic later.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from pydantic import ValidationError

from hub.core.commands import CommandRefused
from hub.devices.model import Device

from hub_mqtt.config import COMPONENTS, MqttConfig
from hub_mqtt.ha_in import discovery
from hub_mqtt.ha_in.components import CLASSES
from hub_mqtt.ha_in.entities import Adopted, short_key
from hub_mqtt.ha_in.templates import TemplateError
from hub_mqtt.ha_schema import Entity

log = logging.getLogger("hub.plugins.mqtt")
MAX_ENTITIES_PER_DEVICE = 100  # a Zigbee2MQTT device has up to ~50; the bound keeps a flood small
#: The start of a declared entity's source (and of its device's ``connection``).
DECLARED = "configuration.yaml"


def skipped(source: str, reason: Any) -> None:
    """One line per skipped config. The source is part of the message's template, so the hub's
    log rate limit (hub.net.lograte: a few lines per template per window, fifty per logger) counts
    each config on its own: one device repeating its bad config cannot hide another's line."""
    log.warning("mqtt: " + source.replace("%", "%%") + " skipped: %s", str(reason).splitlines()[0])


@dataclass
class _Device:
    local_id: str
    info: Any = None  # the DeviceInfo of its latest entity
    entities: dict[str, Adopted] = field(default_factory=dict)  # by key


class Adopter:
    def __init__(self, hub: Any, link: Any) -> None:
        self.hub = hub
        self.link = link
        self.config: MqttConfig = hub.config
        self.devices: dict[str, _Device] = {}
        self.by_entity: dict[str, Adopted] = {}
        self.by_source: dict[str, tuple[str, str, Entity]] = {}  # source -> (device, key, config)
        self._routes: dict[str, list[Callable[[bytes], None]]] = {}
        self._last: dict[str, bytes] = {}
        self._unsubscribe: dict[str, Callable[[], None]] = {}
        self._full_logged = False

    def start(self) -> "Adopter":
        for component in COMPONENTS:
            for index, conf in enumerate(getattr(self.config, component)):
                # Without a unique_id, an id from what the entry says rather than its place in the
                # list, so reordering the list keeps every entity's id and history.
                what = (conf.object_id or conf.name or getattr(conf, "command_topic", None)
                        or getattr(conf, "state_topic", None) or str(index))
                self.put(f"{DECLARED} mqtt.{component}[{index}]", component, conf, f"{component}.{what}")
        self._forget_undeclared()
        self.link.on_connect(lambda: self._set_broker(True))
        # With the broker gone, no state here can be trusted: the entities are unavailable (as in
        # Home Assistant) until the connection is back, when their retained states come again.
        self.link.on_disconnect(lambda: self._set_broker(False))
        if self.config.discovery.enabled:
            prefix = self.config.discovery_prefix
            for pattern in (f"{prefix}/+/+/config", f"{prefix}/+/+/+/config"):
                self.link.subscribe(pattern, self._on_discovery)
        return self

    def _set_broker(self, up: bool) -> None:
        for device in self.devices.values():
            for entity in device.entities.values():
                if entity.broker_up != up:
                    entity.broker_up = up
                    entity.push()

    def _forget_undeclared(self) -> None:
        """A device declared in configuration.yaml before and no longer: the registry restored it,
        so remove it now rather than keep it unavailable for ever. (Discovered devices are known
        only once the broker sends their configs; they stay until their config is removed.)"""
        restored = {e.device_id for e in self.hub.all_entities() if e.platform == "mqtt" and e.device_id.startswith("mqtt:ha:")}
        for device_id in sorted(restored):
            entry = self.hub.get_device(device_id)
            local_id = device_id.split(":", 1)[1]
            if entry is not None and (entry.connection or "").startswith(DECLARED) and local_id not in self.devices:
                self.hub.remove_device(local_id)
                log.info("mqtt: %s is no longer declared in configuration.yaml: removed", local_id)

    # --- discovery ------------------------------------------------------------------------------
    def _on_discovery(self, message: Any) -> None:
        topic = message.topic
        if any(fnmatchcase(topic, pattern) for pattern in self.config.discovery.ignore):
            return
        try:
            announced = discovery.read(self.config.discovery_prefix, topic, message.payload)
        except discovery.Skip as exc:
            skipped(f"discovery {topic}", exc)
            return
        current = [s for s in self.by_source if s == topic or s.startswith(topic + "#")]
        if announced is None:
            for source in current:
                self.drop(source)
            return
        entities, dropped = announced
        for source, reason in dropped:
            skipped(f"discovery {source}", reason)
        keep = {a.source for a in entities}
        for source in current:
            if source not in keep:
                self.drop(source)
        for item in entities:
            self.put(item.source, item.component, item.config)

    # --- the devices ----------------------------------------------------------------------------
    def put(self, source: str, component: str, conf: Entity, fallback: str | None = None) -> None:
        """Adopt (or update) the entity ``source`` announces; a config seen before is a no-op, as
        every retained config comes again at each reconnection."""
        old = self.by_source.get(source)
        if old is not None and old[2] == conf:
            return
        ident = conf.device.identifiers[0] if conf.device is not None and conf.device.identifiers else None
        fallback = fallback or source  # a discovery config's topic is its identity when it has no unique_id
        key = short_key(conf.unique_id or fallback)
        local_id = "ha:" + short_key(ident or conf.unique_id or fallback, 120)
        try:
            entity = CLASSES[component](conf, key, source)
            entity.spec(None)  # the registry's own checks (a select's options, a number's range), now
        except (ValueError, TemplateError, ValidationError) as exc:
            skipped(source if source.startswith(DECLARED) else f"discovery {source}", exc)
            return
        device = self.devices.get(local_id)
        if device is None and len(self.devices) >= self.config.discovery.max_devices and not source.startswith(DECLARED):
            if not self._full_logged:
                self._full_logged = True
                skipped(f"discovery {source}", f"discovery.max_devices ({self.config.discovery.max_devices}) "
                        "devices are adopted already (logged once)")
            return
        if device is not None and key in device.entities and (old is None or old[1] != key or old[0] != local_id):
            skipped(source, f"unique_id {conf.unique_id!r} is already announced by {device.entities[key].source}")
            return
        if device is not None and len(device.entities) >= MAX_ENTITIES_PER_DEVICE and key not in device.entities:
            skipped(source, f"its device has {MAX_ENTITIES_PER_DEVICE} entities already")
            return
        if old is not None and old[:2] == (local_id, key) and device is not None:
            # A changed config of the same entity: replaced in place, the hub's entity kept (no
            # removal, so nothing downstream sees it vanish and come back).
            previous = device.entities[key]
            self._unroute(previous)
            entity.value, entity.attributes = previous.value, dict(previous.attributes)
        elif old is not None:
            self.drop(source)
            device = self.devices.get(local_id)
        if device is None:
            device = self.devices[local_id] = _Device(local_id)
        if conf.device is not None:  # Tasmota names the device on one entity and only its ids on the rest
            given = {k: v for k, v in conf.device.model_dump().items() if v not in (None, [])}
            device.info = device.info.model_copy(update=given) if device.info is not None else conf.device
        device.entities[key] = entity
        self.by_source[source] = (local_id, key, conf)
        self._register(device)

    def drop(self, source: str) -> None:
        """Forget the entity ``source`` announced; its device too when no entity is left (the
        device's other entities are left as they are)."""
        found = self.by_source.pop(source, None)
        if found is None:
            return
        local_id, key, _ = found
        device = self.devices.get(local_id)
        if device is None:
            return
        entity = device.entities.pop(key, None)
        if entity is None:
            return
        self._unroute(entity)
        try:
            removed = self.hub.remove_device(local_id, [key])
        except KeyError:
            removed = []
        for entity_id in removed:
            self.by_entity.pop(entity_id, None)
        if not device.entities:
            del self.devices[local_id]
            log.info("mqtt: device %s removed (%s)", local_id, source)

    def _register(self, device: _Device) -> None:
        info = device.info
        first = next(iter(device.entities.values()))
        name = (info.name if info is not None and info.name else None) or first.conf.name or device.local_id
        specs = [entity.spec(info.name if info is not None else None) for entity in device.entities.values()]
        hub_device = Device(
            id=device.local_id, name=name[:128],
            manufacturer=info.manufacturer if info else None, model=info.model if info else None,
            sw_version=info.sw_version if info else None, connection=first.source[:200],
        )
        handles = self.hub.add_device(hub_device, specs)
        for entity in device.entities.values():
            handle = handles[entity.key]
            self.by_entity[handle.entity_id] = entity
            if entity.handle is None:
                entity.bind(handle, self.hub.now)
                self._route(entity)
            else:
                entity.handle = handle
                entity.push()

    # --- topics ---------------------------------------------------------------------------------
    def _route(self, entity: Adopted) -> None:
        for topic, handler in entity.topics():
            wrapped = functools.partial(handler)
            wrapped.entity = entity  # type: ignore[attr-defined]
            handlers = self._routes.setdefault(topic, [])
            handlers.append(wrapped)
            if len(handlers) == 1:
                self._unsubscribe[topic] = self.link.subscribe(topic, self._on_message, qos=entity.conf.qos)
            elif topic in self._last:
                self._call(wrapped, topic, self._last[topic])

    def _unroute(self, entity: Adopted) -> None:
        for topic in list(self._routes):
            handlers = [h for h in self._routes[topic] if getattr(h, "entity", None) is not entity]
            if handlers:
                self._routes[topic] = handlers
            else:
                del self._routes[topic]
                self._last.pop(topic, None)
                unsubscribe = self._unsubscribe.pop(topic, None)
                if unsubscribe is not None:
                    unsubscribe()
        entity.cancel_timers()
        entity.handle = None

    def _on_message(self, message: Any) -> None:
        if message.topic not in self._routes:
            return
        self._last[message.topic] = message.payload
        for handler in list(self._routes.get(message.topic, ())):
            self._call(handler, message.topic, message.payload)

    @staticmethod
    def _call(handler: Callable[[bytes], None], topic: str, payload: bytes) -> None:
        try:
            handler(payload)
        except Exception:  # noqa: BLE001 - one entity's bad message must not stop the others on the topic
            log.exception("mqtt: %s: handling a message failed", topic)

    # --- commands -------------------------------------------------------------------------------
    def command(self, handle: Any, command: str, args: Any) -> None:
        entity = self.by_entity.get(handle.entity_id)
        if entity is None:
            raise CommandRefused(f"{handle.entity_id} is no longer adopted from the broker")
        values = args.model_dump() if hasattr(args, "model_dump") else dict(args or {})

        def publish(topic: str, payload: Any, qos: int, retain: bool) -> None:
            self.link.publish(topic, payload, qos=qos, retain=retain)

        try:
            entity.command(command, values, publish)
        except (ValueError, TemplateError) as exc:
            raise CommandRefused(f"{handle.entity_id}: {exc}") from None
