"""Log lines of one kind are capped per window, so a flood of clients cannot fill the disk; the
first line after a window says how many were dropped."""

from __future__ import annotations

import logging

from hub.net.lograte import RateLimitFilter


def test_a_flood_of_one_message_is_capped_and_the_drop_is_reported(caplog):
    now = [0.0]
    logger = logging.getLogger("test.lograte")
    handler = caplog.handler
    f = RateLimitFilter(burst=3, interval=10, clock=lambda: now[0])
    handler.addFilter(f)
    try:
        with caplog.at_level(logging.WARNING, logger="test.lograte"):
            for i in range(1000):
                logger.warning("connection %d refused", i)
            logger.warning("another kind")
            assert [r.getMessage() for r in caplog.records] == [
                "connection 0 refused", "connection 1 refused", "connection 2 refused", "another kind"]
            now[0] = 10.0
            logger.warning("connection %d refused", 1000)
            assert caplog.records[-1].getMessage() == "connection 1000 refused [997 more like this dropped in the last 10 s]"
    finally:
        handler.removeFilter(f)


def test_messages_that_differ_in_their_text_are_capped_per_logger(caplog):
    logger = logging.getLogger("test.lograte.texts")
    f = RateLimitFilter(burst=2, interval=10, clock=lambda: 0.0)
    caplog.handler.addFilter(f)
    try:
        with caplog.at_level(logging.ERROR, logger="test.lograte.texts"):
            for i in range(500):
                logger.error(f"socket.accept() out of system resource <socket fd={i}>")
        assert len(caplog.records) == 20  # ten times the per-message burst
    finally:
        caplog.handler.removeFilter(f)
