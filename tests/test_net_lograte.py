"""Log lines of one kind are capped per window, so a flood of clients cannot fill the disk; the
first line after a window says how many were dropped.

Each test logs to a logger and handler of its own (not pytest's caplog, which other tests' logging
set-up shares), so what it counts is what the filter let through and nothing else."""

from __future__ import annotations

import contextlib
import logging

from hub.net.lograte import RateLimitFilter


@contextlib.contextmanager
def filtered_logger(name: str, f: RateLimitFilter):
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    handler.addFilter(f)
    logger.addHandler(handler)
    try:
        yield logger, seen
    finally:
        logger.removeHandler(handler)


def test_a_flood_of_one_message_is_capped_and_the_drop_is_reported():
    now = [0.0]
    f = RateLimitFilter(burst=3, interval=10, clock=lambda: now[0])
    with filtered_logger("test.lograte", f) as (logger, seen):
        for i in range(1000):
            logger.warning("connection %d refused", i)
        logger.warning("another kind")
        assert seen == ["connection 0 refused", "connection 1 refused", "connection 2 refused", "another kind"]
        now[0] = 10.0
        logger.warning("connection %d refused", 1000)
        assert seen[-1] == "connection 1000 refused [997 more like this dropped in the last 10 s]"


def test_messages_that_differ_in_their_text_are_capped_per_logger():
    f = RateLimitFilter(burst=2, interval=10, clock=lambda: 0.0)
    with filtered_logger("test.lograte.texts", f) as (logger, seen):
        for i in range(500):
            logger.error(f"socket.accept() out of system resource <socket fd={i}>")
    assert len(seen) == 20  # ten times the per-message burst
