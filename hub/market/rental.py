"""A rental from the owner's side: grant, meter, end, return, settle (docs/market.md).

:class:`Rentals` acts on the rows of :class:`~hub.market.store.MarketStore`, always persisting a
decision before acting on it, and every action is idempotent, so :meth:`Rentals.recover` after a
kill -9 simply acts again on what the rows say:

- **opening** a call's grant signs the same ``Grant`` statement again (Ed25519 is deterministic,
  so it is the same signature; the light node keeps one grant per (grantee, ref));
- **ending** writes ``ended_at`` and ``used`` once (``state`` open -> ended), then the closing grant
  (``not_after`` = the end): the light node keeps the narrower of two grants of one (grantee,
  ref), so a replay of the opening grant cannot re-open the window;
- **returning** reads the chain's ``call`` entry first: a return already applied (its answer lost to
  the crash) is found there and not sent again; two returns in flight cannot both apply (the chain
  refuses a return for a call that is not open), and both name the same ``used``.

Access never outlives the paid window even while the hub is down: the grant itself ends at
``not_after``, checked by the light node on every command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hub.market.store import CallRow, MarketStore
from hub.market.terms import Terms

log = logging.getLogger("hub.market")

#: Refusals that say nothing about the transaction itself (the key's balance, the mempool, a nonce
#: race): it is sent again on a later pass.
RETRY_REASONS = frozenset({"insufficient_balance", "mempool_full", "nonce_too_low", "nonce_too_high",
                           "replacement_fee_too_low", "duplicate", "fee_too_low"})
#: The chain's words for a call that can take no more return.
CLOSED = ("returned", "refunded")
#: How long a sent return is left alone before its status is asked again (a dropped one is re-sent).
RECHECK_MS = 10_000


def call_ref(call_id: bytes) -> str:
    """The grant's ``ref`` for a call: one grant per (renter, call) on the light node."""
    return f"call:{call_id.hex()}"


