"""What people type and read at the market's command line, against what the chain stores.

Amounts are typed and shown in RUFF with up to six decimals and kept as integer base units
(1 RUFF = 10**6): read with :class:`~decimal.Decimal`, never a float, so ``0.1`` is exactly 100,000
units and a price nobody can pay to the unit is refused instead of rounded. Durations (``10m``,
``2h``) become integer milliseconds, as in the contract's terms. Terms are built here exactly as
spec'd for ``create_contract`` and described back in words, so the owner's ``offer`` and the
renter's ``offers`` and ``rent`` speak the same language. No I/O: everything here is unit-tested.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

RUFF = 10**6
DECIMALS = 6
U64_MAX = 2**64 - 1
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|min|h|d)\s*$")
_MS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
#: Negative reviews above this share of returned calls (with at least MIN_RETURNED) get a warning.
WARN_SHARE = Decimal("0.2")
MIN_RETURNED = 3


class InputError(ValueError):
    """A value typed at the command line is wrong; the message names the option and says why."""


def parse_ruff(text: str, what: str = "amount", *, allow_zero: bool = False) -> int:
    """``"1.5"`` -> 1,500,000 base units; ``"0.0000001"`` is refused (below one unit), never rounded."""
    try:
        value = Decimal(str(text).strip().replace("_", ""))
    except InvalidOperation:
        raise InputError(f"{what}: {text!r} is not an amount of RUFF (e.g. 2.5)") from None
    if not value.is_finite():
        raise InputError(f"{what}: {text!r} is not an amount of RUFF (e.g. 2.5)")
    units = value * RUFF
    if units != units.to_integral_value():
        raise InputError(f"{what}: {text} RUFF has more than {DECIMALS} decimals (1 base unit is 0.000001 RUFF)")
    if units < 0 or (units == 0 and not allow_zero):
        raise InputError(f"{what}: must be {'zero or more' if allow_zero else 'more than 0'} RUFF, not {text}")
    if units > U64_MAX:
        raise InputError(f"{what}: {text} RUFF is more than the chain can hold")
    return int(units)


def ruff(units: int) -> str:
    """Base units as RUFF with only the decimals that matter: 1,500,000 -> ``1.5 RUFF``."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(int(units)), RUFF)
    text = f"{whole:,}.{frac:0{DECIMALS}d}".rstrip("0").rstrip(".")
    return f"{sign}{text} RUFF"


