"""JSON encoding for stored values.

``write_states`` encodes two values per row and is the hub's hottest write path; with the stock
``json.dumps(..., separators=...)`` the encoding cost more than the SQLite inserts. So: one
prebuilt encoder (``dumps`` with keyword arguments builds a new ``JSONEncoder`` per call) and a
shortcut for the scalar values most states are. Output is identical to ``json.dumps`` with
compact separators, and ``json.loads`` reads it back.
"""

from __future__ import annotations

import json
import math
from json.encoder import encode_basestring_ascii
from typing import Any

_encode = json.JSONEncoder(separators=(",", ":")).encode


def dumps(value: Any) -> str:
    # Exact type checks: bool and float/int subclasses (enums, numpy scalars) take the slow,
    # fully general path.
    kind = type(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    return _encode(value)


loads = json.loads
