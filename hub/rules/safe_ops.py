"""What expressions may do to values, and within which bounds.

The evaluator (:mod:`hub.rules.expressions`) can only reach what this module lists: the attributes
and methods of a few plain data types, operators wrapped in size guards, and the default functions.
Everything here is deliberately small and boring; widening it is a security decision.
"""

from __future__ import annotations

import ast
import datetime as dt
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from hub.core.state import State

#: Bounds on what one evaluation may allocate: ``2 ** 10**10`` or ``'a' * 10**9`` would otherwise
#: freeze the hub's only event loop while it builds a gigabyte.
MAX_EXPONENT = 1000
MAX_INT_BITS = 10_000
MAX_SEQUENCE = 10_000


# --- what values expose --------------------------------------------------------------------------

_ATTRIBUTES: dict[type, frozenset[str]] = {}
_METHODS: dict[type, frozenset[str]] = {}


def allow_attributes(cls: type, attributes: Iterable[str] = (), methods: Iterable[str] = ()) -> None:
    """Let expressions read ``attributes`` and call ``methods`` on values of exactly type ``cls``.

    Only for plain data types whose listed members cannot lead anywhere else; the check is on the
    exact type, so a subclass does not inherit the permission (it could override the member).
    """
    for name in (*attributes, *methods):
        if name.startswith("_"):
            raise ValueError(f"private member {name!r} cannot be exposed")
    _ATTRIBUTES[cls] = _ATTRIBUTES.get(cls, frozenset()) | frozenset(attributes)
    _METHODS[cls] = _METHODS.get(cls, frozenset()) | frozenset(methods)


allow_attributes(
    dt.datetime,
    ("year", "month", "day", "hour", "minute", "second", "microsecond"),
    ("weekday", "isoweekday", "isoformat", "timestamp"),
)
allow_attributes(dt.date, ("year", "month", "day"), ("weekday", "isoweekday", "isoformat"))
allow_attributes(str, (), ("lower", "upper", "strip", "startswith", "endswith", "split", "replace"))
allow_attributes(
    State, ("entity_id", "value", "state", "attributes", "available", "last_changed", "last_updated")
)

_SEQUENCES = (str, list, tuple)


def _check_size(size: int) -> None:
    if size > MAX_SEQUENCE:
        raise ValueError(f"result would be too long ({size} items; the limit is {MAX_SEQUENCE})")


def _size(value: Any, budget: int) -> int:
    """Items in ``value``, nested containers included, counted until ``budget`` is passed.

    Repeating ``[[1] * 99] * 99`` a few levels deep makes a list whose ``str()`` is gigabytes, so
    repetition must weigh what it repeats, not just how many references it makes.
    """
    kind = type(value)
    if kind is str:
        return len(value)
    if kind is dict:
        value = [*value.keys(), *value.values()]
    elif kind is not list and kind is not tuple:
        return 1
    total = len(value)
    for item in value:
        if total > budget:
            break
        if type(item) in (str, list, tuple, dict):
            total += _size(item, budget - total)
    return total


def _mul(a: Any, b: Any) -> Any:
    """``*`` that refuses to build huge strings or lists."""
    if type(b) in (int, bool) and b > 0 and issubclass(type(a), _SEQUENCES):
        _check_size(_size(a, MAX_SEQUENCE) * b)
    elif type(a) in (int, bool) and a > 0 and issubclass(type(b), _SEQUENCES):
        _check_size(_size(b, MAX_SEQUENCE) * a)
    return a * b


def _add(a: Any, b: Any) -> Any:
    """``+`` that refuses to join sequences past the limit: ``s + s + s ...`` over a string just
    under it would otherwise build one as long as the expression has parts."""
    if issubclass(type(a), _SEQUENCES) and issubclass(type(b), _SEQUENCES):
        _check_size(_size(a, MAX_SEQUENCE) + _size(b, MAX_SEQUENCE))
    return a + b


def _pow(a: Any, b: Any) -> Any:
    """``**`` that refuses results too large to be a sensor reading or a threshold."""
    if type(b) in (int, float, bool) and abs(b) > MAX_EXPONENT:
        raise ValueError(f"exponent {b} is too large (the limit is {MAX_EXPONENT})")
    if type(a) in (int, bool) and type(b) in (int, bool) and a.bit_length() * b > MAX_INT_BITS:
        raise ValueError("result would be too large")
    return a**b


_FORMAT_WIDTH = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(?:\*|\d{4,})|%(?:\([^)]*\))?[-+ #0]*\d*\.(?:\*|\d{4,})")


def _mod(a: Any, b: Any) -> Any:
    """``%``, with string formatting (``'%.1f' % x``, common in HA templates) bounded: a width or
    precision over 999 (``'%*d' % (10**9, 1)`` is a gigabyte of spaces) is refused."""
    if issubclass(type(a), str):
        if _FORMAT_WIDTH.search(a):
            raise ValueError("string formatting with a width or precision over 999 is refused")
        result = a % b
        _check_size(len(result))
        return result
    if type(a) in (list, tuple, dict):
        raise TypeError(f"unsupported operand type for %: {type(a).__name__}")
    return a % b


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: _add,
    ast.Sub: operator.sub,
    ast.Mult: _mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: _mod,
    ast.Pow: _pow,
}
_BINARY_SYMBOLS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**"
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_COMPARE_SYMBOLS = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.In: "in", ast.NotIn: "not", ast.Is: "is", ast.IsNot: "is",
}


def _string_method_guard(s: str, name: str, args: tuple) -> None:
    if name == "replace" and len(args) >= 2 and type(args[0]) is str and type(args[1]) is str:
        grow = len(args[1]) - len(args[0])
        if grow > 0:
            _check_size(len(s) + s.count(args[0]) * grow)


# --- default functions ---------------------------------------------------------------------------


def _int(value: Any = 0, *base: int) -> int:
    """``int`` that refuses long digit strings: converting them is quadratic."""
    if type(value) is str and len(value) > 1000:
        raise ValueError("number string is too long")
    return int(value, *base)


def _round(number: Any, ndigits: int | None = None) -> Any:
    """``round`` without ``round(5, -10**9)``, which computes ``10 ** 10**9``."""
    if ndigits is not None and type(ndigits) in (int, bool) and abs(ndigits) > 100:
        raise ValueError("ndigits is too large")
    return round(number, ndigits)


def _sum(values: Iterable[Any], start: Any = 0) -> Any:
    """``sum`` of numbers only: summing lists is quadratic."""
    if type(start) not in (int, float, bool):
        raise TypeError("sum() start must be a number")
    return sum(values, start)


#: Pure, cheap helpers every expression can call; the engine adds its own on top.
DEFAULT_FUNCTIONS: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "float": float,
    "int": _int,
    "str": str,
    "bool": bool,
    "round": _round,
    "abs": abs,
    "min": min,
    "max": max,
    "len": len,
    "sum": _sum,
})
