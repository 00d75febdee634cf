"""Properties of the device transactions over random block sequences (bounded example counts: the
suite shares 2 cores): supply moves only by block rewards (a sale's price included), the state root
is the one a from-scratch build gives, reverting every block restores every earlier state exactly,
and a binding's seq, time and epoch never go back."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hub.chain.protocol import statetree
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.rules import REWARDED_TYPES
from hub.chain.protocol.state import NAMESPACES
from hub.chain.protocol.transition import apply_block

from tests.chain.chainkit import (Sim, Wallet, addr, bind, command, grant, handover, key, log_batch, make_genesis,
                                  report, reset, revoke, sale)

PRODUCERS = [key(f"producer{i}") for i in range(3)]
USERS = [key(f"device-user{i}") for i in range(3)]
DEVICES = [key(f"device{i}") for i in range(2)]
START = {u: 50 * RUFF for u in USERS} | {d: RUFF for d in DEVICES}  # device keys report, so they pay fees

KINDS = ["bind", "bind", "proof", "reset", "handover", "sale", "sale", "revoke", "command", "command", "grantee",
         "report", "report", "device_report", "log", "log"]
op = st.tuples(st.sampled_from(KINDS), st.integers(0, len(DEVICES) - 1), st.integers(0, len(USERS) - 1),
               st.integers(0, len(USERS) - 1), st.integers(-2, 2), st.integers(0, 60))
blocks = st.lists(st.lists(op, max_size=5), min_size=1, max_size=8)


def _tx(sim: Sim, pending: dict, kind: str, d: int, i: int, j: int, delta: int, amount: int):
    state = sim.state
    device, user, other = DEVICES[d], USERS[i], USERS[j]
    dev = device.public_key
    controller, seq, _, epoch = state.get("dev", dev) or (b"", 0, 0, 0)
    now = state.head.timestamp + state.constants.BLOCK_INTERVAL  # the next block's time, if no slot is missed
    sender, payload, tx_type = user, None, "bind_device"
    if delta > -2:  # mostly signed by whoever controls the device (a user when it has no controller)
        user = next((u for u in USERS if u.public_key == controller), user)
    if kind in ("bind", "proof"):
        payload = bind(device, user.public_key, now + delta * 400, sim, proof=kind == "proof")
    elif kind == "reset":
        payload = reset(device, now + delta * 400, sim)
    elif kind == "handover":
        payload = handover(user, dev, other.public_key, seq + delta // 2, sim)  # mostly the right seq
    elif kind == "sale":
        sender = other  # the buyer sends it; may be broke, may be the seller
        payload = sale(user, dev, amount * RUFF, seq + delta // 2, now + delta * 1000, sim,
                       buyer=other.public_key if delta > 0 else b"")
    elif kind == "revoke":
        payload = revoke(user, dev, epoch + delta, sim)
    elif kind in ("command", "grantee"):
        tx_type = "control_command"
        g = (grant(user, dev, other.public_key, sim, epoch=max(epoch + delta, 0), not_after=now + delta * 1000)
             if kind == "grantee" else None)
        payload = command(other if g else user, dev, sim, counter=amount, grant=g)
        sender = other if g else user
    elif kind in ("report", "device_report"):
        tx_type = "state_change"
        open_commands = sorted(state.ns["ctl"])
        cmd = open_commands[amount % len(open_commands)] if open_commands and delta >= -1 else b""
        payload = report(dev, cmd, ok=delta >= 0, reason="" if delta >= 0 else "stale", value=amount)
        sender = device if kind == "device_report" else user
    else:
        tx_type = "command_log"
        following = (state.get("clog", addr(user)) or (0, 0))[0]
        payload = log_batch(max(following + delta // 2, 0), 1 + amount, first_time=amount, last_time=amount + delta * delta)
    nonce = state.nonce(addr(sender)) + 1 + pending.get(sender.public_key, 0)
    pending[sender.public_key] = pending.get(sender.public_key, 0) + 1
    return Wallet(sender, sim).tx(tx_type, payload, nonce=nonce)


def _entries(state):
    return ((ns, k, v) for ns in NAMESPACES for k, v in state.ns[ns].items())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks)
def test_random_device_transactions_keep_supply_root_and_revert_exact(plan):
    genesis = make_genesis(PRODUCERS, START, PRODUCERS=3)
    sim = Sim(genesis, PRODUCERS)
    snapshots = [(sim.state.digest(), sim.state.state_root(), sim.state.head)]
    applied = []
    rewarded = 0
    for ops in plan:
        before = dict(sim.state.ns["dev"])
        pending: dict = {}
        txs = [_tx(sim, pending, *o) for o in ops]
        block = sim.next_block(txs, strict=False)
        applied.append(block)
        rewarded += any(t.type in REWARDED_TYPES for t in block.txs)
        for t in block.txs:
            what = t.payload["statement"]["kind"] if t.type == "bind_device" else t.type
            event(f"accepted {what}")  # what the examples reach: --hypothesis-show-statistics
        state = sim.state
        balances = sum(bal for bal, _ in state.ns["acct"].values())
        assert balances == state.meta("supply") == sum(START.values()) + rewarded * state.constants.BLOCK_REWARD
        assert state.state_root() == statetree.build(_entries(state)).root()
        for dev, (_, seq, time, epoch) in state.ns["dev"].items():
            _, seq0, time0, epoch0 = before.get(dev, (b"", 0, 0, 0))
            assert seq >= seq0 and time >= time0 and epoch >= epoch0
        for cmd in state.ns["done"]:
            assert cmd not in state.ns["ctl"], "a reported command is closed"
        snapshots.append((state.digest(), state.state_root(), state.head))

    replica = genesis.state()  # every node that applies the same blocks gets the same state
    for block in sim.blocks:
        apply_block(replica, block)
    assert replica.digest() == sim.state.digest() and replica.head == sim.state.head

    for step in reversed(applied):  # a reorganisation back to genesis, one block at a time
        sim.state.revert(step.undo, step.parent)
        snapshots.pop()
        assert (sim.state.digest(), sim.state.state_root(), sim.state.head) == snapshots[-1]


_plain = st.recursive(
    st.none() | st.booleans() | st.integers(-2**65, 2**65) | st.floats() | st.text(max_size=8)
    | st.binary(max_size=40) | st.sampled_from([b"\x01" * 32, b"\x01" * 64, "bind", "sale", "grant", "command"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10) | st.sampled_from(
        ["kind", "body", "sig", "device", "controller", "time", "seq", "price", "commands", "v"]), inner, max_size=6),
    max_leaves=20)


def _mangled(body, data):
    """``body`` (a signed statement's map) with one field, at any depth, replaced by random data."""
    if not isinstance(body, dict) or not body:
        return data.draw(_plain)
    field = data.draw(st.sampled_from(sorted(body)))
    return {**body, field: _mangled(body[field], data) if data.draw(st.booleans()) else data.draw(_plain)}


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_malformed_device_payloads_are_refused_with_a_reason_never_an_exception(data):
    """Whatever the payload's fields hold (as they come off the wire), a device transaction is refused
    with a reason and changes nothing, or applies: a TypeError here once escaped apply_block."""
    from hub.chain.protocol.errors import TxRejected
    from hub.chain.protocol.rules import BlockContext, apply_tx
    from hub.chain.protocol.transition import signature_verifier

    genesis = make_genesis(PRODUCERS, START, PRODUCERS=3)
    state = genesis.state()
    alice, dev = USERS[0], DEVICES[0]
    valid = {
        "bind_device": bind(dev, alice.public_key, 0, genesis),
        "control_command": command(alice, dev.public_key, genesis, grant=grant(alice, dev.public_key, alice.public_key, genesis)),
        "state_change": report(dev.public_key, b"\x02" * 32, value={"w": 1.5}),
        "command_log": log_batch(0, 3),
    }
    tx_type = data.draw(st.sampled_from(sorted(valid)))
    payload = _mangled(valid[tx_type], data)
    try:
        tx = Wallet(alice, genesis).tx(tx_type, payload)
    except Exception:  # noqa: BLE001 - not encodable as CBOR (e.g. a NaN key): nothing to send
        return
    before = state.digest()
    state.begin()
    try:
        apply_tx(state, tx, BlockContext(1, 2_000_000, 1, frozenset()), signature_verifier(state.network))
    except TxRejected as exc:
        assert exc.reason and state.digest() == before
    state.commit()
