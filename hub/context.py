"""What a plugin sees of the hub: its ``hub`` argument.

Each plugin gets its own context, scoped to itself: it can add its own devices and write its own
entities' states, read every state, listen on the bus and send commands through the command registry
like any other caller. It cannot write another plugin's entities, which is what keeps a buggy driver's
damage to its own devices.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.core.events import CustomEvent
from hub.core.registry import DeviceEntry, EntityEntry
from hub.core.state import State
from hub.devices.capabilities import get_capability
from hub.devices.model import Device, EntitySpec

if TYPE_CHECKING:
    from hub.core.bus import EventBus
    from hub.core.scheduler import Scheduler
    from hub.runtime import Hub
    from hub.store import Store


class EntityHandle:
    """A plugin's grip on one of its entities."""

    __slots__ = ("entry", "_hub", "_capability", "_complete")

    def __init__(self, hub: "Hub", entry: EntityEntry) -> None:
        self.entry = entry
        self._hub = hub
        self._capability = get_capability(entry.capability)
        # The attributes object of this handle's last plain write, which therefore holds the spec's
        # unit, class and name: while the state still carries it, a plain write keeps it as it is.
        self._complete: Any = None

    @property
    def entity_id(self) -> str:
        return self.entry.entity_id

    @property
    def key(self) -> str:
        return self.entry.key

    @property
    def state(self) -> State | None:
        """The current state; after a restart, the last state recorded before it (unavailable until
        the plugin sets it). A virtual device can resume from it, as a real lock would still be locked."""
        return self._hub.states.get(self.entry.entity_id)

    def set(self, value: Any, **attributes: Any) -> State:
        """Write the state. Attributes given are merged into the current ones; the unit and device
        class from the entity's spec are always present, so consumers need not look them up."""
        self._capability.check_value(value, self.entry.options)
        current = self._hub.states.get(self.entry.entity_id)
        if not attributes and current is not None:
            if current.available and current.value == value:
                return current  # a driver confirming what the hub already shows: nothing to write
            if current.attributes is self._complete:
                # The common write (a new reading, nothing else): no merged copy to build and compare.
                return self._hub.states.set(self.entry.entity_id, value, None, available=True)
        merged = dict(current.attributes) if current is not None else {}
        if self.entry.unit is not None:
            merged["unit"] = self.entry.unit
        if self.entry.device_class is not None:
            merged["device_class"] = self.entry.device_class
        merged["friendly_name"] = self.entry.name
        if self._capability.options_model is not None:
            merged.update(self.entry.options)  # a number's min/max/step/mode, a select's options
        merged.update(attributes)
        new = self._hub.states.set(self.entry.entity_id, value, merged, available=True)
        if not attributes:
            self._complete = new.attributes
        return new

    def set_unavailable(self) -> None:
        self._hub.states.set_available(self.entry.entity_id, False)

    def __repr__(self) -> str:
        return f"<EntityHandle {self.entry.entity_id}>"


