"""The capabilities: each entity's state shape and the commands it accepts.

Modelled on Home Assistant's entity domains (so an MQTT-discovery bridge maps one to one), with one
addition from the Ruff whitepaper: ``meter``, a cumulative counter that contracts bill against.
Command argument models forbid unknown fields, so a typo (``brigthness``) is an error naming the field
instead of a silently ignored argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Args(BaseModel):
    """Base of every command's arguments: unknown keys are rejected, never ignored."""

    model_config = ConfigDict(extra="forbid")


class NoArgs(Args):
    pass


@dataclass(frozen=True)
class CommandSpec:
    name: str
    args: type[Args]
    description: str


@dataclass(frozen=True)
class Capability:
    """``states`` lists the allowed state values of an enumerated capability; ``numeric`` ones carry a
    number (or ``None`` before the first reading). ``attributes`` documents the attributes a driver is
    expected to set."""

    name: str
    description: str
    numeric: bool = False
    states: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    device_classes: frozenset[str] = frozenset()
    default_units: dict[str, str] = field(default_factory=dict)
    commands: dict[str, CommandSpec] = field(default_factory=dict)

    def command(self, name: str) -> CommandSpec | None:
        return self.commands.get(name)

    def check_value(self, value: object) -> None:
        """Drivers are trusted code, but a wrong state shape would confuse every consumer at once,
        so it is refused at the source with a message that names the entity's capability."""
        if value is None:
            return
        if self.numeric:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{self.name} state must be a number, got {value!r}")
        elif self.states and value not in self.states:
            raise ValueError(f"{self.name} state must be one of {', '.join(self.states)}; got {value!r}")


def _commands(*specs: tuple[str, type[Args], str]) -> dict[str, CommandSpec]:
    return {name: CommandSpec(name, args, doc) for name, args, doc in specs}


# --- argument models -------------------------------------------------------------------------------


Channel = Annotated[int, Field(ge=0, le=255)]


class LightOnArgs(Args):
    brightness: int | None = Field(default=None, ge=0, le=255, description="0-255")
    rgb_color: tuple[Channel, Channel, Channel] | None = Field(default=None, description="[r, g, b], each 0-255")
    color_temp_kelvin: int | None = Field(default=None, ge=1000, le=12000)
    transition: float | None = Field(default=None, ge=0, le=300, description="seconds")


#: Marks an argument that must never be kept or shown (the command log stores "***"; see
#: hub.core.redact). Plain ``str`` rather than ``SecretStr`` so drivers read it like any other field.
SECRET = {"secret": True, "writeOnly": True}


class LockArgs(Args):
    code: str | None = Field(default=None, max_length=32, json_schema_extra=SECRET)


class CoverPositionArgs(Args):
    position: int = Field(ge=0, le=100, description="0 closed, 100 open")


class SetTemperatureArgs(Args):
    # Wide on purpose: a boiler or a kiln set-point is a climate entity too; the device's own range
    # (min_temp/max_temp) is the driver's to enforce, with CommandRefused.
    temperature: float = Field(ge=-100, le=1000, description="target, in the entity's unit")


HvacMode = Literal["off", "heat", "cool", "heat_cool", "auto", "dry", "fan_only"]


class SetHvacModeArgs(Args):
    hvac_mode: HvacMode


# --- device classes --------------------------------------------------------------------------------

SENSOR_UNITS = {
    "temperature": "°C",
    "humidity": "%",
    "power": "W",
    "energy": "kWh",
    "voltage": "V",
    "current": "A",
    "frequency": "Hz",
    "pressure": "hPa",
    "illuminance": "lx",
    "battery": "%",
    "power_factor": "",
    "apparent_power": "VA",
    "reactive_power": "var",
    "co2": "ppm",
    "pm25": "µg/m³",
    "signal_strength": "dBm",
    "gas": "m³",
    "water": "L",
    "duration": "s",
    "timestamp": "s",  # unix seconds: an alarm clock's setting, a device's next run
    "speed": "m/s",
    "distance": "m",
}

