"""What one register-map entry says: where the value lives, how to read it, what it becomes.

Kept apart from the connection and device settings because profiles (``profiles/*.yaml``) are made of
exactly these entries, and a profile entry must be validated by the same rules as a hand-written one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.devices.capabilities import NUMBER_KEYS, check_entity_options, check_option_names

from hub_modbus.codec import INTEGER, NUMERIC, DataType, Order

RegisterType = Literal["coil", "discrete_input", "input", "holding"]
Capability = Literal["sensor", "binary_sensor", "switch", "meter", "climate", "number", "select"]
HvacMode = Literal["off", "heat", "cool", "heat_cool", "auto", "dry", "fan_only"]
_KEY = r"^[a-z0-9_]+$"


class EntityConfig(BaseModel):
    """One entity read from (and, for ``switch``, ``climate``, ``number`` and ``select``, written to) the device."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    key: str = Field(
        min_length=1, max_length=64, pattern=_KEY,
        description="Unique within the device; with the device id it names the entity for good (history).",
    )
    name: str | None = Field(None, description="Shown in the UI; defaults to the device name plus the key.")
    capability: Capability = Field(
        "sensor", description="sensor, binary_sensor, switch, meter, climate, number or select. "
        "Default: switch for a coil, binary_sensor for a discrete input, sensor for a register.",
    )
    register_type: RegisterType = Field(
        "holding", alias="register", description="coil (0x), discrete_input (1x), input (3x) or holding (4x) register."
    )
    address: int = Field(ge=0, le=65535, description="Zero-based protocol address (register 40001 is holding 0).")
    data_type: DataType | None = Field(
        None, description="int16 ... float64, string, bit (one bit of a register), bool. "
        "Default: bool for coils and discrete inputs, uint16 for registers.",
    )
    count: int | None = Field(None, ge=1, le=125, description="Registers a string spans.")
    bit: int | None = Field(None, ge=0, le=15, description="Bit number (0 = least significant) for data_type bit.")
    byte_order: Order = Field("big", description="Byte order inside each register; big is the Modbus standard.")
    word_order: Order = Field("big", description="Register order of 32/64-bit values; little = low word first (CDAB).")
    scale: float = Field(1.0, description="Value = raw * scale + offset.")
    offset: float = 0.0
    precision: int | None = Field(None, ge=0, le=10, description="Decimal places to round to.")
    unit: str | None = None
    device_class: str | None = None
    poll_interval: float | None = Field(None, gt=0, description="Seconds; defaults to the device's.")
    on_value: int = Field(1, description="Register value meaning on (switch or binary_sensor on a register).")
    off_value: int = Field(0, description="Register value written for off (switch on a register).")
    hvac_mode: HvacMode = Field("heat", description="climate: the mode the device is always in.")
    min_temp: float = Field(5, description="climate: lowest set-point accepted.")
    max_temp: float = Field(35, description="climate: highest set-point accepted.")
    min: float | None = Field(None, description="number: lowest value accepted (after scale); default 0.")
    max: float | None = Field(None, description="number: highest value accepted (after scale); default 100.")
    step: float | None = Field(None, description="number: values are min plus a multiple of this; default 1.")
    mode: Literal["auto", "box", "slider"] | None = Field(None, description="number: how a UI shows it.")
    options: list[str] | dict[str, int] | None = Field(
        None, description="select: its options, written to the register as 0, 1, 2 ... in list order, "
        "or as a mapping of option: register value.",
    )

    @field_validator("options", mode="before")
    @classmethod
    def _option_names(cls, value):
        if isinstance(value, (list, dict)):
            check_option_names(value)
        elif value is not None:
            raise ValueError("options must be a list of names or a mapping of name: register value")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_type(cls, data):
        if isinstance(data, dict):
            register = data.get("register", data.get("register_type", "holding"))
            bits = register in ("coil", "discrete_input")
            if data.get("data_type") is None:
                data = {**data, "data_type": "bool" if bits else "uint16"}
            if data.get("capability") is None:
                data = {**data, "capability": {"coil": "switch", "discrete_input": "binary_sensor"}.get(register, "sensor")}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "EntityConfig":
        bits = self.register_type in ("coil", "discrete_input")
        if bits and self.data_type != "bool":
            raise ValueError(f"a {self.register_type} holds one bit: data_type must be bool, not {self.data_type}")
        if not bits and self.data_type == "bool":
            raise ValueError("data_type bool is for coils and discrete inputs; use bit (with bit: N) in a register")
        if self.data_type == "bit" and self.bit is None:
            raise ValueError("data_type bit needs bit: 0-15")
        if self.data_type == "string" and not self.count:
            raise ValueError("data_type string needs count: the number of registers")
        if self.capability in ("sensor", "meter", "climate") and self.data_type not in NUMERIC:
            raise ValueError(f"a {self.capability} needs a numeric data_type, not {self.data_type}")
        if self.capability == "switch" and self.register_type not in ("coil", "holding"):
            raise ValueError("a switch must be on a coil or a holding register (the others are read-only)")
        if self.capability == "switch" and self.data_type == "bit":
            raise ValueError("a switch on a bit of a register is not supported: use the whole register")
        if self.capability == "climate" and self.register_type != "holding":
            raise ValueError("a climate set-point must be a holding register")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        self._check_number_and_select()
        return self

    def _check_number_and_select(self) -> None:
        if self.capability in ("number", "select") and self.register_type != "holding":
            raise ValueError(f"a {self.capability} must be a holding register (the others are read-only)")
        if self.capability == "number" and self.data_type not in NUMERIC:
            raise ValueError(f"a number needs a numeric data_type, not {self.data_type}")
        check_entity_options(self.capability, self)
        if self.capability == "select":
            if self.data_type not in INTEGER:
                raise ValueError(f"a select needs an integer data_type, not {self.data_type}")
            if not self.options:
                raise ValueError("a select needs options: a list, or a mapping of option: register value")
            values = list(self.option_values.values())
            if len(set(values)) != len(values):
                raise ValueError("two options of the select have the same register value")

    @property
    def number_options(self) -> dict:
        return {k: getattr(self, k) for k in NUMBER_KEYS if getattr(self, k) is not None}

    @property
    def option_values(self) -> dict[str, int]:
        """Option -> register value; a list numbers its options from 0, as most devices do."""
        if isinstance(self.options, dict):
            return dict(self.options)
        return {option: i for i, option in enumerate(self.options or [])}

    @property
    def writable(self) -> bool:
        return self.capability in ("switch", "climate", "number", "select")
