"""Home Assistant's MQTT entity options, one model per component, for the entities a user declares
under ``mqtt:`` and the ones devices announce with discovery.

The field names and defaults are Home Assistant's (https://www.home-assistant.io/integrations/mqtt/
and each component's page: switch.mqtt, light.mqtt, sensor.mqtt ...), so a block copied from a Home
Assistant configuration works here. Declared entities forbid unknown keys (a typo is an error with
its line); a discovery config is read with ``context={"lenient": True}``, which drops keys this hub
does not use, as Home Assistant itself drops them. Templates are checked when the model is built, so
one outside the supported subset is an error naming it, not a failure on every message.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, model_validator

from hub_mqtt.ha_in.templates import TemplateError, compile_ha


def _topic(value: str) -> str:
    if not value or len(value.encode()) > 65535 or "\x00" in value:
        raise ValueError("must be a non-empty MQTT topic")
    if "+" in value or "#" in value:
        raise ValueError(f"{value!r}: a state or command topic may not contain the wildcards + or #")
    return value


def _template(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None  # Shelly's scripts send "val_tpl": "" for "the payload as it is"
    try:
        compile_ha(value)
    except TemplateError as exc:
        raise ValueError(str(exc)) from None
    return value


def _payload(value: Any) -> Any:
    """Payloads compare as Home Assistant's text: JSON true is ``True``, 1 is ``1``."""
    if isinstance(value, (bool, int, float)):
        return str(value)
    return value


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Topic = Annotated[str, AfterValidator(_topic)]
Tpl = Annotated[str | None, AfterValidator(_template)]
Payload = Annotated[str, BeforeValidator(_payload), Field(max_length=1024)]
Text = Annotated[str, Field(max_length=256)]


class _HA(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context and info.context.get("lenient") and isinstance(data, dict):
            known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
            return {key: value for key, value in data.items() if key in known}
        return data


class Availability(_HA):
    topic: Topic
    payload_available: Payload = "online"
    payload_not_available: Payload = "offline"
    value_template: Tpl = None


class DeviceInfo(_HA):
    identifiers: Annotated[list[Text], BeforeValidator(_listed)] = Field(default_factory=list, max_length=16)
    connections: list[list[Text]] = Field(default_factory=list, max_length=16)
    name: Text | None = None
    manufacturer: Text | None = None
    model: Text | None = None
    model_id: Text | None = None
    sw_version: Text | None = None
    hw_version: Text | None = None
    serial_number: Text | None = None
    suggested_area: Text | None = None
    via_device: Text | None = None
    configuration_url: str | None = None


class Origin(_HA):
    name: Text | None = None
    sw_version: Text | None = None
    support_url: str | None = None


class Entity(_HA):
    """What every component shares."""

    platform: Literal["mqtt"] | None = Field(None, description="Accepted for blocks copied from the old list form.")
    name: Text | None = None
    unique_id: Text | None = None
    object_id: Text | None = None
    default_entity_id: Text | None = None
    icon: Text | None = None
    entity_category: Literal["config", "diagnostic"] | None = None
    entity_picture: str | None = None
    enabled_by_default: bool = True
    encoding: str = "utf-8"
    qos: Literal[0, 1, 2] = 0
    availability_topic: Topic | None = None
    availability_template: Tpl = None
    payload_available: Payload = "online"
    payload_not_available: Payload = "offline"
    availability: list[Availability] = Field(default_factory=list, max_length=16)
    availability_mode: Literal["all", "any", "latest"] = "latest"
    json_attributes_topic: Topic | None = None
    json_attributes_template: Tpl = None
    device_class: Text | None = None
    device: DeviceInfo | None = None
    origin: Origin | None = None

    @model_validator(mode="after")
    def _one_availability(self) -> "Entity":
        if self.availability_topic is not None and self.availability:
            raise ValueError("availability_topic and availability are alternatives: give one of them")
        return self


class _State(Entity):
    state_topic: Topic | None = None
    value_template: Tpl = None


class _Command(_HA):
    command_topic: Topic | None = None
    command_template: Tpl = None
    retain: bool = False
    optimistic: bool | None = None


class SwitchConfig(_State, _Command):
    payload_on: Payload = "ON"
    payload_off: Payload = "OFF"
    state_on: Payload | None = None
    state_off: Payload | None = None

    @model_validator(mode="after")
    def _commandable(self) -> "SwitchConfig":
        if self.command_topic is None:
            raise ValueError("a switch needs its command_topic")
        return self


class LightConfig(_State, _Command):
    schema_: Literal["default", "basic", "json"] = Field("default", alias="schema")
    payload_on: Payload = "ON"
    payload_off: Payload = "OFF"
    state_value_template: Tpl = None
    on_command_type: Literal["last", "first", "brightness"] = "last"
    brightness_command_topic: Topic | None = None
    brightness_command_template: Tpl = None
    brightness_state_topic: Topic | None = None
    brightness_value_template: Tpl = None
    brightness_scale: int = Field(255, ge=1, le=10000)
    brightness: bool = Field(False, description="json schema: the light takes a brightness.")
    rgb_command_topic: Topic | None = None
    rgb_command_template: Tpl = None
    rgb_state_topic: Topic | None = None
    rgb_value_template: Tpl = None
    color_temp_command_topic: Topic | None = None
    color_temp_command_template: Tpl = None
    color_temp_state_topic: Topic | None = None
    color_temp_value_template: Tpl = None
    color_temp_kelvin: bool = False
    min_mireds: int | None = None
    max_mireds: int | None = None
    min_kelvin: int | None = None
    max_kelvin: int | None = None
    supported_color_modes: list[Text] = Field(default_factory=list, max_length=16)
    color_mode: bool | None = None
    effect: bool | None = None
    effect_list: list[Text] = Field(default_factory=list, max_length=256)
    flash_time_short: int | None = None
    flash_time_long: int | None = None
    transition: bool | None = None

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="after")
    def _commandable(self) -> "LightConfig":
        if self.command_topic is None:
            raise ValueError("a light needs its command_topic")
        return self


