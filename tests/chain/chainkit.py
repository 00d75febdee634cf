"""Building blocks for chain tests: deterministic keys, small genesis files, a simulated chain."""

from __future__ import annotations

import hashlib

from hub.chain.protocol import dpos
from hub.chain.protocol.block import Block
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.genesis import Genesis
from hub.chain.protocol.state import State
from hub.chain.protocol.transition import Applied, build_block
from hub.chain.protocol.tx import Transaction
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey
from hub.crypto.signing import Network

CHAIN = "testnet"
GENESIS_TIME = 1_000_000
FAST = {"PRODUCERS": 4, "BLOCK_INTERVAL": 500}


def key(name: str) -> PrivateKey:
    return PrivateKey(hashlib.sha256(name.encode()).digest())


def addr(k: PrivateKey) -> bytes:
    return address_of(k.public_key)


def make_genesis(producers: list[PrivateKey], balances: dict[PrivateKey, int] | None = None, **constants) -> Genesis:
    return Genesis(
        chain_id=CHAIN,
        genesis_time=GENESIS_TIME,
        producers=[k.public_key.hex() for k in producers],
        balances={encode_address(addr(k)): v for k, v in (balances or {}).items()},
        constants={**FAST, **constants},
    )


def network_of(where) -> Network:
    """The network of a Network, Genesis, State or Sim (signatures are bound to the genesis)."""
    return where if isinstance(where, Network) else where.network


class Wallet:
    """Signs transactions for one key, for one network (``where``: its genesis, state, or sim),
    with the right next nonce."""

    def __init__(self, k: PrivateKey, where) -> None:
        self.key, self.network, self.nonce = k, network_of(where), 0
        self.valid_until = GENESIS_TIME + 20 * 3_600_000  # within MAX_TX_LIFETIME of the early blocks

    def tx(self, tx_type: str, payload, *, fee: int = RUFF // 100, valid_until: int | None = None, nonce: int | None = None) -> Transaction:
        if nonce is None:
            self.nonce += 1
            nonce = self.nonce
        valid_until = self.valid_until if valid_until is None else valid_until
        # A dict goes on the wire as it is (so tests can sign invalid payloads too).
        return Transaction.create(self.key, self.network, tx_type, payload, nonce=nonce, fee=fee, valid_until=valid_until)

    def send(self, to: PrivateKey | bytes, amount: int, **kw) -> Transaction:
        to_addr = to if isinstance(to, bytes) else addr(to)
        return self.tx("transfer", {"to": to_addr, "amount": amount}, **kw)


class Sim:
    """A chain on a simulated clock: each call produces the next block with whoever owns the slot."""

    def __init__(self, genesis: Genesis, producers: list[PrivateKey]) -> None:
        self.genesis = genesis
        self.state: State = genesis.state()
        self.keys = {k.public_key: k for k in producers}
        self.blocks: list[Block] = []

    @property
    def c(self):
        return self.state.constants

    @property
    def network(self) -> Network:
        return self.genesis.network

    def owner(self, slot: int) -> bytes:
        return dpos.slot_owner(dpos.schedule_after(self.state), slot)

    def next_block(self, txs=(), *, skip: int = 0, strict: bool = True) -> Applied:
        """Produce in the slot after the head plus ``skip`` empty slots (their owners miss them)."""
        slot = self.state.head.slot + 1 + skip
        k = self.keys[self.owner(slot)]
        built = build_block(self.state, k, slot, list(txs))
        if strict and built.rejected:
            raise AssertionError(f"rejected: {[(t, str(e)) for t, e in built.rejected]}")
        self.blocks.append(built.applied.block)
        return built.applied

    def run_to_round_end(self) -> None:
        while not dpos.is_round_end(self.state.head.height, self.c):
            self.next_block()


# --- device statements and payloads (hub.crypto.statements; docs/chain.md "Device transactions") ---

def signed(statement, k: PrivateKey, where) -> dict:
    """``statement`` signed by ``k`` for the network of ``where``, as a payload carries it."""
    from hub.crypto.statements import sign

    return sign(statement, k, network_of(where)).to_body()


def bind(device: PrivateKey, controller: bytes, time: int, where, *, proof: bool = False) -> dict:
    """A ``bind_device`` payload: the device key binds ``controller`` from ``time`` on (``proof``:
    the strong mode's BindProof, with a fixed nonce)."""
    from hub.crypto.statements import Bind, BindProof

    s = (BindProof(device.public_key, controller, b"\x07" * 32, time) if proof
         else Bind(device.public_key, controller, time))
    return {"statement": signed(s, device, where)}


def reset(device: PrivateKey, time: int, where) -> dict:
    from hub.crypto.statements import Reset

    return {"statement": signed(Reset(device.public_key, time), device, where)}


def handover(controller: PrivateKey, device: bytes, to: bytes, seq: int, where) -> dict:
    from hub.crypto.statements import Handover

    return {"statement": signed(Handover(device, controller.public_key, to, seq), controller, where)}


def sale(seller: PrivateKey, device: bytes, price: int, seq: int, expires: int, where, buyer: bytes = b"") -> dict:
    from hub.crypto.statements import Sale

    return {"statement": signed(Sale(device, seller.public_key, buyer, price, seq, expires), seller, where)}


def revoke(controller: PrivateKey, device: bytes, epoch: int, where) -> dict:
    from hub.crypto.statements import Revoke

    return {"statement": signed(Revoke(device, controller.public_key, epoch), controller, where)}


def grant(controller: PrivateKey, device: bytes, grantee: bytes, where, *, commands=("*",), not_before: int = 0,
          not_after: int = 0, epoch: int = 0, ref: str = "share") -> dict:
    """A signed Grant body (for ``command(..., grant=...)``)."""
    from hub.crypto.statements import Grant

    return signed(Grant(device, controller.public_key, grantee, tuple(commands), not_before, not_after, epoch, ref),
                  controller, where)


def command(signer: PrivateKey, device: bytes, where, *, entity: str = "relay", name: str = "turn_on",
            args: dict | None = None, counter: int = 1, issued_at: int = GENESIS_TIME, chain: str = CHAIN,
            grant: dict | None = None) -> dict:
    """A ``control_command`` payload: ``signer``'s Command, with ``grant`` (a signed Grant body) if any."""
    from hub.crypto.statements import Command

    s = Command(chain, device, entity, name, args or {}, issued_at, counter, signer.public_key)
    return {"command": signed(s, signer, where), "grant": grant}


def report(device: bytes, command_tx: bytes = b"", *, ok: bool = True, reason: str = "", entity: str = "relay",
           value=None) -> dict:
    """A ``state_change`` payload."""
    return {"device": device, "command": command_tx, "ok": ok, "reason": reason, "entity": entity, "value": value}


def log_batch(first: int, count: int, *, root: bytes = b"\x01" * 32, first_time: int = 0, last_time: int = 0) -> dict:
    """A ``command_log`` payload."""
    return {"root": root, "first": first, "count": count, "first_time": first_time, "last_time": last_time}
