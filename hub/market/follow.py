"""Following the chain for the market: final blocks only, one cursor in market.db.

Like chain-state control (``hub/identity/chainctl.py``), the market acts only on **final** blocks:
a call in a block a reorganisation drops must not have opened access, and a payment in one must
not be booked. Each block's market transactions that touch this hub (its contracts, their calls,
its channels) are handled, then the cursor moves; every handler is idempotent (rows are inserted
once, payments are keyed by transaction), so a crash between the two repeats nothing.

Per block the cost is one pass over its transactions with a dict lookup each (contracts and
channels of this hub are held in memory), so 10,000 live contracts cost no more per block than
ten (benchmarks/bench_market_follow.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hub.chain.first_cursor import start_height
from hub.market.rental import Rentals
from hub.market.store import CallRow, MarketStore
from hub.market.terms import Terms, TermsError

log = logging.getLogger("hub.market")

BATCH = 100  # blocks per look at the chain
MARKET_TYPES = frozenset({"create_contract", "call", "return", "review", "settle", "refund", "bind_device"})


class Follower:
    def __init__(self, store: MarketStore, rentals: Rentals, chain: Callable[[], Any], identity: Any,
                 emit: Callable[[str, dict], None]) -> None:
        self.store = store
        self.rentals = rentals
        self._chain = chain
        self.identity = identity
        self.emit = emit
        self.contracts: dict[bytes, Any] = {}  # this hub's contracts (every status), by id
        self.channels: dict[bytes, bytes] = {}  # channel id -> the call that last used it
        self._closing: dict[bytes, tuple[int, bytes]] = {}  # channel -> (closing amount, call) in a challenge
        self.reload()

    def reload(self) -> None:
        self.contracts = {c.id: c for c in self.store.contracts()}
        self.rentals.contracts = self.contracts
        self.channels = self.store.channels_used()

    # --- one look --------------------------------------------------------------------------------------
    async def step(self) -> bool:
        """Handle the final blocks not handled yet; True when more may be waiting."""
        chain = self._chain()
        if chain is None:
            return False
        genesis = chain.network.genesis_hash
        cursor = self.store.cursor(genesis)
        if cursor is None:
            since = self.store.follow_start(genesis, self.rentals.now_ms())  # before the chain answers
            if not chain.available():
                return False
            final = chain.head()[1]
            cursor = start_height(final, since, self.rentals.now_ms(), chain.constants.BLOCK_INTERVAL)
            self.store.set_cursor(genesis, cursor, None)
            log.info("market: following chain %s from block %d (final %d; the market started following "
                     "it %.1f s ago)", chain.network.chain_id, cursor, final, (self.rentals.now_ms() - since) / 1000)
        elif not chain.available():
            return False
        final = chain.head()[1]
        if final <= cursor:
            return False
        blocks = await chain.blocks_since(cursor, min(BATCH, final - cursor))
        for block in blocks:
            if not block.final:
                return False
            await self.block(chain, block)
            self.store.set_cursor(genesis, block.height, block.hash)
            cursor = block.height
        return final - cursor > 0 and len(blocks) >= BATCH

    async def block(self, chain: Any, block: Any) -> None:
        for tx in block.txs:
            if tx.type not in MARKET_TYPES:
                continue
            try:
                await self._tx(chain, tx, block)
            except (KeyError, TypeError, ValueError, TermsError) as exc:
                # a final block holds only valid transactions; one this code cannot read is logged
                log.error("market: %s %s in block %d not understood: %s", tx.type, tx.hash.hex()[:16],
                          block.height, exc)

    async def _tx(self, chain: Any, tx: Any, block: Any) -> None:
        p = tx.payload
        kind = tx.type
        if kind == "create_contract":
            self._created(tx, block)
        elif kind == "call":
            if p["contract"] in self.contracts:
                await self._called(chain, tx, block)
        elif kind == "return":
            call = self.store.call(p["call"])
            if call is not None:
                await self._returned(chain, tx, block, call)
        elif kind == "settle":
            if p["channel"] in self.channels:
                await self._settled(chain, tx, block)
        elif kind == "refund":
            target = p["target"]
            call = self.store.call(target)
            if call is not None:
                self.store.set_state(call.id, "refunded", note=f"refunded by the renter in {tx.hash.hex()[:16]}")
                self.rentals.forget(call.id)
                log.warning("market: call %s was refunded (no return reached the chain in time)", call.id.hex()[:16])
            elif target in self.channels:
                await self._channel_refunded(chain, tx, block, target)
        elif kind == "review":
            call = self.store.call(p["call"])
            if call is not None:
                self.emit("review_received", {"contract": call.contract.hex(), "call": call.id.hex(),
                                              "renter": call.renter.hex(), "device": call.device_id,
                                              "comment": str(p.get("comment", "")), "amount": 0})
        elif kind == "bind_device":
            self._ownership(tx)

    # --- contracts and calls ---------------------------------------------------------------------------
    def _created(self, tx: Any, block: Any) -> None:
        p = tx.payload
        key = self.identity.controller_key.public_key
        if tx.sender != key:
            return
        device_id = self.identity.device_for_key(p["device"])
        if device_id is None:
            return
        if tx.hash in self.contracts:
            self.store.set_contract(tx.hash, "live", height=block.height, time=block.timestamp)
        else:
            self.store.add_contract(tx.hash, device_id, p["device"], tx.sender, list(p["commands"]), dict(p["terms"]),
                                    str(p.get("endpoint", "")), "live", self.rentals.now(), block.height,
                                    block.timestamp)
        self.contracts[tx.hash] = self.store.contract(tx.hash)
        log.info("market: contract %s on %s is live (block %d)", tx.hash.hex()[:16], device_id, block.height)

    async def _called(self, chain: Any, tx: Any, block: Any) -> None:
        if self.store.call(tx.hash) is not None:
            return  # seen before a restart
        contract = self.contracts[tx.payload["contract"]]
        terms = Terms.from_payload(contract.terms)
        deposit = int(tx.payload["deposit"])
        renter = tx.sender
        start = block.timestamp
        entry = await self._state(chain, "call", tx.hash) if terms.kind == "metered" else None
        channel = b""
        windows = 0
        state, note = "open", None
        if terms.kind == "prepaid":
            windows = int(entry[5]) if entry else terms.windows(deposit)
            until = start + windows * terms.window
            if deposit < terms.price:
                state, note = "ended", "the deposit does not pay one window"
        else:
            channel = bytes(entry[3]) if entry and entry[3] else _channel_id(renter, contract.controller,
                                                                             await self._openings(chain, renter, contract))
            until = start + terms.max_duration
            held = await self._state(chain, "chan", channel)
            if held is not None and int(held[2]) - int(held[3]) < terms.deposit:
                state, note = "ended", f"the channel holds {int(held[2]) - int(held[3])}, the terms ask {terms.deposit}"
        row = CallRow(tx.hash, contract.id, contract.device_id, renter, terms.kind, deposit if terms.kind == "prepaid" else 0,
                      channel, windows, start, until, block.height, state, None,
                      start if state == "ended" else None, "refused" if state == "ended" else None,
                      0 if state == "ended" else None, None, None, note)
        if not self.store.add_call(row):
            return
        if channel:
            self.channels[channel] = tx.hash
        self.emit("contract_called", {"contract": contract.id.hex(), "call": tx.hash.hex(), "renter": renter.hex(),
                                      "device": contract.device_id, "amount": deposit})
        if state == "open":
            await self.rentals.open(row)
        else:
            log.warning("market: call %s on %s not served: %s; it is returned with nothing used", tx.hash.hex()[:16],
                        contract.device_id, note)

    async def _openings(self, chain: Any, renter: bytes, contract: Any) -> int:
        from hub.crypto.address import address_of

        found = await self._state(chain, "chanof", address_of(renter) + address_of(contract.controller))
        return int(found[1]) - 1 if found else 0

    async def _state(self, chain: Any, ns: str, key: bytes) -> Any:
        try:
            return await chain.state(ns, key)
        except ValueError:  # a chain without the market's namespaces
            return None

    def _ownership(self, tx: Any) -> None:
        """A hand-over or sale of a device ends its seller's offers (a contract is live only while
        its device's controller on chain is the contract's)."""
        statement = tx.payload.get("statement") or {}
        body = statement.get("body") or {}
        if statement.get("kind") not in ("handover", "sale", "reset"):
            return
        device = body.get("device")
        for contract in list(self.contracts.values()):
            if contract.device == device and contract.status == "live":
                self.store.set_contract(contract.id, "ended", note=f"the device changed hands ({statement['kind']})")
                self.contracts[contract.id] = self.store.contract(contract.id)
                log.info("market: contract %s ended: its device changed hands", contract.id.hex()[:16])

    # --- money ----------------------------------------------------------------------------------------
    def _book(self, tx: Any, block: Any, call: CallRow, kind: str, amount: int) -> None:
        if amount <= 0:
            return
        if self.store.add_payment(tx.hash, call.id, kind, block.timestamp, block.height, call.device_id,
                                  call.contract, amount):
            self.emit("payment_received", {"contract": call.contract.hex(), "call": call.id.hex(),
                                           "renter": call.renter.hex(), "device": call.device_id, "amount": amount,
                                           "kind": kind})

    async def _returned(self, chain: Any, tx: Any, block: Any, call: CallRow) -> None:
        if tx.sender != self.identity.controller_key.public_key:
            return
        p = tx.payload
        self.store.set_state(call.id, "returned")
        self.store.set_return(call.id, tx.hash, "final")
        self.rentals.forget(call.id)
        if call.kind == "prepaid":
            self._book(tx, block, call, "return", int(p["used"]))
        elif p.get("cheque"):
            await self._channel_paid(chain, tx, block, call.channel, p["cheque"], "return", call)
        log.info("market: call %s returned in block %d", call.id.hex()[:16], block.height)

    async def _settled(self, chain: Any, tx: Any, block: Any) -> None:
        p = tx.payload
        channel = p["channel"]
        cheque = p.get("cheque")
        me = self.identity.controller_key.public_key
        call = self.store.call(self.channels[channel])
        if cheque is not None:
            named = self.store.call(cheque["body"]["call"])
            call = named if named is not None else call
        if tx.sender == me and call is not None and (cheque is not None or p.get("close")):
            await self._channel_paid(chain, tx, block, channel, cheque, "settle", call)
            if cheque is not None:
                self.store.set_settle(channel, int(cheque["body"]["amount"]), tx.hash, "final")
        elif p.get("close") or cheque is not None:  # a renter's close, or an answer to one: a challenge runs
            amount = int(cheque["body"]["amount"]) if cheque is not None else 0
            before = self._closing.get(channel, (0, b""))[0]
            self._closing[channel] = (max(before, amount), call.id if call is not None else b"")

    async def _channel_refunded(self, chain: Any, tx: Any, block: Any, channel: bytes) -> None:
        """The payout after a challenge: the closing amount less what was withdrawn."""
        closing, call_id = self._closing.pop(channel, (0, self.channels[channel]))
        held = await self._state(chain, "chan", channel)
        if held is not None:  # paid out: (renter, payee, deposit, paid to the payee in all, ...)
            closing = int(held[3]) if held[7] else max(closing, int(held[4]))
        call = self.store.call(call_id or self.channels[channel])
        if call is None:
            return
        paid = self.store.channel_paid(channel)
        self._book(tx, block, call, "refund", closing - paid)  # booked first: keyed by tx, never twice
        self.store.set_channel_paid(channel, call.renter, max(paid, closing))

    async def _channel_paid(self, chain: Any, tx: Any, block: Any, channel: bytes, cheque: dict | None, kind: str,
                            call: CallRow) -> None:
        amount = int(cheque["body"]["amount"]) if cheque is not None else 0
        held = await self._state(chain, "chan", channel)
        if held is not None and held[7]:  # closed: what it paid the payee in all is fixed for good
            amount = int(held[3])
        elif held is not None:
            amount = min(amount, int(held[2]))  # the chain caps a cheque by the deposit
        paid = self.store.channel_paid(channel)
        if amount <= paid:
            return
        self._book(tx, block, call, kind, amount - paid)  # booked first: keyed by tx, never twice
        self.store.set_channel_paid(channel, call.renter, amount)


def _channel_id(renter: bytes, payee: bytes, openings: int) -> bytes:
    """spec17.md: sha256(b"channel" ‖ renter pk ‖ payee pk ‖ openings, 8 bytes big-endian)."""
    import hashlib

    return hashlib.sha256(b"channel" + renter + payee + openings.to_bytes(8, "big")).digest()