class SensorConfig(_State):
    state_topic: Topic
    unit_of_measurement: Text | None = None
    state_class: Literal["measurement", "total", "total_increasing", "measurement_angle"] | None = None
    suggested_display_precision: int | None = Field(None, ge=0, le=15)
    expire_after: int | None = Field(None, ge=0)
    force_update: bool = False
    last_reset_value_template: Tpl = None


class BinarySensorConfig(_State):
    state_topic: Topic
    payload_on: Payload = "ON"
    payload_off: Payload = "OFF"
    expire_after: int | None = Field(None, ge=0)
    off_delay: int | None = Field(None, ge=0)
    force_update: bool = False


class ButtonConfig(Entity, _Command):
    command_topic: Topic
    payload_press: Payload = "PRESS"


class LockConfig(_State, _Command):
    command_topic: Topic
    payload_lock: Payload = "LOCK"
    payload_unlock: Payload = "UNLOCK"
    payload_open: Payload | None = None
    payload_reset: Payload = "None"
    state_locked: Payload = "LOCKED"
    state_unlocked: Payload = "UNLOCKED"
    state_locking: Payload = "LOCKING"
    state_unlocking: Payload = "UNLOCKING"
    state_jammed: Payload = "JAMMED"
    state_open: Payload = "OPEN"
    state_opening: Payload = "OPENING"
    code_format: str | None = None


class CoverConfig(_State, _Command):
    payload_open: Payload | None = "OPEN"
    payload_close: Payload | None = "CLOSE"
    payload_stop: Payload | None = "STOP"
    state_open: Payload = "open"
    state_opening: Payload = "opening"
    state_closed: Payload = "closed"
    state_closing: Payload = "closing"
    state_stopped: Payload = "stopped"
    position_topic: Topic | None = None
    position_template: Tpl = None
    set_position_topic: Topic | None = None
    set_position_template: Tpl = None
    position_open: int = 100
    position_closed: int = 0


HvacModeName = Literal["off", "heat", "cool", "heat_cool", "auto", "dry", "fan_only"]


class ClimateConfig(Entity):
    retain: bool = False
    optimistic: bool | None = None
    mode_command_topic: Topic | None = None
    mode_command_template: Tpl = None
    mode_state_topic: Topic | None = None
    mode_state_template: Tpl = None
    modes: list[HvacModeName] = Field(default_factory=lambda: ["auto", "off", "cool", "heat", "dry", "fan_only"])
    temperature_command_topic: Topic | None = None
    temperature_command_template: Tpl = None
    temperature_state_topic: Topic | None = None
    temperature_state_template: Tpl = None
    current_temperature_topic: Topic | None = None
    current_temperature_template: Tpl = None
    action_topic: Topic | None = None
    action_template: Tpl = None
    power_command_topic: Topic | None = None
    power_command_template: Tpl = None
    payload_on: Payload = "ON"
    payload_off: Payload = "OFF"
    min_temp: float = Field(7, allow_inf_nan=False)
    max_temp: float = Field(35, allow_inf_nan=False)
    temp_step: float = Field(1, gt=0, allow_inf_nan=False)
    precision: float | None = None
    temperature_unit: Literal["C", "F"] | None = None
    initial: float | None = None


class NumberConfig(_State, _Command):
    command_topic: Topic
    min: float = Field(1, allow_inf_nan=False)
    max: float = Field(100, allow_inf_nan=False)
    step: float = Field(1, gt=0, allow_inf_nan=False)
    mode: Literal["auto", "box", "slider"] = "auto"
    unit_of_measurement: Text | None = None
    payload_reset: Payload = "None"


class SelectConfig(_State, _Command):
    command_topic: Topic
    options: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=256)


#: Home Assistant's component name to its options' model.
MODELS: dict[str, type[Entity]] = {
    "switch": SwitchConfig,
    "light": LightConfig,
    "sensor": SensorConfig,
    "binary_sensor": BinarySensorConfig,
    "button": ButtonConfig,
    "lock": LockConfig,
    "cover": CoverConfig,
    "climate": ClimateConfig,
    "number": NumberConfig,
    "select": SelectConfig,
}
