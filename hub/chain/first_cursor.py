"""Where a follower of the chain (the market, the cheque book, chain control) starts the first time.

Each keeps a cursor: the last final block it handled. The first time it follows a chain it has no
cursor, and its first look at the chain can come long after it first wanted it (the node
unreachable at start, the light client still syncing its headers, a poll interval).
"""

from __future__ import annotations

#: How far the chain's clock (block timestamps) may run behind the hub's, in ms, for the first look.
CLOCK_SKEW_MS = 10_000


def start_height(final: int, since_ms: int, now_ms: int, block_interval_ms: int) -> int:
    """The first cursor: a height no later than the chain's head at ``since_ms`` (when the follower
    first wanted the chain), found without reading a block.

    Why: the first look can come long after that moment (the node unreachable at start, the light
    client still syncing its headers, a poll interval), and a call sent meanwhile may already be
    final by then; starting at the final block of the first look skipped it for good (the renter
    paid and was never served). Each block after ``since_ms`` has a slot of its own, so at most one
    block per ``block_interval_ms`` since then (plus the slot running at ``since_ms`` and the clock
    skew allowed) lies above the head of that moment. Blocks handled twice or from just before are
    harmless: every handler is idempotent and acts only on what concerns this hub (its contracts,
    channels, devices)."""
    elapsed = max(0, now_ms - since_ms) + CLOCK_SKEW_MS
    slots = -(-elapsed // max(1, block_interval_ms)) + 1
    return max(0, final - slots)
