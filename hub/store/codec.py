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


#: Bounds of what the command log keeps of a command's arguments or result (see :func:`summary`).
MAX_TEXT = 256
MAX_ITEMS = 32
MAX_DEPTH = 6
MAX_NODES = 512
MAX_JSON = 4096
TRUNCATED = "_truncated"


def summary(value: Any) -> Any:
    """At most a few kilobytes of ``value`` for the command log, with a marker where something was cut.

    The log keeps what was asked for, not the payload: a 20 MB body that was refused anyway once
    grew the database by 20 MB per request. Texts keep their first :data:`MAX_TEXT` characters,
    containers their first :data:`MAX_ITEMS` items, nesting stops at :data:`MAX_DEPTH`, and the walk
    stops after :data:`MAX_NODES` values, so the cost is bounded whatever the input. If the encoded
    summary is still longer than :data:`MAX_JSON`, only a prefix of it is kept, as text. A dict that
    lost anything gains ``"_truncated": true``; a cut text or list ends in a ``"…"`` note.
    """
    budget = [MAX_NODES]

    def cut(v: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_DEPTH:
            return "…"
        if isinstance(v, str):
            return v if len(v) <= MAX_TEXT else f"{v[:MAX_TEXT]}… ({len(v)} characters)"
        if isinstance(v, dict):
            out: dict = {}
            for i, (k, item) in enumerate(v.items()):
                if i >= MAX_ITEMS or budget[0] <= 0:
                    out[TRUNCATED] = True
                    break
                out[cut(str(k), depth + 1)] = cut(item, depth + 1)
            if any(x == "…" for x in out.values()):
                out[TRUNCATED] = True
            return out
        if isinstance(v, (list, tuple)):
            items = [cut(item, depth + 1) for item in v[:MAX_ITEMS] if budget[0] > 0]
            if len(items) < len(v):
                items.append(f"… ({len(v)} items)")
            return items
        return v

    short = cut(value, 0)
    text = dumps(short)
    if len(text) <= MAX_JSON:
        return short
    return {TRUNCATED: True, "json": text[:MAX_JSON // 2] + "…"}
