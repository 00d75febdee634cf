"""A node stops when told to, under load and with its peers down (issue 15).

The hang seen once in eight SIGTERMs was a dial loop that outlived its cancellation: on Python 3.11
``asyncio.wait_for`` loses a cancellation that arrives as the connection attempt fails, and the loop
caught the ``OSError`` and dialled on. The in-process test stops a network hundreds of times at
random moments of its dial loops (it failed about once in eighty before the fix); the process test
SIGTERMs fresh nodes under transaction load whose peers are down.
"""

from __future__ import annotations

import asyncio
import random

from hub.chain.devnet_cli import free_ports
from hub.chain.node.node import ChainNode
from hub.chain.p2p import limits
from hub.chain.p2p.network import Network
from tests.chain.chainkit import key, make_genesis


async def test_network_stop_ends_every_dial_loop(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "REDIAL_SECONDS", 0.0005)  # dial all the time: more stops meet a failing dial
    node = ChainNode(tmp_path / "n", make_genesis([key("p")]))
    down = [f"127.0.0.1:{p}" for p in free_ports(12)]  # nothing listens there: every dial is refused
    rng = random.Random(15)
    try:
        for attempt in range(300):
            net = Network(node, key("n"), peers=down)
            await net.start()
            await asyncio.sleep(rng.random() * 0.005)
            stopping = asyncio.ensure_future(net.stop())
            done, _ = await asyncio.wait([stopping], timeout=10)
            left = sorted(t.get_name() for t in net._tasks if not t.done())
            for task in net._tasks:  # do not leave a survivor running into the next attempt
                task.cancel()
            assert done and not left, f"stop {attempt} did not end: still running {left}"
    finally:
        node.close()
