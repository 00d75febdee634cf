"""The driver's devices: what each link learnt, registered with the hub, and the requests the
identity gate makes of them (deliver a statement, prove a key, run an owner's command)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from pydantic import ValidationError

from hub.context import EntityHandle, PluginContext
from hub.core.commands import CommandRefused
from hub.crypto.statements import BindProof, Receipt, Signed, StatementError
from hub.devices.model import Device, EntitySpec
from hub.identity.errors import Reason, Refused

from hub_lightnode import protocol
from hub_lightnode.link import Link, NotConnected

log = logging.getLogger("hub.plugins.lightnode")
PREFIX = "lightnode:"  # the hub prefixes a device id with its plugin's name


def device_id_for(public_key: bytes) -> str:
    return PREFIX + public_key.hex()


def hub_id(device_id: str) -> str:
    """The hub's id of a device, from it or from the driver's own (the key's hex, which the gate
    passes to ``hub_deliver_statement``)."""
    return device_id if device_id.startswith(PREFIX) else PREFIX + device_id


class Devices:
    def __init__(self, hub: PluginContext) -> None:
        self.hub = hub
        self.links = [Link(device, hub.config, on_hello=self._hello, on_message=self._message,
                           on_down=self._down) for device in hub.config.devices]
        self.by_id: dict[str, Link] = {}
        self.handles: dict[str, dict[str, EntityHandle]] = {}
        #: The last device-signed Reset each device sent (its button): public, signed evidence. The
        #: ``lightnode_reset`` event carries it to hub/identity/ownership.py, which mirrors and
        #: publishes it; ``GET .../resets/{id}`` serves it for ``hub device reset --signed``.
        self.resets: dict[str, Signed] = {}

    async def run(self) -> None:
        await asyncio.gather(*(link.run() for link in self.links))

    def owns(self, device_id: str) -> bool:
        return hub_id(device_id) in self.by_id

    # --- what a link reports ---------------------------------------------------------------------
    def _hello(self, link: Link, hello: dict) -> None:
        public_key: bytes = hello["device"]
        device_id = device_id_for(public_key)
        for other, known in list(self.by_id.items()):
            if known is link and other != device_id:  # another plug now answers at this address
                self._down(link, other)
                del self.by_id[other]
        name = link.device.name or f"{hello['model']} {public_key.hex()[:8]}"
        try:
            specs = [EntitySpec(key=e["key"], capability=e["capability"], unit=e["unit"],
                                device_class=e["device_class"]) for e in hello["entities"]]
            device = Device(id=public_key.hex(), name=name, model=hello["model"], connection=f"tcp://{link.address}",
                            public_key=public_key.hex(), holds_key=True)
        except ValidationError as exc:
            raise protocol.ProtocolError(f"hello: {exc.errors(include_url=False)[0]['msg']}") from None
        try:
            self.handles[device_id] = self.hub.add_device(device, specs)
        except ValueError as exc:  # two entities with one key, say: the device's fault, not the hub's
            raise protocol.ProtocolError(f"hello: {exc}") from None
        self.by_id[device_id] = link
        identity = self.hub.service("identity")
        if identity is not None:
            identity.set_key(device_id, public_key, True)

    def _message(self, link: Link, message: dict) -> None:
        device_id = device_id_for(link.hello["device"])
        if message["t"] == "state":
            handle = self.handles.get(device_id, {}).get(message["entity"])
            if handle is None:
                log.warning("%s: a state for unknown entity %r", device_id[:26], message["entity"])
                return
            try:
                handle.set(message["value"])
            except (ValueError, TypeError) as exc:
                log.warning("%s: %s: %s", device_id[:26], message["entity"], exc)
        elif message["t"] == "reset":
            self._reset(device_id, message["statement"])

    def _reset(self, device_id: str, body: dict | None) -> None:
        if body is None:  # pressed while unbound: nothing to publish
            log.info("%s: reset button pressed (it was not bound)", device_id[:26])
            return
        try:
            signed = Signed.from_body(body)
        except StatementError as exc:
            log.warning("%s: a malformed reset: %s", device_id[:26], exc)
            return
        public_key = self.by_id[device_id].hello["device"]
        if signed.statement.DOMAIN != "reset" or signed.statement.device != public_key:
            log.warning("%s: a reset for another device, ignored", device_id[:26])
            return
        identity = self.hub.service("identity")
        network = identity.network if identity is not None else None
        if network is not None and not signed.verify(public_key, network):
            log.warning("%s: a reset not signed by the device on this chain, ignored", device_id[:26])
            return
        self.resets[device_id] = signed
        log.warning("%s: factory reset on the device: it has no controller now", device_id[:26])
        self.hub.fire("lightnode_reset", {"device_id": device_id, "statement": signed.to_json()})

    def _down(self, link: Link, device_id: str | None = None) -> None:
        device_id = device_id or (device_id_for(link.hello["device"]) if link.hello else None)
        for handle in self.handles.get(device_id, {}).values():
            handle.set_unavailable()

    # --- what the gate asks --------------------------------------------------------------------
    def _network(self) -> Any:
        identity = self.hub.service("identity")
        network = identity.network if identity is not None else None
        if network is None:
            raise NotConnected("no chain network: a key-holding device takes only statements signed for one")
        return network

    def _link(self, device_id: str) -> Link:
        link = self.by_id.get(hub_id(device_id))
        if link is None:
            raise NotConnected(f"{hub_id(device_id)} has not connected since the hub started")
        return link

    async def _ask(self, device_id: str, message: dict) -> Any:
        link = self._link(device_id)
        network = self._network()
        answer = await link.request({**message, "chain": network.chain_id, "genesis": network.genesis_hash})
        if answer["ok"]:
            return answer["result"]
        try:
            reason = Reason(answer["reason"])
        except ValueError:
            raise protocol.ProtocolError(f"answer.reason: {answer['reason']!r} is not a known reason") from None
        raise Refused(reason, f"the device refused: {answer['message']}")

    async def deliver(self, device_id: str, signed: Signed) -> Any:
        return await self._ask(device_id, {"t": "deliver", "signed": signed.to_body()})

    async def prove(self, device_id: str, controller: bytes, nonce: bytes, code_mac: bytes) -> Signed:
        body = await self._ask(device_id, {"t": "prove", "controller": controller, "nonce": nonce,
                                           "code_mac": code_mac})
        public_key = self._link(device_id).hello["device"]
        try:
            proof = Signed.from_body(body)
        except StatementError as exc:
            raise Refused(Reason.MALFORMED, f"the device's proof: {exc}") from None
        statement = proof.statement
        if (not isinstance(statement, BindProof) or statement.device != public_key
                or statement.controller != controller or statement.nonce != nonce):
            raise Refused(Reason.MALFORMED, "the device's proof is not a BindProof of this device, "
                                            "controller and nonce")
        if not proof.verify(public_key, self._network()):
            raise Refused(Reason.FORGED, "the device's proof does not verify under its own key")
        return proof

    async def receipt(self, device_id: str, call: bytes, entity: str, since: int) -> Signed:
        """The device's own signed meter receipt for a rental (the market's metering): believed only
        if it is a ``Receipt`` of this device, call and entity, signed by the device's key."""
        body = await self._ask(device_id, {"t": "receipt", "call": call, "entity": entity, "since": since})
        public_key = self._link(device_id).hello["device"]
        try:
            signed = Signed.from_body(body)
        except StatementError as exc:
            raise Refused(Reason.MALFORMED, f"the device's receipt: {exc}") from None
        st = signed.statement
        if (not isinstance(st, Receipt) or st.device != public_key or st.signer != public_key or st.call != call
                or st.entity != entity):
            raise Refused(Reason.MALFORMED, "the device's receipt is not a Receipt of this device, call and entity "
                                            "signed by the device")
        if not signed.verify(public_key, self._network()):
            raise Refused(Reason.FORGED, "the device's receipt does not verify under its own key")
        return signed

    async def command(self, entity: EntityHandle, command: str, args: Any) -> Any:
        """An owner's or a rule's command: signed with the hub's controller key, then delivered, so
        the device's own rules (bound, counter, window) apply to it as to anyone's."""
        device_id = entity.entry.device_id
        identity = self.hub.service("identity")
        if identity is None:
            raise CommandRefused(f"{device_id} obeys signed commands only, and the identity service is not running")
        try:
            signed = identity.sign_command(device_id, entity.key, command, args.model_dump(mode="json", exclude_none=True))
            if inspect.isawaitable(signed):
                signed = await signed
            return await self.deliver(device_id, signed)
        except Refused as exc:
            raise CommandRefused(f"{exc.reason.value}: {exc.message}") from None
