"""What the RPC says about the node's network and software, read on the event loop (where the
network lives). Attributes are read with defaults: a node without a network (tests, a node whose
p2p layer is being reworked) answers with empty lists rather than failing."""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

from hub import __version__


def _software_version() -> str:
    try:
        return metadata.version("ruffhub")
    except metadata.PackageNotFoundError:
        return __version__


SOFTWARE_VERSION = _software_version()
RPC_VERSION = "1"


def version(node) -> dict:
    return {"software": "ruffhub", "version": SOFTWARE_VERSION, "rpc": RPC_VERSION,
            "chain_id": node.genesis.chain_id, "genesis_hash": node.genesis.hash.hex(),
            "producer": node.key.public_key.hex() if getattr(node, "key", None) is not None else None}


def _live_peers(network: Any) -> list:
    peers = getattr(network, "peers", None) or {}
    return [p for p in list(peers.values()) if not p.closed.is_set()]


def peers(network: Any) -> dict:
    peer_list = getattr(network, "peer_list", None)
    if peer_list is not None:  # the p2p layer's own view: why each peer is kept, bans, dialling
        rows = peer_list()
        connected = [r for r in rows if r["state"] == "connected"]
        return {"peers": connected, "count": len(connected),
                "inbound": sum(r["direction"] == "inbound" for r in connected),
                "outbound": sum(r["direction"] == "outbound" for r in connected),
                "dialling": [r["address"] for r in rows if r["state"] == "dialling"],
                "bans": [{"key": r["node_key"] or r["address"], "seconds_left": r["ban_seconds_left"]}
                         for r in rows if r["state"] == "banned"]}
    rows = []
    for p in _live_peers(network):
        key = getattr(p, "node_key", None)
        rows.append({"node_key": key.hex() if key else None, "address": p.address,
                     "direction": "outbound" if p.outbound else "inbound", "height": getattr(p, "height", 0),
                     "score": getattr(p, "score", None), "syncing": bool(getattr(p, "syncing", False))})
    rows.sort(key=lambda r: (r["direction"], r["address"]))
    now = time.monotonic()
    bans = [{"key": key, "seconds_left": round(until - now, 1)}
            for key, until in list((getattr(network, "bans", None) or {}).items()) if until > now]
    bans.sort(key=lambda b: b["key"])
    return {"peers": rows, "count": len(rows), "inbound": sum(r["direction"] == "inbound" for r in rows),
            "outbound": sum(r["direction"] == "outbound" for r in rows), "bans": bans}


def sync(network: Any, head: int, lib: int) -> dict:
    live = _live_peers(network)
    best = max((getattr(p, "height", 0) for p in live), default=0)
    current = getattr(network, "_sync_peer", None)
    if current is not None and current.closed.is_set():
        current = None
    return {"head": head, "lib": lib, "best_peer_height": best, "behind": max(0, best - head),
            "syncing": current is not None and best > head, "sync_peer": current.name if current is not None else None,
            "peers": len(live)}
