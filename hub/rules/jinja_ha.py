"""Home Assistant's template functions and filters, on the hub's states and clock.

Names, arguments and missing-value rules follow HA's templating page
(https://www.home-assistant.io/docs/configuration/templating/): ``float``/``int``/``round``/``bool``
without a default fail on a value that is not one, naming the value; ``states()`` of an entity with
no value is ``unknown``. Entity functions come from the rule context's function table (so a test's
fake hub works as well as the real one), the clock from its ``now``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from jinja2 import pass_context

from hub.core.state import State
from hub.rules.jinja import expose
from hub.rules.safe_ops import DEFAULT_FUNCTIONS, MAX_SEQUENCE, _check_size, _round

_MISSING = object()


class TemplateValueError(ValueError):
    """A function got a value it cannot use and no default."""


def _no_default(function: str, value: Any) -> TemplateValueError:
    return TemplateValueError(f"{function} got invalid input {value!r} and no default was specified")


# --- numbers and booleans ------------------------------------------------------------------------


def forgiving_float(value: Any, default: Any = _MISSING) -> Any:
    try:
        if type(value) is str and len(value) > 100:
            raise ValueError
        return float(value)
    except (ValueError, TypeError):
        if default is _MISSING:
            raise _no_default("float", value) from None
        return default


def forgiving_int(value: Any, default: Any = _MISSING, base: int = 10) -> Any:
    try:
        if type(value) is str and len(value) > 100:
            raise ValueError
        if isinstance(value, str) and base != 10:
            return int(value, base)
        number = float(value) if isinstance(value, str) and not value.strip().lstrip("+-").isdigit() else value
        return int(number)
    except (ValueError, TypeError, OverflowError):
        if default is _MISSING:
            raise _no_default("int", value) from None
        return default


def forgiving_round(value: Any, precision: int = 0, method: str = "common", default: Any = _MISSING) -> Any:
    try:
        number = float(value)
        if method == "ceil":
            result = math.ceil(number * 10**precision) / 10**precision
        elif method == "floor":
            result = math.floor(number * 10**precision) / 10**precision
        elif method == "half":
            result = _round(number * 2) / 2.0
        else:
            result = _round(number, precision)
        return int(result) if precision == 0 and method != "half" else result
    except (ValueError, TypeError, OverflowError):
        if default is _MISSING:
            raise _no_default("round", value) from None
        return default


_TRUE = frozenset({"true", "yes", "on", "enable", "1"})
_FALSE = frozenset({"false", "no", "off", "disable", "0"})


def forgiving_bool(value: Any, default: Any = _MISSING) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    if default is _MISSING:
        raise _no_default("bool", value)
    return default


def iif(value: Any, if_true: Any = True, if_false: Any = False, if_none: Any = _MISSING) -> Any:
    if value is None and if_none is not _MISSING:
        return if_none
    if value is None or (isinstance(value, str) and value in ("unknown", "unavailable")):
        return if_false
    try:
        return if_true if forgiving_bool(value) else if_false
    except TemplateValueError:
        return if_true if value else if_false


def _min_max(pick: Callable) -> Callable:
    def function(*args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and isinstance(args[0], Iterable) and not isinstance(args[0], str):
            return pick(args[0], **kwargs)
        return pick(args, **kwargs)

    function.__name__ = pick.__name__
    return function


# --- time ----------------------------------------------------------------------------------------


def _parse_datetime(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.strip().replace(" ", "T", 1) if "T" not in value else value.strip())
    except ValueError:
        return None


def as_timestamp(value: Any, default: Any = _MISSING) -> Any:
    try:
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            parsed = _parse_datetime(value)
            if parsed is not None:
                return parsed.timestamp()
            return float(value)
    except (ValueError, OverflowError, OSError):
        pass
    if default is _MISSING:
        raise _no_default("as_timestamp", value)
    return default


def as_datetime(value: Any, default: Any = _MISSING) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, timezone.utc)
        if isinstance(value, str):
            parsed = _parse_datetime(value)
            if parsed is not None:
                return parsed
            return datetime.fromtimestamp(float(value), timezone.utc)
    except (ValueError, OverflowError, OSError):
        pass
    if default is _MISSING:
        raise _no_default("as_datetime", value)
    return default


def _units(seconds: float) -> str:
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = int(seconds)
    return f"{count} second{'s' if count != 1 else ''}"


# --- JSON and regular expressions ----------------------------------------------------------------


def from_json(value: str, default: Any = _MISSING) -> Any:
    try:
        return json.loads(value)
    except (ValueError, TypeError):
        if default is _MISSING:
            raise _no_default("from_json", value) from None
        return default


def to_json(value: Any, ensure_ascii: bool = False, pretty_print: bool = False, sort_keys: bool = False) -> str:
    text = json.dumps(value, ensure_ascii=ensure_ascii, indent=2 if pretty_print else None, sort_keys=sort_keys, default=str)
    _check_size(len(text))
    return text


MAX_PATTERN = 200
MAX_SUBJECT = 2_000
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)[+*{]")


def _pattern(find: str, ignorecase: bool) -> re.Pattern:
    """Compile ``find``, refusing what could backtrack catastrophically (``(a+)+``)."""
    if not isinstance(find, str) or len(find) > MAX_PATTERN:
        raise ValueError(f"regular expression must be a string of at most {MAX_PATTERN} characters")
    if _NESTED_QUANTIFIER.search(find) or re.search(r"\\\d", find):
        raise ValueError("regular expression has a repeated group containing a repeat (or a backreference): not allowed")
    return _compiled(find, ignorecase)


_cache: dict[tuple[str, bool], re.Pattern] = {}


def _compiled(find: str, ignorecase: bool) -> re.Pattern:
    key = (find, ignorecase)
    pattern = _cache.get(key)
    if pattern is None:
        if len(_cache) > 256:
            _cache.clear()
        pattern = _cache[key] = re.compile(find, re.IGNORECASE if ignorecase else 0)
    return pattern


def _subject(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_SUBJECT:
        raise ValueError(f"text for a regular expression is too long (over {MAX_SUBJECT} characters)")
    return text


def regex_match(value: Any, find: str = "", ignorecase: bool = False) -> bool:
    return bool(_pattern(find, ignorecase).match(_subject(value)))


def regex_search(value: Any, find: str = "", ignorecase: bool = False) -> bool:
    return bool(_pattern(find, ignorecase).search(_subject(value)))


def regex_replace(value: Any = "", find: str = "", replace: str = "", ignorecase: bool = False) -> str:
    text = _subject(value)
    pattern = _pattern(find, ignorecase)
    if len(replace) > 1:  # check what the replacements would add before making them
        matches = sum(1 for _ in pattern.finditer(text))
        _check_size(len(text) + matches * len(replace))
    result = pattern.sub(replace, text, count=MAX_SEQUENCE)
    _check_size(len(result))
    return result


# --- states --------------------------------------------------------------------------------------


@expose
class StateView:
    """What ``states.light.kitchen`` and ``expand()`` give: HA's state object, read-only."""

    __slots__ = ("entity_id", "state", "attributes", "domain", "object_id", "name", "last_changed", "last_updated")

    def __init__(self, state: State) -> None:
        self.entity_id = state.entity_id
        value = state.state
        self.state = "unknown" if value is None else value
        self.attributes = dict(state.attributes)
        self.domain, _, self.object_id = state.entity_id.partition(".")
        self.name = self.attributes.get("friendly_name", self.object_id)
        self.last_changed = datetime.fromtimestamp(state.last_changed, timezone.utc)
        self.last_updated = datetime.fromtimestamp(state.last_updated, timezone.utc)

    def __repr__(self) -> str:
        return f"<state {self.entity_id}={self.state}>"


