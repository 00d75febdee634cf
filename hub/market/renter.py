"""The renter's side of a rental, apart from the command line's prompts: the owner's hub over HTTP
(no token), receipts checked, cheques signed and remembered, the end of a call signed.

A cheque's ``amount`` is cumulative over the whole channel (every call of this renter to that
owner), so the renter keeps the last one it signed per channel in a file beside its key
(``<key>.cheques.json``, written and fsync'd *before* the cheque is sent): after a crash or on the
next rental it goes on from there and never signs a lower amount, which the owner would refuse and
the chain would not honour. The cost of a receipt's usage is worked out here from the terms on
chain, not taken from the hub: the renter pays for what the signed receipt says, rounded down.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from hub.client import ClientError, HubClient
from hub.crypto.signing import Network
from hub.market.units import metered_cost


class RentError(Exception):
    """Something the renter must be told, in a sentence; ``status``: the hub's HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ChequeBook:
    """The last cheque signed per channel, beside the key; amounts only rise."""

    def __init__(self, key_path: Path) -> None:
        self.path = key_path.with_name(key_path.name + ".cheques.json")

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def amount(self, channel: str) -> int:
        return int(self._load().get(channel, {}).get("amount", 0))

    def latest(self, channel: str) -> dict[str, Any] | None:
        return self._load().get(channel, {}).get("signed")

    def record(self, channel: str, amount: int, signed: dict[str, Any]) -> None:
        book = self._load()
        if amount < int(book.get(channel, {}).get("amount", 0)):
            raise RentError(f"refusing to sign a lower amount than the last cheque on channel {channel[:16]}…")
        book[channel] = {"amount": amount, "signed": signed}
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(book, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


class Rental:
    """One call, from the grant to its end, as its renter runs it against the owner's hub."""

    def __init__(self, client: HubClient, key: Any, key_path: Path, network: Network, contract: dict[str, Any],
                 call: bytes, channel: dict[str, Any] | None) -> None:
        self.client, self.key, self.key_path, self.network = client, key, key_path, network
        self.contract, self.call = contract, call
        self.terms = contract["terms"]
        self.channel = channel  # the call's channel on chain (metered), as chainview gives it
        self.book = ChequeBook(key_path)
        self.base_reading: int | None = None
        self.cost = 0  # this call's cost so far (call_amount)
        self.usage = 0
        self.channel_base = 0  # the channel's cumulative amount before this call

    # --- the hub ----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any] | None:
        try:
            return self.client.request("GET", f"/api/market/calls/{self.call.hex()}", auth=False)
        except ClientError as exc:
            if exc.status == 404:
                return None
            raise RentError(str(exc), exc.status) from None

    def wait_for_grant(self, timeout: float) -> dict[str, Any]:
        """The hub's view of the call once it has opened the grant (it acts on final blocks)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.status()
            if last and last.get("grant") and last.get("state") in ("open", "ended", "returned"):
                return last  # granted (a short window may be over already: the caller sees the state)
            if last and last.get("state") not in (None, "open"):
                raise RentError(f"the hub did not open access: the call is {last['state']}"
                                + (f" ({last['end_reason']})" if last.get("end_reason") else ""))
            time.sleep(0.25)
        raise RentError(f"the hub at {self.client.url} has not opened access within {timeout:.0f} s "
                        f"(its view: {last or 'no such call yet'}); `hub market refund {self.call.hex()}` gets the "
                        "deposit back if it never answers")

    # --- metering ---------------------------------------------------------------------------------
    def start(self, status: dict[str, Any]) -> None:
        """Where this call's cheques start: the channel's cumulative amount so far, the largest of what
        this key signed, what the hub holds and what the chain already paid out."""
        chan = self.channel_hex()
        held = status.get("channel_amount") or 0
        withdrawn = (self.channel or {}).get("withdrawn", 0) or 0
        self.channel_base = max(self.book.amount(chan), int(held), int(withdrawn))
        start = status.get("start_reading")
        if start is not None:
            self.base_reading = int(start)

    def channel_hex(self) -> str:
        chan = (self.channel or {}).get("id") or ""
        return chan if isinstance(chan, str) else bytes(chan).hex()

    def receipt(self):
        """The hub's latest receipt for the call, checked: this call, this device, signed by the device
        or its controller (the hub as its light node)."""
        from hub.crypto.statements import Signed, StatementError

        try:
            data = self.client.request("GET", f"/api/market/calls/{self.call.hex()}/receipt", auth=False)
            signed = Signed.from_json(data)
        except ClientError as exc:
            raise RentError(f"no receipt from the hub: {exc}") from None
        except StatementError as exc:
            raise RentError(f"the hub sent a receipt that is not well formed: {exc}") from None
        st = signed.statement
        if st.DOMAIN != "receipt" or st.call != self.call or st.device.hex() != self.contract["device"]:
            raise RentError("the hub sent a receipt for another call or device")
        if st.signer.hex() not in (self.contract["device"], self.contract["controller"]):
            raise RentError("the hub sent a receipt signed by neither the device nor its controller")
        if not signed.verify(st.signer, self.network):
            raise RentError("the hub sent a receipt whose signature does not verify")
        return signed

    def pay(self, final: bool = False) -> dict[str, Any]:
        """Read the latest receipt and, when its usage costs more than already paid, sign a cheque for
        it and hand it to the hub (amounts must rise: an unchanged cost needs no cheque)."""
        from hub.crypto.statements import Cheque, receipt_hash, sign

        signed = self.receipt()
        reading = signed.statement.reading
        if self.terms.get("meter"):
            if self.base_reading is None:
                self.base_reading = reading
            usage = max(0, reading - self.base_reading)
        else:
            usage = reading  # ms since the call
        self.usage = usage
        deposit = int((self.channel or {}).get("deposit", 0))
        cost = min(max(self.cost, metered_cost(self.terms, usage)), deposit - self.channel_base)
        exhausted = self.channel_base + metered_cost(self.terms, usage) >= deposit
        report = {"usage": usage, "cost": cost, "amount": self.channel_base + cost, "exhausted": exhausted,
                  "final": final, "answer": {"ok": True, "sent": False}}
        if cost <= self.cost:
            return report
        chan = self.channel_hex()
        cheque = Cheque(chain=self.network.chain_id, channel=bytes.fromhex(chan),
                        contract=bytes.fromhex(self.contract["id"]), call=self.call,
                        receipt=receipt_hash(signed.statement), amount=self.channel_base + cost, call_amount=cost,
                        renter=self.key.public_key)
        signed_cheque = sign(cheque, self.key, self.network).to_json()
        self.book.record(chan, cheque.amount, signed_cheque)  # durable before it leaves this machine
        self.cost = cost  # signed: owed from now on, whether or not the hub hears of it now
        try:
            answer = self.client.request("POST", "/api/market/cheques", signed_cheque, auth=False)
        except ClientError as exc:
            # Away (no status): the cheque waits in the book and the next, higher one replaces it.
            answer = exc.body or {"ok": False, "reason": "unreachable", "message": str(exc)}
        report["answer"] = {**answer, "sent": True}
        return report

    # --- the end ------------------------------------------------------------------------------------
    def end(self, counter: int) -> dict[str, Any]:
        """Ask the hub to end the call now, with a request signed by this key."""
        from hub.crypto.statements import Command, sign

        st = Command(self.network.chain_id, bytes.fromhex(self.contract["device"]), "market", "end",
                     {"call": self.call.hex()}, time.time_ns() // 1_000_000, counter, self.key.public_key)
        try:
            return self.client.request("POST", f"/api/market/calls/{self.call.hex()}/end",
                                       {"signed": sign(st, self.key, self.network).to_json()}, auth=False)
        except ClientError as exc:
            raise RentError(f"the hub did not end the call: {exc}", exc.status) from None


__all__ = ["ChequeBook", "RentError", "Rental"]
