"""How the chain's values are shown, shared by the CLI (``hub chain ...``) and the node's RPC.

Below both: a node imports neither click nor the CLI's command tree to format an amount or a header.
"""

from __future__ import annotations

from hub.crypto.address import address_of, encode_address


def ruff(units: int) -> str:
    """Base units as RUFF: 1,500,000 -> ``1.5 RUFF``."""
    whole, frac = divmod(units, 10**6)
    return f"{whole:,}.{frac:06d}".rstrip("0").rstrip(".") + " RUFF"


def header_json(block) -> dict:
    """A block's header fields, as ``hub chain block --json`` and the RPC's ``/blocks`` show them."""
    h = block.header
    return {"hash": block.hash.hex(), "height": h.height, "round": h.round, "slot": h.slot, "timestamp": h.timestamp,
            "prev_hash": h.prev_hash.hex(), "tx_root": h.tx_root.hex(), "state_hash": h.state_hash.hex(),
            "producer": encode_address(address_of(h.producer)), "transactions": len(block.txs)}


__all__ = ["header_json", "ruff"]
