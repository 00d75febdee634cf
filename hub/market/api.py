"""The market over HTTP: the owner's routes (token) and a renter's (no token).

An owner offers a device, lists its contracts and takes its earnings (as JSON, or CSV for a bank)
with the hub's API token. A renter has no token of this hub, only a key: it reads its own call (the
grant window, the usage, the latest receipt and the cheque the hub accepted: nothing there is
secret, and a call id is a transaction hash on a public chain), fetches a fresh receipt to pay for,
and ends its rental early with a request it signs. Every failure is a 4xx with the field or the
reason named, never a 500. The work is the ``market`` service's (``hub/market/``); this module only
checks input and shapes answers. ``POST /api/market/cheques`` is in ``hub/market/cheques``' router.
"""

from __future__ import annotations

import csv
import inspect
import io
import re
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import require_token
from hub.crypto.statements import Command, Signed, StatementError

router = APIRouter(prefix="/api/market", tags=["market"])
owner = APIRouter(dependencies=[Depends(require_token)])
_HASH = re.compile(r"[0-9a-fA-F]{64}")
END_COMMAND = ("market", "end")  # the (entity, command) of a renter's signed request to end a call


def _market(request: Request) -> Any:
    market = request.app.state.hub.services.get("market")
    if market is None:
        raise HTTPException(503, "the market is not running (see `hub plugins`: market; it needs a chain)")
    return market


