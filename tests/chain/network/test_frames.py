"""The frame codec: whatever bytes arrive, the reader returns a message, None at a clean end, or
raises FrameError, and says whether the stream can still be read."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.chain.p2p import messages
from hub.chain.p2p.frames import FrameError, decode_payload, encode_frame, read_frame
from hub.crypto.encoding import encode


async def _read_all(data: bytes, max_bytes: int = 1024) -> list:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    out = []
    while True:
        msg = await read_frame(reader, max_bytes)
        if msg is None:
            return out
        out.append(msg)


async def test_round_trip_of_several_frames():
    msgs = [messages.ping(7), messages.get_blocks(1, 50), messages.announce_tx(b"\x01" * 40)]
    assert await _read_all(b"".join(encode_frame(m) for m in msgs)) == msgs


async def test_oversized_length_is_fatal_without_reading_the_body():
    with pytest.raises(FrameError) as err:
        await _read_all((2000).to_bytes(4, "big") + b"x" * 10, max_bytes=1024)
    assert err.value.fatal and "exceeds" in str(err.value)


def test_oversized_message_is_not_sent():
    with pytest.raises(ValueError):
        encode_frame(messages.announce_tx(b"x" * 2000), max_bytes=1024)


@pytest.mark.parametrize("data", [b"\x00\x00", (10).to_bytes(4, "big") + b"abc"])
async def test_truncated_frames_are_fatal(data):
    with pytest.raises(FrameError) as err:
        await _read_all(data)
    assert err.value.fatal


@pytest.mark.parametrize("payload", [
    b"\xff\xff\xff",  # not CBOR
    encode([1, 2, 3]),  # not a map
    encode({"nonce": 1}),  # no type
    encode({"type": 5}),  # type not text
    bytes.fromhex("a2647479706564706f6e67656e6f6e636501")[:-1] + b"\x18\x01",  # non-shortest integer
    encode({"type": "ping"}) + b"\x00",  # trailing bytes
])
async def test_bad_payloads_are_not_fatal(payload):
    with pytest.raises(FrameError) as err:
        await _read_all(len(payload).to_bytes(4, "big") + payload)
    assert not err.value.fatal


def test_a_message_needs_a_text_type():
    with pytest.raises(ValueError):
        encode_frame({"no": "type"})
    assert decode_payload(encode({"type": "x"})) == {"type": "x"}


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_frame_error(data):
    try:
        result = asyncio.run(_read_all(data))
    except FrameError:
        return
    assert all(isinstance(m, dict) and isinstance(m["type"], str) for m in result)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_random_payloads_in_a_valid_frame_only_raise_frame_error(payload):
    try:
        asyncio.run(_read_all(len(payload).to_bytes(4, "big") + payload))
    except FrameError as exc:
        assert not exc.fatal


def test_message_parsers_refuse_wrong_shapes():
    with pytest.raises(messages.BadMessage):
        messages.parse_hello({"type": "hello", "chain_id": "x"})
    with pytest.raises(messages.BadMessage):
        messages.parse_hello({**messages.hello("c", b"g" * 32, 1, b"h" * 32, b"k" * 32, b"n" * 32), "height": -1})
    with pytest.raises(messages.BadMessage):
        messages.parse_blocks({"type": "blocks", "blocks": ["not bytes"], "height": 3})
    for txs in ([b"tx", "not bytes"], [7], [b"tx", None], "not a list"):
        with pytest.raises(messages.BadMessage):
            messages.parse_announce_txs({"type": "announce_txs", "txs": txs})
    assert messages.parse_announce_txs(messages.announce_txs([])) == ([], [])
    for also in ([b"k" * 31], [b"k" * 32, "key"], b"k" * 32, [b"k" * 32] * 51):
        with pytest.raises(messages.BadMessage):
            messages.parse_announce_txs({"type": "announce_txs", "txs": [b"tx"], "also": also})
    assert messages.parse_announce_txs(messages.announce_txs([b"tx"], [b"k" * 32])) == ([b"tx"], [b"k" * 32])
    with pytest.raises(messages.BadMessage):
        messages.parse_announce_txs({"type": "announce_txs", "txs": [b"tx"], "also": [], "more": 1})
    with pytest.raises(messages.BadMessage):
        messages.parse_range({"type": "get_blocks", "from": True, "count": 1}, 10)
    assert messages.parse_range(messages.get_blocks(5, 10**6), 200) == (5, 200)
    h = messages.parse_hello(messages.hello("c", b"g" * 32, 1, b"h" * 32, b"k" * 32, b"n" * 32))
    assert (h.chain_id, h.height) == ("c", 1)


def test_gossip_batches_are_cut_by_count_and_by_bytes():
    from hub.chain.p2p import limits
    from hub.chain.p2p.txgossip import _chunks

    small = [bytes([i % 256]) * 200 for i in range(1200)]
    chunks = _chunks(small)
    assert [len(c) for c in chunks] == [512, 512, 176] and sum(chunks, []) == small
    big = [b"x" * 16_384] * 200  # the largest transactions: 3.2 MB in all
    chunks = _chunks(big)
    assert all(sum(map(len, c)) <= limits.TX_BATCH_BYTES for c in chunks) and sum(chunks, []) == big
    assert all(len(encode_frame(messages.announce_txs(c))) <= limits.MAX_FRAME_BYTES for c in chunks)
    assert _chunks([]) == []


def test_the_seen_set_says_which_are_new_and_forgets_the_oldest():
    from hub.chain.p2p.seen import SeenSet

    seen = SeenSet(8)  # remembers each hash until at least 4 others came after it
    assert seen.add_many([b"a", b"b", b"a", b"c"]) == [True, True, False, True]
    assert seen.add_many([b"d", b"e", b"a"]) == [True, True, False]  # "a" seen again: renewed
    seen.update([b"f", b"g", b"h"])
    assert b"a" in seen and b"f" in seen and b"e" in seen
    assert b"b" not in seen and b"c" not in seen  # four and more came after them
    assert len(seen) <= 8
    assert seen.add(b"b") is True and seen.add(b"b") is False
    assert seen.lacking([b"a", b"b", b"z", b"z"]) == {b"z"}
    seen.discard(b"b")
    assert b"b" not in seen and seen.lacking([b"b"]) == {b"b"}


def test_the_seen_set_stays_bounded_whatever_comes():
    from hub.chain.p2p.seen import SeenSet

    seen = SeenSet(1000)
    for start in range(0, 20_000, 300):
        seen.add_many([start + i for i in range(300)])
        seen.update([-start - i for i in range(300)])
        assert len(seen) <= 1000 + 300  # the limit, plus at most the batch being marked
    # the last additions: 20,099 down to 19,900 have at most 499 (their batch and the 300 marked) after them
    assert all(h in seen for h in range(19_900, 20_100))