def ruff_plain(units: int) -> str:
    """Base units as a plain decimal number of RUFF (``1.5``): for CSV, where a bank's tool reads it."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(int(units)), RUFF)
    return f"{sign}{whole}.{frac:0{DECIMALS}d}"


def parse_duration(text: str, what: str = "duration") -> int:
    """``90s``, ``10m``, ``2h``, ``7d``, ``500ms`` -> milliseconds (> 0)."""
    m = _DURATION.match(str(text))
    if not m or int(m.group(1)) == 0:
        raise InputError(f"{what}: {text!r} is not a duration like 30s, 10m, 2h or 1d")
    ms = int(m.group(1)) * _MS[m.group(2)]
    if ms > U64_MAX:
        raise InputError(f"{what}: {text} is too long")
    return ms


def duration(ms: int) -> str:
    """Milliseconds in the largest unit that divides them: 600,000 -> ``10 min``, 5,400,000 -> ``90 min``."""
    ms = int(ms)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms} ms"


def prepaid_terms(price: str, window: str, max_duration: str | None) -> dict[str, Any]:
    """``create_contract``'s prepaid terms: ``price`` per ``window``, at most ``max_duration`` (one
    window when not given)."""
    window_ms = parse_duration(window, "--window")
    max_ms = parse_duration(max_duration, "--max") if max_duration else window_ms
    if max_ms < window_ms:
        raise InputError(f"--max: {duration(max_ms)} is shorter than one --window of {duration(window_ms)}")
    return {"kind": "prepaid", "price": parse_ruff(price, "--price"), "window": window_ms, "max_duration": max_ms}


def metered_terms(rate: str, per: str, meter: str | None, deposit: str, max_duration: str | None) -> dict[str, Any]:
    """``create_contract``'s metered terms. ``per`` is a duration (``10m``: billed by time, ``rate``
    per interval) or the meter's unit (``kWh``: ``rate`` per unit of the ``meter`` entity, ``energy``
    unless named; the chain keeps rates per 1,000 milli-units, i.e. per unit)."""
    units = parse_ruff(rate, "--rate")
    if _DURATION.match(per):
        if meter:
            raise InputError(f"--meter: a contract billed per {per} is metered by time; --meter is for --per kWh")
        meter_key, interval = "", parse_duration(per, "--per")
    elif re.fullmatch(r"[A-Za-z][A-Za-z0-9³²/]{0,15}", per):
        meter_key, interval = meter or "energy", 0
        if not re.fullmatch(r"[a-z0-9_]{1,64}", meter_key):
            raise InputError(f"--meter: {meter_key!r} is not an entity key on the device (like energy)")
    else:
        raise InputError(f"--per: {per!r} is neither a duration (10m) nor a meter's unit (kWh)")
    max_ms = parse_duration(max_duration, "--max") if max_duration else 3_600_000
    if interval and max_ms < interval:
        raise InputError(f"--max: {duration(max_ms)} is shorter than one interval of {duration(interval)}")
    return {"kind": "metered", "rate": units, "meter": meter_key, "interval": interval,
            "deposit": parse_ruff(deposit, "--deposit", allow_zero=True), "max_duration": max_ms}


def describe_terms(terms: dict[str, Any], unit: str = "kWh") -> str:
    """Terms in words, amounts in RUFF: ``1 RUFF per 10 min, up to 2 h`` (prepaid),
    ``0.3 RUFF per kWh of energy, deposit 5 RUFF, up to 2 h`` (metered)."""
    up_to = f", up to {duration(terms.get('max_duration', 0))}" if terms.get("max_duration") else ""
    if terms.get("kind") == "prepaid":
        return f"prepaid: {ruff(terms['price'])} per {duration(terms['window'])}{up_to}"
    if terms.get("kind") == "metered":
        per = f"per {duration(terms['interval'])}" if not terms.get("meter") else f"per {unit} of {terms['meter']}"
        return f"metered: {ruff(terms['rate'])} {per}, deposit {ruff(terms.get('deposit', 0))}{up_to}"
    return f"unknown terms {terms!r}"


def prepaid_windows(terms: dict[str, Any], deposit: int) -> int:
    """Windows a prepaid ``deposit`` pays for (the chain's rule: at least one, at most what
    ``max_duration`` allows)."""
    price, window = terms["price"], terms["window"]
    by_money = deposit // price if price else U64_MAX
    by_time = terms["max_duration"] // window if window else 1
    return max(1, min(by_money, by_time))


def metered_cost(terms: dict[str, Any], usage: int) -> int:
    """What ``usage`` costs under metered terms, rounded down (in the renter's favour): ``usage`` is
    milli-units of the meter since the call (rate per 1,000) or ms since the call (rate per interval)."""
    if terms.get("meter"):
        return terms["rate"] * usage // 1000
    return terms["rate"] * usage // terms["interval"] if terms.get("interval") else 0


def review_score(returned: int, negative: int) -> tuple[str, bool]:
    """(``"1 negative of 12 returned (8%)"``, whether to warn): a warning once at least
    :data:`MIN_RETURNED` calls were returned and more than :data:`WARN_SHARE` of them got a negative
    review, or whenever negatives are the majority."""
    if not returned:
        return ("no returned calls yet", negative > 0)
    share = Decimal(negative) / Decimal(returned)
    percent = math.floor(share * 100)
    warn = (returned >= MIN_RETURNED and share > WARN_SHARE) or share > Decimal("0.5")
    return (f"{negative} negative of {returned} returned ({percent}%)", warn)


__all__ = ["InputError", "RUFF", "describe_terms", "duration", "metered_cost", "metered_terms", "parse_duration",
           "parse_ruff", "prepaid_terms", "prepaid_windows", "review_score", "ruff", "ruff_plain"]
