"""The capabilities: each entity's state shape and the commands it accepts.

Modelled on Home Assistant's entity domains (so an MQTT-discovery bridge maps one to one), with one
addition from the Ruff whitepaper: ``meter``, a cumulative counter that contracts bill against.
Command argument models forbid unknown fields, so a typo (``brigthness``) is an error naming the field
instead of a silently ignored argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError


class Args(BaseModel):
    """Base of every command's arguments: unknown keys are rejected, never ignored."""

    model_config = ConfigDict(extra="forbid")


class NoArgs(Args):
    pass


@dataclass(frozen=True)
class CommandSpec:
    """``bind`` builds one entity's own argument model from its options (a number's range, a
    select's options), so a value that entity cannot take is refused at the command gate, with the
    field named, like any other bad argument. ``via`` names the command the hub carries this one out
    with (``select_next`` through ``select_option``): ``derive(options, current state, args)``
    computes that command's arguments, so a driver implements only the base command."""

    name: str
    args: type[Args]
    description: str
    bind: Callable[[dict], type[Args]] | None = None
    via: str | None = None
    derive: Callable[[dict, Any, Args], Args] | None = None

    def args_for(self, options: dict) -> type[Args]:
        return self.bind(options) if self.bind is not None else self.args


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
    #: The model an entity's ``options`` must satisfy (a number's range, a select's options); they
    #: are also shown as state attributes, as Home Assistant does.
    options_model: type[BaseModel] | None = None
    #: The state is one of the entity's ``options`` (a select), not of a fixed list.
    state_from_options: bool = False

    def command(self, name: str) -> CommandSpec | None:
        return self.commands.get(name)

    def check_value(self, value: object, options: dict | None = None) -> None:
        """Drivers are trusted code, but a wrong state shape would confuse every consumer at once,
        so it is refused at the source with a message that names the entity's capability."""
        if value is None:
            return
        if self.numeric:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{self.name} state must be a number, got {value!r}")
        elif self.state_from_options:
            allowed = (options or {}).get("options") or []
            if value not in allowed:
                raise ValueError(f"{self.name} state must be one of its options "
                                 f"{', '.join(map(str, allowed))}; got {value!r}")
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


@lru_cache(maxsize=512)
def _temperature_args(low: float, high: float) -> type[Args]:
    class BoundSetTemperatureArgs(SetTemperatureArgs):
        temperature: float = Field(ge=low, le=high, description=f"target, {low:g} to {high:g}")

    return BoundSetTemperatureArgs


def _bind_temperature(options: dict) -> type[Args]:
    """A climate entity that declares ``min_temp`` and ``max_temp`` gets its set-point checked at the
    gate like a number's value, so a rule asking a thermostat for 40 °C is refused when it loads."""
    low, high = options.get("min_temp"), options.get("max_temp")
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) and low <= high:
        return _temperature_args(float(low), float(high))
    return SetTemperatureArgs


HvacMode = Literal["off", "heat", "cool", "heat_cool", "auto", "dry", "fan_only"]


class SetHvacModeArgs(Args):
    hvac_mode: HvacMode


# --- light colours ---------------------------------------------------------------------------------

#: The colour modes a light can have, by Home Assistant's names (a colour asked as hs or xy reaches a
#: hub light as ``rgb_color``; rgb, hs and xy imply brightness, as in HA).
LightColorMode = Literal["onoff", "brightness", "color_temp", "rgb", "hs", "xy"]
COLOUR_MODES = frozenset({"rgb", "hs", "xy"})


class LightOptions(BaseModel):
    """What a light can do, when its driver knows (Home Assistant's names, shown as the state
    attributes of those names): its ``supported_color_modes`` and its colour temperature range.
    Without them the hub sends what it is asked and the driver refuses what the lamp cannot do."""

    model_config = ConfigDict(extra="forbid")
    supported_color_modes: list[LightColorMode] | None = Field(default=None, min_length=1, max_length=6)
    min_color_temp_kelvin: int | None = Field(default=None, ge=1000, le=12000)
    max_color_temp_kelvin: int | None = Field(default=None, ge=1000, le=12000)


def kelvin_to_rgb(kelvin: float) -> tuple[int, int, int]:
    """A colour temperature as the RGB of a lamp that has no white channel: Home Assistant's
    ``color_temperature_to_rgb`` (Tanner Helland's fit of the black-body curve)."""
    import math

    t = min(max(kelvin, 1000), 40000) / 100

    def clamp(value: float) -> int:
        return round(min(max(value, 0), 255))

    red = 255 if t <= 66 else clamp(329.698727446 * math.pow(t - 60, -0.1332047592))
    green = clamp(99.4708025861 * math.log(t) - 161.1195681661 if t <= 66
                  else 288.1221695283 * math.pow(t - 60, -0.0755148492))
    blue = 255 if t >= 66 else 0 if t <= 19 else clamp(138.5177312231 * math.log(t - 10) - 305.0447927307)
    return red, green, blue