METER_UNITS = {"energy": "kWh", "water": "L", "gas": "m³", "count": "", "duration": "s"}

BINARY_CLASSES = frozenset(
    {"motion", "occupancy", "door", "window", "opening", "moisture", "smoke", "presence", "problem",
     "connectivity", "plug", "power", "vibration", "tamper", "battery"}
)

SWITCH_COMMANDS = _commands(
    ("turn_on", NoArgs, "Switch on."),
    ("turn_off", NoArgs, "Switch off."),
    ("toggle", NoArgs, "Switch to the other state."),
)

CAPABILITIES: dict[str, Capability] = {
    cap.name: cap
    for cap in (
        Capability(
            "switch",
            "Something that is on or off: a relay, a smart plug.",
            states=("on", "off"),
            device_classes=frozenset({"outlet", "switch"}),
            commands=SWITCH_COMMANDS,
        ),
        Capability(
            "light",
            "A light, optionally dimmable and coloured.",
            states=("on", "off"),
            attributes=("brightness", "rgb_color", "color_temp_kelvin"),
            commands=_commands(
                ("turn_on", LightOnArgs, "Switch on, optionally with brightness or colour."),
                ("turn_off", NoArgs, "Switch off."),
                ("toggle", NoArgs, "Switch to the other state."),
            ),
        ),
        Capability(
            "sensor",
            "A numeric reading with a unit.",
            numeric=True,
            attributes=("unit", "device_class", "state_class"),
            device_classes=frozenset(SENSOR_UNITS),
            default_units=SENSOR_UNITS,
        ),
        Capability(
            "binary_sensor",
            "A two-state reading: motion, door open, leak.",
            states=("on", "off"),
            device_classes=BINARY_CLASSES,
        ),
        Capability(
            "button",
            "A momentary action; its state is the time it was last pressed.",
            numeric=True,
            commands=_commands(("press", NoArgs, "Press it.")),
        ),
        Capability(
            "lock",
            "A lock.",
            states=("locked", "unlocked", "locking", "unlocking", "jammed", "open"),
            commands=_commands(
                ("lock", LockArgs, "Lock."),
                ("unlock", LockArgs, "Unlock."),
                ("open", LockArgs, "Unlatch the door, if the lock can."),
            ),
        ),
        Capability(
            "cover",
            "A blind, shutter, garage door or valve.",
            states=("open", "closed", "opening", "closing", "stopped"),
            attributes=("position",),
            device_classes=frozenset({"blind", "shutter", "curtain", "garage", "gate", "door", "window", "valve"}),
            commands=_commands(
                ("open", NoArgs, "Open fully."),
                ("close", NoArgs, "Close fully."),
                ("stop", NoArgs, "Stop moving."),
                ("set_position", CoverPositionArgs, "Move to a position, 0 closed to 100 open."),
            ),
        ),
        Capability(
            "climate",
            "A thermostat or air conditioner; the state is its HVAC mode.",
            states=("off", "heat", "cool", "heat_cool", "auto", "dry", "fan_only"),
            attributes=("current_temperature", "target_temperature", "hvac_action", "min_temp", "max_temp", "unit"),
            commands=_commands(
                ("set_temperature", SetTemperatureArgs, "Set the target temperature."),
                ("set_hvac_mode", SetHvacModeArgs, "Set the mode: off, heat, cool, auto ..."),
                ("turn_on", NoArgs, "Resume the last mode other than off."),
                ("turn_off", NoArgs, "Switch off."),
            ),
        ),
        Capability(
            "meter",
            "A cumulative counter that only rises (energy, water, uses): what contracts bill against.",
            numeric=True,
            attributes=("unit", "device_class"),
            device_classes=frozenset(METER_UNITS),
            default_units=METER_UNITS,
        ),
    )
}


def get_capability(name: str) -> Capability:
    try:
        return CAPABILITIES[name]
    except KeyError:
        raise KeyError(f"unknown capability {name!r}; known: {', '.join(sorted(CAPABILITIES))}") from None
