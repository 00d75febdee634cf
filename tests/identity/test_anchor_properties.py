"""Property: whatever the order of logging, anchoring passes, blocks, outages, purges and crashes
(a kill -9 just before any of the anchorer's writes, after the chain may already have taken a
transaction), once the chain is reachable every command is anchored exactly once: the keeper's log
on chain has no gap and no overlap and counts every command logged."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from hub.crypto.address import address_of
from hub.crypto.keys import PrivateKey
from hub.identity.anchor import AnchorConfig, Anchorer
from hub.store import Store
from hub.testing import FakeScheduler
from tests.identity.anchorchain import AnchorChain

KEY = PrivateKey(b"\x71" * 32)
CONFIG = AnchorConfig(interval=30, batch_size=16)


class Crash(Exception):
    """A kill -9 just before one of the anchorer's writes reached the database."""


operation = st.one_of(
    st.tuples(st.just("log"), st.integers(1, 40)),
    st.tuples(st.just("step"), st.integers(0, 3)),  # k > 0: a crash just before its k-th write
    st.just(("produce",)),
    st.just(("up",)),
    st.just(("down",)),
    st.tuples(st.just("wait"), st.integers(1, 120)),
    st.tuples(st.just("purge"), st.integers(0, 30)),
)


async def _scenario(data: Path, ops: list) -> None:
    clock, chain = FakeScheduler(), AnchorChain()
    store = Store(data)
    logged = 0

    def fresh() -> Anchorer:
        return Anchorer(store, chain, KEY, clock.now, CONFIG)

    anchorer = fresh()
    for op in ops:
        if op[0] == "log":
            store.log_commands([{"ts": clock.now(), "entity_id": "switch.plug", "command": "turn_on", "args": {},
                                 "source": "rule:r", "ok": True} for _ in range(op[1])])
            logged += op[1]
        elif op[0] == "step":
            if op[1]:
                real, calls = anchorer.anchors.update, [0]

                def crash(*args, **kwargs):
                    calls[0] += 1
                    if calls[0] == op[1]:
                        raise Crash
                    return real(*args, **kwargs)
                anchorer.anchors.update = crash
                try:
                    await anchorer.step()
                except Crash:
                    store.close()  # the process is gone; a new one opens the same files
                    store = Store(data)
                    anchorer = fresh()
                else:
                    anchorer.anchors.update = real
            else:
                await anchorer.step()
        elif op[0] == "produce":
            if chain.up:
                chain.produce()
        elif op[0] in ("up", "down"):
            chain.up = op[0] == "up"
        elif op[0] == "wait":
            await clock.advance(op[1])
        elif op[0] == "purge":
            store.purge_command_log(older_than=0.0, keep=op[1])
    chain.up = True
    await clock.advance(CONFIG.interval)
    for _ in range(200):
        await anchorer.step()
        chain.produce()
        counts = anchorer.anchors.counts()
        if counts["final"] == counts["logged"] == logged and not chain.mempool:
            break
    keeper = address_of(KEY.public_key)
    assert anchorer.anchors.counts() == {"logged": logged, "batched": logged, "anchored": logged, "final": logged}
    if logged:
        following, batches = chain.clog[keeper]
        places = sorted((int.from_bytes(k[20:], "big"), v[1]) for k, v in chain.anchor.items())
        assert following == logged and len(places) == batches
        expected = 0
        for first, count in places:  # contiguous: no gap, no overlap, nothing twice
            assert first == expected
            expected += count
        survivors = [row["id"] for row in store.command_log(limit=5)]
        for log_id in survivors:
            assert (await anchorer.proof(log_id))["verified"]
    store.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(operation, min_size=1, max_size=40))
# the node took the transaction, the hub died before writing its hash down; the batch lands meanwhile
@example([("up",), ("log", 5), ("wait", 40), ("step", 2), ("produce",), ("step", 0)])
# the same, the batch still pending when the new process looks
@example([("up",), ("log", 20), ("wait", 40), ("step", 2), ("step", 0), ("produce",), ("log", 3), ("step", 0)])
def test_every_command_is_anchored_exactly_once_whatever_happens(ops: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_scenario(Path(tmp), ops))
