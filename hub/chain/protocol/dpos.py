"""DPoS as DESIGN.md reads the whitepaper: slots, rounds, producer order, misses, bans, elections.

* Time is cut into slots of ``BLOCK_INTERVAL`` from the genesis time; slot 0 is the genesis.
* A round is ``PRODUCERS`` blocks by height (round r holds heights (r-1)·P+1 .. r·P; the genesis is
  round 0). Rounds are continuous, slots are not.
* The order of round r sorts the producers in effect for it (``elected`` as round r-1 ended; the
  pending schedule below makes that round r-2's election result) by SHA-256(seed ‖ key),
  ties by key, the seed being the hash of round r-1's last block. Slot s belongs to
  ``order[s mod len(order)]`` (fewer elected producers than ``PRODUCERS`` simply repeat sooner).
* Every slot skipped between two blocks is a miss for its owner (by the order of the round of the
  block that follows the gap), and bans the owner from elections for ``BAN_DURATION`` from that
  block's time.
* An election result waits until the block that holds it is irreversible (EOSIO's pending
  schedule): the set elected at the end of round r becomes the producers at the end of round r+1
  only if more than 2/3 of round r+1's producers signed a block in it (so more than 2/3 of them
  built on the election); otherwise the producers stay and the newer result waits in its place.
  Why: finality counts producers of the current schedule. Were a result active at once, a
  partitioned minority would ban the absent majority at its round end, elect a schedule of its
  own and finalise a branch the majority never saw, so the two sides could never reconcile.
  DESIGN.md says "election at the end of each round" and leaves the moment the result takes
  effect open; this takes it one round later, when it cannot be reverted.
"""

from __future__ import annotations

import hashlib

from hub.chain.protocol.constants import Constants
from hub.chain.protocol.state import State
from hub.crypto.address import address_of


def round_of(height: int, c: Constants) -> int:
    return 0 if height == 0 else (height - 1) // c.PRODUCERS + 1


def is_round_end(height: int, c: Constants) -> bool:
    return height > 0 and height % c.PRODUCERS == 0


def slot_at(time_ms: int, genesis_time: int, c: Constants) -> int:
    """The slot that contains ``time_ms`` (-1 before the genesis)."""
    if time_ms < genesis_time:
        return -1
    return (time_ms - genesis_time) // c.BLOCK_INTERVAL


def slot_time(slot: int, genesis_time: int, c: Constants) -> int:
    return genesis_time + slot * c.BLOCK_INTERVAL


def producer_order(producers: tuple[bytes, ...] | list[bytes], seed: bytes) -> tuple[bytes, ...]:
    return tuple(sorted(producers, key=lambda pk: (hashlib.sha256(seed + pk).digest(), pk)))


def schedule_after(state: State) -> tuple[bytes, ...]:
    """The producer order that applies to the block after the head."""
    if state.head.height % state.constants.PRODUCERS == 0:
        return producer_order(state.meta("elected"), state.head.hash)
    return state.meta("order")


def slot_owner(order: tuple[bytes, ...], slot: int) -> bytes:
    return order[slot % len(order)]


def missed_slots(order: tuple[bytes, ...], first: int, end: int) -> list[tuple[bytes, int]]:
    """(producer, how many of its slots lie in [first, end)), computed arithmetically so a node
    that was down for a week does not loop over every slot it slept through."""
    n = end - first
    if n <= 0:
        return []
    size = len(order)
    full, rest = divmod(n, size)
    counts: dict[bytes, int] = {}
    for i in range(size):
        # slots s in [first, end) with s % size == i
        offset = (i - first) % size
        k = full + (1 if offset < rest else 0)
        if k:
            counts[order[i]] = counts.get(order[i], 0) + k
    return sorted(counts.items())


def decide_polls(state: State, round_number: int) -> None:
    """Close every disqualification poll of the round: it passes when more than ``POLL_MAJORITY``
    (per 10,000) of the other candidates approved. Candidates vote one each, not by stake: the
    whitepaper gives this decision to the candidates, not to the token holders."""
    c = state.constants
    voters = [a for a, _ in state.items("cand") if state.get("dq", a) is None]
    height = state.head.height + 1
    for poll_id, (target, _opener, _round) in state.items("poll"):
        yes = 0
        for key, approve in state.items("pvote"):
            if key[:32] == poll_id:
                yes += 1 if approve else 0
                state.set("pvote", key, None)
        eligible = sum(1 for a in voters if a != target)
        if eligible and yes * 10_000 > c.POLL_MAJORITY * eligible and state.get("dq", target) is None:
            state.set("dq", target, height)
        state.set("poll", poll_id, None)


def vote_tally(state: State) -> tuple[dict[bytes, int], int]:
    """Each voted-for address's weight (every voter's whole balance behind each candidate it chose)
    and the stake that voted: what an election counts, also shown by the node's RPC."""
    weights: dict[bytes, int] = {}
    stake = 0
    for voter, choices in state.items("vote"):
        balance = state.balance(voter)
        if not choices or not balance:
            continue
        stake += balance
        for address in choices:
            weights[address] = weights.get(address, 0) + balance
    return weights, stake


def note_signer(state: State, producer: bytes) -> None:
    """Remember that ``producer`` signed a block of this round (``end_round`` counts them)."""
    signers: tuple[bytes, ...] = state.meta("signers", ())
    if producer not in signers:
        state.set("meta", "signers", tuple(sorted(signers + (producer,))))


def end_round(state: State, now: int) -> None:
    """Activate the result waiting since the last round end if more than 2/3 of this round's
    producers built on it, then hold this round's election result until the next round end."""
    order: tuple[bytes, ...] = state.meta("order")
    signers: tuple[bytes, ...] = state.meta("signers", ())
    pending = state.meta("pending")
    if pending is not None and len(signers) * 3 > 2 * len(order):
        state.set("meta", "elected", pending)
    state.set("meta", "pending", elect(state, now))
    state.set("meta", "signers", None)


def elect(state: State, now: int) -> tuple[bytes, ...]:
    """The producers of the next round (see DESIGN.md, "Election at the end of each round")."""
    c = state.constants
    current: tuple[bytes, ...] = state.meta("order")
    current_addresses = {address_of(pk) for pk in current}
    candidates = [(a, v) for a, v in state.items("cand") if state.get("dq", a) is None]
    exclude_current = len(candidates) > c.CANDIDATE_LIMIT
    eligible: dict[bytes, bytes] = {}
    for address, (_name, pk, _height) in candidates:
        if state.get("ban", address, 0) > now:
            continue
        if exclude_current and address in current_addresses:
            continue
        eligible[address] = pk
    tally, stake = vote_tally(state)
    weights = {address: weight for address, weight in tally.items() if address in eligible}
    supply = state.meta("supply")
    if stake * 10_000 >= c.QUORUM * supply and weights:
        ranked = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[: c.PRODUCERS]
        return tuple(eligible[a] for a, _ in ranked)
    # No quorum (or nobody electable): the current producers stay, less any disqualified one.
    staying = tuple(pk for pk in current if state.get("dq", address_of(pk)) is None)
    return staying or current
