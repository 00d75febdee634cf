"""What the chain says about the market (docs/chain.md, "Market transactions"): contracts with their
review counts, calls, channels and reviews, read from the head state.

As in ``device_routes``: the views take a :class:`~hub.chain.protocol.state.State` (the caller
holds the node's lock) so the node's RPC and the hub's ``/api/plugins/chain/`` router answer alike,
and the ``*_view`` functions take the records themselves, so the hub's remote router can format the
values it proved (``GET /state/{ns}/proof``) the same way.
"""

from __future__ import annotations

from typing import Any

from hub.chain.node.rpc.device_routes import NotFound, parse_public_key
from hub.chain.protocol.market import channel_escrow, channel_id, is_live, link_key, paid_duration
from hub.chain.protocol.state import State
from hub.crypto.address import address_of, encode_address

MAX_CONTRACTS = 100  # contracts per page
TERM_NAMES = ("kind", "price", "window", "rate", "meter", "interval", "deposit", "max_duration")


def parse_id(text: str, what: str) -> bytes:
    """A contract, call or channel id (64 hex digits); ``ValueError`` says what is wrong."""
    try:
        return parse_public_key(text)
    except ValueError:
        raise ValueError(f"{what}: 64 hex digits expected, got {text[:80]!r}") from None


def reviews_view(key: bytes, record: Any) -> dict[str, Any]:
    returned, negative = record or (0, 0)
    return {"key": key.hex(), "returned": returned, "negative": negative,
            "score": round(negative / returned, 4) if returned else None}


def contract_view(contract_id: bytes, record: tuple, live: bool, reviews: Any) -> dict[str, Any]:
    device, controller, commands, terms, endpoint, height, time = record
    return {"id": contract_id.hex(), "device": device.hex(), "controller": controller.hex(),
            "controller_address": encode_address(address_of(controller)), "commands": list(commands),
            "terms": dict(zip(TERM_NAMES, terms)), "endpoint": endpoint, "height": height, "time": time,
            "live": live, "reviews": reviews_view(contract_id, reviews)}


def call_view(call_id: bytes, record: tuple, terms: tuple | None, reviewed: Any, refund_timeout: int) -> dict[str, Any]:
    contract, renter, deposit, channel, time, windows, status, used, ended_at = record
    paid_until = time + paid_duration(terms, windows) if terms is not None else None
    return {"id": call_id.hex(), "contract": contract.hex(), "renter": renter.hex(),
            "renter_address": encode_address(address_of(renter)), "deposit": deposit,
            "channel": channel.hex() or None, "time": time, "windows": windows, "status": status, "used": used,
            "ended_at": ended_at or None, "paid_until": paid_until,
            "refundable_from": paid_until + refund_timeout if paid_until is not None else None,
            "reviewed": reviewed}


def channel_view(chan_id: bytes, record: tuple) -> dict[str, Any]:
    renter, payee, deposit, withdrawn, closing, closing_at, opened, closed = record
    status = "closed" if closed else "closing" if closing_at else "open"
    return {"id": chan_id.hex(), "renter": renter.hex(), "payee": payee.hex(),
            "renter_address": encode_address(address_of(renter)), "payee_address": encode_address(address_of(payee)),
            "deposit": deposit, "withdrawn": withdrawn, "remaining": channel_escrow(record), "status": status,
            "closing": closing if closing_at else None, "challenge_ends": closing_at or None,
            "opened": opened, "closed": closed or None}


def contract(state: State, contract_id: bytes) -> dict[str, Any]:
    record = state.get("contract", contract_id)
    if record is None:
        raise NotFound("not_found", f"no contract {contract_id.hex()} on chain")
    return {**contract_view(contract_id, record, is_live(state, record), state.get("rev", contract_id)),
            "device_reviews": reviews_view(record[0], state.get("rev", record[0])), "at": state.head.height}


def contracts(state: State, device: bytes | None = None, live: bool | None = None, start: bytes = b"",
              limit: int = MAX_CONTRACTS) -> dict[str, Any]:
    """A page of contracts in id order from ``start``, optionally of one device and only (not)
    live ones; ``more_from`` is the next page's ``from``."""
    items: list[dict[str, Any]] = []
    more = None
    for cid, record in state.items("contract"):
        if cid < start or (device is not None and record[0] != device):
            continue
        alive = is_live(state, record)
        if live is not None and alive != live:
            continue
        if len(items) == limit:
            more = cid.hex()
            break
        items.append(contract_view(cid, record, alive, state.get("rev", cid)))
    return {"contracts": items, "more_from": more, "at": state.head.height}


