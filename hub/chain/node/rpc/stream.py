"""``GET /stream``: new canonical blocks and finality as server-sent events.

The node has no event hooks (and this module does not add any to it), so each stream polls: every
``interval`` seconds it compares the node's head and last irreversible height, two attribute reads
without the lock. Only when they moved does it take the lock (in a worker thread) to read the new
blocks. One generator per client and no background task: when the client goes away, Starlette
cancels the response and the generator with it, and nothing is left running.

uvicorn's graceful shutdown waits for every open response to finish, which an endless stream never
does: whoever stops the server calls ``app.state.stop_streams()`` first (or sets uvicorn's
``timeout_graceful_shutdown``), and every stream ends within one poll.

Events::

    event: block   data: the header JSON of /blocks/{id} plus "transactions" and "reorg"
    event: final   data: {"height": H, "hash": "..."}   (the newest last irreversible block)

After a reorganisation the first block event of the new branch carries ``"reorg": true`` and
starts at the fork point; blocks are sent oldest first, at most ``MAX_BATCH`` per poll (a client that
falls further behind gets the newest ones and can fill the gap from ``/headers``).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

from hub.chain.node.rpc import views

MAX_BATCH = 256
KEEPALIVE = 15.0  # seconds between comments that keep proxies from closing an idle stream
_REMEMBER = 512  # recent (height -> hash) sent, to find where a reorganisation forked


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _changes(node, sent: OrderedDict[int, bytes], last_height: int) -> list[dict]:
    """Canonical blocks the client has not seen, under the node lock."""
    with node.lock:
        start = last_height + 1
        for height, block_hash in sent.items():  # oldest first: the lowest height that changed
            if height > node.lib and node.store.canonical_hash(height) != block_hash:
                start = min(start, height)
                break
        head = node.head.height
        start = max(start, head - MAX_BATCH + 1, 1)
        out = []
        for height in range(start, head + 1):
            blk = node.store.canonical_block(height)
            if blk is None:
                break
            data = views.header_json(node, blk.header)
            data["transactions"] = len(blk.txs)
            data["reorg"] = height <= last_height
            out.append(data)
        return out


def _lib_hash(node, lib: int) -> str | None:
    with node.lock:
        h = node.store.canonical_hash(lib)
    return h.hex() if h is not None else None


async def events(node, is_disconnected: Callable, interval: float,
                 stopping: threading.Event | None = None) -> AsyncIterator[str]:
    head, lib = node.head, node.lib
    last_hash, last_height, last_lib = head.hash, head.height, lib
    sent: OrderedDict[int, bytes] = OrderedDict([(head.height, head.hash)])
    yield ": ruff chain stream\n\n"
    quiet = 0.0
    while True:
        await asyncio.sleep(interval)
        quiet += interval
        if (stopping is not None and stopping.is_set()) or await is_disconnected():
            return
        head, lib = node.head, node.lib
        if head.hash != last_hash:
            new = await asyncio.to_thread(_changes, node, sent, last_height)
            if not new:  # nothing readable yet: do not ask again until the head moves once more
                last_hash = head.hash
            for data in new:
                height = data["height"]
                for h in [h for h in sent if h >= height]:
                    del sent[h]
                sent[height] = bytes.fromhex(data["hash"])
                while len(sent) > _REMEMBER:
                    sent.popitem(last=False)
                last_hash, last_height = sent[height], height
                yield sse("block", data)
            quiet = 0.0
        if lib != last_lib:
            last_lib = lib
            yield sse("final", {"height": lib, "hash": await asyncio.to_thread(_lib_hash, node, lib)})
            quiet = 0.0
        if quiet >= KEEPALIVE:
            quiet = 0.0
            yield ": keepalive\n\n"