class PluginContext:
    def __init__(self, hub: "Hub", name: str, config: Any) -> None:
        self._hub = hub
        self.name = name
        self.config = config
        self.log = logging.getLogger(f"hub.plugins.{name}")
        #: The plugin's own objects (a connection, a simulation), kept between its hooks for this run.
        self.data: dict[str, Any] = {}
        self._handles: dict[str, EntityHandle] = {}

    # --- reading the hub -------------------------------------------------------------------------
    @property
    def bus(self) -> "EventBus":
        return self._hub.bus

    @property
    def now(self) -> Callable[[], float]:
        """The hub's clock (unix seconds). Use it instead of ``time.time`` so tests can drive time."""
        return self._hub.now

    @property
    def scheduler(self) -> "Scheduler":
        """Timers at wall-clock times (``call_at``, ``sleep_until``) that tests can drive."""
        return self._hub.scheduler

    @property
    def hub_data_dir(self) -> Path:
        """The hub's data directory itself, for the hub's built-in parts that keep a folder of their
        own beside the database (the embedded chain's ``chain/``); other plugins use ``data_dir``."""
        return self._hub.data_dir

    @property
    def config_dir(self) -> Path:
        """The folder of ``configuration.yaml``, where a user keeps files the hub reads (rules,
        the calendar plugin's ``calendars/``)."""
        return self._hub.config_path.parent

    @property
    def time_zone(self) -> str | None:
        """The hub's ``time_zone`` (an IANA name), or None for the machine's."""
        return self._hub.core.time_zone

    @property
    def store(self) -> "Store":
        """The hub's database, for the hub's built-in parts that extend it (the command log's anchors);
        other plugins keep their own files in ``data_dir``."""
        return self._hub.store

    @property
    def data_dir(self) -> Path:
        """A directory of the plugin's own under the hub's data directory, created on first use."""
        path = self._hub.data_dir / "plugins" / self.name
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def provide(self, name: str, service: Any) -> None:
        """Offer ``service`` to the hub's other parts under ``name`` (the embedded chain offers its
        ``ChainAccess`` as "chain"). One provider per name: a second is an error, not a silent swap."""
        current = self._hub.services.get(name)
        if current is not None and current is not service:
            raise RuntimeError(f"service {name!r} is already provided")
        self._hub.services[name] = service

    def service(self, name: str) -> Any:
        """What another part provides under ``name``, or None (no chain configured, say)."""
        return self._hub.services.get(name)

    def get_state(self, entity_id: str) -> State | None:
        return self._hub.states.get(entity_id)

    def all_states(self) -> list[State]:
        return list(self._hub.states)

    # The registries, read-only: a bridge (MQTT discovery, a peer hub) describes every entity of the
    # hub, not only its own. Entries are the registry's own objects; treat them as frozen.
    def get_entity(self, entity_id: str) -> EntityEntry | None:
        return self._hub.entities.get(entity_id)

    def all_entities(self) -> list[EntityEntry]:
        return list(self._hub.entities)

    def get_device(self, device_id: str) -> "DeviceEntry | None":
        """A device by its hub-wide id (``EntityEntry.device_id``: ``"<platform>:<id>"``)."""
        return self._hub.devices.get(device_id)

    def note(self, text: str | None) -> None:
        """Say what is wrong while the plugin keeps running (a GPIO chip missing, an adapter gone),
        or ``None`` once it is right again: ``hub plugins`` shows it beside the plugin's status."""
        info = self._hub.plugins.info.get(self.name)
        if info is not None:
            info.note = text

    # --- the plugin's own devices ----------------------------------------------------------------
    def add_device(self, device: Device, entities: list[EntitySpec]) -> dict[str, EntityHandle]:
        """Register a device and its entities; returns a handle per entity key. Adding the same device
        again (after a restart of the plugin) returns the same entity ids."""
        handles = self._hub.register_device(self.name, device, entities)
        for handle in handles.values():
            self._handles[handle.entity_id] = handle
        return handles

    def remove_device(self, device_id: str, keys: list[str] | None = None) -> list[str]:
        """Delete one of the plugin's devices (``device_id`` as given to ``add_device``) and its
        entities from the hub: they leave ``hub states`` and the API, and a later ``add_device`` of
        the same device starts afresh. With ``keys``, only those of its entities (an MQTT device
        whose discovery withdrew one of them); the device goes once none is left. Returns the
        removed entity ids."""
        removed = self._hub.remove_device(self.name, device_id, keys)
        for entity_id in removed:
            self._handles.pop(entity_id, None)
        return removed

    def entity(self, entity_id: str) -> EntityHandle:
        try:
            return self._handles[entity_id]
        except KeyError:
            raise KeyError(f"{entity_id} is not an entity of plugin {self.name!r}") from None

    @property
    def entities(self) -> list[EntityHandle]:
        return list(self._handles.values())

    def handle_for(self, entry: EntityEntry) -> EntityHandle:
        handle = self._handles.get(entry.entity_id)
        if handle is None:
            handle = self._handles[entry.entity_id] = EntityHandle(self._hub, entry)
        return handle

    # --- acting like any other caller ------------------------------------------------------------
    async def call(self, entity_id: str, command: str, args: dict | None = None, *, via: str | None = None) -> Any:
        """Send a command through the command gate. The command log names the plugin as its source
        (``plugin:<name>``); a bridge that passes on someone else's command says from where with
        ``via`` (the MQTT bridge's ``via="peer:hub2"`` logs ``mqtt:peer:hub2``)."""
        source = f"plugin:{self.name}" if via is None else f"{self.name}:{via}"
        return await self._hub.commands.call(entity_id, command, args, source=source)

    def fire(self, event_name: str, payload: dict | None = None, entity_id: str | None = None) -> None:
        self._hub.bus.publish(CustomEvent(self._hub.now(), event_name, payload, entity_id))
