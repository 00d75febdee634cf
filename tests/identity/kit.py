"""Keys, a network and signed statements for the identity tests: one place, so every test signs
the same way a client does."""

from __future__ import annotations

import itertools
import sqlite3
import time
from pathlib import Path

from hub.chain.protocol.genesis import load_genesis
from hub.crypto.keys import PrivateKey
from hub.crypto.signing import Network
from hub.crypto.statements import Bind, Command, Grant, Signed, sign
from hub.identity.lightnode import LightNode
from hub.identity.store import IdentityStore, SqliteFlash

PLUG = "demo:smart_plug"
PLUG_KEY = PrivateKey(b"\x51" * 32)  # as printed on the plug's label
OWNER = PrivateKey(b"\x52" * 32)  # the controller
RENTER = PrivateKey(b"\x53" * 32)  # granted outlet.turn_on only
STRANGER = PrivateKey(b"\x54" * 32)
_counter = itertools.count(int(time.time() * 1_000_000))


def network_of(data: Path) -> Network:
    return load_genesis(data / "chain" / "genesis.json").network


def bind_plug(data: Path, net: Network, *, renter_until_ms: int | None = None) -> None:
    """What `hub device keygen` + `hub device bind` leave behind for the keyless demo plug, made
    through the same store and light node the hub uses (the hub is stopped)."""
    store = IdentityStore(data)
    try:
        store.set_identity(PLUG, PLUG_KEY.public_key, False, time.time())
        node = LightNode(PLUG_KEY.public_key, net, SqliteFlash(store, PLUG, time.time))
        node.bind(sign(Bind(PLUG_KEY.public_key, OWNER.public_key, int(time.time() * 1000)), PLUG_KEY, net))
        if renter_until_ms is not None:
            grant = sign(Grant(PLUG_KEY.public_key, OWNER.public_key, RENTER.public_key, ["outlet.turn_on"],
                               0, renter_until_ms, 0, "contract:test"), OWNER, net)
            node.grant(grant)
            st = grant.statement
            store.add_grant(PLUG, grant.signature, st.grantee, grant.to_json(), st.epoch, st.not_after)
    finally:
        store.close()


def command(net: Network, signer: PrivateKey, command: str = "turn_on", *, device: bytes = PLUG_KEY.public_key,
            entity: str = "outlet", counter: int | None = None, issued_at: int | None = None,
            chain: str | None = None, signed_by: PrivateKey | None = None) -> Signed:
    st = Command(chain or net.chain_id, device, entity, command, {},
                 int(time.time() * 1000) if issued_at is None else issued_at,
                 next(_counter) if counter is None else counter, signer.public_key)
    return sign(st, signed_by or signer, net)


def command_log(data: Path) -> list[tuple]:
    conn = sqlite3.connect(data / "hub.db")
    try:
        return conn.execute("SELECT entity_id, command, source, ok, error FROM command_log ORDER BY id").fetchall()
    finally:
        conn.close()
