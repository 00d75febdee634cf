"""The ``serial:`` section of ``configuration.yaml``.

One entry per port, because a port is one device speaking one protocol: the entities are patterns
over what it prints and the commands are templates of what to send it. Unknown keys are errors, and
every regular expression and template is checked here, at ``hub config check`` time, rather than
when the first line arrives at 3 a.m.

Example::

    serial:
      ports:
        - name: Weather station
          port: /dev/serial/by-id/usb-Arduino_LLC_Nano-if00
          baudrate: 9600
          entities:
            - {key: temperature, capability: sensor, device_class: temperature,
               pattern: 'T=(?P<value>-?[0-9.]+)'}
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.devices.capabilities import NUMBER_KEYS, check_entity_options, check_option_names, get_capability

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _compile(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return pattern


class CommandConfig(_Strict):
    """What one capability command sends, and how the device confirms it."""

    send: str = Field(description="Text to send; {name} is replaced by the command's argument of that name.")
    expect: str | None = Field(None, description="Regex an answer must match to confirm; (?P<value>...) sets the state.")
    error: str | None = Field(None, description="Regex of a refusal: the command fails with the device's line.")
    timeout: float = Field(2.0, gt=0, le=60, description="Seconds to wait for the expected answer.")

    _check_expect = field_validator("expect", "error")(lambda v: v if v is None else _compile(v))


class EntityConfig(_Strict):
    key: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    name: str | None = None
    capability: Literal[
        "sensor", "binary_sensor", "switch", "meter", "climate", "button", "number", "select"
    ] = "sensor"
    pattern: str | None = Field(
        None, description="Regex searched in every incoming frame; group 'value' is the state, "
        "other named groups become attributes.",
    )
    value_map: dict[str, str | float | int] = Field(
        default_factory=dict, description="Text of the value group -> state (e.g. ON: 'on').",
    )
    scale: float = Field(1.0, description="Numeric values are multiplied by this...")
    offset: float = Field(0.0, description="...and this is added.")
    unit: str | None = None
    device_class: str | None = None
    hvac_mode: str = Field("heat", description="climate: the mode the device is always in.")
    min_temp: float = 5
    max_temp: float = 35
    min: float | None = Field(None, description="number: lowest value accepted; default 0.")
    max: float | None = Field(None, description="number: highest value accepted; default 100.")
    step: float | None = Field(None, description="number: values are min plus a multiple of this; default 1.")
    mode: Literal["auto", "box", "slider"] | None = Field(None, description="number: how a UI shows it.")
    options: list[str] | None = Field(
        None, description="select: its options; value_map maps what the device prints to them.",
    )
    commands: dict[str, CommandConfig] = Field(default_factory=dict, description="Capability command -> what to send.")

    _check_pattern = field_validator("pattern")(lambda v: v if v is None else _compile(v))

    @field_validator("options", mode="before")
    @classmethod
    def _option_names(cls, value):
        if isinstance(value, list):
            check_option_names(value)
        return value

    @property
    def hub_options(self) -> dict:
        """The entity's options as the hub's device model takes them."""
        if self.capability == "climate":
            return {"min_temp": self.min_temp, "max_temp": self.max_temp}
        if self.capability == "number":
            return {k: getattr(self, k) for k in NUMBER_KEYS if getattr(self, k) is not None}
        if self.capability == "select":
            return {"options": self.options}
        return {}

    def _check_number_and_select(self) -> None:
        check_entity_options(self.capability, self)
        if self.capability == "select":
            if not self.options:
                raise ValueError("a select needs options")
            unknown = sorted({str(v) for v in self.value_map.values()} - set(self.options))
            if unknown:
                raise ValueError(f"value_map maps to {', '.join(unknown)}, which are not options")

    @model_validator(mode="after")
    def _check(self) -> "EntityConfig":
        cap = get_capability(self.capability)
        if self.pattern is not None and "(?P<value>" not in self.pattern and self.capability != "button":
            raise ValueError("pattern needs a named group (?P<value>...) holding the state")
        self._check_number_and_select()
        for name, command in self.commands.items():
            spec = cap.command(name)
            if spec is None:
                valid = ", ".join(sorted(cap.commands)) or "none"
                raise ValueError(f"{self.capability} has no command {name!r}; valid: {valid}")
            if spec.via is not None:
                raise ValueError(f"{name} is carried out by the hub through {spec.via}: configure {spec.via} only")
            unknown = set(PLACEHOLDER.findall(command.send)) - set(spec.args.model_fields)
            if unknown:
                raise ValueError(f"commands.{name}.send uses {{{', '.join(sorted(unknown))}}}; "
                                 f"{name} has {', '.join(spec.args.model_fields) or 'no arguments'}")
        if self.pattern is None and not self.commands:
            raise ValueError("an entity needs a pattern, commands, or both")
        return self


class PortConfig(_Strict):
    """One serial device: the port, its line settings, its framing, its entities."""

    name: str = Field(min_length=1, max_length=128)
    id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]+$", description="Stable id; default: from the name.")
    port: str = Field(min_length=1, description="A path; prefer /dev/serial/by-id/..., stable across replugging.")
    baudrate: int = Field(9600, ge=50, le=4_000_000)
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: Literal[1, 2] = 1
    framing: Literal["line", "length_prefixed"] = "line"
    terminator: str = Field("\n", min_length=1, max_length=4, description="line framing: end of a line ('\\r\\n' ...).")
    length_bytes: Literal[1, 2] = Field(1, description="length_prefixed: size of the length field.")
    length_order: Literal["big", "little"] = "big"
    encoding: str = "ascii"
    max_frame: int = Field(4096, ge=16, le=65536, description="Longer frames are dropped as noise.")
    reconnect_max: float = Field(5.0, gt=0, le=600, description="Longest wait between attempts to reopen the port.")
    stale_after: float | None = Field(None, gt=0, description="Seconds without any frame before unavailable.")
    manufacturer: str | None = None
    model: str | None = None
    entities: list[EntityConfig] = Field(min_length=1)

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            "x".encode(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value

    @model_validator(mode="after")
    def _unique(self) -> "PortConfig":
        keys = [e.key for e in self.entities]
        if len(set(keys)) != len(keys):
            raise ValueError(f"entity keys must be unique, got {keys}")
        return self


class SerialConfig(_Strict):
    ports: list[PortConfig] = Field(min_length=1)

    @model_validator(mode="wrap")
    @classmethod
    def _checked(cls, data, handler) -> "SerialConfig":
        from hub.config import cross_checked
        from hub_serial.checks import problems  # it needs the models above

        return cross_checked(data, handler, problems, cls.__name__)
