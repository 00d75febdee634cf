"""Deterministic CBOR (RFC 8949 §4.2.1): the only encoding that is hashed or signed.

Two nodes must derive the same bytes from the same object, or their hashes and signatures differ and
they fork. cbor2's ``canonical=True`` gives shortest integer and length forms and sorted map keys.
Every map key in a consensus object is a text string shorter than 24 bytes, where cbor2's ordering
(length first, then bytes) and RFC 8949's (bytewise on the encoded key) are the same order.

Decoding is strict: the bytes must be exactly what encoding the decoded value gives back, so a
transaction or block has a single encoding and therefore a single hash (no malleability through
alternative integer widths, indefinite lengths, unsorted or duplicate keys, or trailing bytes).
Every CBOR tag (major type 6) is refused, whatever its number: cbor2 decodes the tags it knows
itself (bignums 2 and 3 to ints, 1 to datetimes, 28/29 value sharing, 256/25 string references,
55799 self-description ...) without asking ``tag_hook``, so each is routed to a refusal through
``semantic_decoders`` as well. A bignum re-encodes to its own bytes, so without this an integer
beyond 64 bits slipped through where docs/chain.md promises that tags are refused.
The exact cbor2 version is pinned (pyproject.toml): consensus bytes depend on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import Any

import cbor2

#: Nesting deeper than this is refused before cbor2 sees it would recurse that far.
MAX_DEPTH = 32


class DecodeError(ValueError):
    """The bytes are not the deterministic CBOR encoding of an allowed value."""


def encode(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


def decode(data: bytes) -> Any:
    """Decode deterministic CBOR; any defect raises :class:`DecodeError` and nothing else."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    try:
        value = cbor2.loads(data, tag_hook=_refuse_tag, semantic_decoders=_REFUSE_EVERY_TAG)
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - cbor2 raises several kinds on garbage; one kind out
        if isinstance(exc.__cause__, DecodeError):  # our refusal of a tag, wrapped by cbor2
            raise DecodeError(str(exc.__cause__)) from None
        raise DecodeError(f"not CBOR: {exc}") from None
    has_float = _check(value)
    try:
        # With map keys checked to be in canonical order and no floats, cbor2's plain encoder gives
        # the canonical bytes (it always writes shortest integers and definite lengths) at half
        # the cost of canonical=True, which sorts every map again.
        again = cbor2.dumps(value, canonical=has_float)
    except Exception as exc:  # noqa: BLE001
        raise DecodeError(f"not encodable: {exc}") from None
    if again != data:
        raise DecodeError("not in deterministic CBOR form (RFC 8949 §4.2.1) or trailing bytes")
    return value


def _refuse_tag(tag: Any, _immutable: bool = False) -> Any:
    raise DecodeError(f"CBOR tag {getattr(tag, 'tag', '?')} is not allowed")


class _EveryTag(Mapping):
    """cbor2's ``semantic_decoders`` that claims every tag number, each decoding to a refusal."""

    def __getitem__(self, tag: int) -> Any:
        def refuse(_value: Any, _immutable: bool = False) -> Any:
            raise DecodeError(f"CBOR tag {tag} is not allowed")
        return refuse

    def __contains__(self, tag: object) -> bool:
        return True

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


_REFUSE_EVERY_TAG = _EveryTag()


_SCALARS = frozenset({bytes, str, int, bool, type(None)})


_ORDER_CACHE: dict[str, tuple[int, bytes]] = {}


def _key_order(key: str) -> tuple[int, bytes]:
    order = _ORDER_CACHE.get(key)
    if order is None:
        raw = key.encode()
        order = (len(raw), raw)
        if len(_ORDER_CACHE) < 4096:
            _ORDER_CACHE[key] = order
    return order


#: Key sequences already found in canonical order. Maps in a chain's objects come in a handful of
#: shapes (a transaction, each payload type, a header), so checking each shape once saves the
#: per-key work on every one of a block's 10,000 transactions.
_GOOD_KEYS: set[tuple] = set()


def _check_keys(keys: tuple) -> None:
    previous = None
    for key in keys:
        if type(key) is not str:
            raise DecodeError("map keys must be text strings")
        order = _key_order(key)
        if previous is not None and order <= previous:
            raise DecodeError("not in deterministic CBOR form (RFC 8949 §4.2.1): map keys out of order")
        previous = order
    if len(_GOOD_KEYS) < 4096:
        _GOOD_KEYS.add(keys)


def _check(value: Any, depth: int = 0) -> bool:
    """Refuse values CBOR tags decode to (dates, decimals ...), non-text map keys, keys out of
    canonical order and deep nesting; returns whether a float was seen.

    Recursive (at most MAX_DEPTH deep): a transaction's two maps cost two calls, a third less than
    the explicit stack this replaced, and every node checks every transaction."""
    t = type(value)
    if t is dict:
        keys = tuple(value)
        if keys not in _GOOD_KEYS:  # the same few key sets recur in every transaction
            _check_keys(keys)
        items = value.values()
    elif t is list:
        items = value
    elif t in _SCALARS:
        return False
    elif t is float:
        return True
    else:
        raise DecodeError(f"CBOR value of type {t.__name__} is not allowed")
    has_float = False
    scalars = _SCALARS
    for item in items:
        kind = type(item)
        if kind in scalars:
            continue
        if kind is float:  # a leaf, like a scalar: it does not count as nesting
            has_float = True
            continue
        if depth >= MAX_DEPTH:
            raise DecodeError(f"nested deeper than {MAX_DEPTH}")
        if _check(item, depth + 1):
            has_float = True
    return has_float


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hash_object(value: Any) -> bytes:
    return hashlib.sha256(encode(value)).digest()
