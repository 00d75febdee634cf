"""The wire protocol between a hub and a device that holds its own key, shared by both ends.

The device side is ``hardware-in-loop/simulators/keyplug.py`` (an ESP32 could speak the same: it is
a length prefix and CBOR); the hub side is this driver. One TCP connection carries frames: a 4-byte
big-endian length, then that many bytes of deterministic CBOR (:mod:`hub.crypto.encoding`, the
strict decoder: no tags, no trailing bytes). A frame above :data:`MAX_FRAME` is refused before it
is read, so a peer cannot make the other end allocate what it likes. Every message is a map whose
``t`` names its type; :func:`check` validates each field and names the one that is wrong.

| ``t`` | from | fields | answer |
| --- | --- | --- | --- |
| ``hello``   | device, first frame | ``v``, ``device`` (public key), ``model``, ``entities``, ``flash`` | none |
| ``state``   | device, any time    | ``entity``, ``value`` | none |
| ``reset``   | device, button      | ``statement``: the device-signed ``Reset`` body, or null if never bound | none |
| ``deliver`` | hub                 | ``id``, ``signed`` (a ``Signed.to_body()``), ``chain``, ``genesis`` | ``answer`` |
| ``auth``    | hub, after hello    | ``id``, ``nonce`` (32 random bytes) | ``answer`` (result: the device key's signature of :func:`auth_bytes`) |
| ``prove``   | hub                 | ``id``, ``controller``, ``nonce``, ``code_mac``, ``chain``, ``genesis`` | ``answer`` (result: the ``BindProof`` body) |
| ``receipt`` | hub                 | ``id``, ``call``, ``entity``, ``since``, ``chain``, ``genesis`` | ``answer`` (result: a signed ``Receipt`` body: the device's own meter reading of ``entity``, or ``"time"``: ms since ``since``) |
| ``ping``    | hub                 | ``id`` | ``answer`` (result: ``"pong"``) |
| ``answer``  | device              | ``id``, ``ok``, then ``result`` or ``reason`` and ``message`` | |
| ``busy``    | device              | ``message``: every connection slot is taken; it closes | |

A hello only claims a key: the hub registers the device once it has answered ``auth`` with a
signature by that key over the hub's fresh nonce, so a device cannot pose as another one.

``chain`` and ``genesis`` name the network the hub signs for: a device that is not bound yet adopts
it with its binding (it keeps it in flash, and drops it on a factory reset), a bound device refuses
any other (``wrong_chain``). A refusal's ``reason`` is a :class:`hub.identity.errors.Reason` code.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from hub.crypto.encoding import DecodeError, decode, encode

VERSION = 1
MAX_FRAME = 64 * 1024
HEADER = struct.Struct(">I")
MAX_ENTITIES = 32


class ProtocolError(Exception):
    """The peer sent something this protocol does not allow; the message says what and where."""


# type name -> {field: kind}; kinds are checked by _check_field.
MESSAGES: dict[str, dict[str, str]] = {
    "hello": {"v": "int", "device": "key", "model": "text", "entities": "entities", "flash": "int"},
    "state": {"entity": "name", "value": "value"},
    "reset": {"statement": "map?"},
    "deliver": {"id": "int", "signed": "map", "chain": "name", "genesis": "key"},
    "prove": {"id": "int", "controller": "key", "nonce": "key", "code_mac": "key", "chain": "name",
              "genesis": "key"},
    "receipt": {"id": "int", "call": "key", "entity": "name", "since": "int", "chain": "name", "genesis": "key"},
    "ping": {"id": "int"},
    "auth": {"id": "int", "nonce": "key"},
    "answer": {"id": "int", "ok": "bool"},
    "busy": {"message": "text"},
}
#: Fields an answer carries besides id and ok: result when ok, reason and message when not.
ANSWER_OK = {"result": "value"}
ANSWER_REFUSED = {"reason": "name", "message": "text"}
ENTITY = {"key": "name", "capability": "name", "unit": "text?", "device_class": "text?"}


def pack(message: dict[str, Any]) -> bytes:
    body = encode(message)
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"{message.get('t')}: frame of {len(body)} bytes is above {MAX_FRAME}")
    return HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader, timeout: float | None) -> dict[str, Any]:
    """The next message, checked. ``TimeoutError`` when nothing whole arrives in ``timeout`` s,
    ``asyncio.IncompleteReadError`` when the peer closed, :class:`ProtocolError` on a bad frame."""
    async with asyncio.timeout(timeout):
        header = await reader.readexactly(HEADER.size)
        (size,) = HEADER.unpack(header)
        if size > MAX_FRAME:
            raise ProtocolError(f"frame of {size} bytes announced; the limit is {MAX_FRAME}")
        body = await reader.readexactly(size)
    try:
        message = decode(body)
    except DecodeError as exc:
        raise ProtocolError(f"frame is not deterministic CBOR: {exc}") from None
    return check(message)


async def write_frame(writer: asyncio.StreamWriter, message: dict[str, Any], timeout: float | None = 10) -> None:
    writer.write(pack(message))
    async with asyncio.timeout(timeout):
        await writer.drain()


def check(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise ProtocolError(f"a message is a map, not {type(message).__name__}")
    kind = message.get("t")
    if kind not in MESSAGES:
        raise ProtocolError(f"t: {kind!r} is not one of {', '.join(sorted(MESSAGES))}")
    shape = dict(MESSAGES[kind])
    if kind == "answer":
        shape.update(ANSWER_OK if message.get("ok") is True else ANSWER_REFUSED)
    extra = set(message) - set(shape) - {"t"}
    if extra:
        raise ProtocolError(f"{kind}: unknown field(s) {', '.join(sorted(map(str, extra)))}")
    for name, field_kind in shape.items():
        if name not in message:
            raise ProtocolError(f"{kind}.{name}: missing")
        _check_field(f"{kind}.{name}", field_kind, message[name])
    return message


def _check_field(where: str, kind: str, value: Any) -> None:
    if kind.endswith("?"):
        if value is None:
            return
        kind = kind[:-1]
    ok = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63,
        "bool": lambda v: isinstance(v, bool),
        "key": lambda v: isinstance(v, bytes) and len(v) == 32,
        "name": lambda v: isinstance(v, str) and 1 <= len(v) <= 64,
        "text": lambda v: isinstance(v, str) and len(v) <= 256,
        "map": lambda v: isinstance(v, dict),
        "value": lambda v: True,  # the CBOR decoder already allowed it; the hub checks states itself
    }.get(kind)
    if ok is not None:
        if not ok(value):
            raise ProtocolError(f"{where}: {_EXPECTED[kind]} expected")
        return
    if kind == "entities":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_ENTITIES:
            raise ProtocolError(f"{where}: a list of 1 to {MAX_ENTITIES} entities expected")
        for i, entity in enumerate(value):
            if not isinstance(entity, dict) or set(entity) != set(ENTITY):
                raise ProtocolError(f"{where}[{i}]: an entity is {{{', '.join(ENTITY)}}}")
            for name, field_kind in ENTITY.items():
                _check_field(f"{where}[{i}].{name}", field_kind, entity[name])
        return
    raise TypeError(f"{where}: unknown field kind {kind!r}")  # pragma: no cover - a bug in MESSAGES


_EXPECTED = {"int": "a non-negative integer", "bool": "true or false", "key": "32 bytes",
             "name": "text of 1 to 64 characters", "text": "text of at most 256 characters", "map": "a map"}


def auth_bytes(nonce: bytes, device: bytes) -> bytes:
    """What a device signs to show it holds the key its hello claims: the hub's nonce, the key, and
    a domain of their own, so the signature can pass for no statement and no other protocol."""
    return encode(["ruff", "lightnode-auth", nonce, device])


def answer_ok(request_id: int, result: Any) -> dict[str, Any]:
    return {"t": "answer", "id": request_id, "ok": True, "result": result}


def answer_refused(request_id: int, reason: str, message: str) -> dict[str, Any]:
    return {"t": "answer", "id": request_id, "ok": False, "reason": reason, "message": message[:256]}