@expose
class DomainStates:
    """``states.light``: its attributes are that domain's entities."""

    __slots__ = ("_domain", "_get")
    # What Jinja asks of a callable: class attributes, so they are never taken for entity names.
    unsafe_callable = alters_data = False
    jinja_pass_arg = None

    def __init__(self, domain: str, get: Callable[[str], State | None]) -> None:
        self._domain = domain
        self._get = get

    def __getattr__(self, object_id: str) -> StateView | None:
        if object_id.startswith("_"):
            raise AttributeError(object_id)
        state = self._get(f"{self._domain}.{object_id}")
        return None if state is None else StateView(state)


@expose
class AllStates:
    """``states``: callable as ``states('light.x')``, and ``states.light.x`` for the object."""

    __slots__ = ("_value", "_get")
    unsafe_callable = alters_data = False
    jinja_pass_arg = None

    def __init__(self, value: Callable[[str], Any], get: Callable[[str], State | None]) -> None:
        self._value = value
        self._get = get

    def __call__(self, entity_id: str, rounded: bool = False, with_unit: bool = False) -> Any:
        value = self._value(entity_id)
        return "unknown" if value is None else value

    def __getattr__(self, domain: str) -> DomainStates:
        if domain.startswith("_"):
            raise AttributeError(domain)
        return DomainStates(domain, self._get)


