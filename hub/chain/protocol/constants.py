"""Every protocol number, in one table.

Times are integer milliseconds and amounts integer base units (1 RUFF = 10**6 units): consensus
code never touches a float. A devnet or a test changes these only through the genesis file's
``constants`` section (:func:`with_overrides`), never by patching code, so a chain's rules are
whatever its genesis hash commits to.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

RUFF = 10**6  # base units per RUFF
SECOND = 1000  # milliseconds
HOUR = 3600 * SECOND
#: How far a device-signed binding or reset's ``time`` may be ahead of the block's time (clock skew
#: between a device, its hub and the producers). Not a genesis constant: changing it would change
#: every genesis hash, and no network needs another value. Without a bound, one binding dated in the
#: far future could never be superseded by a factory reset.
MAX_STATEMENT_AHEAD = 60 * SECOND


@dataclass(frozen=True)
class Constants:
    # --- DPoS -----------------------------------------------------------------------------------
    PRODUCERS: int = 105  # producers elected per round; a round is this many blocks by height
    BLOCK_INTERVAL: int = 9 * SECOND  # slot length; an absent producer's successor comes 2 slots later
    CANDIDATE_LIMIT: int = 318  # with more candidates than this, last round's producers cannot be re-elected
    QUORUM: int = 1000  # voting stake needed for an election, in parts per 10,000 of the supply (10 %)
    MAX_VOTES: int = 30  # candidates one vote transaction may name
    BAN_DURATION: int = 24 * HOUR  # a producer that missed a slot is not electable for this long
    POLL_MAJORITY: int = 5000  # a disqualification poll passes with more than this share (per 10,000) of candidates
    # --- economics ------------------------------------------------------------------------------
    BLOCK_REWARD: int = 5 * RUFF  # minted for a block with at least one device or contract transaction
    MIN_FEE: int = 1000  # base fee of every transaction (0.001 RUFF)
    FEE_PER_BYTE: int = 10  # plus this per byte of the encoded transaction
    CANDIDATE_FEE: int = 10 * RUFF  # minimum fee of register_candidate (paid to the producer, not burnt)
    # --- limits ---------------------------------------------------------------------------------
    MAX_BLOCK_BYTES: int = 3_000_000  # encoded transactions per block: 10,000 transfers (~208 B each) fit
    MAX_TX_BYTES: int = 16_384
    MAX_TX_LIFETIME: int = 24 * HOUR  # valid_until may be at most this far after the including block
    # --- market (effects in later issues; fixed now so genesis files need not change) -----------
    REVIEW_PERIOD: int = 7 * 24 * HOUR  # a renter may file a negative review this long after a return
    REFUND_TIMEOUT: int = 1 * HOUR  # a call with no return this long after its paid time may be refunded
    CHALLENGE_PERIOD: int = 1 * HOUR  # after a renter closes a channel alone, a newer cheque may answer this long

    def fee_for(self, size: int) -> int:
        return self.MIN_FEE + self.FEE_PER_BYTE * size

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def canonical(self) -> dict[str, int]:
        """What the genesis hash commits to: every constant, except one added after the first
        release while it keeps its default (:data:`ADDED_LATER`). So a chain started before the
        constant existed keeps its genesis hash (its store, its signatures) and means the default,
        while a genesis that sets another value commits to it."""
        table = self.as_dict()
        for name in ADDED_LATER:
            if table[name] == getattr(DEFAULT, name):
                del table[name]
        return table


DEFAULT = Constants()
#: Constants added after chains existed; left out of the genesis hash while at their default.
ADDED_LATER = ("CHALLENGE_PERIOD",)
_LIMITS = {"PRODUCERS": (1, 1000), "BLOCK_INTERVAL": (100, 3_600_000), "QUORUM": (0, 10_000),
           "POLL_MAJORITY": (0, 9_999), "MAX_VOTES": (1, 1000), "MAX_BLOCK_BYTES": (1024, 64_000_000),
           "MAX_TX_BYTES": (256, 1_000_000), "CANDIDATE_LIMIT": (1, 100_000)}


class ConstantsError(ValueError):
    """A genesis file's constants section is wrong; the message names the constant."""


def with_overrides(overrides: dict[str, Any] | None) -> Constants:
    """The default table with a genesis file's overrides; unknown names and non-integers are errors."""
    if not overrides:
        return DEFAULT
    names = {f.name for f in dataclasses.fields(Constants)}
    clean: dict[str, int] = {}
    for name, value in overrides.items():
        if name not in names:
            raise ConstantsError(f"unknown constant {name!r}; known: {', '.join(sorted(names))}")
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConstantsError(f"constant {name} must be an integer (ms, base units or parts per 10,000), got {value!r}")
        low, high = _LIMITS.get(name, (0, 2**63 - 1))
        if not low <= value <= high:
            raise ConstantsError(f"constant {name} must be between {low} and {high}, got {value}")
        clean[name] = value
    return dataclasses.replace(DEFAULT, **clean)
