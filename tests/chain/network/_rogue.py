"""A malicious node for the fault tests, run as its own process: ``python -m tests.chain.network._rogue``.

It holds a real producer key of the devnet and follows the chain like a node (so its blocks are
well formed), then attacks the honest nodes one way at a time, each from a fresh connection with a
fresh node key: garbage frames, an oversized frame, blocks with broken signatures, blocks signed
for slots that are not its own, and two different blocks for its own slot, one to each of two
nodes. It prints one JSON line per attack saying whether the target dropped it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from hub.chain.node.files import read_key
from hub.chain.node.node import ChainNode
from hub.chain.p2p import limits, messages
from hub.chain.p2p.frames import encode_frame, read_frame
from hub.chain.p2p.network import parse_address
from hub.chain.protocol import dpos
from hub.chain.protocol.block import Block, Header, tx_root
from hub.chain.protocol.errors import BlockRejected
from hub.chain.protocol.genesis import load_genesis
from hub.chain.protocol.transition import build_block
from hub.chain.protocol.tx import Transaction
from hub.crypto.address import address_of
from hub.crypto.keys import PrivateKey
from tests.chain.network._raw import connect


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Rogue:
    def __init__(self, genesis_path: Path, key_path: Path, data: Path, targets: list[tuple[str, int]]) -> None:
        self.genesis = load_genesis(genesis_path)
        self.key = read_key(key_path)
        self.node = ChainNode(data, self.genesis, self.key)
        self.targets = targets
        self.max_frame = limits.frame_limit(self.node.constants.MAX_BLOCK_BYTES)
        self.nonce = 0

    async def session(self, target: int):
        host, port = self.targets[target]
        return await connect(host, port, self.genesis, PrivateKey.generate())

    async def sync(self, target: int = 0) -> None:
        """Follow the target's canonical chain up to its head (a few blocks back, to heal forks)."""
        reader, writer = await self.session(target)
        try:
            start = max(1, self.node.head.height - 10)
            while True:
                writer.write(encode_frame(messages.get_blocks(start, limits.SYNC_BATCH)))
                await writer.drain()
                while True:
                    msg = await asyncio.wait_for(read_frame(reader, self.max_frame), 5)
                    if msg is None:
                        raise ConnectionError("the target closed the sync connection")
                    if msg["type"] == "blocks":
                        break
                for raw in msg["blocks"]:
                    try:
                        self.node.receive_block(Block.decode(raw))
                    except BlockRejected:
                        pass
                if not msg["blocks"] or start + len(msg["blocks"]) > msg["height"]:
                    return
                start += len(msg["blocks"])
        finally:
            writer.close()

    async def dropped(self, reader) -> bool:
        """True once the target closes the connection (within a few seconds)."""
        try:
            async with asyncio.timeout(8):
                while await read_frame(reader, self.max_frame) is not None:
                    pass
            return True
        except TimeoutError:
            return False
        except Exception:  # noqa: BLE001 - reset or a truncated frame: closed as well
            return True

    async def attack(self, name: str, target: int, frames: list[bytes]) -> bool:
        reader, writer = await self.session(target)
        try:
            for frame in frames:
                writer.write(frame)
            await writer.drain()
        except (ConnectionError, OSError):
            ok = True  # closed on us while we were still sending
        else:
            ok = await self.dropped(reader)
        writer.close()
        print(json.dumps({"attack": name, "target": target, "dropped": ok}), flush=True)
        return ok

    # --- blocks a rogue producer can make --------------------------------------------------------
    def _transfer(self) -> Transaction:
        """A transfer from the rogue's account, so two blocks for one slot can differ."""
        sender = address_of(self.key.public_key)
        self.nonce = max(self.nonce, self.node.state.nonce(sender)) + 1
        return Transaction.create(self.key, self.genesis.network, "transfer", {"to": b"\x01" * 20, "amount": 1},
                                  nonce=self.nonce, fee=10**6, valid_until=now_ms() + 600_000)

    def _build(self, slot: int, txs: list) -> Block:
        """Our block for ``slot`` on our head, without keeping it."""
        state = self.node.state
        built = build_block(state, self.key, slot, txs)
        state.revert(built.applied.undo, built.applied.parent)
        return built.applied.block

    def _header(self, slot: int) -> Header:
        """An unsigned header on our head for ``slot``, built by hand: ``build_block`` will not sign
        for a slot that is not ours or for a disqualified producer."""
        c, head = self.node.constants, self.node.head
        return Header(chain_id=self.genesis.chain_id, height=head.height + 1, round=dpos.round_of(head.height + 1, c),
                      slot=slot, timestamp=dpos.slot_time(slot, self.genesis.genesis_time, c), prev_hash=head.hash,
                      tx_root=tx_root(()), state_hash=bytes(32), producer=self.key.public_key)

    async def our_next_slot(self, at_least: int = 1) -> int:
        """Wait for the start of our next slot (at least ``at_least`` slots from now) and return it."""
        c = self.node.constants
        order = dpos.schedule_after(self.node.state)
        slot = dpos.slot_at(now_ms(), self.genesis.genesis_time, c) + at_least
        while dpos.slot_owner(order, slot) != self.key.public_key:
            slot += 1
        await asyncio.sleep(max(0, dpos.slot_time(slot, self.genesis.genesis_time, c) - now_ms()) / 1000)
        return slot

    def invalid_signature_blocks(self, slot: int, count: int) -> list[bytes]:
        """Our slot, our key named, but signatures that are not ours."""
        base = self._header(slot)
        return [Block(dataclasses.replace(base, sig=os.urandom(64))).encode() for _ in range(count)]

    def out_of_slot_blocks(self, count: int) -> list[bytes]:
        """Correctly signed by our key, on the head, for a slot another producer owns."""
        c, head = self.node.constants, self.node.head
        order = dpos.schedule_after(self.node.state)
        slot = max(head.slot + 1, dpos.slot_at(now_ms(), self.genesis.genesis_time, c))
        while dpos.slot_owner(order, slot) == self.key.public_key:
            slot += 1
        base = self._header(slot)
        return [Block(dataclasses.replace(base, state_hash=i.to_bytes(32, "big")).signed(self.key, self.genesis.hash)).encode()
                for i in range(count)]

    async def equivocate(self, first: int, second: int) -> dict:
        """Two different blocks for our next slot, on the chain's head: one to each target."""
        slot = await self.our_next_slot(at_least=2)
        await self.sync(first)
        a = self._build(slot, [])
        b = self._build(slot, [self._transfer()])
        sessions = [await self.session(first), await self.session(second)]
        for (reader, writer), block in zip(sessions, (a, b)):
            writer.write(encode_frame(messages.announce_block(block.encode()), self.max_frame))
            await writer.drain()
        await asyncio.sleep(1)  # long enough for both to relay what they accepted
        for _, writer in sessions:
            writer.close()
        # Follow the chain until it disqualifies us (the evidence is in a block), or give up.
        deadline = time.monotonic() + 20
        while (dq := self.node.state.get("dq", address_of(self.key.public_key))) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            await self.sync(first)
        result = {"attack": "equivocation", "slot": slot, "producer": self.key.public_key.hex(),
                  "blocks": [a.hash.hex(), b.hash.hex()], "targets": [first, second], "disqualified_at": dq}
        print(json.dumps(result), flush=True)
        return result

    async def run(self) -> None:
        await self.sync()
        garbage = [len(p).to_bytes(4, "big") + p for p in [b"\xff\xfe\xfd"] * 6]
        await self.attack("garbage", 0, garbage)
        await self.attack("oversized", 1, [(self.max_frame + 1).to_bytes(4, "big") + b"\x00" * 4096])
        slot = await self.our_next_slot()
        await self.sync()
        await self.attack("invalid_signature", 2, [encode_frame(messages.announce_block(raw), self.max_frame)
                                                   for raw in self.invalid_signature_blocks(slot, 8)])
        await self.equivocate(0, 1)
        await self.sync()
        await self.attack("out_of_slot", 2, [encode_frame(messages.announce_block(raw), self.max_frame)
                                             for raw in self.out_of_slot_blocks(8)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genesis", type=Path, required=True)
    ap.add_argument("--key", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--targets", required=True, help="HOST:PORT,... of honest nodes' p2p listeners")
    args = ap.parse_args(argv)
    rogue = Rogue(args.genesis, args.key, args.data, [parse_address(t) for t in args.targets.split(",")])
    try:
        asyncio.run(rogue.run())
    finally:
        rogue.node.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
