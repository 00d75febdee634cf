"""Addresses: the first 20 bytes of SHA-256(public key), shown as bech32m with the prefix ``ruff``.

Bech32m (BIP 350) was chosen for the checksum because it is guaranteed to catch any single mistyped
character and any error touching up to four characters, and its alphabet has no 1/l or 0/o pairs
to confuse; ``ruff1...`` also tells at a glance which network's address it is.
"""

from __future__ import annotations

import hashlib

PREFIX = "ruff"
ADDRESS_SIZE = 20
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32M = 0x2BC830A3
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class AddressError(ValueError):
    """A text that is not a valid address; the message says what is wrong with it."""


def address_of(public_key: bytes) -> bytes:
    return hashlib.sha256(public_key).digest()[:ADDRESS_SIZE]


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= _GEN[i] if (top >> i) & 1 else 0
    return chk


def _expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert(data: bytes | list[int], frombits: int, tobits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad and bits:
        out.append((acc << (tobits - bits)) & maxv)
    elif not pad and (bits >= frombits or (acc << (tobits - bits)) & maxv):
        raise AddressError("invalid padding")
    return out


def encode_address(raw: bytes) -> str:
    if len(raw) != ADDRESS_SIZE:
        raise AddressError(f"an address is {ADDRESS_SIZE} bytes, got {len(raw)}")
    data = _convert(raw, 8, 5, True)
    polymod = _polymod(_expand(PREFIX) + data + [0] * 6) ^ _BECH32M
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return PREFIX + "1" + "".join(_CHARSET[d] for d in data + checksum)


def decode_address(text: str) -> bytes:
    """The 20 raw bytes of a ``ruff1...`` address; a typo gives :class:`AddressError`."""
    if not isinstance(text, str):
        raise AddressError("an address is text like ruff1...")
    text = text.strip()
    if text.lower() != text and text.upper() != text:
        raise AddressError("mixed upper and lower case")
    text = text.lower()
    prefix, sep, rest = text.rpartition("1")
    if not sep or prefix != PREFIX:
        raise AddressError(f"an address starts with {PREFIX}1")
    if any(c not in _CHARSET for c in rest):
        bad = next(c for c in rest if c not in _CHARSET)
        raise AddressError(f"character {bad!r} cannot appear in an address")
    data = [_CHARSET.index(c) for c in rest]
    if len(data) < 7:
        raise AddressError("too short")
    if _polymod(_expand(PREFIX) + data) != _BECH32M:
        raise AddressError("checksum mismatch: a character is mistyped")
    raw = bytes(_convert(data[:-6], 5, 8, False))
    if len(raw) != ADDRESS_SIZE:
        raise AddressError(f"an address is {ADDRESS_SIZE} bytes, this one decodes to {len(raw)}")
    return raw
