"""The market as a renter's command line reads it from the chain: offers, calls, channels, reviews.

Two sources with the same answers, as ``hub chain`` has: the chain directory (the embedded chain of
``hub run`` on this machine; its ``chain.db`` read directly, safe beside the running hub) or, with
``--rpc URL``, any full node's RPC (``GET /contracts``, ``/calls/{id}``, ``/channels``, ``/reviews``).
Both answer with the RPC's own views (``hub/chain/node/rpc/market_routes.py``): ids and keys as
hex, amounts in base units, terms as a dict. Transactions go
through the same sources' ``submit`` (``hub/chain/cli_support.py``, ``cli_rpc.py``): signed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class StoreState:
    """The chain directory's head state as the RPC's views read a :class:`State` (``get``,
    ``items``, ``head``, ``constants``), straight from ``chain.db``: the same views answer both
    sources, so the command line reads one shape."""

    def __init__(self, store: Any, constants: Any) -> None:
        self.store, self.constants = store, constants
        self.head = store.head()

    def get(self, ns: str, key: Any, default: Any = None) -> Any:
        value = self.store.state_value(ns, key)
        return default if value is None else value

    def items(self, ns: str) -> list[tuple[Any, Any]]:
        from hub.crypto.encoding import decode

        rows = self.store.conn.execute("SELECT key, value FROM state WHERE ns=?", (ns,)).fetchall()
        return sorted((decode(k), decode(v)) for k, v in rows)


class LocalMarket:
    """The chain directory (``<data>/chain``), read with the node RPC's own views."""

    def __init__(self, chain: Any) -> None:
        self.source = chain  # hub.chain.cli_support._Chain

    def _view(self, fn: Any, *args: Any) -> Any:
        from hub.chain.node.rpc.device_routes import NotFound

        try:
            return fn(StoreState(self.source.store, self.source.constants), *args)
        except NotFound:
            return None

    def contracts(self, device: str | None = None, live: bool = True) -> list[dict[str, Any]]:
        from hub.chain.node.rpc import market_routes as views

        page = self._view(views.contracts, bytes.fromhex(device) if device else None, True if live else None, b"",
                          10**9)
        return page["contracts"]

    def contract(self, cid: bytes) -> dict[str, Any] | None:
        from hub.chain.node.rpc import market_routes as views

        return self._view(views.contract, cid)

    def call(self, call: bytes) -> dict[str, Any] | None:
        from hub.chain.node.rpc import market_routes as views

        return self._view(views.call, call)

    def channel(self, chan: bytes) -> dict[str, Any] | None:
        from hub.chain.node.rpc import market_routes as views

        return self._view(views.channel, chan)

    def channels(self, renter: bytes) -> list[dict[str, Any]]:
        from hub.chain.node.rpc import market_routes as views

        return self._view(views.channels, renter, None)["channels"]

    def reviews(self, target: bytes) -> dict[str, Any]:
        from hub.chain.node.rpc import market_routes as views

        return self._view(views.reviews, target)


class RpcMarket:
    """A full node's RPC: the same views, over HTTP (``hub/chain/node/rpc/market_routes.py``)."""

    def __init__(self, node: Any) -> None:
        self.source = node  # hub.chain.cli_rpc.RpcNode

    def _get(self, path: str) -> Any:
        return self.source.request(path, missing_ok=True)

    def contracts(self, device: str | None = None, live: bool = True) -> list[dict[str, Any]]:
        rows, start = [], None
        while True:  # every page
            query = "&".join(q for q in ("live=true" if live else "", f"device={device}" if device else "",
                                         f"from={start}" if start else "") if q)
            page = self._get("/contracts" + (f"?{query}" if query else "")) or {}
            rows += page.get("contracts", [])
            start = page.get("more_from")
            if not start:
                return rows

    def contract(self, cid: bytes) -> dict[str, Any] | None:
        return self._get(f"/contracts/{cid.hex()}")

    def call(self, call: bytes) -> dict[str, Any] | None:
        return self._get(f"/calls/{call.hex()}")

    def channel(self, chan: bytes) -> dict[str, Any] | None:
        return self._get(f"/channels/{chan.hex()}")

    def channels(self, renter: bytes) -> list[dict[str, Any]]:
        return (self._get(f"/channels?renter={renter.hex()}") or {}).get("channels", [])

    def reviews(self, target: bytes) -> dict[str, Any]:
        return self._get(f"/reviews/{target.hex()}") or {"returned": 0, "negative": 0}


def open_market(chain_dir: Path, rpc_url: str | None) -> LocalMarket | RpcMarket:
    if rpc_url is None:
        from hub.chain.cli_support import _Chain

        return LocalMarket(_Chain(chain_dir))
    from hub.chain.cli_rpc import RpcNode

    return RpcMarket(RpcNode(rpc_url, chain_dir))


def terms_dict(terms: Any) -> dict[str, Any]:
    """The terms as a dict, from the state's tuple (or a dict already)."""
    from hub.chain.node.rpc.market_routes import TERM_NAMES

    return dict(terms) if isinstance(terms, dict) else dict(zip(TERM_NAMES, terms, strict=False))


__all__ = ["LocalMarket", "RpcMarket", "StoreState", "open_market", "terms_dict"]
