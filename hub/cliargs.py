"""``key=value`` command arguments read by the command's JSON schema, for ``hub call``.

Guessing from the text went wrong where it matters: ``code=4321`` became the number 4321 and a lock
refused it. The hub publishes each command's schema (``GET /api/capabilities``), so the value is
read as the type its field takes: a string field gets the text as it is, an integer field an int, a
boolean ``true/false/on/off/yes/no``, an array or object JSON. A value that fits no type of its field
is an error naming the key, before anything is sent.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_INTEGER = re.compile(r"^[+-]?\d+$")
_BOOLEANS = {"true": True, "on": True, "yes": True, "1": True, "false": False, "off": False, "no": False, "0": False}
_NAMES = {"integer": "an integer", "number": "a number", "boolean": "true or false (on/off, yes/no)",
          "array": "a JSON list, e.g. [255, 0, 0]", "object": "a JSON object, e.g. {\"a\": 1}",
          "string": "text", "null": "null"}


class ArgumentError(ValueError):
    pass


def _resolve(schema: dict, defs: dict) -> dict:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return defs.get(ref.removeprefix("#/$defs/"), {})
    return schema


def types_of(schema: dict, defs: dict) -> list[str]:
    """The JSON types a field accepts, in the order to try them (text last: it fits anything)."""
    schema = _resolve(schema, defs)
    found: set[str] = set()
    kind = schema.get("type")
    if isinstance(kind, str):
        found.add(kind)
    elif isinstance(kind, list):
        found.update(k for k in kind if isinstance(k, str))
    for key in ("anyOf", "oneOf", "allOf"):
        for member in schema.get(key, ()):
            if isinstance(member, dict):
                found.update(types_of(member, defs))
    values = schema.get("enum", [schema["const"]] if "const" in schema else [])
    for value in values:
        found.add("null" if value is None else "boolean" if isinstance(value, bool) else
                  "integer" if isinstance(value, int) else "number" if isinstance(value, float) else
                  "string" if isinstance(value, str) else "array" if isinstance(value, list) else "object")
    if not found:  # no type given: any JSON value
        found = {"boolean", "number", "array", "object", "string", "null"}
    order = ["null", "boolean", "integer", "number", "array", "object", "string"]
    return [t for t in order if t in found]


def _convert(text: str, kind: str) -> Any:
    """``text`` as a value of JSON type ``kind``; raises ValueError when it is not one."""
    if kind == "null":
        if text.strip().lower() in ("null", "none"):
            return None
    elif kind == "boolean":
        if text.strip().lower() in _BOOLEANS:
            return _BOOLEANS[text.strip().lower()]
    elif kind == "integer":
        if _INTEGER.match(text.strip()):
            return int(text)
    elif kind == "number":
        value = float(text)  # ValueError if it is not a number
        if math.isfinite(value):
            return value
    elif kind in ("array", "object"):
        value = json.loads(text)
        if isinstance(value, list if kind == "array" else dict):
            return value
    elif kind == "string":
        return text
    raise ValueError(kind)


def convert_args(pairs: tuple[str, ...] | list[str], schema: dict, what: str) -> dict[str, Any]:
    """``key=value`` pairs as the arguments ``schema`` (a command's JSON schema) describes; ``what``
    names the command in errors (``lock.unlock``)."""
    properties: dict = schema.get("properties", {})
    defs: dict = schema.get("$defs", {})
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ArgumentError(f"argument {pair!r} is not key=value")
        if key not in properties:
            takes = ", ".join(properties) or "no arguments"
            raise ArgumentError(f"{key}: {what} has no argument {key!r}; it takes {takes}")
        kinds = types_of(properties[key], defs)
        for kind in kinds:
            try:
                args[key] = _convert(text, kind)
                break
            except ValueError:
                continue
        else:
            wanted = " or ".join(_NAMES.get(k, k) for k in kinds if k != "null")
            raise ArgumentError(f"{key}: {text!r} is not {wanted}")
    return args
