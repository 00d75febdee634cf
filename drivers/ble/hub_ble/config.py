"""The ``ble:`` section of ``configuration.yaml`` (and the body of ``POST /api/plugins/ble/devices``).

Every model forbids unknown keys, so ``hub config check`` names a typo with its file, line and key.
A bind key is a ``SecretStr``: its repr is ``'**********'``, so neither a log line nor a traceback
that shows the configuration prints it, and no validator message here repeats the value.

Example::

    ble:
      adapter: hci0
      availability: 900
      devices:
        - address: "A4:C1:38:12:34:56"
          name: Kitchen thermometer
          type: bthome
          bind_key: "231d39c1d7cc1ab1aee224cd096db932"
        - address: "F0:00:00:00:00:02"
          name: Desk LED
          type: lbs
"""

from __future__ import annotations

import re
import struct
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

MAC = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PASSIVE_TYPES = ("bthome", "xiaomi")
GATT_TYPES = ("lbs", "gatt")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def normal_address(text: str) -> str:
    """``a4:c1:38:12:34:56``, ``A4-C1-38-12-34-56`` or ``A4C138123456`` alike: BlueZ writes upper case
    with colons, and that is what advertisements are matched against."""
    raw = text.strip().upper().replace("-", "").replace(":", "")
    if not re.fullmatch(r"[0-9A-F]{12}", raw):
        raise ValueError(f"{text!r} is not a Bluetooth address (six hex bytes, e.g. A4:C1:38:12:34:56)")
    return ":".join(raw[i:i + 2] for i in range(0, 12, 2))


def _uuid(value: str) -> str:
    text = value.strip().lower()
    if re.fullmatch(r"[0-9a-f]{4}", text):  # a 16-bit UUID, as device datasheets give them
        text = f"0000{text}-0000-1000-8000-00805f9b34fb"
    if not UUID.match(text):
        raise ValueError("not a UUID (16-bit like ffe1, or 128-bit like 0000ffe1-0000-1000-8000-00805f9b34fb)")
    return text


def _hex(value: str) -> str:
    text = value.strip().lower().removeprefix("0x").replace(" ", "")
    if not text or len(text) % 2 or not re.fullmatch(r"[0-9a-f]*", text):
        raise ValueError("not hex bytes (an even number of hex digits, e.g. '01' or 'a0ff')")
    return text


class Decode(_Strict):
    format: str = Field("<B", description="A struct format of the characteristic's value; its first field is the state.")
    scale: float = Field(1.0, description="Multiplies a numeric first field (a sensor's raw value).")

    @field_validator("format")
    @classmethod
    def _struct(cls, value: str) -> str:
        try:
            struct.calcsize(value)
        except struct.error as exc:
            raise ValueError(f"not a struct format: {exc}") from None
        return value


class GattEntity(_Strict):
    key: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    name: str | None = None
    capability: Literal["switch", "sensor", "binary_sensor"]
    device_class: str | None = None
    unit: str | None = None
    service: str
    characteristic: str
    decode: Decode = Decode()
    notify: bool = Field(False, description="Subscribe to the characteristic instead of reading it once on connect.")
    commands: dict[Literal["turn_on", "turn_off"], str] = Field(
        default_factory=dict, description="Hex bytes written to the characteristic for each command.")

    @field_validator("service", "characteristic")
    @classmethod
    def _uuids(cls, value: str) -> str:
        return _uuid(value)

    @field_validator("commands")
    @classmethod
    def _commands_hex(cls, value: dict[str, str]) -> dict[str, str]:
        return {name: _hex(text) for name, text in value.items()}

    @model_validator(mode="after")
    def _switch_has_commands(self) -> "GattEntity":
        if self.capability == "switch" and set(self.commands) != {"turn_on", "turn_off"}:
            raise ValueError("a switch needs commands.turn_on and commands.turn_off (hex bytes to write)")
        if self.capability != "switch" and self.commands:
            raise ValueError(f"commands: a {self.capability} takes no commands")
        return self


class BleDevice(_Strict):
    address: str = Field(description="The device's Bluetooth address, A4:C1:38:12:34:56.")
    name: str | None = Field(None, min_length=1, max_length=128)
    type: Literal["bthome", "xiaomi", "lbs", "gatt"]
    bind_key: SecretStr | None = Field(
        None, description="The encryption key of an encrypted BTHome (32 hex digits) or Xiaomi (24 or 32) device.")
    entities: list[GattEntity] = Field(default_factory=list, description="Only for type gatt.")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return normal_address(value)

    @field_validator("bind_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value().strip().lower()
        # The message never repeats the key: it is a secret, and the log and `hub config check` show it.
        if not re.fullmatch(r"[0-9a-f]*", text):
            raise ValueError("a bind key is hex digits only")
        if len(text) not in (24, 32):
            raise ValueError(f"a bind key is 32 hex digits (24 for an old Xiaomi MiBeacon), not {len(text)}")
        return SecretStr(text)

    @model_validator(mode="after")
    def _fits_type(self) -> "BleDevice":
        if self.bind_key is not None:
            if self.type not in PASSIVE_TYPES:
                raise ValueError(f"bind_key: a {self.type} device has no bind key")
            if self.type == "bthome" and len(self.bind_key.get_secret_value()) != 32:
                raise ValueError("bind_key: a BTHome bind key is 32 hex digits")
        if self.type == "gatt" and not self.entities:
            raise ValueError("entities: a gatt device needs at least one entity (service, characteristic, decode)")
        if self.type != "gatt" and self.entities:
            raise ValueError(f"entities: only a gatt device lists its entities; a {self.type} device's are known")
        keys = [e.key for e in self.entities]
        if len(set(keys)) != len(keys):
            raise ValueError("entities: each key appears once")
        return self

    @property
    def label(self) -> str:
        return self.name or self.address

    @property
    def passive(self) -> bool:
        return self.type in PASSIVE_TYPES

    def public(self) -> dict:
        """What the API and the device file show: the bind key only as whether there is one."""
        out = self.model_dump(mode="json", exclude={"bind_key"}, exclude_defaults=True)
        out["address"], out["type"] = self.address, self.type
        out["encrypted"] = self.bind_key is not None
        return out


class BleConfig(_Strict):
    adapter: str = Field("hci0", pattern=r"^hci[0-9]+$", description="The BlueZ adapter (hciconfig, bluetoothctl list).")
    availability: float = Field(900, gt=0, description="Seconds without an advertisement before a passive sensor is unavailable.")
    scanning: Literal["auto", "active", "passive"] = Field(
        "auto", description="auto: passive where BlueZ offers advertisement monitors, else active.")
    reconnect_max: float = Field(60, gt=0, le=3600, description="Longest wait between attempts to reconnect a GATT device.")
    devices: list[BleDevice] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> "BleConfig":
        seen: set[str] = set()
        for device in self.devices:
            if device.address in seen:
                raise ValueError(f"devices: {device.address} is listed twice")
            seen.add(device.address)
        return self