def _derive_light_on(options: dict, state: Any, args: "LightOnArgs") -> "LightOnArgs":
    """A colour temperature for a lamp that has colour but no white channel is sent as its RGB, as
    Home Assistant's light service does, so a scene or rule written for a tunable-white lamp works on
    an RGB one. Anything else the lamp cannot do still reaches its driver, which says why it refuses."""
    modes = options.get("supported_color_modes") or ()
    if (args.color_temp_kelvin is not None and args.rgb_color is None and "color_temp" not in modes
            and COLOUR_MODES.intersection(modes)):
        return args.model_copy(update={"color_temp_kelvin": None, "rgb_color": kelvin_to_rgb(args.color_temp_kelvin)})
    return args


# --- number and select -----------------------------------------------------------------------------


class NumberOptions(BaseModel):
    """A number entity's range, in the entity's unit. Defaults are Home Assistant's (0 to 100 by 1);
    ``mode`` is a hint to a user interface: a box to type in, a slider, or its choice."""

    model_config = ConfigDict(extra="forbid")

    min: float = Field(0, allow_inf_nan=False)
    max: float = Field(100, allow_inf_nan=False)
    step: float = Field(1, gt=0, allow_inf_nan=False)
    mode: Literal["auto", "box", "slider"] = "auto"

    @model_validator(mode="after")
    def _ordered(self) -> "NumberOptions":
        if self.min >= self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        return self


class SetValueArgs(Args):
    value: float = Field(allow_inf_nan=False, description="in the entity's unit, within min..max on a step")

    @field_validator("value", mode="before")
    @classmethod
    def _not_a_bool(cls, value: Any) -> Any:
        # pydantic reads true as 1.0; a rule that passes a switch's state by mistake must not set 1.
        if isinstance(value, bool):
            raise PydanticCustomError("float_type", "Input should be a number, not true or false")
        return value


@lru_cache(maxsize=512)
def _number_args(low: float, high: float, step: float) -> type[Args]:
    class BoundSetValueArgs(SetValueArgs):
        value: float = Field(ge=low, le=high, allow_inf_nan=False, description=f"{low:g} to {high:g}, step {step:g}")

        @field_validator("value")
        @classmethod
        def _on_a_step(cls, value: float) -> float:
            # Steps count from min (5, 5.5, 6 ...), with room for binary fractions (0.1 * 3).
            n = (value - low) / step
            if abs(n - round(n)) > 1e-6:
                raise PydanticCustomError(
                    "step", "Input should be {min} plus a multiple of {step}", {"min": f"{low:g}", "step": f"{step:g}"}
                )
            return value

    return BoundSetValueArgs


def _bind_number(options: dict) -> type[Args]:
    o = NumberOptions.model_validate(options)
    return _number_args(o.min, o.max, o.step)


def check_option_names(names: Any) -> None:
    """YAML reads an unquoted ``off``, ``on``, ``yes`` or ``no`` as a boolean, and ``off`` is the first
    option of many a mode select: say so, rather than "Input should be a valid string"."""
    for name in names:
        if isinstance(name, bool):
            raise ValueError(f"an option was read as {str(name).lower()}: YAML turns unquoted off, on, yes and "
                             f"no into true and false; quote it ('off')")


NUMBER_KEYS = ("min", "max", "step", "mode")


def check_entity_options(capability: str, config: Any) -> dict:
    """A driver's entity configuration (``config``, with attributes ``min``, ``max``, ``step``,
    ``mode`` and ``options``) names a number's range or a select's options beside its capability:
    one that names them for another capability holds a mistake the user must see, and a range must
    satisfy :class:`NumberOptions`, checked in ``hub config check`` rather than when the hub starts.
    Every driver's config check calls this; it returns the number's options as the model takes them."""
    number = {k: getattr(config, k) for k in NUMBER_KEYS if getattr(config, k) is not None}
    if capability != "number" and number:
        verb = "is" if len(number) == 1 else "are"
        raise ValueError(f"{', '.join(number)} {verb} for a number, not a {capability}")
    if capability != "select" and config.options is not None:
        raise ValueError(f"options are for a select, not a {capability}")
    if capability == "number":
        try:
            NumberOptions.model_validate(number)
        except ValueError as exc:
            raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    return number


