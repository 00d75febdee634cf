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
