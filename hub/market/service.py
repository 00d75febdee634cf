"""``Market``: what the rest of the hub (the API, the CLI's routes, the cheques, the rules) asks
of the market. The market plugin provides one as the service ``"market"`` (spec17.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hub.market.follow import Follower
from hub.market.rental import Rentals
from hub.market.store import CallRow, MarketStore
from hub.market.terms import Terms, TermsError

log = logging.getLogger("hub.market")


class MarketError(Exception):
    """A request the market cannot carry out: ``status`` is the HTTP status, ``code`` the reason."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message}


class Market:
    def __init__(self, store: MarketStore, identity: Any, chain: Callable[[], Any], *, now: Callable[[], float],
                 read_entity: Callable[[str, str], Any], config: Any,
                 receipt_signer: Callable[..., Any] | None = None) -> None:
        self.store = store
        self.identity = identity
        self._chain = chain
        self.now = now
        self.config = config
        self.cheques: Any = None  # hub.market.cheques.ChequeBook: set by the cheques plugin (it looks up
        # receipts with usage_cost and notes channels and calls from final blocks itself)
        self._listeners: list[Callable[[str, dict], None]] = []
        #: For a device that holds its key: ``async (device_id, call, entity, since) -> Signed`` asks the
        #: device itself (``hub_request_receipt``).
        self.receipt_signer = receipt_signer
        self.rentals = Rentals(store, identity, chain, now=now, read_entity=read_entity, config=config,
                               emit=self._emit, cheques=lambda: self.cheques, receipts=self)
        self.follower = Follower(store, self.rentals, chain, identity, self._emit)
        self.down: str | None = None

    @property
    def chain(self) -> Any:
        return self._chain()

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    # --- events (rule triggers) -------------------------------------------------------------------
    def listen(self, callback: Callable[[str, dict], None]) -> Callable[[], None]:
        """``callback(event, variables)`` for each of ``contract_called``, ``payment_received``,
        ``review_received``; returns the function that stops it."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _emit(self, event: str, variables: dict) -> None:
        for callback in list(self._listeners):
            try:
                callback(event, dict(variables, event=event))
            except Exception:  # noqa: BLE001 - one listener never stops the market
                log.exception("market: a listener of %s failed", event)

    # --- the owner ---------------------------------------------------------------------------------
    async def offer(self, device_id: str, commands: list[str] | tuple[str, ...], terms: Any, endpoint: str = "") -> bytes:
        """Publish a ``create_contract`` for one of this hub's devices; returns its hash (the
        contract's id). The contract is live once its block is final."""
        chain = self.chain
        if chain is None:
            raise MarketError(409, "no_chain", "the market needs a chain (configure `chain:`)")
        try:
            parsed = Terms.from_payload(terms)
        except TermsError as exc:
            raise MarketError(422, "invalid_terms", str(exc)) from None
        record = self.identity.record(device_id)
        if record is None:
            raise MarketError(404, "not_found", f"{device_id} has no identity: bind it first (`hub device bind`)")
        key = self.identity.controller_key
        if record.controller != key.public_key.hex():
            raise MarketError(409, "not_controller", f"{device_id} is not controlled by this hub's key")
        commands = _commands(commands, self.identity, record.device_id)
        device = bytes.fromhex(record.public_key)
        binding = await chain.state("dev", device)
        if not binding or binding[0] != key.public_key:
            raise MarketError(409, "not_controller", f"the chain does not name this hub's key as {device_id}'s "
                              "controller yet: publish the binding first")
        from hub.chain.access import ChainUnavailable, TxRefused

        payload = {"device": device, "commands": list(commands), "terms": parsed.payload(), "endpoint": endpoint}
        try:
            tx = await chain.submit(key, "create_contract", payload)
        except TxRefused as exc:
            raise MarketError(409, exc.reason, exc.message) from None
        except ChainUnavailable as exc:
            raise MarketError(503, "chain_unavailable", str(exc)) from None
        self.store.add_contract(tx, record.device_id, device, key.public_key, list(commands), parsed.payload(), endpoint,
                                "pending", self.now())
        self.follower.contracts[tx] = self.store.contract(tx)
        log.info("market: offered %s (%s) in %s", record.device_id, parsed.kind, tx.hex()[:16])
        return tx

    def contracts(self, device_id: str | None = None) -> list[dict[str, Any]]:
        earned: dict[str, int] = {}
        for p in self.store.payments(device_id=device_id):
            earned[p["contract"]] = earned.get(p["contract"], 0) + p["amount"]
        counts = self.store.call_counts()
        out = []
        for c in self.store.contracts(device_id=device_id):
            row = c.as_dict()
            row["calls"], row["open_calls"] = counts.get(c.id, (0, 0))
            row["earned"] = earned.get(row["id"], 0)
            out.append(row)
        return out

    def calls(self, *, contract: bytes | None = None, states: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self.store.calls(contract=contract, states=states)]

    def earnings(self, device: str | None = None, since: int | None = None) -> list[dict[str, Any]]:
        """Payments received, oldest first: ``time`` (ms, the block's), ``device``, ``contract``,
        ``call``, ``amount`` (base units), ``kind`` (return, settle, refund), ``tx``, ``height``."""
        return self.store.payments(device_id=device, since=since)

    # --- the renter's view -------------------------------------------------------------------------
    def _call(self, call_id: bytes | str) -> CallRow:
        try:
            key = bytes.fromhex(call_id) if isinstance(call_id, str) else call_id
        except ValueError:
            raise MarketError(422, "invalid_request", "call: 64 hex digits expected") from None
        call = self.store.call(key)
        if call is None:
            raise MarketError(404, "unknown_call", f"no call {key.hex()[:16]}… on this hub's contracts "
                              "(it shows once its block is final)")
        return call

    def status(self, call_id: bytes | str) -> dict[str, Any]:
        call = self._call(call_id)
        contract = self.rentals.contract(call.contract)
        latest = self.store.latest_receipt(call.id)
        cheque = self.rentals._cheque(call.id)
        out = call.as_dict()
        out.update(commands=list(contract.commands), terms=contract.terms,
                   grant={"not_before": call.start, "not_after": call.ended_at if call.ended_at is not None else call.until},
                   usage=latest["usage"] if latest else 0, cost=latest["cost"] if latest else 0,
                   receipt=latest["signed"] if latest else None,
                   cheque=cheque.to_json() if cheque is not None else None)
        return out

    async def end(self, call_id: bytes | str) -> dict[str, Any]:
        """The renter ends early: access closes now, the charge is fixed, the return follows."""
        call = self._call(call_id)
        if call.state != "open":
            raise MarketError(409, "call_not_open", f"the call is {call.state}")
        await self.rentals.end(call, "ended_by_renter")
        return self.status(call.id)

    # --- receipts ----------------------------------------------------------------------------------
    async def issue(self, call: CallRow, at_ms: int) -> Any:
        """A receipt of the meter now (or, for time metering, of the ms elapsed at ``at_ms``),
        persisted before it is handed out. A keyless device's is signed by the hub as its light
        node; a device that holds its key signs its own (``hub_request_receipt``): its reading, its
        clock, checked here against its key."""
        from hub.crypto.statements import Receipt, receipt_hash, sign

        contract = self.rentals.contract(call.contract)
        terms = Terms.from_payload(contract.terms)
        entity = terms.meter or "time"
        network = self.chain.network if self.chain is not None else self.identity.network
        if self.identity.holds_key(call.device_id) and self.receipt_signer is not None:
            signed = await self.receipt_signer(call.device_id, call.id, entity, call.start)
            st = signed.statement
            if (not isinstance(st, Receipt) or st.device != contract.device or st.call != call.id
                    or st.entity != entity or not signed.verify(contract.device, network)):
                raise MarketError(502, "bad_receipt", f"{call.device_id} answered with a receipt that is not its own "
                                  "for this call")
            reading, at_ms = st.reading, st.time
        else:
            reading = self.rentals._reading(call, at_ms)
            if reading is None:
                raise MarketError(503, "no_reading", f"{call.device_id}'s meter {terms.meter!r} has no reading now")
            key = self.identity.controller_key
            signed = sign(Receipt(chain=network.chain_id, device=contract.device, call=call.id, entity=entity,
                                  reading=reading, time=at_ms, signer=key.public_key), key, network)
        if call.start_reading is None and terms.meter:
            self.store.set_start_reading(call.id, reading)
            call = self.store.call(call.id)
        usage = self.rentals.usage(call, reading)
        named = receipt_hash(signed.statement)
        self.store.add_receipt(named, call.id, reading, at_ms, usage, terms.cost(usage), signed.to_json())
        return signed

    async def receipt(self, call_id: bytes | str) -> Any:
        """The latest receipt of a call: signed now while it is open, else its last one."""
        call = self._call(call_id)
        if call.kind != "metered":
            raise MarketError(409, "not_metered", "a prepaid call has no receipts: its charge is its windows")
        if call.state == "open":
            return await self.issue(call, self.now_ms())
        latest = self.store.latest_receipt(call.id)
        if latest is None:
            raise MarketError(404, "no_receipt", "the call ended before any receipt")
        from hub.crypto.statements import Signed

        return Signed.from_json(latest["signed"])

    def usage_cost(self, receipt_hash: bytes) -> dict[str, Any] | None:
        """For the cheque checker: the receipt this hub issued under that hash (its call, usage and
        the price of that usage), or None if it issued none."""
        found = self.store.receipt(receipt_hash)
        if found is None:
            return None
        return {"call": found["call"], "usage": found["usage"], "cost": found["cost"], "time": found["time"],
                "reading": found["reading"]}

    # --- cheques (hub.market.cheques does the checking) ---------------------------------------------
    def accept_cheque(self, signed: Any) -> dict[str, Any]:
        if self.cheques is None:
            raise MarketError(503, "no_cheques", "this hub takes no cheques yet")
        return self.cheques.accept(signed)

    # --- the loop ----------------------------------------------------------------------------------
    async def step(self) -> bool:
        """One pass: follow final blocks, then act on the rentals' rows."""
        from hub.chain.access import ChainUnavailable

        more = False
        try:
            more = await self.follower.step()
        except ChainUnavailable as exc:
            if self.down is None:
                log.warning("market: the chain cannot be reached (%s); rentals go on, returns wait "
                            "(logged once per outage)", exc)
            self.down = str(exc)
        else:
            if self.down is not None:
                log.info("market: the chain answers again; catching up")
            self.down = None
        await self.rentals.tick()
        return more

    def info(self) -> dict[str, Any]:
        chain = self.chain
        return {"chain": chain.network.chain_id if chain is not None else None,
                "cursor": self.store.cursor(chain.network.genesis_hash) if chain is not None else None,
                "down": self.down, "contracts": len(self.follower.contracts),
                "open_calls": len(self.store.calls(states=("open",)))}


def _commands(commands: Any, identity: Any, device_id: str) -> tuple[str, ...]:
    """``["outlet.turn_on", ...]`` as grant names: each ``entity.command``, at least one."""
    if isinstance(commands, str):
        commands = [c for c in commands.split(",") if c.strip()]
    if not commands:
        raise MarketError(422, "invalid_request", "commands: name at least one `entity.command`")
    out = []
    for c in commands:
        c = str(c).strip()
        entity, dot, command = c.partition(".")
        if c != "*" and (not dot or not entity or not command):
            raise MarketError(422, "invalid_request", f"commands: {c!r} is not `entity.command`")
        out.append(c)
    if len(out) > 32:
        raise MarketError(422, "invalid_request", "commands: at most 32")
    return tuple(sorted(set(out)))
