"""Register words <-> values.

Modbus only moves 16-bit words; everything wider is a convention of the device maker. Meters and
PLCs disagree about both the order of the bytes inside a word and the order of the words inside a
value (ABCD, CDAB, BADC, DCBA), so both are explicit settings here instead of a guess, and the
conversion is a pure function that unit tests pin down for every combination.
"""

from __future__ import annotations

import math
import struct
from typing import Literal

DataType = Literal[
    "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string", "bool", "bit"
]
Order = Literal["big", "little"]

#: Registers each fixed-width type occupies; strings take ``count`` registers, bits one.
WIDTH: dict[str, int] = {
    "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
    "float32": 2, "float64": 4, "bit": 1, "bool": 1,
}
_STRUCT = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q",
           "float32": "f", "float64": "d"}
NUMERIC = frozenset(_STRUCT)
INTEGER = frozenset(t for t in _STRUCT if not t.startswith("float"))


def width(data_type: str, count: int | None = None) -> int:
    if data_type == "string":
        if not count:
            raise ValueError("a string needs a register count")
        return count
    return WIDTH[data_type]


def words_to_bytes(words: list[int], byte_order: Order = "big", word_order: Order = "big") -> bytes:
    ordered = words if word_order == "big" else list(reversed(words))
    return b"".join(int(w & 0xFFFF).to_bytes(2, byte_order) for w in ordered)


def bytes_to_words(data: bytes, byte_order: Order = "big", word_order: Order = "big") -> list[int]:
    words = [int.from_bytes(data[i:i + 2], byte_order) for i in range(0, len(data), 2)]
    return words if word_order == "big" else list(reversed(words))


def decode(
    words: list[int],
    data_type: str,
    *,
    byte_order: Order = "big",
    word_order: Order = "big",
    bit: int | None = None,
    encoding: str = "ascii",
) -> int | float | str | bool:
    """The value held in ``words`` (already sliced to the value's width)."""
    if data_type == "bit":
        return bool((words[0] >> (bit or 0)) & 1)
    if data_type == "bool":
        return bool(words[0])
    raw = words_to_bytes(words, byte_order, word_order)
    if data_type == "string":
        # Devices pad with NULs or spaces; neither is part of the text.
        return raw.split(b"\x00", 1)[0].decode(encoding, errors="replace").rstrip()
    return struct.unpack(">" + _STRUCT[data_type], raw)[0]


def encode(
    value: int | float | str,
    data_type: str,
    *,
    byte_order: Order = "big",
    word_order: Order = "big",
    count: int | None = None,
    encoding: str = "ascii",
) -> list[int]:
    """Words to write for ``value``. Raises ``ValueError`` when it does not fit the type, so a set-point
    of 700 never silently wraps into a register that holds 0-255 worth of tenths."""
    if data_type == "string":
        n = width("string", count)
        raw = str(value).encode(encoding)
        if len(raw) > 2 * n:
            raise ValueError(f"{value!r} does not fit in {n} registers")
        return bytes_to_words(raw.ljust(2 * n, b"\x00"), byte_order, word_order)
    if data_type in ("bool", "bit"):
        return [1 if value else 0]
    if data_type in INTEGER:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"{value!r} is not a number a register can hold")
            value = round(value)
    try:
        raw = struct.pack(">" + _STRUCT[data_type], value)
    except struct.error as exc:
        raise ValueError(f"{value!r} does not fit {data_type}") from exc
    return bytes_to_words(raw, byte_order, word_order)


def scaled(raw: float, scale: float, offset: float, precision: int | None) -> float | int:
    """Engineering value from a raw one: ``raw * scale + offset``; integers stay integers when the
    scale and offset keep them whole, so a counter reads 42 and not 42.0."""
    value = raw * scale + offset
    if precision is not None:
        value = round(value, precision)
    if isinstance(raw, int) and float(value).is_integer() and scale == int(scale) and offset == int(offset):
        return int(value)
    return value


def unscaled(value: float, scale: float, offset: float) -> float:
    return (value - offset) / scale
