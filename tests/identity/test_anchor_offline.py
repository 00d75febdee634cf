"""Anchoring across a long offline period, in one process: the hub's clock simulated, the chain a
double that is unreachable for an hour, then reachable. Every command logged meanwhile is anchored
once, and every proof verifies; a crash between a submission and its record anchors nothing twice."""

from __future__ import annotations

from pathlib import Path

from hub.crypto.address import address_of
from hub.crypto.keys import PrivateKey
from hub.identity.anchor import AnchorConfig, Anchorer
from hub.store import Store
from hub.testing import FakeScheduler
from tests.identity.anchorchain import AnchorChain

KEY = PrivateKey(bytes(range(32)))


def _log(store: Store, clock: FakeScheduler, n: int) -> None:
    store.log_commands([{"ts": clock.now(), "entity_id": "switch.plug", "command": "turn_on" if i % 2 else "turn_off",
                         "args": {}, "source": f"signed:{i:016x}", "ok": i % 5 != 0,
                         "error": None if i % 5 else "replayed: counter already used"} for i in range(n)])


async def _until_settled(anchorer: Anchorer, chain: AnchorChain, steps: int = 200) -> None:
    for _ in range(steps):
        await anchorer.step()
        chain.produce()
        counts = anchorer.anchors.counts()
        if counts["final"] == counts["logged"] and not chain.mempool:
            return
    raise AssertionError(f"not settled: {anchorer.anchors.counts()}")


async def test_an_hour_offline_then_every_command_anchored_once_and_proven(tmp_path: Path) -> None:
    clock, chain = FakeScheduler(), AnchorChain()
    config = AnchorConfig(interval=60, batch_size=100)
    store = Store(tmp_path)
    anchorer = Anchorer(store, chain, KEY, clock.now, config)
    for minute in range(60):
        _log(store, clock, 7)
        assert await anchorer.step() == "offline"
        await clock.advance(60)
        if minute == 30:  # kill -9 of the hub halfway: only what was committed counts, and it all does
            store.close()
            store = Store(tmp_path)
            anchorer = Anchorer(store, chain, KEY, clock.now, config)
    assert anchorer.anchors.counts()["logged"] == 420 and chain.anchored() == 0

    chain.up = True
    await _until_settled(anchorer, chain)
    keeper = address_of(KEY.public_key)
    assert chain.clog[keeper] == (420, 5)  # 100 + 100 + 100 + 100 + 20: nothing twice, nothing missing
    assert chain.anchored() == 420
    for log_id in range(1, 421):
        proof = await anchorer.proof(log_id)
        assert proof["verified"], proof
        assert len(proof["proof"]) <= 7 and proof["status"] == "final"
    store.close()


async def test_a_crash_between_submission_and_its_record_anchors_nothing_twice(tmp_path: Path) -> None:
    clock, chain = FakeScheduler(), AnchorChain()
    chain.up = True
    config = AnchorConfig(interval=1, batch_size=50)
    store = Store(tmp_path)
    _log(store, clock, 120)
    await clock.advance(5)
    anchorer = Anchorer(store, chain, KEY, clock.now, config)
    assert await anchorer.step() == "sealed"
    assert len(chain.mempool) == 1
    # kill -9 after the node took the transaction, before the hub wrote down its hash
    with store._write() as conn:
        conn.execute("UPDATE log_batches SET tx = NULL, submitted_at = NULL")
    store.close()
    store = Store(tmp_path)
    anchorer = Anchorer(store, chain, KEY, clock.now, config)
    await anchorer.step()  # re-submits: refused while the first is pending
    chain.produce()  # the lost submission lands
    await _until_settled(anchorer, chain)
    assert chain.clog[address_of(KEY.public_key)] == (120, 3)
    assert chain.anchored() == 120
    for log_id in (1, 50, 51, 120):
        assert (await anchorer.proof(log_id))["verified"]
    store.close()


async def test_a_changed_row_fails_its_proof(tmp_path: Path) -> None:
    clock, chain = FakeScheduler(), AnchorChain()
    chain.up = True
    with Store(tmp_path) as store:
        _log(store, clock, 10)
        anchorer = Anchorer(store, chain, KEY, clock.now, AnchorConfig(interval=1, batch_size=50))
        await clock.advance(5)
        await _until_settled(anchorer, chain)
        with store._write() as conn:  # someone edits the log after the fact: a refused command made "ok"
            conn.execute("UPDATE command_log SET ok = 1, error = NULL WHERE id = 1")
        proof = await anchorer.proof(1)
        assert not proof["verified"] and proof["checks"]["leaf"] is False and proof["checks"]["merkle"] is False
        assert proof["checks"]["anchor"] and (await anchorer.proof(2))["verified"]


async def test_a_new_hub_key_anchors_the_rest_and_old_proofs_still_verify(tmp_path: Path) -> None:
    clock, chain = FakeScheduler(), AnchorChain()
    chain.up = True
    config = AnchorConfig(interval=1, batch_size=50)
    other = PrivateKey(b"\x09" * 32)
    with Store(tmp_path) as store:
        _log(store, clock, 30)
        await clock.advance(5)
        await _until_settled(Anchorer(store, chain, KEY, clock.now, config), chain)
        _log(store, clock, 30)
        await clock.advance(5)
        anchorer = Anchorer(store, chain, other, clock.now, config)  # identity.key changed
        await _until_settled(anchorer, chain)
        assert chain.clog[address_of(KEY.public_key)] == (30, 1)
        assert chain.clog[address_of(other.public_key)] == (30, 1)  # its own log starts at 0
        assert (await anchorer.proof(1))["verified"] and (await anchorer.proof(60))["verified"]
        chain.up = False  # the proof is still shown, its anchor not checked: not "verified", not an error
        offline = await anchorer.proof(1)
        assert offline["checks"]["merkle"] and offline["checks"]["anchor"] is None and not offline["verified"]
        assert "cannot be reached" in offline["chain_error"]
