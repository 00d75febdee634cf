"""Chain-state control in-process: a real embedded ChainNode (blocks produced on a simulated
clock), the real ChainAccess, the real light node and identity.db tables; only the gate is a tiny
stand-in (``Gatekeeper``) that runs the light node's check and records what the device did."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from hub.chain.access import EmbeddedAccess, TxRefused
from hub.chain.node.node import ChainNode
from hub.chain.protocol.constants import RUFF
from hub.crypto.statements import Bind, Signed, sign
from hub.identity.chainctl import ChainControl
from hub.identity.chainctl_store import ChainctlStore
from hub.identity.errors import Refused
from hub.identity.lightnode import LightNode, MemoryFlash
from hub.identity.store import IdentityStore
from tests.chain import chainkit as kit

PRODUCER, OWNER, RENTER, PLUG = kit.key("cc-producer"), kit.key("cc-owner"), kit.key("cc-renter"), kit.key("cc-plug")
DEVICE = "demo:plug"


class Clock:
    def __init__(self) -> None:
        self.ms = kit.GENESIS_TIME + 10

    def __call__(self) -> int:
        return self.ms


class Gatekeeper:
    """What chainctl needs of ``Identity``, over a real LightNode; the "device" is a list of calls."""

    def __init__(self, network, controller_key) -> None:
        self.node = LightNode(PLUG.public_key, network, MemoryFlash())
        self.controller_key = controller_key
        self.calls: list[tuple[str, str, str]] = []

    def device_for_key(self, public_key: bytes) -> str | None:
        return DEVICE if public_key == PLUG.public_key else None

    def holds_key(self, device_id: str) -> bool:
        return False

    def lightnode(self, device_id: str) -> LightNode:
        return self.node

    def record(self, device_id: str):
        return SimpleNamespace(public_key=PLUG.public_key.hex(), holds_key=False)

    def revoke(self, device_id: str, signed: Signed) -> None:
        self.node.revoke(signed)

    async def signed_call(self, signed: Signed, *, source: str, grant: Signed | None = None, now_ms: int | None = None):
        if grant is not None and all(g.signature != grant.signature for g in self.node.grants()):
            self.node.grant(grant)
        st = self.node.check(signed, now_ms)
        self.calls.append((f"{st.entity}.{st.command}", source, st.signer.hex()[:8]))


class World:
    def __init__(self, tmp_path) -> None:
        self.genesis = kit.make_genesis([PRODUCER], {OWNER: 1000 * RUFF, RENTER: 1000 * RUFF})
        self.node = ChainNode(tmp_path / "chain", self.genesis, PRODUCER)
        self.clock = Clock()
        self.chain = EmbeddedAccess(self.node, self.clock)
        self.gate = Gatekeeper(self.genesis.network, OWNER)
        IdentityStore(tmp_path).close()  # identity.db with its migrations, as the gate's plugin opens it
        self.path = tmp_path / "identity" / "identity.db"
        self.store = ChainctlStore(self.path)
        self.control = self.make()

    def make(self) -> ChainControl:
        return ChainControl(self.chain, self.gate, self.store, now=lambda: self.clock() / 1000,
                            entity_value=lambda device_id, key: len(self.gate.calls))

    def final(self) -> int:
        """Produce a block (with what is pending), then empty ones until it is final; its height."""
        target = self.node.head.height + 1
        while self.node.lib < target:
            self.clock.ms += self.node.constants.BLOCK_INTERVAL
            assert self.node.produce(self.clock.ms) is not None
        return target

    def command(self, signer, *, counter: int, grant=None, issued_at=None, name="turn_on") -> dict:
        return kit.command(signer, PLUG.public_key, self.genesis, counter=counter, grant=grant, name=name,
                           issued_at=self.clock.ms if issued_at is None else issued_at)

    def close(self) -> None:
        self.store.close()
        self.node.close()


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.close()


async def _bound(w: World) -> None:
    """The plug bound to OWNER, locally (the hub's light node) and on chain; the control starts."""
    bind = sign(Bind(PLUG.public_key, OWNER.public_key, w.clock.ms), PLUG, w.genesis.network)
    w.gate.node.bind(bind)
    await w.chain.submit(OWNER, "bind_device", {"statement": bind.to_body()})
    w.final()
    assert await w.control.step() is False  # first look: starts at the final block, nothing to run


async def test_a_command_through_the_chain_runs_once_and_its_outcome_lands_on_chain(world):
    w = world
    await _bound(w)
    tx = await w.chain.submit(OWNER, "control_command", w.command(OWNER, counter=1))
    w.final()
    await w.control.step()
    assert w.gate.calls == [("relay.turn_on", f"chain:{tx.hex()[:16]}", OWNER.public_key.hex()[:8])]
    taken = w.store.get(tx)
    assert taken.outcome == {"ok": True, "reason": "", "message": "", "entity": "relay", "value": 1}
    assert taken.report_tx is not None and taken.reported is None
    w.final()
    await w.control.step()
    assert w.store.get(tx).reported == "final"
    ok, reason, height = await w.chain.state("done", tx)
    assert ok is True and reason == "" and await w.chain.state("ctl", tx) is None

    # A restart that lost the cursor (a kill -9 between a command and the cursor's commit): the
    # block is read again, the command is not run again, nothing is reported twice.
    w.store.set_cursor(w.genesis.hash, 0, None)
    again = w.make()
    again.recover()
    await again.step()
    w.final()
    await again.step()
    assert len(w.gate.calls) == 1
    assert [t.tx_hash for t in w.store.recent()] == [tx]


async def test_a_command_final_before_the_first_look_at_the_chain_is_run(world, monkeypatch):
    """The hub wanted the chain at start but could not see it yet (its node unreachable, the light
    client syncing); a command sent meanwhile is final by the first look and must still run. The
    first cursor used to be the final block of that first look, which skipped it for good."""
    w = world
    bind = sign(Bind(PLUG.public_key, OWNER.public_key, w.clock.ms), PLUG, w.genesis.network)
    w.gate.node.bind(bind)
    await w.chain.submit(OWNER, "bind_device", {"statement": bind.to_body()})
    w.final()
    monkeypatch.setattr(w.chain, "available", lambda: False)
    assert await w.control.step() is False  # wanted, not reachable: the moment is recorded
    tx = await w.chain.submit(OWNER, "control_command", w.command(OWNER, counter=1))
    w.final()
    for _ in range(5):  # the chain goes on while the hub still cannot see it
        w.final()
    monkeypatch.undo()
    await w.control.step()
    assert w.gate.calls == [("relay.turn_on", f"chain:{tx.hex()[:16]}", OWNER.public_key.hex()[:8])]


async def test_an_interrupted_command_is_reported_failed_and_never_run(world):
    w = world
    await _bound(w)
    tx = await w.chain.submit(OWNER, "control_command", w.command(OWNER, counter=1))
    w.final()
    # The hub took it and died before the outcome was written (as a kill -9 mid-command leaves it).
    assert w.store.take(tx, DEVICE, w.node.head.height, 0.0)
    again = w.make()
    assert again.recover() == [tx]
    await again.step()
    assert w.gate.calls == []
    w.final()
    await again.step()
    assert w.store.get(tx).outcome["reason"] == "interrupted" and w.store.get(tx).reported == "final"
    assert (await w.chain.state("done", tx))[:2] == (False, "interrupted")


async def test_the_gate_judges_chain_commands_by_the_blocks_time_and_reports_refusals(world):
    w = world
    await _bound(w)
    # Issued a minute before the block that carries it: the chain has no window, the gate has.
    stale = await w.chain.submit(OWNER, "control_command", w.command(OWNER, counter=5, issued_at=w.clock.ms - 60_000))
    fine = await w.chain.submit(OWNER, "control_command", w.command(OWNER, counter=6))
    # The same envelope again: the chain takes it (another transaction), the gate's counter does not.
    replay = await w.chain.submit(OWNER, "control_command", w.command(OWNER, counter=6))
    w.final()
    # A hub that catches up long after: the window is still judged against the block's time.
    w.clock.ms += 3_600_000
    await w.control.step()
    assert [c[0] for c in w.gate.calls] == ["relay.turn_on"]
    assert w.store.get(stale).outcome["reason"] == "stale"
    assert w.store.get(fine).outcome["ok"] is True
    assert w.store.get(replay).outcome["reason"] == "replayed"
    w.final()
    await w.control.step()
    assert (await w.chain.state("done", stale))[:2] == (False, "stale")
    assert (await w.chain.state("done", fine))[:2] == (True, "")


async def test_unauthorised_commands_are_refused_on_chain_and_granted_ones_run(world):
    w = world
    await _bound(w)
    with pytest.raises(TxRefused) as refused:
        await w.chain.submit(RENTER, "control_command", w.command(RENTER, counter=1))
    assert refused.value.reason == "not_controller"
    grant = kit.grant(OWNER, PLUG.public_key, RENTER.public_key, w.genesis, commands=("relay.turn_on",))
    with pytest.raises(TxRefused) as not_granted:
        await w.chain.submit(RENTER, "control_command", w.command(RENTER, counter=1, grant=grant, name="turn_off"))
    assert not_granted.value.reason == "not_granted"
    tx = await w.chain.submit(RENTER, "control_command", w.command(RENTER, counter=1, grant=grant))
    w.final()
    await w.control.step()
    assert w.gate.calls == [("relay.turn_on", f"chain:{tx.hex()[:16]}", RENTER.public_key.hex()[:8])]
    w.final()
    await w.control.step()
    assert (await w.chain.state("done", tx))[:2] == (True, "")


async def test_a_sale_on_chain_moves_the_local_binding_and_the_old_owner_stops_reporting(world):
    w = world
    await _bound(w)
    seq = (await w.chain.state("dev", PLUG.public_key))[1]
    offer = kit.sale(OWNER, PLUG.public_key, 5 * RUFF, seq, w.clock.ms + 60_000, w.genesis, buyer=RENTER.public_key)
    await w.chain.submit(RENTER, "bind_device", offer)
    w.final()
    await w.control.step()
    assert w.gate.node.controller == RENTER.public_key  # the chain is authoritative for transfers
    old = Signed.from_body(w.command(OWNER, counter=9)["command"])
    with pytest.raises(Refused) as refused:  # the old owner's commands are refused by the hub's light node too
        w.gate.node.check(old, w.clock.ms)
    assert refused.value.reason.value == "not_authorised"
    tx = await w.chain.submit(RENTER, "control_command", w.command(RENTER, counter=1))
    w.final()
    await w.control.step()
    assert [c[2] for c in w.gate.calls] == [RENTER.public_key.hex()[:8]]
    # This hub's key (OWNER) no longer controls the plug: it cannot report, and says so.
    assert w.store.get(tx).reported.startswith("skipped: the hub's key is not the device's controller")


async def test_a_report_the_hubs_key_cannot_pay_for_yet_waits_and_goes_out_once_funded(world, caplog):
    w = world
    poor = kit.key("cc-poor")  # the hub's controller key, with nothing to pay fees with
    w.gate.controller_key = poor
    bind = sign(Bind(PLUG.public_key, poor.public_key, w.clock.ms), PLUG, w.genesis.network)
    w.gate.node.bind(bind)
    await w.chain.submit(RENTER, "bind_device", {"statement": bind.to_body()})
    w.final()
    await w.control.step()
    tx = await w.chain.submit(RENTER, "control_command", w.command(poor, counter=1))
    w.final()
    for _ in range(3):
        await w.control.step()
    waiting = w.store.get(tx)
    assert waiting.outcome["ok"] is True and waiting.reported is None and waiting.report_tx is None
    assert caplog.text.count("waits: insufficient_balance") == 1  # said once, not on every look
    await w.chain.submit(OWNER, "transfer", {"to": kit.addr(poor), "amount": RUFF})
    w.final()
    await w.control.step()
    w.final()
    await w.control.step()
    assert w.store.get(tx).reported == "final" and (await w.chain.state("done", tx))[:2] == (True, "")


# --- a property: whatever the crash points, every command runs at most once and is reported once ---

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


class Crash(BaseException):
    """The hub process dying mid-command (a kill -9): nothing after it runs, nothing is cleaned up."""


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(1, 3)), min_size=1, max_size=6))
def test_whatever_the_crashes_each_command_runs_at_most_once_and_is_reported_once(tmp_path_factory, plan):
    """``plan``: per command, (the hub dies while running it, the cursor's last commit is lost after
    its block, how many commands share its block)."""
    w = World(tmp_path_factory.mktemp("crash"))
    try:
        asyncio.run(_crashes(w, plan))
    finally:
        w.close()


