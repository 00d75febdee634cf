"""The market as a renter's command line reads it from the chain: offers, calls, channels, reviews.

Two sources with the same answers, as ``hub chain`` has: the chain directory (the embedded chain of
``hub run`` on this machine; its ``chain.db`` read directly, safe beside the running hub) or, with
``--rpc URL``, any full node's RPC (``GET /contracts``, ``/calls/{id}``, ``/channels``, ``/reviews``).
Both give plain dicts: ids and keys as hex, amounts in base units, terms as a dict. Transactions go
through the same sources' ``submit`` (``hub/chain/cli_support.py``, ``cli_rpc.py``): signed here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

# The state's tuples, as spec17 fixes them (hub/chain/protocol/market.py writes them).
CONTRACT = ("device", "controller", "commands", "terms", "endpoint", "height", "time")
CALL = ("contract", "renter", "deposit", "channel", "time", "windows", "status", "used", "ended")
CHANNEL = ("renter", "payee", "deposit", "withdrawn", "closing", "closing_at", "opened", "closed")
TERMS = ("kind", "price", "window", "rate", "meter", "interval", "deposit", "max_duration")


def channel_id(renter: bytes, payee: bytes, openings: int) -> bytes:
    """The id of a renter's channel to a payee: a new one for each opening, so a cheque of a closed
    channel never pays on its successor."""
    return hashlib.sha256(b"channel" + renter + payee + openings.to_bytes(8, "big")).digest()


def _hex(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [_hex(v) for v in value]
    if isinstance(value, dict):
        return {k: _hex(v) for k, v in value.items()}
    return value


def terms_dict(terms: Any) -> dict[str, Any]:
    """The terms as a dict, from the state's tuple (or a dict already)."""
    if isinstance(terms, dict):
        return dict(terms)
    return dict(zip(TERMS, terms, strict=False))


def _record(names: tuple[str, ...], value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return _hex(value)
    return _hex(dict(zip(names, value, strict=False)))


class LocalMarket:
    """The chain directory's head state (``<data>/chain``)."""

    def __init__(self, chain: Any) -> None:
        self.source = chain  # hub.chain.cli_support._Chain
        self.store = chain.store

    def _value(self, ns: str, key: Any) -> Any:
        try:
            return self.store.state_value(ns, key)
        except Exception:  # noqa: BLE001 - a namespace this chain's version does not have yet
            return None

    def _rows(self, ns: str) -> list[tuple[Any, Any]]:
        from hub.crypto.encoding import decode

        try:
            rows = self.store.conn.execute("SELECT key, value FROM state WHERE ns=? ORDER BY key", (ns,)).fetchall()
        except Exception:  # noqa: BLE001
            return []
        return [(decode(k), decode(v)) for k, v in rows]

    def _contract(self, cid: bytes, value: Any) -> dict[str, Any]:
        found = _record(CONTRACT, value)
        found["terms"] = terms_dict(value["terms"] if isinstance(value, dict) else value[3])
        found["id"] = cid.hex()
        device = self._value("dev", bytes.fromhex(found["device"]))
        found["live"] = bool(device) and bool(device[0]) and bytes(device[0]).hex() == found["controller"]
        found.update(self.reviews(cid))
        dev_reviews = self.reviews(bytes.fromhex(found["device"]))
        found["device_returned"], found["device_negative"] = dev_reviews["returned"], dev_reviews["negative"]
        return found

    def contracts(self, device: str | None = None, live: bool = True) -> list[dict[str, Any]]:
        out = [self._contract(k, v) for k, v in self._rows("contract")]
        return [c for c in out if (not live or c["live"]) and (device is None or c["device"] == device)]

    def contract(self, cid: bytes) -> dict[str, Any] | None:
        value = self._value("contract", cid)
        return self._contract(cid, value) if value is not None else None

    def call(self, call: bytes) -> dict[str, Any] | None:
        value = self._value("call", call)
        return {**_record(CALL, value), "id": call.hex()} if value is not None else None

    def channel(self, chan: bytes) -> dict[str, Any] | None:
        value = self._value("chan", chan)
        return {**_record(CHANNEL, value), "id": chan.hex()} if value is not None else None

    def channels(self, renter: bytes) -> list[dict[str, Any]]:
        return [{**_record(CHANNEL, v), "id": k.hex()} for k, v in self._rows("chan")
                if bytes((v["renter"] if isinstance(v, dict) else v[0])) == renter]

    def reviews(self, target: bytes) -> dict[str, int]:
        value = self._value("rev", target)
        returned, negative = (value[0], value[1]) if value else (0, 0)
        return {"returned": returned, "negative": negative}


class RpcMarket:
    """A full node's RPC (``hub/chain/node/rpc``); answers normalised to :class:`LocalMarket`'s."""

    def __init__(self, node: Any) -> None:
        self.source = node  # hub.chain.cli_rpc.RpcNode

    def _get(self, path: str) -> Any:
        return self.source.request(path, missing_ok=True)

    @staticmethod
    def _contract(row: dict[str, Any]) -> dict[str, Any]:
        row = _hex(dict(row))
        row["terms"] = terms_dict(row.get("terms", {}))
        reviews = row.pop("reviews", None) or {}
        row.setdefault("returned", reviews.get("returned", 0))
        row.setdefault("negative", reviews.get("negative", 0))
        dev = reviews.get("device") or {}
        row.setdefault("device_returned", dev.get("returned", row["returned"]))
        row.setdefault("device_negative", dev.get("negative", row["negative"]))
        row.setdefault("live", True)
        return row

    def contracts(self, device: str | None = None, live: bool = True) -> list[dict[str, Any]]:
        query = f"?live={'true' if live else 'false'}" + (f"&device={device}" if device else "")
        page = self._get(f"/contracts{query}") or {}
        rows = page.get("contracts", []) if isinstance(page, dict) else page
        return [self._contract(r) for r in rows]

    def contract(self, cid: bytes) -> dict[str, Any] | None:
        row = self._get(f"/contracts/{cid.hex()}")
        return self._contract(row) if row else None

    def call(self, call: bytes) -> dict[str, Any] | None:
        row = self._get(f"/calls/{call.hex()}")
        return _hex(row) if row else None

    def channel(self, chan: bytes) -> dict[str, Any] | None:
        row = self._get(f"/channels/{chan.hex()}")
        return _hex(row) if row else None

    def channels(self, renter: bytes) -> list[dict[str, Any]]:
        page = self._get(f"/channels?renter={renter.hex()}") or {}  # the node names parties by public key
        rows = page.get("channels", []) if isinstance(page, dict) else page
        return [_hex(r) for r in rows]

    def reviews(self, target: bytes) -> dict[str, int]:
        row = self._get(f"/reviews/{target.hex()}") or {}
        return {"returned": row.get("returned", 0), "negative": row.get("negative", 0)}


def open_market(chain_dir: Path, rpc_url: str | None) -> LocalMarket | RpcMarket:
    if rpc_url is None:
        from hub.chain.cli_support import _Chain

        return LocalMarket(_Chain(chain_dir))
    from hub.chain.cli_rpc import RpcNode

    return RpcMarket(RpcNode(rpc_url, chain_dir))


__all__ = ["LocalMarket", "RpcMarket", "channel_id", "open_market", "terms_dict"]