def call(state: State, call_id: bytes) -> dict[str, Any]:
    record = state.get("call", call_id)
    if record is None:
        raise NotFound("not_found", f"no call {call_id.hex()} on chain")
    terms = state.get("contract", record[0])[3]
    return {**call_view(call_id, record, terms, state.get("reviewed", call_id), state.constants.REFUND_TIMEOUT),
            "at": state.head.height}


def channel(state: State, chan_id: bytes) -> dict[str, Any]:
    record = state.get("chan", chan_id)
    if record is None:
        raise NotFound("not_found", f"no channel {chan_id.hex()} on chain")
    return {**channel_view(chan_id, record), "at": state.head.height}


def channels(state: State, renter: bytes | None = None, payee: bytes | None = None) -> dict[str, Any]:
    """Channels of a renter, a payee, or both (renter and payee public keys), oldest first; with
    both, ``current`` is the one a new call tops up (or opens after, when closed)."""
    if renter is None and payee is None:
        raise ValueError("name a renter, a payee or both (public keys)")
    current = None
    if renter is not None and payee is not None:
        current_id, openings = state.get("chanof", link_key(renter, payee), (b"", 0))
        ids = [channel_id(renter, payee, n) for n in range(1, openings + 1)]
        found = [(i, state.get("chan", i)) for i in ids]
        current = current_id.hex() or None
    else:
        found = [(i, r) for i, r in state.items("chan")
                 if (renter is None or r[0] == renter) and (payee is None or r[1] == payee)]
        found.sort(key=lambda item: (item[1][6], item[0]))
    return {"channels": [channel_view(i, r) for i, r in found if r is not None], "current": current,
            "at": state.head.height}


def reviews(state: State, key: bytes) -> dict[str, Any]:
    """Review counts of a contract (its id) or a device (its public key)."""
    return {**reviews_view(key, state.get("rev", key)), "at": state.head.height}


def add_market_routes(app: Any, read: Any, error: Any) -> None:
    """Add the routes to ``app`` (FastAPI), as ``device_routes.add_device_routes`` does."""
    from fastapi import Query

    async def answer(fn: Any, *args: Any) -> dict:
        try:
            return await read(lambda node, *a: fn(node.state, *a), *args)
        except NotFound as exc:
            raise error(404, exc.code, exc.message) from None
        except ValueError as exc:
            raise error(422, "invalid_request", str(exc)) from None

    def parsed(text: str | None, what: str) -> bytes | None:
        if text is None:
            return None
        try:
            return parse_id(text, what)
        except ValueError as exc:
            raise error(422, "invalid_request", str(exc)) from None

    @app.get("/contracts", summary="A page of the market's contracts (offers), in id order")
    async def get_contracts(device: str | None = Query(None, description="a device's public key"),
                            live: bool | None = Query(None, description="only (not) live offers"),
                            start: str | None = Query(None, alias="from", description="the first contract id"),
                            limit: int = Query(MAX_CONTRACTS, ge=1, le=MAX_CONTRACTS)) -> dict:
        """Each contract with its terms, whether it is live (its device's controller is still the one
        who offered it) and its review counts; `more_from` is the `from` of the next page."""
        return await answer(contracts, parsed(device, "device"), live, parsed(start, "from") or b"", limit)

    @app.get("/contracts/{contract_id}", summary="A contract, its review counts and its device's")
    async def get_contract(contract_id: str) -> dict:
        return await answer(contract, parsed(contract_id, "contract"))

    @app.get("/calls/{call_id}", summary="A call: escrow or channel, paid time, status, used amount")
    async def get_call(call_id: str) -> dict:
        return await answer(call, parsed(call_id, "call"))

    @app.get("/channels/{chan_id}", summary="A channel from a renter to a payee: deposit, withdrawn, close")
    async def get_channel(chan_id: str) -> dict:
        return await answer(channel, parsed(chan_id, "channel"))

    @app.get("/channels", summary="The channels of a renter, a payee, or between the two")
    async def get_channels(renter: str | None = Query(None, description="the renter's public key"),
                           payee: str | None = Query(None, description="the payee's public key")) -> dict:
        return await answer(channels, parsed(renter, "renter"), parsed(payee, "payee"))

    @app.get("/reviews/{key}", summary="Returned calls and negative reviews of a contract or a device")
    async def get_reviews(key: str) -> dict:
        return await answer(reviews, parsed(key, "contract or device"))
