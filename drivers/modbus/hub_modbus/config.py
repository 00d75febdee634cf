"""The ``modbus:`` section of ``configuration.yaml``.

Connections (a TCP host, a serial port, a TCP-to-RTU gateway) are named once and devices refer to
them, because several devices share one RS-485 line and the line, not the device, is what must carry
one transaction at a time. Every model forbids unknown keys so ``hub config check`` points at a typo
with its file, line and key instead of silently using a default.

Example::

    modbus:
      connections:
        meters: {type: rtu, port: /dev/serial/by-id/usb-FTDI_FT232R-if00-port0, baudrate: 9600}
      devices:
        - {name: Main meter, connection: meters, device_id: 1, profile: sdm120}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from hub.config import Problem, cross_checked, duplicates, valid_fields
from hub.devices.model import slugify

from hub_modbus import codec, profiles
from hub_modbus.entity_config import EntityConfig
from hub_modbus.plan import BIT_TYPES, MAX_BITS, MAX_REGISTERS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Link(_Strict):
    timeout: float = Field(1.0, gt=0, le=60, description="Seconds to wait for an answer.")
    retries: int = Field(2, ge=0, le=10, description="Extra attempts after a timeout or a busy device.")
    retry_backoff: float = Field(0.05, ge=0, le=10, description="Seconds before the first retry; doubles each time.")
    reconnect_max: float = Field(10, gt=0, le=600, description="Longest wait between attempts to reopen the link.")


class TcpConnection(_Link):
    """Modbus TCP (MBAP framing): a PLC, an inverter, or a TCP gateway in front of an RTU line."""

    type: Literal["tcp"]
    host: str = Field(min_length=1)
    port: int = Field(502, ge=1, le=65535)


class RtuOverTcpConnection(TcpConnection):
    """RTU frames (with CRC) carried over a raw TCP socket, as cheap serial servers (USR, Moxa in
    raw mode) forward them. Still one shared line behind the gateway, so still one transaction at a time."""

    type: Literal["rtu_over_tcp"]  # type: ignore[assignment]


class RtuConnection(_Link):
    """Modbus RTU on a serial port (an RS-485 adapter)."""

    type: Literal["rtu"]
    port: str = Field(min_length=1, description="A path; prefer /dev/serial/by-id/..., which survives replugging.")
    baudrate: int = Field(9600, ge=300, le=4_000_000)
    bytesize: int = Field(8, description="Always 8: RTU frames are binary (7 bits is Modbus ASCII, not spoken here).")
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    inter_frame_gap: float | None = Field(
        None, ge=0, le=1,
        description="Seconds of silence between frames; default 3.5 characters (1.75 ms above 19,200 baud).",
    )

    @field_validator("bytesize")
    @classmethod
    def _eight_bits(cls, value: int) -> int:
        # Accepted before, then every frame was garbled: RTU needs all 8 bits of each byte.
        if value != 8:
            raise ValueError("Modbus RTU frames are 8 data bits; 7 is for Modbus ASCII, which this driver "
                             "does not speak")
        return value

    @property
    def char_time(self) -> float:
        """Seconds per character on the wire: start bit, data bits, parity, stop bits."""
        return (1 + self.bytesize + (self.parity != "N") + self.stopbits) / self.baudrate

    @property
    def gap(self) -> float:
        if self.inter_frame_gap is not None:
            return self.inter_frame_gap
        # Modbus over Serial Line V1.02, 2.5.1.1: fixed 1.75 ms above 19,200 baud.
        return 0.00175 if self.baudrate > 19200 else 3.5 * self.char_time


Connection = Annotated[TcpConnection | RtuOverTcpConnection | RtuConnection, Field(discriminator="type")]


class DeviceConfig(_Strict):
    """One device (slave) on a connection: a profile, hand-written entities, or both."""

    name: str = Field(min_length=1, max_length=128)
    id: str | None = Field(
        None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Stable id (a serial number); default <connection>-<device_id>. History follows it.",
    )
    connection: str = Field(description="Name of an entry in connections.")
    device_id: int = Field(1, ge=0, le=255, description="Modbus unit/slave id (1-247 on a serial line).")
    profile: str | None = Field(None, description="A shipped register map: see `hub modbus profiles`.")
    exclude: list[str] = Field(default_factory=list, description="Keys of profile entities to leave out.")
    entities: list[EntityConfig] = Field(default_factory=list, description="Entries; one with a profile key replaces it.")
    poll_interval: float | None = Field(None, gt=0, le=86400, description="Seconds between reads; default 10.")
    max_gap: int | None = Field(None, ge=0, le=124, description="Unused registers a read may span to merge two.")
    max_registers: int | None = Field(None, ge=1, le=MAX_REGISTERS, description="Largest register read the device accepts.")
    max_bits: int | None = Field(None, ge=1, le=MAX_BITS, description="Largest coil/input read the device accepts.")
    unavailable_after: int = Field(3, ge=1, le=100, description="Failed poll cycles in a row before unavailable.")
    manufacturer: str | None = None
    model: str | None = None

    _entities: list[EntityConfig] = PrivateAttr(default_factory=list)
    _profile: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _resolve(self) -> "DeviceConfig":
        merged: dict[str, EntityConfig] = {}
        if self.profile is not None:
            try:
                self._profile = profiles.load(self.profile)
            except KeyError as exc:
                raise ValueError(exc.args[0]) from None
            unknown = set(self.exclude) - {e["key"] for e in self._profile["entities"]}
            if unknown:
                raise ValueError(f"exclude names keys the profile does not have: {', '.join(sorted(unknown))}")
            for raw in self._profile["entities"]:
                if raw["key"] not in self.exclude:
                    try:
                        merged[raw["key"]] = EntityConfig.model_validate(raw)
                    except ValidationError as exc:  # a shipped profile is broken: our bug, said plainly
                        raise ValueError(f"profile {self.profile} entity {raw['key']}: {exc}") from None
        elif self.exclude:
            raise ValueError("exclude only applies to a profile")
        seen: set[str] = set()
        for entity in self.entities:
            if entity.key in seen:
                raise ValueError(f"entity key {entity.key!r} is used twice")
            seen.add(entity.key)
            merged[entity.key] = entity
        if not merged:
            raise ValueError("a device needs a profile or at least one entity")
        self._entities = list(merged.values())
        return self

    @property
    def resolved(self) -> list[EntityConfig]:
        return self._entities

    @property
    def profile_data(self) -> dict:
        """The loaded profile (maker, model, limits), empty without one."""
        return self._profile

    def setting(self, name: str, default):
        """A device-wide setting: the user's value, else the profile's, else the default."""
        value = getattr(self, name)
        if value is None:
            value = self._profile.get(name)
        return default if value is None else value


class ModbusConfig(_Strict):
    connections: dict[str, Connection] = Field(description="Named links: tcp, rtu or rtu_over_tcp.")
    devices: list[DeviceConfig] = Field(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _references(cls, data, handler) -> "ModbusConfig":
        return cross_checked(data, handler, _problems, cls.__name__)


def _problems(data, config: ModbusConfig | None) -> list[Problem]:
    """What no single entry can check: references between entries and collisions across them. Runs
    on every entry whose fields validate, so one pass of ``hub config check`` lists every mistake."""
    if not isinstance(data, dict) or not isinstance(data.get("devices"), list):
        return []
    links = data.get("connections") if isinstance(data.get("connections"), dict) else None
    problems: list[Problem] = []
    units, ids, names, ports = [], [], [], []
    for name, link in (links or {}).items():
        if isinstance(link, dict) and link.get("type") == "rtu" and "port" in valid_fields(RtuConnection, link, ["port"]):
            ports.append((repr(link["port"]), ("connections", name, "port"), f"connections.{name}"))
    for index, raw in enumerate(data["devices"]):
        fields = valid_fields(DeviceConfig, raw, ["name", "id", "connection", "device_id"])
        here = ("devices", index)
        label = f"devices[{index}]" + (f" ({fields['name']})" if "name" in fields else "")
        connection, unit = fields.get("connection"), fields.get("device_id")
        if connection is not None and links is not None and connection not in links:
            known = ", ".join(sorted(map(str, links))) or "none"
            problems.append((here + ("connection",), f"connection {connection!r} is not defined; defined: {known}"))
            connection = None
        if "name" in fields:
            names.append((repr(slugify(fields["name"])), here + ("name",), label))
        if connection is None or unit is None:
            continue
        link = links[connection]
        if isinstance(link, dict) and link.get("type") == "rtu" and not 1 <= unit <= 247:
            problems.append((here + ("device_id",), f"device_id {unit} cannot be polled on a serial line: "
                             "ids there are 1-247 (0 is broadcast, which no device answers)"))
        units.append((f"{unit} on {connection}", here + ("device_id",), label))
        # The default id is <connection>-<device_id>: alike only where the device_id is, or an
        # explicit id takes it.
        ids.append((repr(fields.get("id") or f"{connection}-{unit}"), here + ("id" if fields.get("id") else "device_id",), label))
    problems += duplicates(ports, "serial port")
    unit_problems = duplicates(units, "device_id")
    problems += unit_problems
    reported = {loc for loc, _ in unit_problems}
    problems += [(loc, message) for loc, message in duplicates(ids, "device id") if loc not in reported]
    # Entity ids are made from the device name: two devices with one name would get the same ids and
    # be told apart only by a "_2" suffix that depends on the order they were first registered in.
    named_twice = duplicates(names, "name (as entity ids spell it)")
    problems += named_twice
    problems += _entity_problems(data["devices"], config, {loc[1] for loc, _ in named_twice})
    return problems


def _entity_problems(raw_devices: list, config: ModbusConfig | None, named_twice: set[int]) -> list[Problem]:
    """Entities that would collide in entity ids across devices, or not fit one read of their device.
    Devices that share a name are left out of the collisions: their names are the one mistake."""
    problems: list[Problem] = []
    taken = []
    for index, raw in enumerate(raw_devices):
        device = _validated_device(raw, index, config)
        if device is None:
            continue
        own = {e.get("key"): j for j, e in enumerate(raw.get("entities") or []) if isinstance(e, dict)}
        for entity in device.resolved:
            mine = entity.key in own
            where = ("devices", index, "entities", own[entity.key]) if mine else ("devices", index)
            for key, message in _run_time_problems(entity, device):
                # A profile entry's mistake is reported at the device, naming the entry.
                at = where + ((key,) if key else ())
                problems.append((at, message) if mine else (where, f"profile entity {entity.key}: {message}"))
            try:
                entity_id = _entity_id(entity, device.name)
            except ValueError:
                continue  # reported by _run_time_problems
            if index not in named_twice:
                taken.append((repr(entity_id), where, f"devices[{index}] ({device.name}) entity {entity.key}"))
        limit = device.setting("max_registers", MAX_REGISTERS)
        wide = [e.key for e in device.resolved
                if e.register_type not in BIT_TYPES and codec.width(e.data_type, e.count) > limit]
        if wide:  # the read planner could not fit them in one request: the driver would fail to start
            where = ("devices", index) + (("max_registers",) if device.max_registers is not None else ())
            problems.append((where, f"max_registers {limit} is less than the registers of {', '.join(wide)}"))
    return problems + duplicates(taken, "entity id")


def _run_time_problems(entity: EntityConfig, device: DeviceConfig) -> list[tuple[str | None, str]]:
    """(key, message) for what passes the entry's own rules but would fail once the driver runs:
    when it builds the entity, plans the reads, reads or writes."""
    problems = []
    width = codec.width(entity.data_type, entity.count)
    last = entity.address + width - 1
    if last > 65535:
        problems.append(("address", f"{width} registers from {entity.address} end at {last}, past the last "
                         "address, 65535"))
    if entity.register_type not in BIT_TYPES and entity.capability == "switch":
        for key in ("on_value", "off_value"):
            try:
                codec.encode(getattr(entity, key), entity.data_type)
            except ValueError as exc:
                problems.append((key, str(exc)))
    if entity.capability == "climate":
        if entity.min_temp > entity.max_temp:
            problems.append(("min_temp", f"min_temp {entity.min_temp:g} is above max_temp {entity.max_temp:g}"))
        for key in ("min_temp", "max_temp"):
            try:
                codec.encode(codec.unscaled(getattr(entity, key), entity.scale, entity.offset), entity.data_type)
            except ValueError as exc:
                problems.append((key, f"a set-point of {getattr(entity, key):g} cannot be written: {exc} "
                                 f"(scale {entity.scale:g})"))
    try:
        _entity_id(entity, device.name)
    except ValueError as exc:  # the hub's own rules for an entity (device_class of the capability...)
        messages = [e["msg"].removeprefix("Value error, ") for e in exc.errors()] if isinstance(exc, ValidationError) else [str(exc)]
        problems += [("device_class" if "device_class" in message else None, message) for message in messages]
    return problems


def _validated_device(raw, index: int, config: ModbusConfig | None) -> DeviceConfig | None:
    if config is not None:
        return config.devices[index]
    try:
        return DeviceConfig.model_validate(raw)
    except ValidationError:
        return None  # its own errors are reported already


def _entity_id(entity: EntityConfig, device_name: str) -> str:
    """The entity id the registry gives a new entity (before any ``_2``)."""
    from hub_modbus.entities import spec

    described = spec(entity, device_name)
    return f"{described.capability}.{slugify(described.object_id or described.name)}"


def device_key(device: DeviceConfig) -> str:
    return device.id or f"{device.connection}-{device.device_id}"
