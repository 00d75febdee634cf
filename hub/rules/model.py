"""The shape of a rule in YAML, as pydantic models (Home Assistant's automation shape).

Triggers and conditions are told apart by their ``trigger:`` (or Home Assistant's older
``platform:``) and ``condition:`` keys; actions by which of their known keys they carry
(``call:``, ``delay:``, ``choose:`` ...). Nested sequences (inside ``choose``, ``repeat``,
``wait_for``) are kept as raw lists here and parsed by :mod:`hub.rules.parse`, which knows the
YAML path of each item and so can name its line.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

#: Bounds on what a rule may hold. A rule is text a person writes; these are far above what one
#: needs and far below what would cost the hub memory (every rule and its traces stay in memory).
MAX_NAME = 255  # ids, entity ids, aliases, event types, times: one line
MAX_TEXT = 4096  # descriptions, log messages, expressions, stop reasons, any value inside args
#: Iterations a ``repeat`` may run unless it sets ``max_iterations``: a ``while`` that never turns
#: false must not keep the hub busy forever.
DEFAULT_MAX_ITERATIONS = 10_000
#: The longest ``delay``, ``for:`` or ``timeout``: a year (and never infinity or NaN).
MAX_DURATION = 366 * 86400
#: Seconds the runs of ``homeassistant: shutdown`` rules get to finish while the hub stops, before
#: they are cancelled. Home Assistant gives such runs up to a minute; the hub is stopped by systemd
#: (90 s by default before it is killed) and must still stop its plugins and save its states after
#: them. Ten seconds is one command timeout (hub.command_timeout's default): enough for the few
#: commands a shutdown rule sends ("all lights off"), too short for a rule that waits.
SHUTDOWN_GRACE = 10.0

_HMS = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def parse_duration(value: Any) -> float:
    """Seconds from ``300``, ``"300"``, ``"00:05:00"``, ``"00:05"`` or ``{minutes: 5}``, as Home
    Assistant reads them: two parts are hours and minutes (``"05:00"`` is five hours), so an
    automation brought from HA waits as long on the hub."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds, 'HH:MM:SS', or {hours:, minutes:, seconds:}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\d+(?:\.\d+)?", value.strip()):
        seconds = float(value)
    elif isinstance(value, str):
        match = _HMS.match(value.strip())
        if not match or (match.group(1) is None and "." in match.group(3)):
            raise ValueError(f"duration {value!r} is not 'HH:MM:SS' or 'HH:MM'")
        hours, minutes, secs = match.groups()
        if hours is None:  # "05:00" is hours and minutes, as in Home Assistant
            hours, minutes, secs = minutes, secs, "0"
        seconds = int(hours) * 3600 + int(minutes) * 60 + float(secs)
    elif isinstance(value, dict):
        units = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "milliseconds": 0.001}
        unknown = set(value) - set(units)
        if unknown:
            raise ValueError(f"unknown duration unit(s) {', '.join(sorted(map(str, unknown)))}; use {', '.join(units)}")
        try:
            seconds = sum(float(v) * units[k] for k, v in value.items())
        except (TypeError, ValueError):
            raise ValueError("duration units must be numbers") from None
    else:
        raise ValueError("a duration is a number of seconds, 'HH:MM:SS', or {hours:, minutes:, seconds:}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if not seconds <= MAX_DURATION:  # also NaN
        raise ValueError(f"a duration is at most {MAX_DURATION // 86400} days, got {value!r}")
    return seconds


def is_template(value: Any) -> bool:
    # "{%" too: a template of blocks alone ({% if %}...{% endif %}) is still checked at load.
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class Strict(BaseModel):
    """Every string field is one line of at most ``MAX_NAME`` characters unless it says otherwise."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_max_length=MAX_NAME)


EntityIds = str | list[str]


def entity_list(value: EntityIds) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _duration_or_none(value: Any) -> float | None:
    return None if value is None else parse_duration(value)


# --- triggers --------------------------------------------------------------------------------------


class TriggerBase(Strict):
    trigger: str = Field(validation_alias=AliasChoices("trigger", "platform"))
    id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _platform_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "platform" in data and "trigger" not in data:
            data = dict(data)
            data["trigger"] = data.pop("platform")
        return data

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        """HA takes ``id: 1`` as the text "1", and so does ``condition: trigger``."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class StateTrigger(TriggerBase):
    trigger: Literal["state"]
    entity_id: EntityIds
    from_: Any = Field(default=None, alias="from")
    to: Any = None
    not_from: Any = None
    not_to: Any = None
    attribute: str | None = None
    for_: float | None = Field(default=None, alias="for")

    _dur = field_validator("for_", mode="before")(classmethod(lambda cls, v: _duration_or_none(v)))


def _bound_or_entity(value: Any) -> Any:
    """HA's ``above``/``below``: a number, or an entity whose state is the number (an
    ``input_number``, another sensor). A string that reads as a number is that number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            if not re.fullmatch(r"[a-z0-9_]+\.[A-Za-z0-9_:.-]+", value.strip()):
                raise ValueError(f"{value!r} is neither a number nor an entity id") from None
            return value.strip()
    return value


class NumericStateTrigger(TriggerBase):
    trigger: Literal["numeric_state"]
    entity_id: EntityIds
    attribute: str | None = None
    value_template: str | None = Field(default=None, max_length=MAX_TEXT)
    above: float | str | None = None
    below: float | str | None = None
    for_: float | None = Field(default=None, alias="for")

    _dur = field_validator("for_", mode="before")(classmethod(lambda cls, v: _duration_or_none(v)))
    _bounds = field_validator("above", "below", mode="before")(classmethod(lambda cls, v: _bound_or_entity(v)))

    @model_validator(mode="after")
    def _bound(self) -> "NumericStateTrigger":
        if self.above is None and self.below is None:
            raise ValueError("numeric_state needs 'above', 'below' or both")
        return self


class TimeTrigger(TriggerBase):
    trigger: Literal["time"]
    at: str | list[str]


class TimePatternTrigger(TriggerBase):
    trigger: Literal["time_pattern"]
    hours: int | str | None = None
    minutes: int | str | None = None
    seconds: int | str | None = None


class EventTrigger(TriggerBase):
    trigger: Literal["event"]
    event_type: str | list[str]
    event_data: dict[str, Any] = Field(default_factory=dict)


class AvailabilityTrigger(TriggerBase):
    trigger: Literal["device_available", "device_unavailable"]
    entity_id: EntityIds | None = None
    device_id: str | None = None
    for_: float | None = Field(default=None, alias="for")

    _dur = field_validator("for_", mode="before")(classmethod(lambda cls, v: _duration_or_none(v)))

    @model_validator(mode="after")
    def _target(self) -> "AvailabilityTrigger":
        if (self.entity_id is None) == (self.device_id is None):
            raise ValueError("give exactly one of 'entity_id' and 'device_id'")
        return self


class HubStartTrigger(TriggerBase):
    trigger: Literal["hub_start"]


def _signed_duration(value: Any) -> float:
    """HA's sun offsets may be negative: ``"-00:45:00"`` is 45 minutes before."""
    if isinstance(value, str) and value.strip().startswith("-"):
        return -parse_duration(value.strip()[1:])
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        return -parse_duration(-value)
    return parse_duration(value)


class SunTrigger(TriggerBase):
    trigger: Literal["sun"]
    event: Literal["sunrise", "sunset"]
    offset: float = 0.0

    _dur = field_validator("offset", mode="before")(classmethod(lambda cls, v: _signed_duration(v)))


class TemplateTrigger(TriggerBase):
    trigger: Literal["template"]
    value_template: str = Field(max_length=MAX_TEXT)
    for_: float | None = Field(default=None, alias="for")

    _dur = field_validator("for_", mode="before")(classmethod(lambda cls, v: _duration_or_none(v)))


class WebhookTrigger(TriggerBase):
    trigger: Literal["webhook"]
    webhook_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.~-]+$")
    # HA's defaults: POST and PUT, and only from the local network (loopback, private, link-local)
    allowed_methods: list[Literal["POST", "PUT", "GET", "HEAD"]] = Field(default_factory=lambda: ["POST", "PUT"], min_length=1)
    local_only: bool = True


