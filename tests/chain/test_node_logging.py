"""What a node says when its producer cannot produce or its clock is off: once, in words (issue 15)."""

from __future__ import annotations

import asyncio
import logging

from hub.chain.node.clockwatch import ClockWatch
from hub.chain.node.node import ChainNode
from hub.chain.node.producer import run_producer
from hub.chain.protocol import dpos
from tests.chain.chainkit import GENESIS_TIME, addr, key, make_genesis

PRODUCER = key("log-producer")


async def _run_slots(node: ChainNode, slots: int) -> None:
    """The embedded producer loop over ``slots`` slots of a simulated clock (wakes as it asks)."""
    c = node.constants
    now = [dpos.slot_time(node.head.slot + 1, GENESIS_TIME, c) + 1]
    end = now[0] + slots * c.BLOCK_INTERVAL

    async def sleep(seconds: float) -> None:
        now[0] += max(1, int(seconds * 1000))
        if now[0] > end:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    try:
        await run_producer(node, clock=lambda: now[0], sleep=sleep)
    except asyncio.CancelledError:
        pass


async def test_a_disqualified_producer_says_so_once_without_a_traceback(tmp_path, caplog):
    node = ChainNode(tmp_path / "n", make_genesis([PRODUCER]), PRODUCER)
    node.state.begin()
    node.state.set("dq", addr(PRODUCER), 7)
    node.state.commit()
    with caplog.at_level(logging.INFO, logger="hub.chain"):
        await _run_slots(node, 12)
    node.close()
    said = [r for r in caplog.records if "disqualified" in r.getMessage()]
    assert len(said) == 1 and "at height 7" in said[0].getMessage(), caplog.text
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text
    assert node.head.height == 0  # and it signed nothing peers would refuse


async def test_a_producer_in_good_standing_logs_nothing_about_it(tmp_path, caplog):
    node = ChainNode(tmp_path / "n", make_genesis([PRODUCER]), PRODUCER)
    with caplog.at_level(logging.INFO, logger="hub.chain"):
        await _run_slots(node, 4)
    node.close()
    assert node.head.height >= 3
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_a_clock_behind_or_ahead_of_the_peers_is_said_once_and_in_status(caplog):
    watch = ClockWatch(1000)  # 1 s slots: honest blocks arrive 200 ms (+ network) into their slot
    with caplog.at_level(logging.WARNING, logger="hub.chain.node"):
        for slot in range(1, 6):  # blocks arriving as they should
            watch.observe(slot * 1000, slot * 1000 + 230)
        assert watch.status()["state"] == "ok" and not caplog.records
        for slot in range(6, 30):  # this clock now runs 3 s behind: every block is "from the future"
            watch.observe(slot * 1000, slot * 1000 + 200 - 3000)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "your clock is 3.0 s behind of peers" in warnings[0], warnings
    assert "banned" in warnings[0]
    assert watch.status() == {"skew_ms": -3000, "samples": 8, "state": "behind of peers"}
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hub.chain.node"):
        for slot in range(30, 50):  # fixed, then 2 s ahead
            watch.observe(slot * 1000, slot * 1000 + 210)
        for slot in range(50, 70):
            watch.observe(slot * 1000, slot * 1000 + 2210)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and "agrees" in said[0] and "2.0 s ahead of peers" in said[1], said


async def test_a_banned_producer_says_until_when_once(tmp_path, caplog):
    node = ChainNode(tmp_path / "n", make_genesis([PRODUCER]), PRODUCER)
    node.state.begin()
    node.state.set("ban", addr(PRODUCER), GENESIS_TIME + 10**12)
    node.state.set("miss", addr(PRODUCER), 3)
    node.state.commit()
    with caplog.at_level(logging.INFO, logger="hub.chain"):
        await _run_slots(node, 6)
    node.close()
    said = [r.getMessage() for r in caplog.records if "banned" in r.getMessage()]
    assert len(said) == 1 and "3 missed" in said[0] and "clock" in said[0], caplog.text