def reading_of(value: Any) -> int | None:
    """A meter's state (kWh, a float) as integer milli-units (Wh); None when it has no number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return int(round(value * 1000))


class Rentals:
    def __init__(self, store: MarketStore, identity: Any, chain: Callable[[], Any], *, now: Callable[[], float],
                 read_entity: Callable[[str, str], Any], config: Any, emit: Callable[[str, dict], None],
                 cheques: Callable[[], Any] = lambda: None, receipts: Any = None) -> None:
        self.store = store
        self.identity = identity
        self._chain = chain
        self.now = now
        self.read_entity = read_entity
        self.config = config
        self.emit = emit
        self._cheques = cheques
        self.receipts = receipts  # hub.market.service.Market: signs receipts
        self._delivered: set[bytes] = set()  # grants a key-holding device confirmed this run
        self._waiting: dict[bytes, str] = {}  # transactions held back, and why (logged once per reason)
        self.contracts: dict[bytes, Any] = {}  # the follower's contracts by id (it shares its dict)
        self._closing: set[bytes] = set()  # calls ended early whose closing grant has not reached the device
        self._checked: dict[bytes, int] = {}  # call -> when its return's status was last asked (ms)

    def contract(self, contract_id: bytes) -> Any:
        """A contract of this hub, from the follower's memory (set by it) or market.db."""
        found = self.contracts.get(contract_id)
        return found if found is not None else self.store.contract(contract_id)

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    @property
    def chain(self) -> Any:
        return self._chain()

    # --- grants --------------------------------------------------------------------------------------
    def _grant(self, call: CallRow, not_after: int) -> Any:
        from hub.crypto.statements import Grant, sign

        contract = self.contract(call.contract)
        node = self.identity.lightnode(call.device_id)
        key = self.identity.controller_key
        grant = Grant(device=contract.device, controller=key.public_key, grantee=call.renter,
                      commands=tuple(contract.commands), not_before=call.start, not_after=max(not_after, call.start),
                      epoch=int(node.epoch), ref=call_ref(call.id))
        return sign(grant, key, self.identity.network)

    async def _apply_grant(self, call: CallRow, not_after: int) -> bool:
        given = await self._give_grant(call, not_after)
        if given and not_after == call.until and call.granted_at is None:
            self.store.set_granted(call.id, max(self.now_ms(), call.start))
        return given

    async def _give_grant(self, call: CallRow, not_after: int) -> bool:
        """Give the device (or its light node, here) the grant ending at ``not_after``; False when a
        key-holding device could not be reached (tried again on the next pass)."""
        from hub.identity.errors import Refused

        signed = self._grant(call, not_after)
        try:
            if self.identity.holds_key(call.device_id):
                if signed.signature in self._delivered:
                    return True
                await self.identity.deliver(call.device_id, signed)
                self._delivered.add(signed.signature)
            else:
                self.identity.add_grant(call.device_id, signed)
        except Refused as exc:
            self.store.set_state(call.id, call.state, note=f"grant refused: {exc}")
            log.warning("market: the grant for call %s on %s was refused: %s", call.id.hex()[:16], call.device_id, exc)
            return False
        except Exception as exc:  # noqa: BLE001 - a device that cannot be reached now: again later
            log.warning("market: the grant for call %s could not reach %s: %s", call.id.hex()[:16], call.device_id, exc)
            return False
        return True

    async def open(self, call: CallRow) -> None:
        """The call is persisted: open access (and, metered, take the meter's first reading)."""
        if self.now_ms() < call.until:
            await self._apply_grant(call, call.until)
            call = self.store.call(call.id)
        if call.kind == "metered" and self.receipts is not None:
            try:  # the first receipt: where the call's usage starts (after the grant: a device checks it)
                await self.receipts.issue(call, self.now_ms())
            except Exception as exc:  # noqa: BLE001 - no reading yet: the next pass's receipt starts it
                log.warning("market: no first receipt for call %s: %s", call.id.hex()[:16], exc)
        log.info("market: call %s opened on %s for %s… until %d", call.id.hex()[:16], call.device_id,
                 call.renter.hex()[:16], call.until)

    # --- metering ------------------------------------------------------------------------------------
    def _reading(self, call: CallRow, at_ms: int | None = None) -> int | None:
        contract = self.contract(call.contract)
        terms = Terms.from_payload(contract.terms)
        if not terms.meter:
            at = self.now_ms() if at_ms is None else at_ms
            return max(0, min(at, call.until) - call.start)
        return reading_of(self.read_entity(call.device_id, terms.meter))

    def usage(self, call: CallRow, reading: int) -> int:
        """Usage so far: milli-units since the call's first reading, or ms since the call."""
        contract = self.contract(call.contract)
        terms = Terms.from_payload(contract.terms)
        if not terms.meter:
            return reading
        start = call.start_reading if call.start_reading is not None else reading
        return max(0, reading - start)

    def _cheque(self, call_id: bytes) -> Any:
        """The latest signed cheque the cheque book kept for the call, or None."""
        cheques = self._cheques()
        finder = getattr(cheques, "latest_for_call", None) if cheques is not None else None
        return _signed(finder(call_id)) if finder is not None else None

    # --- ending --------------------------------------------------------------------------------------
    def used_at(self, call: CallRow, at_ms: int) -> int:
        """What the terms charge for the call ended at ``at_ms`` (metered: before the cheques' cap)."""
        terms = Terms.from_payload(self.contract(call.contract).terms)
        if call.kind == "prepaid":
            if call.granted_at is None:
                return 0  # the renter never had access (the hub was down for the whole window)
            return terms.prepaid_used(at_ms - call.granted_at, call.windows, call.deposit)
        latest = self.store.latest_receipt(call.id)
        if latest is None:
            return 0
        return terms.cost(latest["usage"])

    async def end(self, call: CallRow, reason: str, at_ms: int | None = None) -> bool:
        """End access: persisted first (once), then the closing grant. False when already ended."""
        at = min(self.now_ms() if at_ms is None else at_ms, call.until)
        if call.kind == "metered" and self.receipts is not None:
            try:
                await self.receipts.issue(call, at)  # the final receipt: what the return charges
            except Exception as exc:  # noqa: BLE001 - the meter may be gone; the last receipt stands
                log.warning("market: no final receipt for call %s: %s", call.id.hex()[:16], exc)
        used = self.used_at(call, at)
        if not self.store.end_call(call.id, at, reason, used):
            return False
        log.info("market: call %s ended (%s) at %d; charge %d", call.id.hex()[:16], reason, at, used)
        if at < call.until and not await self._apply_grant(self.store.call(call.id), at):
            self._closing.add(call.id)  # a device that cannot be reached now: given on the next passes
        return True

    # --- the periodic pass ---------------------------------------------------------------------------
    async def tick(self) -> None:
        now = self.now_ms()
        for call in self.store.calls(states=("open",)):
            if now >= call.until:
                await self.end(call, "window_closed", call.until)
                continue
            if call.granted_at is None:  # a key-holding device that could not be reached: again
                await self._apply_grant(call, call.until)
            if call.kind == "metered":
                await self._meter(call, now)
        for call_id in sorted(self._closing):
            call = self.store.call(call_id)
            if call is None or call.ended_at is None or now >= call.until or await self._apply_grant(call, call.ended_at):
                self._closing.discard(call_id)  # delivered, or the grant's own end has come anyway
        chain = self.chain
        if chain is None or not chain.available():
            return
        from hub.chain.access import ChainUnavailable

        try:
            for call in self.store.calls(states=("ended",)):
                await self._return(chain, call, now)
            await self._settle(chain)
        except ChainUnavailable as exc:
            log.debug("market: the chain went away mid-pass: %s", exc)

    async def _meter(self, call: CallRow, now: int) -> None:
        """Issue a receipt every ``receipt_interval``; end a renter whose cheques do not cover the
        receipt it had ``pay_timeout`` ago (the renter went away, or stopped paying)."""
        latest = self.store.latest_receipt(call.id)
        if self.receipts is not None and (latest is None or now - latest["time"] >= self.config.receipt_interval * 1000):
            try:
                await self.receipts.issue(call, now)
                latest = self.store.latest_receipt(call.id)
            except Exception as exc:  # noqa: BLE001 - a meter that cannot be read: the last receipt stands
                log.debug("market: no receipt for call %s now: %s", call.id.hex()[:16], exc)
        due = self.store.latest_receipt(call.id, before=now - int(self.config.pay_timeout * 1000))
        if due is None:
            return
        cheque = self._cheque(call.id)
        paid = cheque.statement.call_amount if cheque is not None else 0
        if due["cost"] - paid > self.config.unpaid_slack:  # a receipt pay_timeout old is still not paid
            await self.end(call, "unpaid", now)

    def forget(self, call_id: bytes) -> None:
        """A call the chain closed: nothing of it stays in memory."""
        self._checked.pop(call_id, None)
        self._waiting.pop(call_id, None)

    # --- returns -------------------------------------------------------------------------------------
    async def _return(self, chain: Any, call: CallRow, now: int) -> None:
        from hub.chain.access import TxRefused
        from hub.crypto.statements import ReviewConsent, sign

        if call.return_tx is not None:
            checked = self._checked.get(call.id)
            if checked is not None and now - checked < RECHECK_MS:
                return  # sent a moment ago: the follower books it when its block is final
            self._checked[call.id] = now
            status = (await chain.status(call.return_tx))["status"]
            if status in ("pending", "included", "final"):
                return
        if call.kind == "metered" and call.ended_at is not None and now - call.ended_at < self.config.cheque_grace * 1000:
            return  # the renter's final cheque may still come
        state = await self._call_state(chain, call.id)
        if state is not None and state in CLOSED:
            self.store.set_state(call.id, state)
            return
        contract = self.contract(call.contract)
        key = self.identity.controller_key
        network = chain.network
        used = call.used or 0
        cheque = None
        if call.kind == "metered":
            cheque = self._cheque(call.id)
            if cheque is None:
                # The chain takes a metered return only with a cheque of the call (cheque_mismatch): with
                # none signed there is nothing to redeem, so nothing is sent; the call stays open on
                # chain until its renter's refund, which gives back nothing (the deposit is in the channel).
                self.store.set_return(call.id, None, "none", note="the renter signed no cheque for this call")
                self.store.set_state(call.id, "unpaid")
                log.warning("market: call %s ended with no cheque from its renter: nothing to return",
                            call.id.hex()[:16])
                return
            used = min(used, cheque.statement.call_amount)
            if used != call.used:
                self.store.set_used(call.id, used)
        consent = sign(ReviewConsent(chain=network.chain_id, contract=call.contract, call=call.id,
                                     device=contract.device, controller=key.public_key), key, network)
        payload = {"call": call.id, "used": used, "result": (call.end_reason or "")[:64],
                   "consent": consent.to_body(),
                   "cheque": cheque.to_body() if cheque is not None else None}
        try:
            tx = await chain.submit(key, "return", payload)
        except TxRefused as exc:
            if exc.reason in RETRY_REASONS:
                if self._waiting.get(call.id) != exc.reason:
                    log.warning("market: the return of call %s waits: %s", call.id.hex()[:16], exc)
                    self._waiting[call.id] = exc.reason
                return
            self._waiting.pop(call.id, None)
            self.store.set_return(call.id, None, f"refused: {exc.reason}", note=str(exc))
            self.store.set_state(call.id, "failed")
            log.error("market: the return of call %s was refused: %s", call.id.hex()[:16], exc)
            return
        self._waiting.pop(call.id, None)
        self.store.set_return(call.id, tx, "sent")
        self._checked[call.id] = now
        log.info("market: return for call %s sent (used %d) in %s", call.id.hex()[:16], used, tx.hex()[:16])

    async def _call_state(self, chain: Any, call_id: bytes) -> str | None:
        """The chain's status of a call ("open", "returned", "refunded"), None when it cannot say."""
        try:
            entry = await chain.state("call", call_id)
        except ValueError:  # a chain without the market's namespaces
            return None
        if not entry:
            return None
        status = entry[6]  # state.py: (contract, renter, escrow, channel, time, windows, status, used, ended)
        return status if isinstance(status, str) else None

    # --- settles (withdrawals without closing) -------------------------------------------------------
    async def _settle(self, chain: Any) -> None:
        threshold = self.config.settle_threshold
        cheques = self._cheques()
        latest = getattr(cheques, "latest_for_channel", None) if cheques is not None else None
        if not threshold or latest is None:
            return
        from hub.chain.access import TxRefused

        channels = {c.channel for c in self.store.calls(states=("open", "ended")) if c.channel}
        key = self.identity.controller_key
        for channel in sorted(channels):
            cheque = _signed(latest(channel))
            if cheque is None:
                continue
            amount = cheque.statement.amount
            if amount - self.store.channel_paid(channel) < threshold:
                continue
            known = self.store.settle(channel, amount)
            if known is not None and known[1] in ("sent", "final"):
                continue
            try:
                tx = await chain.submit(key, "settle", {"channel": channel, "cheque": cheque.to_body(), "close": False})
            except TxRefused as exc:
                if exc.reason not in RETRY_REASONS:
                    self.store.set_settle(channel, amount, None, f"refused: {exc.reason}")
                    log.warning("market: the withdrawal on channel %s was refused: %s", channel.hex()[:16], exc)
                continue
            self.store.set_settle(channel, amount, tx, "sent")
            log.info("market: withdrew %d on channel %s in %s", amount, channel.hex()[:16], tx.hex()[:16])

    # --- start-up ------------------------------------------------------------------------------------
    async def recover(self) -> None:
        """After a start (maybe after a kill -9): each open call's grant is given again (the same
        statement), each ended one's closing grant too. Returns follow on the next pass."""
        for call in self.store.calls(until_after=self.now_ms(), limit=1_000_000):  # grants not over by themselves
            if call.state == "open":
                await self._apply_grant(call, call.until)
            elif call.ended_at is not None and call.ended_at < call.until:
                if not await self._apply_grant(call, call.ended_at):
                    self._closing.add(call.id)


def _signed(kept: Any) -> Any:
    """A cheque book's entry (``Kept``, with ``.signed``) or a ``Signed`` as it is: the Signed."""
    return getattr(kept, "signed", kept)