class HomeAssistantTrigger(TriggerBase):
    """HA's ``homeassistant`` trigger: ``event: start`` is the hub's start, ``event: shutdown`` its
    stop (the engine runs those rules before the plugins and drivers stop, for a bounded time)."""

    trigger: Literal["homeassistant"]
    event: Literal["start", "shutdown"]


BUILTIN_TRIGGERS: dict[str, type[TriggerBase]] = {
    "state": StateTrigger,
    "numeric_state": NumericStateTrigger,
    "time": TimeTrigger,
    "time_pattern": TimePatternTrigger,
    "event": EventTrigger,
    "device_available": AvailabilityTrigger,
    "device_unavailable": AvailabilityTrigger,
    "hub_start": HubStartTrigger,
    "homeassistant": HomeAssistantTrigger,
    "sun": SunTrigger,
    "template": TemplateTrigger,
    "webhook": WebhookTrigger,
}

# --- conditions ------------------------------------------------------------------------------------

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class StateCondition(Strict):
    condition: Literal["state"]
    entity_id: EntityIds
    state: Any
    attribute: str | None = None
    for_: float | None = Field(default=None, alias="for")

    _dur = field_validator("for_", mode="before")(classmethod(lambda cls, v: _duration_or_none(v)))


class NumericStateCondition(Strict):
    condition: Literal["numeric_state"]
    entity_id: EntityIds
    attribute: str | None = None
    value_template: str | None = Field(default=None, max_length=MAX_TEXT)
    above: float | str | None = None
    below: float | str | None = None

    _bounds = field_validator("above", "below", mode="before")(classmethod(lambda cls, v: _bound_or_entity(v)))

    @model_validator(mode="after")
    def _bound(self) -> "NumericStateCondition":
        if self.above is None and self.below is None:
            raise ValueError("numeric_state needs 'above', 'below' or both")
        return self