class SelectOptions(BaseModel):
    """A select entity's options, in the order a user interface shows them (and ``select_next`` walks)."""

    model_config = ConfigDict(extra="forbid")

    options: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=256)

    @field_validator("options", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        if isinstance(value, list):
            check_option_names(value)
        return value

    @field_validator("options")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        repeated = sorted({o for o in value if value.count(o) > 1})
        if repeated:
            raise ValueError(f"options must be unique; repeated: {', '.join(repeated)}")
        return value


class SelectOptionArgs(Args):
    option: str = Field(min_length=1, max_length=64, description="one of the entity's options")


class SelectCycleArgs(Args):
    cycle: bool = Field(default=True, description="wrap around at the end (true) or stay there (false)")


@lru_cache(maxsize=512)
def _select_args(options: tuple[str, ...]) -> type[Args]:
    class BoundSelectOptionArgs(SelectOptionArgs):
        option: Literal[options] = Field(description=f"one of {', '.join(options)}")  # type: ignore[valid-type]

    return BoundSelectOptionArgs


def _bind_select(options: dict) -> type[Args]:
    return _select_args(tuple(SelectOptions.model_validate(options).options))


def _select_offset(offset: int) -> Callable[[dict, Any, Args], Args]:
    """Home Assistant's select_next/select_previous: from the current option (the first if there is
    none), wrapping around with ``cycle``, else stopping at either end."""

    def derive(options: dict, current: Any, args: Args) -> Args:
        opts = options["options"]
        index = opts.index(current) if current in opts else 0
        new = index + offset
        new = new % len(opts) if args.cycle else min(max(new, 0), len(opts) - 1)
        return SelectOptionArgs(option=opts[new])

    return derive


SELECT_COMMANDS = {
    "select_option": CommandSpec("select_option", SelectOptionArgs, "Choose one of the options.", bind=_bind_select),
    "select_first": CommandSpec("select_first", NoArgs, "Choose the first option.", via="select_option",
                                derive=lambda options, current, args: SelectOptionArgs(option=options["options"][0])),
    "select_last": CommandSpec("select_last", NoArgs, "Choose the last option.", via="select_option",
                               derive=lambda options, current, args: SelectOptionArgs(option=options["options"][-1])),
    "select_next": CommandSpec("select_next", SelectCycleArgs, "Choose the option after the current one.",
                               via="select_option", derive=_select_offset(1)),
    "select_previous": CommandSpec("select_previous", SelectCycleArgs, "Choose the option before the current one.",
                                   via="select_option", derive=_select_offset(-1)),
}


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

#: Home Assistant's number device classes that Ruff Hub accepts: the sensor classes a set-point can
#: be in, each with the same default unit.
NUMBER_UNITS = {
    name: SENSOR_UNITS[name]
    for name in ("temperature", "humidity", "power", "energy", "voltage", "current", "frequency", "pressure",
                 "illuminance", "battery", "power_factor", "apparent_power", "reactive_power", "co2", "pm25",
                 "signal_strength", "gas", "water", "duration", "speed", "distance")
}

BINARY_CLASSES = frozenset(
    {"motion", "occupancy", "door", "window", "opening", "moisture", "smoke", "carbon_monoxide", "presence",
     "problem", "connectivity", "plug", "power", "vibration", "tamper", "battery"}
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
            attributes=("brightness", "rgb_color", "color_temp_kelvin", "supported_color_modes"),
            commands={
                "turn_on": CommandSpec("turn_on", LightOnArgs, "Switch on, optionally with brightness or colour.",
                                       via="turn_on", derive=_derive_light_on),
                **_commands(("turn_off", NoArgs, "Switch off."), ("toggle", NoArgs, "Switch to the other state.")),
            },
            options_model=LightOptions,
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
            commands={
                "set_temperature": CommandSpec("set_temperature", SetTemperatureArgs, "Set the target temperature.",
                                               bind=_bind_temperature),
                **_commands(
                    ("set_hvac_mode", SetHvacModeArgs, "Set the mode: off, heat, cool, auto ..."),
                    ("turn_on", NoArgs, "Resume the last mode other than off."),
                    ("turn_off", NoArgs, "Switch off."),
                ),
            },
        ),
        Capability(
            "meter",
            "A cumulative counter that only rises (energy, water, uses): what contracts bill against.",
            numeric=True,
            attributes=("unit", "device_class"),
            device_classes=frozenset(METER_UNITS),
            default_units=METER_UNITS,
        ),
        Capability(
            "number",
            "A value the user sets within a range: a set-point, a speed, a limit written to a register.",
            numeric=True,
            attributes=("min", "max", "step", "mode", "unit", "device_class"),
            device_classes=frozenset(NUMBER_UNITS),
            default_units=NUMBER_UNITS,
            commands={"set_value": CommandSpec("set_value", SetValueArgs, "Set the value, within min..max on a step.",
                                               bind=_bind_number)},
            options_model=NumberOptions,
        ),
        Capability(
            "calendar",
            "A calendar: on while one of its events is happening; read-only.",
            states=("on", "off"),
            attributes=("message", "description", "location", "start_time", "end_time", "all_day"),
        ),
        Capability(
            "select",
            "One of several named options: a mode, a preset, a fan speed.",
            attributes=("options",),
            commands=SELECT_COMMANDS,
            options_model=SelectOptions,
            state_from_options=True,
        ),
    )
}


def get_capability(name: str) -> Capability:
    try:
        return CAPABILITIES[name]
    except KeyError:
        raise KeyError(f"unknown capability {name!r}; known: {', '.join(sorted(CAPABILITIES))}") from None
