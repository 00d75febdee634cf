"""Home Assistant MQTT discovery of the hub's entities, so a Home Assistant on the same broker
adopts the hub's devices with their names, units, classes and commands.

Configs are retained: Home Assistant reads them whenever it starts. They are published again after
every (re)connection of the hub and whenever Home Assistant says ``online`` on
``<discovery_prefix>/status`` (its birth message: it may have started with an empty broker), for a
new entity when it is registered, and withdrawn (an empty retained config) when its entity is
removed. A retained config of this hub that names nothing the hub still announces (an entity
removed while the hub was off the broker, or since excluded with ``publish.exclude``) is withdrawn
when the hub sees it, so Home Assistant never keeps a ghost.

What each capability looks like and how Home Assistant's commands map back: :mod:`hub_mqtt.ha_map`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from hub_mqtt import ha_map
from hub_mqtt.expose import commandable, is_adopted, is_mirror, published

log = logging.getLogger("hub.plugins.mqtt")

#: Capabilities whose config reads the state too (a lock whose code is required, a thermostat that
#: reports its range): announced again when the state changes what they would say.
_STATE_DEPENDENT = {"lock", "climate"}

HUB_OBJECT = "ruffhub_status"
#: Configs announced between two yields to the event loop.
BATCH = 200


def translate(entry: Any, state: Any, field: str | None, payload: bytes) -> tuple[str, dict] | None:
    """A Home Assistant command payload (``ON``, a JSON light command, ``{"position": 40}`` ...) on
    ``<prefix>/set/<entity_id>[/<field>]`` as the hub's ``(command, args)``; None when it is not one."""
    return ha_map.translate(entry, state, field, payload)


def setup(hub: Any, link: Any) -> None:
    announcer = hub.data["ha_out"] = Announcer(hub, link)
    announcer.start()