class TimeCondition(Strict):
    condition: Literal["time"]
    after: str | None = None
    before: str | None = None
    weekday: Weekday | list[Weekday] | None = None


class SunCondition(Strict):
    condition: Literal["sun"]
    after: Literal["sunrise", "sunset"] | None = None
    before: Literal["sunrise", "sunset"] | None = None
    after_offset: float = 0.0
    before_offset: float = 0.0

    _dur = field_validator("after_offset", "before_offset", mode="before")(
        classmethod(lambda cls, v: -parse_duration(v[1:]) if isinstance(v, str) and v.startswith("-") else parse_duration(v))
    )

    @model_validator(mode="after")
    def _bound(self) -> "SunCondition":
        if self.after is None and self.before is None:
            raise ValueError("sun needs 'after', 'before' or both")
        return self


class LogicCondition(Strict):
    condition: Literal["and", "or", "not"]
    conditions: list[Any]


class ExpressionCondition(Strict):
    condition: Literal["expression", "template"]
    expression: str = Field(max_length=MAX_TEXT, validation_alias=AliasChoices("expression", "value_template"))


class TriggerIdCondition(Strict):
    """Home Assistant's ``condition: trigger``: which of the rule's triggers started this run."""

    condition: Literal["trigger"]
    id: str | int | list[str | int]


BUILTIN_CONDITIONS: dict[str, type[Strict]] = {
    "trigger": TriggerIdCondition,
    "state": StateCondition,
    "numeric_state": NumericStateCondition,
    "time": TimeCondition,
    "sun": SunCondition,
    "and": LogicCondition,
    "or": LogicCondition,
    "not": LogicCondition,
    "expression": ExpressionCondition,
    "template": ExpressionCondition,
}

# --- actions ---------------------------------------------------------------------------------------


class CallAction(Strict):
    call: str = Field(description="capability.command, e.g. light.turn_on")
    entity_id: EntityIds
    args: dict[str, Any] = Field(default_factory=dict, validation_alias=AliasChoices("args", "data"))
    continue_on_error: bool = False

    @field_validator("call")
    @classmethod
    def _dotted(cls, value: str) -> str:
        if value.count(".") != 1:
            raise ValueError("write it as capability.command, e.g. 'light.turn_on'")
        return value


class DelayAction(Strict):
    delay: Any

    @field_validator("delay")
    @classmethod
    def _check(cls, value: Any) -> Any:
        # HA's {minutes: "{{ minutes }}"} (its script page's wakeup example): rendered when the run gets there
        templated = is_template(value) or isinstance(value, dict) and any(is_template(v) for v in value.values())
        return value if templated else parse_duration(value)


class WaitFor(Strict):
    trigger: list[Any]
    timeout: float | None = None
    continue_on_timeout: bool = True

    _dur = field_validator("timeout", mode="before")(classmethod(lambda cls, v: _duration_or_none(v)))


class WaitForAction(Strict):
    wait_for: WaitFor


class ChooseOption(Strict):
    alias: str | None = None  # HA's editor names options
    conditions: list[Any] = Field(validation_alias=AliasChoices("conditions", "condition"))
    sequence: list[Any]


class ChooseAction(Strict):
    choose: list[ChooseOption]
    default: list[Any] = Field(default_factory=list)


