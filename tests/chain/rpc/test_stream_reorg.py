"""After a reorganisation the stream resends from the fork point, flagged ``reorg``."""

from __future__ import annotations

import asyncio
import copy
import json

from hub.chain.node.node import ChainNode
from hub.chain.node.rpc import stream
from hub.chain.protocol.constants import RUFF

from tests.chain.chainkit import Sim, key, make_genesis

PRODUCERS = [key(f"producer{i}") for i in range(4)]


async def _never() -> bool:
    return False


async def collect(gen, want: int) -> list[tuple[str, dict]]:
    out = []
    async for item in gen:
        if item.startswith("event: "):
            kind, data = item.split("\n")[:2]
            out.append((kind[7:], json.loads(data[6:])))
            if len(out) == want:
                return out
    return out


def test_reorganisation_is_streamed_from_the_fork_point(tmp_path):
    g = make_genesis(PRODUCERS, {PRODUCERS[0]: RUFF})
    main = Sim(g, PRODUCERS)
    node = ChainNode(tmp_path / "f", g, None)
    try:
        node.receive_block(main.next_block().block)
        fork = copy.deepcopy(main)
        main_blocks = [main.next_block().block for _ in range(2)]
        fork_blocks = [fork.next_block(skip=1).block] + [fork.next_block().block for _ in range(2)]

        async def run():
            gen = stream.events(node, _never, 0.01)
            await gen.__anext__()  # the opening comment
            node.receive_block(main_blocks[0])
            node.receive_block(main_blocks[1])
            first = await asyncio.wait_for(collect(gen, 2), 5)
            for blk in fork_blocks:
                node.receive_block(blk)
            assert node.head.hash == fork_blocks[-1].hash
            second = await asyncio.wait_for(collect(gen, 3), 5)
            await gen.aclose()
            return first, second

        first, second = asyncio.run(run())
        assert [(k, d["height"], d["reorg"]) for k, d in first] == [("block", 2, False), ("block", 3, False)]
        blocks = [d for k, d in second if k == "block"]
        assert [(d["height"], d["hash"], d["reorg"]) for d in blocks] == [
            (2, fork_blocks[0].hash.hex(), True), (3, fork_blocks[1].hash.hex(), True), (4, fork_blocks[2].hash.hex(), False)]
    finally:
        node.close()
