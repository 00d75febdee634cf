"""Strict JSON from clients: what JSON itself allows, to a depth a server can handle.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``-Infinity`` (and reads ``1e999`` as infinity),
which are not JSON: passed on, they reach other clients as text no other parser reads, and drivers
as numbers no device takes. Deep nesting is refused too: 15,000 ``[`` make ``json.loads`` raise
RecursionError (a 500 where it is not caught), and a few hundred still make every later walk over
the value recursive work for nothing; no message of the hub API or the node RPC nests beyond a
dozen levels. Used by the hub API (hub/api/jsonsafe.py) and the chain node's RPC.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64


class JsonError(ValueError):
    """Not acceptable JSON; the message says what and where."""


def _no_constant(name: str) -> Any:
    raise JsonError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonError(f"{text} is out of the range of a number")
    return value


def check_depth(value: Any, max_depth: int = MAX_DEPTH, where: str = "") -> None:
    """Iterative, so the check itself cannot overflow the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise JsonError(f"{where}nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    try:
        value = json.loads(data, parse_constant=_no_constant, parse_float=_finite)
    except JsonError:
        raise
    except RecursionError:
        raise JsonError(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # syntax, bad UTF-8, an integer of more than 4,300 digits
        raise JsonError(str(exc)) from None
    check_depth(value, max_depth)
    return value