class Repeat(Strict):
    count: int | str | None = None
    for_each: list[Any] | str | None = None  # HA's: a list, or a template that renders one
    while_: list[Any] | None = Field(default=None, alias="while")
    until: list[Any] | None = None
    sequence: list[Any]
    max_iterations: int = Field(default=DEFAULT_MAX_ITERATIONS, ge=1, le=1_000_000_000)

    @model_validator(mode="after")
    def _one_kind(self) -> "Repeat":
        kinds = [k for k in ("count", "for_each", "while_", "until") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("repeat needs exactly one of 'count', 'for_each', 'while' and 'until'")
        if isinstance(self.for_each, list) and len(self.for_each) > self.max_iterations:
            raise ValueError(f"for_each has {len(self.for_each)} items, above the limit of {self.max_iterations} "
                             f"iterations; add max_iterations: {len(self.for_each)} to this repeat if you mean it")
        if isinstance(self.count, int) and self.count > self.max_iterations:
            raise ValueError(f"count {self.count} is above the limit of {self.max_iterations} iterations; "
                             f"add max_iterations: {self.count} to this repeat if you mean it")
        return self


class RepeatAction(Strict):
    repeat: Repeat


#: A variable a step sets (HA's ``response_variable``).
VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class StopAction(Strict):
    stop: str = Field(max_length=MAX_TEXT)
    error: bool = False
    response_variable: str | None = Field(default=None, pattern=VARIABLE_NAME)  # a script's response to the call that waits for it


class EventAction(Strict):
    event: str
    event_data: dict[str, Any] = Field(default_factory=dict)


class LogAction(Strict):
    log: str = Field(max_length=MAX_TEXT)
    level: Literal["debug", "info", "warning", "error"] = "info"


class ServiceAction(Strict):
    """Home Assistant's service step: ``action: light.turn_on`` (2024.10) or ``service:`` (classic),
    with ``target``, ``data`` and the ``entity_id`` shorthand. Translated by
    :mod:`hub.rules.ha_services`; ``metadata`` is what HA's editor writes and means nothing here."""

    action: str | None = None
    service: str | None = None
    target: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict, validation_alias=AliasChoices("data", "data_template"))
    entity_id: EntityIds | None = None
    continue_on_error: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)
    response_variable: str | None = Field(default=None, pattern=VARIABLE_NAME)  # what a called script's 'stop' returned

    @model_validator(mode="after")
    def _one_name(self) -> "ServiceAction":
        if (self.action is None) == (self.service is None):
            raise ValueError("give the service as 'action:' or 'service:', not both")
        name = self.action or self.service or ""
        if name.count(".") != 1 or not all(name.split(".")):
            raise ValueError(f"a service is domain.name, e.g. 'light.turn_on', got {name!r}")
        return self


class VariablesAction(Strict):
    variables: dict[str, Any]


#: Keys Home Assistant allows on any trigger, condition or step: ``alias`` names it in traces and
#: the editor, ``enabled: false`` keeps it in the file but out of the rule.
COMMON_KEYS = ("alias", "enabled")

#: An action is recognised by the first of these keys it has.
BUILTIN_ACTIONS: dict[str, type[Strict]] = {
    "call": CallAction,
    "delay": DelayAction,
    "wait_for": WaitForAction,
    "choose": ChooseAction,
    "repeat": RepeatAction,
    "stop": StopAction,
    "event": EventAction,
    "log": LogAction,
    "variables": VariablesAction,
}

# --- the rule --------------------------------------------------------------------------------------

Mode = Literal["single", "restart", "queued", "parallel"]


class RuleHead(Strict):
    """A rule's own fields; its triggers, conditions and actions are parsed item by item."""

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    alias: str | None = None
    description: str | None = Field(default=None, max_length=MAX_TEXT)
    mode: Mode = "single"
    max: int = Field(default=10, ge=1, le=1000)
    # HA's log level for a run refused by 'mode'/'max' (its motion_light blueprint sets 'silent'):
    # accepted so HA's rules load; the hub's trace records a refused run whatever it says.
    max_exceeded: Literal["silent", "critical", "fatal", "error", "warning", "warn", "info", "debug", "notset"] | None = None
    trigger: Any = Field(validation_alias=AliasChoices("trigger", "triggers"))
    condition: Any = Field(default=None, validation_alias=AliasChoices("condition", "conditions"))
    action: Any = Field(validation_alias=AliasChoices("action", "actions"))
    enabled: bool = True
    initial_state: bool | None = None  # Home Assistant's name for 'enabled' at start-up
    variables: dict[str, Any] = Field(default_factory=dict)
    trigger_variables: dict[str, Any] = Field(default_factory=dict)
    # HA's editor writes ``trace: {stored_traces: 5}``: accepted; the hub's trace log has its own bound
    trace: dict[str, Any] | None = None
