"""What the chain says about devices: a device's binding (``GET /devices/{public key}``) and a
command-log keeper's anchors (``GET /anchors/{address}``), read from the head state.

The views take a :class:`~hub.chain.protocol.state.State` (the caller holds the node's lock), so the
node's RPC and the hub's ``/api/plugins/chain/`` router answer alike. These answers are for reading:
a light client proves the same keys with ``GET /state/dev/proof?key=`` and ``GET /state/anchor/proof``.
"""

from __future__ import annotations

import re
from typing import Any

from hub.chain.protocol.devices import anchor_key
from hub.chain.protocol.state import State
from hub.crypto.address import AddressError, address_of, decode_address, encode_address

MAX_ANCHORS = 100  # batches per page
_KEY = re.compile(r"[0-9a-fA-F]{64}")


class NotFound(LookupError):
    """The thing asked for is not on chain; ``code`` is the RPC error code."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(message)


def parse_public_key(text: str) -> bytes:
    """A device's public key from its 64 hex digits; ``ValueError`` says what is wrong."""
    if not _KEY.fullmatch(text):
        raise ValueError("a device is named by its public key: 64 hex digits")
    return bytes.fromhex(text)


def parse_address(text: str) -> bytes:
    try:
        return decode_address(text)
    except AddressError as exc:
        raise ValueError(f"address: {exc}") from None


def device(state: State, public_key: bytes) -> dict[str, Any]:
    """The device's binding; raises :class:`NotFound` (``unbound``) if the chain never saw one."""
    return binding(public_key, state.get("dev", public_key), state.head.height)


def binding(public_key: bytes, record: Any, height: int) -> dict[str, Any]:
    """A ``dev`` record as JSON (also what ``hub chain device`` prints from a chain directory)."""
    if record is None:
        raise NotFound("unbound", f"no binding of device {public_key.hex()} on chain")
    controller, seq, time, epoch = record
    return {"device": public_key.hex(), "bound": bool(controller), "controller": controller.hex() or None,
            "controller_address": encode_address(address_of(controller)) if controller else None,
            "seq": seq, "time": time, "epoch": epoch, "height": height}


def anchors(state: State, keeper: bytes, start: int = 0, limit: int = MAX_ANCHORS) -> dict[str, Any]:
    """A page of ``keeper``'s anchored batches from the one starting at entry ``start``, in order.

    Batches follow each other without gap (the ``command_log`` rule), so a page is read by key, one
    batch after the other, never by scanning the namespace. Raises :class:`NotFound` when no batch
    starts at ``start``."""
    following, batches = state.get("clog", keeper, (0, 0))
    if start > following:
        raise NotFound("not_found", f"{encode_address(keeper)} has anchored entries up to {following - 1} only"
                       if following else f"{encode_address(keeper)} has anchored nothing")
    items: list[dict[str, Any]] = []
    first = start
    while first < following and len(items) < limit:
        record = state.get("anchor", anchor_key(keeper, first))
        if record is None:
            raise NotFound("not_found", f"no anchored batch of {encode_address(keeper)} starts at entry {start}")
        root, count, first_time, last_time, height = record
        items.append({"first": first, "count": count, "root": root.hex(), "first_time": first_time,
                      "last_time": last_time, "height": height})
        first += count
    return {"address": encode_address(keeper), "next": following, "batches": batches, "anchors": items,
            "more_from": first if first < following else None, "height": state.head.height}


def add_device_routes(app: Any, read: Any, error: Any) -> None:
    """Add the routes to ``app`` (FastAPI). ``read(fn, *args)`` runs ``fn(node, *args)`` under the
    node's lock in a worker thread; ``error(status, code, message)`` makes the exception the app
    renders."""
    from fastapi import Query

    async def answer(fn: Any, *args: Any) -> dict:
        try:
            return await read(lambda node, *a: fn(node.state, *a), *args)
        except NotFound as exc:
            raise error(404, exc.code, exc.message) from None

    @app.get("/devices/{public_key}", summary="A device's binding on chain: controller, seq, time, epoch")
    async def get_device(public_key: str) -> dict:
        """`controller` is null (and `bound` false) after a factory reset; a device the chain never
        saw bound is a 404 with the code `unbound`."""
        try:
            raw = parse_public_key(public_key)
        except ValueError as exc:
            raise error(422, "invalid_request", str(exc)) from None
        return await answer(device, raw)

    @app.get("/anchors/{address}", summary="The command-log batches an address anchored, in order")
    async def get_anchors(address: str, start: int = Query(0, alias="from", ge=0, lt=2**64,
                                                          description="the first entry of the first batch"),
                          limit: int = Query(MAX_ANCHORS, ge=1, le=MAX_ANCHORS)) -> dict:
        """Each batch's entries `first` to `first + count - 1`, its RFC 6962 `root`, the times of
        its first and last entries and the `height` of the block that anchored it; `next` is the
        next entry the keeper must anchor, `more_from` the `from` of the next page (null: none)."""
        try:
            raw = parse_address(address)
        except ValueError as exc:
            raise error(422, "invalid_request", str(exc)) from None
        return await answer(anchors, raw, start, limit)
