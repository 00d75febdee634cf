"""Contract terms and what usage costs under them: one definition for the hub that meters, the
cheque checker that asks whether a cheque covers a receipt, and the CLI that shows prices.

Integers only (base units, milli-units, ms). Rounding is always in the renter's favour for metered
use (down) and the Slock.it way for prepaid windows (a started window is a used window), exactly as
the chain's cap rules read (spec17.md "The model").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("prepaid", "metered")


class TermsError(ValueError):
    """Terms that no contract could carry; the message names the field."""


@dataclass(frozen=True)
class Terms:
    kind: str
    price: int = 0  # prepaid: per window
    window: int = 0  # ms
    rate: int = 0  # metered: per 1,000 milli-units of the meter, or per interval of time
    meter: str = ""  # the meter entity's key on the device ("energy"), "" for time
    interval: int = 0  # ms, time metering
    deposit: int = 0  # metered: minimum channel balance
    max_duration: int = 0  # ms

    @classmethod
    def from_payload(cls, data: Any) -> "Terms":
        if isinstance(data, Terms):
            return data
        if not isinstance(data, dict):
            raise TermsError("terms: a map expected")
        kind = data.get("kind")
        if kind not in KINDS:
            raise TermsError(f"terms.kind: {kind!r} is not one of {', '.join(KINDS)}")
        known = {"kind", "price", "window", "rate", "meter", "interval", "deposit", "max_duration"}
        extra = set(data) - known
        if extra:
            raise TermsError(f"terms: unknown field(s) {', '.join(sorted(map(str, extra)))}")
        values: dict[str, Any] = {"kind": kind}
        for name in ("price", "window", "rate", "interval", "deposit", "max_duration"):
            value = data.get(name, 0)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**64:
                raise TermsError(f"terms.{name}: an integer from 0 to 2^64-1 expected, got {value!r}")
            values[name] = value
        meter = data.get("meter", "")
        if not isinstance(meter, str) or len(meter) > 64:
            raise TermsError("terms.meter: an entity key (at most 64 characters) or \"\" expected")
        values["meter"] = meter
        terms = cls(**values)
        terms.check()
        return terms

    def check(self) -> None:
        if self.kind == "prepaid":
            if self.price <= 0:
                raise TermsError("terms.price: a prepaid contract needs a price per window above 0")
            if self.window <= 0:
                raise TermsError("terms.window: a prepaid contract needs a window above 0 ms")
            if self.max_duration < self.window:
                raise TermsError("terms.max_duration: shorter than one window (a prepaid contract needs one)")
            for name in ("rate", "interval", "deposit"):
                if getattr(self, name):
                    raise TermsError(f"terms.{name}: not a term of a prepaid contract; leave it out")
            if self.meter:
                raise TermsError("terms.meter: not a term of a prepaid contract; leave it out")
        else:
            if self.rate <= 0:
                raise TermsError("terms.rate: a metered contract needs a rate above 0")
            if not self.meter and self.interval <= 0:
                raise TermsError("terms.interval: time metering needs an interval above 0 ms")
            if self.meter and self.interval:
                raise TermsError("terms.interval: for time metering only; with a meter the rate is per 1,000 "
                                 "milli-units")
            if self.price or self.window:
                raise TermsError("terms.price, terms.window: not terms of a metered contract; leave them out")
            if self.max_duration <= 0:
                raise TermsError("terms.max_duration: a metered contract needs a maximum duration above 0 ms")

    def payload(self) -> dict[str, Any]:
        """The ``terms`` of a ``create_contract`` payload: only the fields its kind uses."""
        if self.kind == "prepaid":
            return {"kind": "prepaid", "price": self.price, "window": self.window, "max_duration": self.max_duration}
        return {"kind": "metered", "rate": self.rate, "meter": self.meter, "interval": self.interval,
                "deposit": self.deposit, "max_duration": self.max_duration}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    # --- prepaid ------------------------------------------------------------------------------------
    def windows(self, deposit: int) -> int:
        """Windows a prepaid call's deposit pays for: ``min(deposit // price, max_duration // window)``,
        at least 1 (the chain refuses a deposit below one window's price)."""
        return max(min(deposit // self.price, self.max_duration // self.window), 1)

    def prepaid_used(self, elapsed_ms: int, windows: int, deposit: int) -> int:
        """``price × ceil(elapsed / window)``, at most the windows paid and the deposit."""
        started = -(-max(elapsed_ms, 0) // self.window)
        return min(self.price * min(max(started, 1), windows), deposit)

    # --- metered ------------------------------------------------------------------------------------
    def cost(self, usage: int) -> int:
        """What ``usage`` costs: milli-units of the meter (``rate`` per 1,000) or ms of time
        (``rate`` per ``interval``), rounded down."""
        usage = max(int(usage), 0)
        if self.meter:
            return self.rate * usage // 1000
        return self.rate * usage // self.interval

    def duration(self, deposit: int) -> int:
        """ms a grant of this contract lasts: the paid windows (prepaid) or the maximum duration."""
        if self.kind == "prepaid":
            return self.windows(deposit) * self.window
        return self.max_duration