async def _run(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _call_id(text: str) -> bytes:
    if not _HASH.fullmatch(text):
        raise HTTPException(422, "call: a call is named by its transaction hash, 64 hex digits")
    return bytes.fromhex(text)


def _refusal(exc: Exception) -> HTTPException:
    """The service's refusal as a 4xx: a missing thing 404, a bad value 422, the rest (no chain yet,
    a chain refusal with its reason) 409."""
    reason = getattr(exc, "code", None) or getattr(exc, "reason", None)
    message = getattr(exc, "message", None) or str(exc)
    text = f"{reason}: {message}" if reason and not message.startswith(str(reason)) else message
    status = getattr(exc, "status", None)
    if isinstance(status, int) and 400 <= status < 600:  # the service's own (MarketError)
        return HTTPException(status, text)
    if isinstance(exc, LookupError):
        return HTTPException(404, text)
    if isinstance(exc, (ValueError, TypeError)):
        return HTTPException(422, text)
    return HTTPException(409, text)


def _jsonable(value: Any) -> Any:
    """Bytes as hex, statements as their JSON, tuples as lists: what the service returns, as JSON."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, Signed):
        return value.to_json()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "as_dict"):
        return _jsonable(value.as_dict())
    return value


# --- the owner ------------------------------------------------------------------------------------


class Offer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: str = Field(description="The hub's device id (`demo:smart_plug`); it must be bound to this hub's key.")
    commands: list[str] = Field(min_length=1, max_length=32,
                                description="What a renter may run, as grant names: `outlet.turn_on`.")
    terms: dict[str, Any] = Field(description="`{kind: prepaid, price, window, max_duration}` or "
                                  "`{kind: metered, rate, meter, interval, deposit, max_duration}`; base units, ms.")
    endpoint: str = Field("", max_length=256, description="This hub's URL as renters reach it (may be empty).")
    preview: bool = Field(False, description="Only say what the create_contract would cost; sign nothing.")


def _check_commands(hub: Any, device_id: str, commands: list[str]) -> None:
    """Each ``entity.command`` must be a command of one of the device's entities: a typo would put
    on chain an offer whose renters can run nothing."""
    from hub.devices.capabilities import CAPABILITIES

    entities = {e.key: e for e in hub.entities.for_device(device_id)}
    for i, name in enumerate(commands):
        entity, _, command = name.partition(".")
        found = entities.get(entity)
        if found is None:
            raise HTTPException(422, f"commands[{i}]: {device_id} has no entity {entity!r} (it has "
                                f"{', '.join(sorted(entities)) or 'none'}); name commands as entity.command")
        capability = CAPABILITIES.get(found.capability)
        if capability is None or command not in capability.commands:
            valid = ", ".join(sorted(capability.commands)) if capability else "none"
            raise HTTPException(422, f"commands[{i}]: {entity} is a {found.capability}, which has no command "
                                f"{command!r}; valid: {valid or 'none'}")


def _check_meter(hub: Any, device_id: str, terms: dict[str, Any]) -> None:
    """A metered offer's ``meter`` must be one of the device's meters (a cumulative reading): the hub
    meters with it, and an offer it cannot meter would take deposits it can never bill."""
    meter = terms.get("meter") if terms.get("kind") == "metered" else None
    if not meter:
        return
    entities = {e.key: e for e in hub.entities.for_device(device_id)}
    found = entities.get(meter)
    if found is None or found.capability != "meter":
        meters = sorted(k for k, e in entities.items() if e.capability == "meter")
        raise HTTPException(422, f"terms.meter: {device_id} has no meter {meter!r} "
                            f"(its meters: {', '.join(meters) or 'none'})")


def _fee_of(chain: Any, tx_type: str, payload: dict[str, Any]) -> int:
    """The minimum fee of a transaction with this payload, from a draft signed by a throwaway key (a
    signature's size does not depend on the key): the owner sees the fee before its key signs."""
    from hub.chain.access import build_tx
    from hub.crypto.keys import PrivateKey

    return build_tx(PrivateKey.generate(), chain.network, chain.constants, tx_type, payload, 1,
                    time.time_ns() // 1_000_000).fee


@owner.post("/offers", summary="Offer a device for rent: a create_contract signed by this hub's controller key")
async def offer(request: Request, body: Offer) -> dict[str, Any]:
    hub = request.app.state.hub
    market = _market(request)
    if hub.devices.get(body.device) is None:
        raise HTTPException(404, f"device: no device {body.device!r} on this hub (`hub devices` lists them)")
    _check_commands(hub, body.device, body.commands)
    _check_meter(hub, body.device, body.terms)
    if body.preview:
        chain = hub.services.get("chain")
        identity = hub.services.get("identity")
        record = identity.record(body.device) if identity is not None else None
        if chain is None or record is None or not record.public_key:
            raise HTTPException(409, f"device: {body.device!r} has no key on a chain yet (`hub device keygen`, `bind`)")
        from hub.chain.access import TxRefused
        from hub.market.terms import Terms, TermsError

        key = record.public_key
        try:
            payload = {"device": bytes.fromhex(key) if isinstance(key, str) else bytes(key),
                       "commands": sorted(set(body.commands)), "terms": Terms.from_payload(body.terms).payload(),
                       "endpoint": body.endpoint}
            fee = _fee_of(chain, "create_contract", payload)
        except TermsError as exc:
            raise HTTPException(422, f"terms: {exc}") from None
        except TxRefused as exc:
            raise HTTPException(422, f"{exc.reason}: {exc.message}") from None
        return {"preview": True, "fee": fee, "device": body.device, "commands": body.commands, "terms": body.terms,
                "endpoint": body.endpoint}
    try:
        tx = await _run(market.offer(body.device, body.commands, body.terms, body.endpoint))
    except Exception as exc:  # noqa: BLE001 - every refusal of the service is the caller's to read
        raise _refusal(exc) from None
    return {"tx": _jsonable(tx), "contract": _jsonable(tx), "device": body.device}


@owner.get("/contracts", summary="This hub's contracts: terms, calls, earnings, live or not")
async def contracts(request: Request) -> list[Any]:
    return _jsonable(await _run(_market(request).contracts()))


@owner.get("/calls", summary="The calls of this hub's contracts (who rented what, when, its state)")
async def calls(request: Request) -> list[Any]:
    return _jsonable(await _run(_market(request).calls()))


def _since(value: str | None) -> int | None:
    """Unix seconds, ms or ISO 8601 as ms since the epoch (what the service keeps)."""
    if value is None or value == "":
        return None
    from datetime import datetime, timezone

    try:
        number = float(value)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise HTTPException(422, f"since: {value!r} is neither unix seconds nor ISO 8601") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)
    return int(number if number > 1e11 else number * 1000)


def _ms(value: Any) -> int:
    return int(value if value > 1e11 else value * 1000)


@owner.get("/earnings", summary="What this hub's contracts earned, one row per payment",
           description="Rows `{time (ms), device, contract, call, amount (base units)}`, oldest first; "
           "`format=csv` gives a file a bank's tool reads (UTC times, amounts in RUFF with 6 decimals).")
async def earnings(request: Request, device: str | None = None, since: str | None = None,
                   format: Literal["json", "csv"] = Query("json")) -> Any:  # noqa: A002 - the query's name
    rows = await _run(_market(request).earnings(device=device, since=_since(since)))
    rows = [_row(r) for r in rows]
    if format == "json":
        return rows
    from datetime import datetime, timezone

    from hub.market.units import ruff_plain

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time_utc", "device", "contract", "call", "amount_ruff", "amount_units"])
    for r in rows:
        when = datetime.fromtimestamp(_ms(r["time"]) / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        writer.writerow([when, r["device"], r["contract"], r["call"], ruff_plain(r["amount"]), r["amount"]])
    return PlainTextResponse(out.getvalue(), media_type="text/csv",
                             headers={"Content-Disposition": 'attachment; filename="earnings.csv"'})


def _row(row: Any) -> dict[str, Any]:
    if isinstance(row, dict):
        found = row
    elif hasattr(row, "_asdict"):
        found = row._asdict()
    else:
        found = dict(zip(("time", "device", "contract", "call", "amount"), row, strict=False))
    return _jsonable(found)


router.include_router(owner)

# --- the renter (no token) -----------------------------------------------------------------------


@router.get("/calls/{call}", summary="A call as its renter sees it (no token): grant, usage, receipt, cheque")
async def call_status(request: Request, call: str) -> dict[str, Any]:
    market = _market(request)
    try:
        found = await _run(market.status(_call_id(call)))
    except HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _refusal(exc) from None
    if found is None:
        raise HTTPException(404, f"call: this hub has no call {call} to one of its contracts (yet: it acts on final blocks)")
    return {"call": call.lower(), **_jsonable(found)}


#: A fresh receipt is signed and stored per request; anyone who knows a call id may ask (no token),
#: so at most one is made per call in this many seconds, and the one just made is served meanwhile.
RECEIPT_EVERY = 0.2
_RECENT_MAX = 4096


@router.get("/calls/{call}/receipt", summary="A fresh receipt of the call's usage, signed by the device or this hub",
            description=f"At most one new receipt per call every {RECEIPT_EVERY} s; asked sooner, the last one.")
async def receipt(request: Request, call: str) -> dict[str, Any]:
    raw = _call_id(call)
    market = _market(request)
    recent: dict[bytes, tuple[float, Any]] | None = getattr(request.app.state, "market_receipts", None)
    if recent is None:
        recent = request.app.state.market_receipts = {}
    now = time.monotonic()
    kept = recent.get(raw)
    if kept is not None and now - kept[0] < RECEIPT_EVERY:
        return kept[1]
    try:
        signed = await _run(market.receipt(raw))
    except HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _refusal(exc) from None
    if signed is None:
        raise HTTPException(404, f"call: no metered call {call} on this hub")
    answer = _jsonable(signed)
    if len(recent) >= _RECENT_MAX:  # bounded: the oldest half goes
        for old_call, _ in sorted(recent.items(), key=lambda item: item[1][0])[:_RECENT_MAX // 2]:
            del recent[old_call]
    recent[raw] = (now, answer)
    return answer


class EndRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signed: dict[str, Any] = Field(description="A command statement signed by the call's renter: entity `market`, "
                                   "command `end`, args `{call: <hex>}`, with a fresh `issued_at`.")


@router.post("/calls/{call}/end", summary="The renter ends its call now (signed by the renter, no token)",
             description="The grant closes, usage is measured one last time and the hub answers with its `return`.")
async def end(request: Request, call: str, body: EndRequest) -> dict[str, Any]:
    raw = _call_id(call)
    market = _market(request)
    hub = request.app.state.hub
    identity = hub.services.get("identity")
    network = getattr(identity, "network", None)
    if network is None:
        raise HTTPException(409, "the hub has no chain: no call can be ended")
    try:
        signed = Signed.from_json(body.signed)
    except StatementError as exc:
        raise HTTPException(422, f"signed: {exc}") from None
    st = signed.statement
    if not isinstance(st, Command) or (st.entity, st.command) != END_COMMAND or st.args.get("call") != raw.hex():
        raise HTTPException(422, f"signed: must be the command market.end with args {{call: {raw.hex()}}}")
    if st.chain != network.chain_id:
        raise HTTPException(422, f"wrong_chain: signed for chain {st.chain!r}, this is {network.chain_id!r}")
    if abs(st.issued_at - time.time_ns() // 1_000_000) > identity.window_ms:
        raise HTTPException(422, "stale: issued_at is too far from this hub's clock; sign the request again")
    try:
        found = await _run(market.status(raw))
    except Exception as exc:  # noqa: BLE001
        raise _refusal(exc) from None
    if found is None:
        raise HTTPException(404, f"call: this hub has no call {call} to one of its contracts")
    renter = _jsonable(found.get("renter") if isinstance(found, dict) else None)
    if renter != st.signer.hex():
        raise HTTPException(403, "not_authorised: only the call's renter may end it")
    if not signed.verify(st.signer, network):
        raise HTTPException(401, "forged: the signature does not verify for the renter's key on this chain")
    try:
        answer = await _run(market.end(raw))
    except Exception as exc:  # noqa: BLE001
        raise _refusal(exc) from None
    return {"call": raw.hex(), "ended": True, **(_jsonable(answer) if isinstance(answer, dict) else {})}


__all__ = ["END_COMMAND", "router"]
