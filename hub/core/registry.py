"""Device and entity registries.

The registry is what makes an entity's identity outlive the driver's process: a driver names an
entity by (device id, key); the registry hands out the ``entity_id`` once and remembers it, so history,
rules and tokens of the market keep pointing at the same thing after a restart or a rename.
Persistence goes through a callback so the registry stays free of storage and easy to test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from hub.devices.model import Device, EntitySpec, slugify

Persist = Callable[[dict], None]
PersistMany = Callable[[list[dict]], None]


def _noop(_: object) -> None:
    pass


@dataclass
class DeviceEntry:
    id: str  # "<platform>:<device id>", unique across plugins
    platform: str
    name: str
    manufacturer: str | None = None
    model: str | None = None
    sw_version: str | None = None
    connection: str | None = None
    created_at: float = 0.0
    public_key: str | None = None  # hex, declared by a driver whose device holds its own key
    holds_key: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EntityEntry:
    entity_id: str
    unique_id: str  # "<device id>:<key>", unique within the platform
    platform: str
    device_id: str
    capability: str
    name: str
    key: str
    device_class: str | None = None
    unit: str | None = None
    options: dict = field(default_factory=dict)
    created_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class DeviceRegistry:
    def __init__(self, persist: Persist = _noop) -> None:
        self._devices: dict[str, DeviceEntry] = {}
        self._persist = persist

    def load(self, rows: list[dict]) -> None:
        for row in rows:
            fields = {k: row.get(k) for k in DeviceEntry.__dataclass_fields__ if k in row}
            entry = DeviceEntry(**fields)
            self._devices[entry.id] = entry

    def persist_to(self, persist: Persist) -> None:
        self._persist = persist

    def register(self, platform: str, device: Device, now: float) -> DeviceEntry:
        device_id = f"{platform}:{device.id}"
        old = self._devices.get(device_id)
        entry = DeviceEntry(
            id=device_id,
            platform=platform,
            name=device.name,
            manufacturer=device.manufacturer,
            model=device.model,
            sw_version=device.sw_version,
            connection=device.connection,
            created_at=old.created_at if old else now,
            public_key=device.public_key,
            holds_key=device.holds_key,
        )
        if entry != old:
            self._devices[device_id] = entry
            self._persist(entry.as_dict())
        return entry

    def get(self, device_id: str) -> DeviceEntry | None:
        return self._devices.get(device_id)

    def remove(self, device_id: str) -> DeviceEntry | None:
        """Forget a device (its owner deleted it); the caller removes its entities and stored rows."""
        return self._devices.pop(device_id, None)

    def __iter__(self) -> Iterator[DeviceEntry]:
        return iter(list(self._devices.values()))

    def __len__(self) -> int:
        return len(self._devices)


class EntityRegistry:
    def __init__(self, persist: PersistMany = _noop) -> None:
        self._entities: dict[str, EntityEntry] = {}
        self._by_unique: dict[tuple[str, str], str] = {}
        self._persist = persist

    def load(self, rows: list[dict]) -> None:
        for row in rows:
            fields = {k: row[k] for k in EntityEntry.__dataclass_fields__ if k in row}
            entry = EntityEntry(**fields)
            self._entities[entry.entity_id] = entry
            self._by_unique[(entry.platform, entry.unique_id)] = entry.entity_id

    def persist_to(self, persist: PersistMany) -> None:
        self._persist = persist

    def register_all(
        self, platform: str, device: DeviceEntry, device_local_id: str, specs: list[EntitySpec], now: float
    ) -> list[tuple[EntityEntry, bool]]:
        """Register a device's entities; returns each entry and whether it is new. Changed entries
        are persisted together, in one call."""
        results, changed = [], []
        for spec in specs:
            is_new = self.get_unique(platform, f"{device_local_id}:{spec.key}") is None
            entry, was_changed = self._register(platform, device, device_local_id, spec, now)
            results.append((entry, is_new))
            if was_changed:
                changed.append(entry.as_dict())
        if changed:
            self._persist(changed)
        return results

    def register(self, platform: str, device: DeviceEntry, device_local_id: str, spec: EntitySpec, now: float) -> EntityEntry:
        return self.register_all(platform, device, device_local_id, [spec], now)[0][0]

    def _register(
        self, platform: str, device: DeviceEntry, device_local_id: str, spec: EntitySpec, now: float
    ) -> tuple[EntityEntry, bool]:
        unique_id = f"{device_local_id}:{spec.key}"
        name = spec.name or f"{device.name} {spec.key}"
        existing_id = self._by_unique.get((platform, unique_id))
        old = self._entities.get(existing_id) if existing_id else None
        entity_id = existing_id or self._new_entity_id(spec.capability, spec.object_id or name)
        entry = EntityEntry(
            entity_id=entity_id,
            unique_id=unique_id,
            platform=platform,
            device_id=device.id,
            capability=spec.capability,
            name=name,
            key=spec.key,
            device_class=spec.device_class,
            unit=spec.unit,
            options=dict(spec.options),
            created_at=old.created_at if old else now,
        )
        if entry == old:
            return entry, False
        self._entities[entity_id] = entry
        self._by_unique[(platform, unique_id)] = entity_id
        return entry, True

    def _new_entity_id(self, capability: str, name: str) -> str:
        base = f"{capability}.{slugify(name)}"
        candidate, n = base, 2
        while candidate in self._entities:
            candidate = f"{base}_{n}"
            n += 1
        return candidate

    def get(self, entity_id: str) -> EntityEntry | None:
        return self._entities.get(entity_id)

    def get_unique(self, platform: str, unique_id: str) -> EntityEntry | None:
        entity_id = self._by_unique.get((platform, unique_id))
        return self._entities.get(entity_id) if entity_id else None

    def for_platform(self, platform: str) -> list[EntityEntry]:
        return [e for e in self._entities.values() if e.platform == platform]

    def for_device(self, device_id: str) -> list[EntityEntry]:
        return [e for e in self._entities.values() if e.device_id == device_id]

    def remove(self, entity_id: str) -> EntityEntry | None:
        """Forget an entity: a device added again later gets fresh entities, as in Home Assistant
        after a device is deleted."""
        entry = self._entities.pop(entity_id, None)
        if entry is not None:
            self._by_unique.pop((entry.platform, entry.unique_id), None)
        return entry

    def __iter__(self) -> Iterator[EntityEntry]:
        return iter(list(self._entities.values()))

    def __len__(self) -> int:
        return len(self._entities)

    def __contains__(self, entity_id: str) -> bool:
        return entity_id in self._entities