class Announcer:
    def __init__(self, hub: Any, link: Any) -> None:
        from hub import __version__

        self.hub = hub
        self.link = link
        self.config = hub.config
        self.dp = self.config.discovery_prefix
        self.node = self.config.node_id
        self.origin = {"name": ha_map.ORIGIN_NAME, "sw": __version__}
        #: entity_id -> (topic, payload) last published, so a changed component withdraws the old one
        #: and an unchanged config is not sent again for every state change of a lock.
        self.announced: dict[str, tuple[str, bytes]] = {}
        self._watches: dict[str, Any] = {}
        self._topics: set[str] = set()  # the topics of ``announced``
        self._announcing: asyncio.Task | None = None
        self._pending: set[str] = set()  # registered, to be announced by _flushing
        self._flushing: asyncio.Task | None = None
        #: ``publish.discovery: false``: announce nothing, and withdraw what an earlier run announced.
        self.enabled = self.config.publish.discovery

    def start(self) -> None:
        from hub.core.events import EntityRegistered, EntityRemoved, StateChanged

        self._state_changed = StateChanged
        self.link.subscribe(f"{self.dp}/+/{self.node}/+/config", self.on_retained_config)
        if not self.enabled:
            return
        self.link.on_connect(self.announce_all)
        self.link.subscribe(f"{self.dp}/status", self.on_ha_status)
        self.hub.bus.subscribe(EntityRegistered, self.on_registered)
        self.hub.bus.subscribe(EntityRemoved, self.on_removed)

    # --- what to announce --------------------------------------------------------------------------
    def wanted(self, entry: Any) -> bool:
        return self.enabled and published(self.config, entry) and not is_adopted(entry) and not is_mirror(entry)

    def topic(self, component: str, entity_id: str) -> str:
        return f"{self.dp}/{component}/{self.node}/{ha_map.object_id(entity_id)}/config"

    def describe(self, entry: Any) -> tuple[str, bytes] | None:
        built = ha_map.discovery_config(
            entry, self.hub.get_device(entry.device_id), self.hub.get_state(entry.entity_id),
            node_id=self.node, prefix=self.config.prefix, origin=self.origin,
            commandable=commandable(self.config, entry))
        if built is None:
            return None
        component, config = built
        return self.topic(component, entry.entity_id), json.dumps(config, separators=(",", ":")).encode()

    # --- publishing --------------------------------------------------------------------------------
    def _send(self, topic: str, payload: bytes) -> None:
        self.link.publish(topic, payload, qos=1, retain=True)

    def announce_hub(self) -> None:
        config = ha_map.hub_status_config(self.node, self.config.prefix, self.origin)
        self._send(f"{self.dp}/binary_sensor/{self.node}/{HUB_OBJECT}/config",
                   json.dumps(config, separators=(",", ":")).encode())

    def announce(self, entry: Any, *, force: bool = True) -> None:
        described = self.describe(entry)
        previous = self.announced.get(entry.entity_id)
        if previous is not None and (described is None or described[0] != previous[0]):
            self._send(previous[0], b"")  # now another component, or nothing: withdraw the old one
            self.announced.pop(entry.entity_id, None)
            self._topics.discard(previous[0])
        if described is None:
            return
        if force or previous != described:
            self._send(*described)
        self.announced[entry.entity_id] = described
        self._topics.add(described[0])
        if entry.capability in _STATE_DEPENDENT and entry.entity_id not in self._watches:
            self._watches[entry.entity_id] = self.hub.bus.subscribe(
                self._state_changed, self.on_state_changed, entity_id=entry.entity_id)

    async def announce_all(self) -> None:
        """Every wanted entity, in batches that leave the link's queue room: a hub of 100,000 entities
        must not push its own state messages (or its first configs) out of the bounded queue."""
        if self._announcing is not None and not self._announcing.done():
            self._announcing.cancel()  # a reconnection or a second "online": start over
        self._announcing = asyncio.current_task()
        self.announce_hub()
        count = 0
        for entry in self.hub.all_entities():
            if self.wanted(entry):
                if not await self.link.room():
                    return  # off the broker: the next connection announces everything
                current = self.hub.get_entity(entry.entity_id)  # as it is now, after the wait
                if current is None or not self.wanted(current):
                    continue
                self._safely(current)
                count += 1
                if count % BATCH == 0:
                    await asyncio.sleep(0)
        log.info("mqtt: announced %d entities to Home Assistant under %s/", count, self.dp)

    async def _announce_pending(self) -> None:
        while self._pending:
            entity_id = next(iter(self._pending))
            self._pending.discard(entity_id)
            if not await self.link.room():
                self._pending.clear()  # the next connection announces everything
                return
            entry = self.hub.get_entity(entity_id)
            if entry is not None and self.wanted(entry):
                self._safely(entry)

    def _safely(self, entry: Any) -> None:
        """One entity whose options confuse the mapping must not keep the others from Home Assistant."""
        try:
            self.announce(entry)
        except Exception:  # noqa: BLE001
            log.exception("mqtt: the Home Assistant config of %s could not be made; not announced", entry.entity_id)

    def withdraw(self, entity_id: str) -> None:
        self._pending.discard(entity_id)
        previous = self.announced.pop(entity_id, None)
        unwatch = self._watches.pop(entity_id, None)
        if unwatch is not None:
            unwatch()
        if previous is not None:
            self._topics.discard(previous[0])
            self._send(previous[0], b"")

    # --- events ------------------------------------------------------------------------------------
    def on_registered(self, event: Any) -> None:
        """Announced soon, not at once: a driver adding 500 devices in one go must not fill the
        link's queue; and not at all while the hub is off the broker (it connects, it announces all)."""
        if not self.link.connected:
            return
        self._pending.add(event.entity_id)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._announce_pending())

    def on_removed(self, event: Any) -> None:
        self.withdraw(event.entity_id)

    def on_state_changed(self, event: Any) -> None:
        entry = self.hub.get_entity(event.entity_id)
        if entry is not None and self.wanted(entry):
            self.announce(entry, force=False)

    async def on_ha_status(self, message: Any) -> None:
        status = message.payload.strip().lower()
        if status == b"online":
            log.info("mqtt: Home Assistant is online: announcing the hub's entities again")
            await self.announce_all()
        elif status != b"offline":
            log.warning("mqtt: %s: skipped a status that is neither online nor offline (%d bytes)",
                        message.topic, len(message.payload))

    def on_retained_config(self, message: Any) -> None:
        """A config under this hub's node id that the hub does not announce now is a leftover of an
        earlier run: withdraw it. Only configs this hub wrote (their origin says so) are touched."""
        if not message.retain or not message.payload:
            return
        parts = message.topic.split("/")
        object_id = parts[-2] if len(parts) >= 4 else ""
        if object_id == HUB_OBJECT and self.enabled:
            return
        try:
            config = json.loads(message.payload)
        except (ValueError, RecursionError) as exc:
            log.warning("mqtt: %s: skipped a discovery config that is not JSON (%s), left as it is",
                        message.topic, str(exc)[:80] or type(exc).__name__)
            return
        origin = config.get("o") or config.get("origin") if isinstance(config, dict) else None
        if not isinstance(origin, dict) or origin.get("name") != ha_map.ORIGIN_NAME:
            log.warning("mqtt: %s: a discovery config under this hub's node id that this hub did not "
                        "write (its origin is not %s); left as it is", message.topic, ha_map.ORIGIN_NAME)
            return
        if message.topic in self._topics:
            return
        for entity_id in _entity_ids(object_id):
            entry = self.hub.get_entity(entity_id)
            if entry is not None and self.wanted(entry):
                described = self.describe(entry)
                if described is not None and described[0] == message.topic:
                    return  # wanted, and not yet announced in this connection: it will be
        log.info("mqtt: withdrawing the stale Home Assistant config %s", message.topic)
        self._send(message.topic, b"")


def _entity_ids(object_id: str) -> list[str]:
    """The entity ids an object id can stand for (``binary_sensor_hall`` is ``binary_sensor.hall``,
    not ``binary.sensor_hall``): one lookup per capability rather than a scan of every entity."""
    from hub.devices.capabilities import CAPABILITIES

    return [f"{name}.{object_id[len(name) + 1:]}" for name in CAPABILITIES if object_id.startswith(name + "_")]
