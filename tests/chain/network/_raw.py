"""A hand-driven peer for tests that must send what an honest node never would.

It performs the real handshake (hello, then ``auth`` over the node's nonce) so the node registers
it, and then writes whatever frames the test wants.
"""

from __future__ import annotations

import asyncio
import os

from hub.chain.p2p import messages
from hub.chain.p2p.frames import encode_frame, read_frame
from hub.crypto.keys import PrivateKey


class Refused(ConnectionError):
    """The node closed the connection during the handshake (banned, another chain, a bad proof)."""


async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, genesis, identity: PrivateKey, *,
                    height: int = 0, head: bytes | None = None, producer: PrivateKey | None = None) -> messages.Hello:
    """Say hello as ``identity`` (claiming ``height``), prove the key (and ``producer``'s, if
    given), and return the node's hello."""
    writer.write(encode_frame(messages.hello(genesis.chain_id, genesis.hash, height, head or genesis.hash,
                                             identity.public_key, os.urandom(messages.NONCE_BYTES))))
    await writer.drain()
    theirs = messages.parse_hello(await asyncio.wait_for(read_frame(reader), 5))
    writer.write(encode_frame(messages.auth(identity, genesis.network, theirs.nonce, producer)))
    await writer.drain()
    try:
        auth = await asyncio.wait_for(read_frame(reader), 5)
    except (ConnectionError, OSError) as exc:
        writer.close()
        raise Refused(str(exc)) from None
    if auth is None:
        writer.close()
        raise Refused("the node closed the connection after its hello")
    assert auth["type"] == "auth", f"expected the node's auth, got {auth!r}"
    return theirs


async def connect(host: str, port: int, genesis, identity: PrivateKey, *, source: str | None = None, **kw):
    """A handshaken connection; ``source``: the local IP to connect from (any of 127.0.0.0/8 on
    loopback), so one test can be several addresses."""
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 24,
                                                   local_addr=(source, 0) if source else None)
    await handshake(reader, writer, genesis, identity, **kw)
    return reader, writer
