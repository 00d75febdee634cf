"""``Identity``: what the other parts of the hub ask of device identity (spec: docs/identity.md).

The identity plugin provides one under the service name ``"identity"``. It keeps each device's
key (identity.db), plays the light node of every keyless device (:class:`LightNode` on a
:class:`SqliteFlash`), keeps a mirror of what key-holding devices accepted (the same code, fed what
the device confirmed), and runs the signed path: verify, persist the counter, execute, log.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.core.events import CommandCalled
from hub.crypto.keys import PrivateKey
from hub.crypto.signing import Network
from hub.crypto.statements import (
    Bind,
    BindProof,
    Command,
    Grant,
    Handover,
    Reset,
    Revoke,
    Signed,
    sign,
)
from hub.identity.errors import Reason, Refused
from hub.identity.gate import GateRefused, SignedControlOff
from hub.identity.lightnode import LightNode
from hub.identity.store import IdentityStore, SqliteFlash

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.identity")

CONTROLLER_KEY_FILE = "controller.key"


@dataclass(frozen=True)
class DeviceRecord:
    """A device's identity as the owner sees it; nothing in it is secret."""

    device_id: str
    public_key: str  # hex
    holds_key: bool
    controller: str | None  # hex; None: unbound (or reset)
    seq: int  # bindings, hand-overs and resets so far
    bound_at: int | None  # ms, the binding's (or reset's) time
    epoch: int  # grants made below it are void
    grants: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Identity:
    def __init__(self, hub: "Hub", store: IdentityStore, *, key_path: Path | None = None, window_s: float = 30.0) -> None:
        self._hub = hub
        self.store = store
        self.window_ms = int(window_s * 1000)
        self._key_path = key_path
        self._key: PrivateKey | None = None
        self._nodes: dict[str, LightNode] = {}
        self._holders: dict[str, bool] = {}  # device id -> holds its key (cached: asked on every command)
        self._by_key: dict[bytes, str] = {}  # public key -> device id (cached likewise)

    # --- what it is bound to ----------------------------------------------------------------------
    @property
    def network(self) -> Network | None:
        """The chain's network (id and genesis hash) every signature is bound to; None without a
        chain: then signed control is off, local commands work as ever."""
        chain = self._hub.services.get("chain")
        return getattr(chain, "network", None) if chain is not None else None

    @property
    def controller_key(self) -> PrivateKey:
        """The hub's own key: ``identity.key``, else the embedded chain's funded owner key, else
        ``<data>/identity/controller.key`` (made on first use, 0600)."""
        if self._key is None:
            from hub.chain.node.files import read_key, write_key

            path = self._key_path
            if path is None:
                owner = self._hub.data_dir / "chain" / "keys" / "owner.key"
                path = owner if owner.exists() else self._hub.data_dir / "identity" / CONTROLLER_KEY_FILE
                if not path.exists():
                    write_key(path, PrivateKey.generate())
                    os.chmod(path, 0o600)
            self._key = read_key(path)
        return self._key

    def now_ms(self) -> int:
        return int(self._hub.now() * 1000)

    # --- device keys ------------------------------------------------------------------------------
    def _hub_id(self, device_id: str, public_key: bytes | None = None) -> str:
        """The hub's id of a device ("<platform>:<id>"); a driver may name its device by its own id."""
        if self._hub.devices.get(device_id) is not None:
            return device_id
        for entry in self._hub.devices:
            if entry.id.split(":", 1)[1] == device_id and (public_key is None or entry.public_key == public_key.hex()):
                return entry.id
        return device_id

    def set_key(self, device_id: str, public_key: bytes, holds_key: bool) -> None:
        device_id = self._hub_id(device_id, public_key)
        self.store.set_identity(device_id, public_key, holds_key, self._hub.now())
        self._nodes.pop(device_id, None)
        self._by_key = {k: v for k, v in self._by_key.items() if v != device_id and k != public_key}
        self._holders[device_id] = holds_key

    def _declared(self, device_id: str) -> None:
        """A driver declared the key of a device that holds it (``Device.public_key``): learn it."""
        entry = self._hub.devices.get(device_id)
        if entry is not None and entry.holds_key and entry.public_key:
            row = self.store.identity(device_id)
            if row is None or row.public_key.hex() != entry.public_key or not row.holds_key:
                self.set_key(device_id, bytes.fromhex(entry.public_key), True)

    def holds_key(self, device_id: str) -> bool:
        known = self._holders.get(device_id)
        if known is None:
            self._declared(device_id)
            row = self.store.identity(device_id)
            known = self._holders[device_id] = bool(row and row.holds_key)
        return known

    def device_for_key(self, public_key: bytes) -> str | None:
        found = self._by_key.get(public_key)
        if found is None:
            found = self.store.device_for_key(public_key)
            if found is None:
                for entry in self._hub.devices:
                    if entry.holds_key and entry.public_key == public_key.hex():
                        self._declared(entry.id)
                        found = entry.id
                        break
            if found is not None:
                self._by_key[public_key] = found
        return found

    def record(self, device_id: str) -> DeviceRecord | None:
        device_id = self._hub_id(device_id)
        self._declared(device_id)
        row = self.store.identity(device_id)
        if row is None:
            return None
        rec = self.store.load_record(device_id) or {}
        grants = [g["body"] for g in rec.get("grants", [])]
        return DeviceRecord(device_id, row.public_key.hex(), row.holds_key, rec.get("controller"), rec.get("seq", 0),
                            rec.get("time"), rec.get("epoch", 0), grants)

    def lightnode(self, device_id: str) -> LightNode:
        """The hub's light node for a device: the verifier of a keyless one, the mirror of what a
        key-holding one accepted."""
        device_id = self._hub_id(device_id)
        node = self._nodes.get(device_id)
        if node is None:
            network = self._network()
            self._declared(device_id)
            row = self.store.identity(device_id)
            if row is None:
                raise Refused(Reason.UNBOUND, f"{device_id} has no key: make one with `hub device keygen`")
            node = LightNode(row.public_key, network, SqliteFlash(self.store, device_id, self._hub.now), self.window_ms)
            self._nodes[device_id] = node
        return node

    def _network(self) -> Network:
        network = self.network
        if network is None:
            raise SignedControlOff("signed control needs a chain (configure `chain:`): signatures are bound to its network")
        return network

    # --- statements -------------------------------------------------------------------------------
    async def deliver(self, device_id: str, signed: Signed) -> Any:
        """A statement for a device: a key-holding one gets it (and verifies it); for a keyless one
        the hub's light node records it. A command goes the whole signed path."""
        device_id = self._hub_id(device_id)
        if self.holds_key(device_id):
            result = await self._to_device(device_id, signed)
            if not isinstance(signed.statement, Command):
                try:
                    self._apply(self.lightnode(device_id), signed)  # the mirror: what the device accepted
                except Refused as exc:
                    log.warning("%s accepted a %s the hub's mirror refuses (%s); the mirror may be behind",
                                device_id, signed.statement.DOMAIN, exc)
                self._book(device_id, signed)
            return result
        if isinstance(signed.statement, Command):
            return await self.signed_call(signed)
        self._apply(self.lightnode(device_id), signed)
        self._book(device_id, signed)
        return None

    def _book(self, device_id: str, signed: Signed) -> None:
        """The owner's list of grants follows what the device (or its light node) accepted."""
        st = signed.statement
        if isinstance(st, Grant):
            self.store.add_grant(device_id, signed.signature, st.grantee, signed.to_json(), st.epoch, st.not_after)
        elif isinstance(st, Revoke):
            self.store.revoke_grants(device_id, st.epoch)

    def _apply(self, node: LightNode, signed: Signed) -> None:
        st = signed.statement
        if isinstance(st, (Bind, BindProof)):
            node.bind(signed)
        elif isinstance(st, Handover):
            node.handover(signed)
        elif isinstance(st, Grant):
            node.grant(signed, self.now_ms())
        elif isinstance(st, Revoke):
            node.revoke(signed)
        elif isinstance(st, Reset):
            if st.device != node.public_key:
                raise Refused(Reason.WRONG_DEVICE, "the reset is for another device")
            if not signed.verify(node.public_key, node.network):
                raise Refused(Reason.FORGED, "the reset is not signed by the device key")
            node.reset(st.time)
        else:
            raise Refused(Reason.MALFORMED, f"a {st.DOMAIN} is not delivered to a device")

    async def _to_device(self, device_id: str, signed: Signed) -> Any:
        entry = self._hub.devices.get(device_id)
        if entry is None:
            raise Refused(Reason.WRONG_DEVICE, f"no device {device_id!r}")
        ctx = self._hub.contexts.get(entry.platform)
        if ctx is None or self._hub.plugins.impl(entry.platform, "hub_deliver_statement") is None:
            raise Refused(Reason.UNBOUND, f"{device_id}: its driver {entry.platform!r} is not running or cannot deliver")
        own_id = device_id.split(":", 1)[1]
        return await self._hub.plugins.call_one(entry.platform, "hub_deliver_statement", timeout=self._hub.commands.timeout,
                                                hub=ctx, device_id=own_id, signed=signed)

    def add_grant(self, device_id: str, signed_grant: Signed) -> None:
        """Open access for a grantee (a shared admin, a renter: #17). A key-holding device gets the
        grant with the grantee's first command (or through :meth:`deliver`)."""
        device_id = self._hub_id(device_id)
        st = signed_grant.statement
        if not isinstance(st, Grant):
            raise Refused(Reason.MALFORMED, "expected a signed grant")
        self._apply(self.lightnode(device_id), signed_grant)  # idempotent: a grant already there stays once
        self._book(device_id, signed_grant)

    def revoke(self, device_id: str, signed_revoke: Signed) -> None:
        device_id = self._hub_id(device_id)
        st = signed_revoke.statement
        if not isinstance(st, Revoke):
            raise Refused(Reason.MALFORMED, "expected a signed revoke")
        node = self.lightnode(device_id)
        if not (self.holds_key(device_id) and st.epoch <= node.epoch):  # a mirror may have it from deliver()
            self._apply(node, signed_revoke)
        self._book(device_id, signed_revoke)

    # --- commands ---------------------------------------------------------------------------------
    def sign_command(self, device_id: str, entity: str, command: str, args: dict[str, Any]) -> Signed:
        """The hub as controller: an owner's or a rule's command for a key-holding device."""
        device_id = self._hub_id(device_id)
        network = self._network()
        row = self.store.identity(device_id)
        if row is None:
            self._declared(device_id)
            row = self.store.identity(device_id)
        if row is None:
            raise Refused(Reason.UNBOUND, f"{device_id} has no key")
        now_ms = self.now_ms()
        counter = self.store.next_issued(device_id, now_ms * 1000)
        key = self.controller_key
        return sign(Command(network.chain_id, row.public_key, entity, command, args, now_ms, counter, key.public_key),
                    key, network)

    async def signed_call(self, signed: Signed, *, source: str = "signed", grant: Signed | None = None,
                          device_id: str | None = None, now_ms: int | None = None) -> Any:
        """The whole signed path: find the device, verify (the hub's light node for a keyless
        device; the device itself for one that holds its key), persist the counter, execute through
        the command registry, log. ``device_id``: the device the caller addressed (the route's),
        which must be the one the command names. Raises :class:`GateRefused` (a ``Refused``)."""
        st = signed.statement
        shown = st.signer.hex()[:16] if isinstance(st, Command) else "?"
        source = f"signed:{shown}" if source == "signed" else source
        target = device_id
        entity_id = f"{device_id or '?'}/{getattr(st, 'entity', '?')}"
        try:
            network = self._network()
            if not isinstance(st, Command):
                raise Refused(Reason.MALFORMED, f"expected a signed command, got a {st.DOMAIN}")
            found = self.device_for_key(st.device)
            if target is not None:
                target = self._hub_id(target)
                if found != target:
                    raise Refused(Reason.WRONG_DEVICE, f"the command is for device {st.device.hex()[:16]}..., "
                                                       f"not {target}")
            if found is None:
                raise Refused(Reason.WRONG_DEVICE, f"no device of this hub has key {st.device.hex()[:16]}...")
            platform, own_id = found.split(":", 1)
            entry = self._hub.entities.get_unique(platform, f"{own_id}:{st.entity}")
            entity_id = entry.entity_id if entry is not None else f"{found}/{st.entity}"
            if st.chain != network.chain_id:
                raise Refused(Reason.WRONG_CHAIN, f"signed for chain {st.chain!r}, this is {network.chain_id!r}")
            if not self.holds_key(found):
                node = self.lightnode(found)
                if grant is not None and all(g.signature != grant.signature for g in node.grants()):
                    self.add_grant(found, grant)
                node.check(signed, self.now_ms() if now_ms is None else now_ms)
            elif grant is not None:
                await self.deliver(found, grant)
        except Refused as exc:
            refused = exc if isinstance(exc, GateRefused) else GateRefused(exc)
            self._log_refused(entity_id, st, source, refused)
            raise refused from None
        if entry is None:
            from hub.core.commands import UnknownEntity

            self._log_refused(entity_id, st, source, None)
            raise UnknownEntity(f"{found} has no entity {st.entity!r}")
        return await self._hub.commands.call(entry.entity_id, st.command, dict(st.args), source=source, signed=signed)

    def _log_refused(self, entity_id: str, st: Any, source: str, refused: GateRefused | None) -> None:
        self._hub.commands.outcomes["failed"] += 1
        error = refused.message if refused is not None else f"unknown entity {getattr(st, 'entity', '?')!r}"
        self._hub.bus.publish(CommandCalled(self._hub.now(), entity_id, getattr(st, "command", "?"), {}, source, False, error))
