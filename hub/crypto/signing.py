"""Domain-separated signing bytes.

A signature covers ``encode(["ruff", domain, chain_id, body])``: the domain names the kind of
object (``tx``, ``block``, ``bind``, ``command``, ...) and the chain id names the network, so a
signature made for one can never be replayed as another kind of object or on another chain.
"""

from __future__ import annotations

from typing import Any

from hub.crypto.encoding import encode

MAGIC = "ruff"


def signing_bytes(domain: str, chain_id: str, body: Any) -> bytes:
    return encode([MAGIC, domain, chain_id, body])