def _getter(functions: Mapping[str, Callable]) -> Callable[[str], State | None]:
    get = functions.get("_state")
    if get is not None:
        return get

    def from_functions(entity_id: str) -> State | None:  # a context without whole states (tests' fakes)
        value = functions["states"](entity_id) if "states" in functions else None
        return None if value is None else State(entity_id, value)

    return from_functions


def ha_globals(functions: Mapping[str, Callable]) -> dict[str, Any]:
    """The template globals for one rule context's function table."""
    get = _getter(functions)
    clock = functions.get("now") or (lambda: datetime.now().astimezone())
    table: dict[str, Any] = {name: fn for name, fn in functions.items() if not name.startswith("_")}

    def utcnow() -> datetime:
        return clock().astimezone(timezone.utc)

    def as_local(value: datetime) -> datetime:
        return value.astimezone(clock().tzinfo)

    def today_at(value: str = "00:00") -> datetime:
        parts = [int(part) for part in str(value).split(":")]
        if not 2 <= len(parts) <= 3:
            raise ValueError(f"today_at takes 'HH:MM' or 'HH:MM:SS', not {value!r}")
        hour, minute, second = (parts + [0])[:3]
        return clock().replace(hour=hour, minute=minute, second=second, microsecond=0)

    def relative_time(value: Any) -> Any:
        if not isinstance(value, datetime):
            return value
        moment = value if value.tzinfo else value.replace(tzinfo=clock().tzinfo)
        seconds = (clock() - moment).total_seconds()
        return value if seconds < 0 else _units(seconds)

    def expand(*args: Any) -> list[StateView]:
        found: dict[str, StateView] = {}
        pending = list(args)
        while pending:
            item = pending.pop()
            if isinstance(item, (list, tuple)):
                pending.extend(item)
                continue
            if isinstance(item, StateView):
                found[item.entity_id] = item
                continue
            state = get(str(item))
            if state is not None:
                found[state.entity_id] = StateView(state)
        return sorted(found.values(), key=lambda view: view.entity_id)

    def has_value(entity_id: str) -> bool:
        state = get(entity_id)
        return state is not None and state.state not in (None, "unknown", "unavailable")

    ha = {
        "has_value": has_value,
        "now": clock,
        "utcnow": utcnow,
        "as_local": as_local,
        "today_at": today_at,
        "relative_time": relative_time,
        "expand": expand,
        "timedelta": timedelta,
        "as_timestamp": as_timestamp,
        "as_datetime": as_datetime,
        "float": forgiving_float,
        "int": forgiving_int,
        "round": forgiving_round,
        "bool": forgiving_bool,
        "iif": iif,
        "min": _min_max(min),
        "max": _min_max(max),
        "from_json": from_json,
        "to_json": to_json,
        "regex_match": regex_match,
        "regex_search": regex_search,
        "regex_replace": regex_replace,
    }
    for name, fn in ha.items():  # a caller's own version (a plugin's table) wins over HA's
        if name not in functions or functions[name] is DEFAULT_FUNCTIONS.get(name):
            table[name] = fn
    if "states" in functions:
        table["states"] = AllStates(functions["states"], get)
    return table


@pass_context
def _as_local_filter(context: Any, value: datetime) -> datetime:
    return context.resolve_or_missing("as_local")(value)


def _context_filter(name: str) -> Callable:
    @pass_context
    def apply(context: Any, *args: Any, **kwargs: Any) -> Any:
        return context.resolve_or_missing(name)(*args, **kwargs)

    apply.__name__ = name
    return apply


#: HA's filters; those needing the hub (``is_state``, ``as_local``...) call the template's globals.
FILTERS: dict[str, Callable] = {
    "float": forgiving_float,
    "int": forgiving_int,
    "round": forgiving_round,
    "bool": forgiving_bool,
    "iif": iif,
    "as_timestamp": as_timestamp,
    "as_datetime": as_datetime,
    "as_local": _as_local_filter,
    "relative_time": _context_filter("relative_time"),
    "from_json": from_json,
    "to_json": to_json,
    "regex_match": regex_match,
    "regex_search": regex_search,
    "regex_replace": regex_replace,
    "is_state": _context_filter("is_state"),
    "state_attr": _context_filter("state_attr"),
    "is_state_attr": _context_filter("is_state_attr"),
    "has_value": _context_filter("has_value"),
    "expand": _context_filter("expand"),
    "states": _context_filter("states"),
}

TESTS: dict[str, Callable] = {
    "is_state": _context_filter("is_state"),
    "has_value": _context_filter("has_value"),
    "match": regex_match,
    "search": regex_search,
}