async def _crashes(w: World, plan) -> None:
    await _bound(w)
    die_at: set[int] = set()
    runs: dict[int, int] = {}
    original = w.gate.signed_call

    async def signed_call(signed, **kw):
        counter = signed.statement.counter
        await original(signed, **kw)
        runs[counter] = runs.get(counter, 0) + 1
        if counter in die_at:
            die_at.discard(counter)  # it dies once; the next life must not run it again
            raise Crash()

    w.gate.signed_call = signed_call
    txs: dict[int, bytes] = {}
    counter = 0
    i = 0
    while i < len(plan):
        batch = plan[i:i + plan[i][2]]
        for dies, _, _ in batch:
            counter += 1
            txs[counter] = await w.chain.submit(OWNER, "control_command", w.command(OWNER, counter=counter))
            if dies:
                die_at.add(counter)
        w.final()
        before = w.store.cursor(w.genesis.hash)
        while True:  # one life of the hub after another until the block is handled
            try:
                await w.control.step()
                break
            except Crash:
                w.control = w.make()
                w.control.recover()
        if any(lost for _, lost, _ in batch):
            w.store.set_cursor(w.genesis.hash, before, None)  # the cursor's commit never made it
            w.control = w.make()
            w.control.recover()
        i += len(batch)
    for _ in range(4):  # let the reports land
        w.final()
        await w.control.step()
    assert all(n == 1 for n in runs.values()) and set(runs) == set(txs)  # each ran, once
    for c, tx in txs.items():
        taken = w.store.get(tx)
        assert taken.reported == "final", taken
        done = await w.chain.state("done", tx)
        if taken.outcome["reason"] == "interrupted":
            assert done[:2] == (False, "interrupted")
        else:
            assert taken.outcome["ok"] is True and done[:2] == (True, "")
    interrupted = {c for c, tx in txs.items() if w.store.get(tx).outcome["reason"] == "interrupted"}
    assert interrupted == {c for c, (dies, _, _) in enumerate(plan, 1) if dies}
