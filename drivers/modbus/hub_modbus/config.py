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

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from hub_modbus import profiles
from hub_modbus.entity_config import EntityConfig
from hub_modbus.plan import MAX_BITS, MAX_REGISTERS


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
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    inter_frame_gap: float | None = Field(
        None, ge=0, le=1,
        description="Seconds of silence between frames; default 3.5 characters (1.75 ms above 19,200 baud).",
    )

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

    @model_validator(mode="after")
    def _references(self) -> "ModbusConfig":
        ids: set[str] = set()
        units: set[tuple[str, int]] = set()
        for index, device in enumerate(self.devices):
            where = f"devices[{index}] ({device.name})"
            if device.connection not in self.connections:
                known = ", ".join(sorted(self.connections)) or "none"
                raise ValueError(f"{where}: connection {device.connection!r} is not defined; defined: {known}")
            if (device.connection, device.device_id) in units:
                raise ValueError(f"{where}: device_id {device.device_id} is already used on {device.connection}")
            units.add((device.connection, device.device_id))
            stable = device_key(device)
            if stable in ids:
                raise ValueError(f"{where}: id {stable!r} is already used")
            ids.add(stable)
        return self


def device_key(device: DeviceConfig) -> str:
    return device.id or f"{device.connection}-{device.device_id}"
