"""The command log's Merkle leaf: what one logged command commits to, defined once.

A leaf is the deterministic CBOR (``hub.crypto.encoding.encode``) of a map of the row's columns
*as stored* in ``command_log``, so anyone holding the row can rebuild the exact bytes:

| key       | value                                                              |
| ---       | ---                                                                |
| ``v``     | 1 (this layout)                                                    |
| ``id``    | the row id (never reused: the table is AUTOINCREMENT)              |
| ``ts``    | time of the command, integer unix milliseconds (``round(ts*1000)``) |
| ``entity``| entity id                                                          |
| ``command`` | command name                                                     |
| ``args``  | the stored JSON text of the arguments' summary (secrets redacted)  |
| ``source``| who sent it: ``api:<token>``, ``rule:<id>``, ``signed:<key>``, ``chain:<tx>`` ... |
| ``ok``    | accepted and executed                                              |
| ``error`` | the refusal or failure (starts with the reason code), or null      |
| ``result``| the stored JSON text of the result's summary                       |

JSON texts, not decoded values: the stored text is the one thing two readers cannot disagree on
(a float re-encoded, a key order). The Merkle tree hashes each leaf as RFC 6962 does
(``hub.crypto.merkle.leaf_hash``: SHA-256 of 0x00 ‖ leaf).
"""

from __future__ import annotations

from typing import Any

from hub.crypto.encoding import encode
from hub.crypto.merkle import leaf_hash

VERSION = 1


def ts_ms(ts: float) -> int:
    return round(float(ts) * 1000)


def leaf(id_: int, ts: float, entity_id: str, command: str, args: str, source: str, ok: Any,
         error: str | None, result: str | None) -> bytes:
    """The leaf bytes of one stored row (the columns of ``command_log`` in table order)."""
    return encode({"v": VERSION, "id": int(id_), "ts": ts_ms(ts), "entity": entity_id, "command": command,
                   "args": args, "source": source, "ok": bool(ok), "error": error, "result": result})


def hashed(row: tuple) -> bytes:
    """RFC 6962 leaf hash of a stored row tuple (id, ts, entity_id, command, args, source, ok, error, result)."""
    return leaf_hash(leaf(*row))
