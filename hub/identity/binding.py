"""Ownership of a device, hub side: bind, hand over, offer for sale, reset, share, revoke.

Each flow builds one signed statement (``hub.crypto.statements``), has the device accept it (a
key-holding device checks it itself, through ``identity.deliver``; for a keyless one the hub's
light node does, the same code), and only then publishes it in a ``bind_device`` transaction, so
the chain never names a controller the device refused. Publishing is best effort: with no chain,
or the chain unreachable, the device's own record stands and the answer says what was not published.

Who signs what:

- ``Bind`` (whitepaper mode): the device key from the label. The caller (``hub device bind``) signs
  it where the label is read, so the seed never travels; :meth:`Binder.bind` also takes the label
  text itself (the API's ``label``), signs, and drops the seed with the request.
- ``BindProof`` (strong mode): the device itself, after checking the setup code's MAC over the
  controller and a fresh nonce; the hub checks the proof against the label's public key.
- ``Handover``, ``Sale``, ``Grant``, ``Revoke``: the hub's controller key (``identity.controller_key``).
- ``Reset``: the device key: the label's seed for a keyless device (the label is its reset button),
  the device itself for a key-holding one (its button; its driver hands the statement over).

Nothing here logs a statement's signature material or a seed; a ``Label`` prints without its seed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hub.crypto.keys import PrivateKey
from hub.crypto.signing import Network
from hub.crypto.statements import (
    WILDCARD,
    Bind,
    BindProof,
    Grant,
    Handover,
    Reset,
    Revoke,
    Sale,
    Signed,
    StatementError,
    sign,
)
from hub.identity import labels
from hub.identity.errors import Reason, Refused

log = logging.getLogger("hub.identity.binding")

NONCE_SIZE = 32
MAX_OFFER_MS = 30 * 24 * 3_600_000  # an offer open longer than a month is more likely a typo


class BindingError(Exception):
    """A request this hub cannot act on (unknown device, no key yet, no chain for a sale); ``status``
    is the HTTP status, always a 4xx."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- pure: statements and their checks ----------------------------------------------------------

def sign_bind(label: labels.Label, controller: bytes, time_ms: int, network: Network) -> Signed:
    """The whitepaper's binding, signed with the label's seed."""
    return sign(Bind(device=label.public_key, controller=controller, time=time_ms), label.key(), network)


def sign_reset(label: labels.Label, time_ms: int, network: Network) -> Signed:
    """A keyless device's factory reset: its label is its reset button."""
    return sign(Reset(device=label.public_key, time=time_ms), label.key(), network)


def new_nonce() -> bytes:
    return os.urandom(NONCE_SIZE)


def check_proof(proof: Any, device: bytes, controller: bytes, nonce: bytes, network: Network) -> Signed:
    """A strong binding's proof, as the hub must see it before believing the device: a ``BindProof``
    for this device, this controller and this nonce, signed by the label's public key."""
    if not isinstance(proof, Signed) or not isinstance(proof.statement, BindProof):
        got = proof.statement.DOMAIN if isinstance(proof, Signed) else type(proof).__name__
        raise Refused(Reason.MALFORMED, f"the device answered with {got}, not a bind proof")
    st = proof.statement
    if st.device != device:
        raise Refused(Reason.WRONG_DEVICE, "the proof is for another device than the label names")
    if st.controller != controller or st.nonce != nonce:
        raise Refused(Reason.REPLAYED, "the proof names another controller or nonce than the hub asked for")
    if not proof.verify(device, network):
        raise Refused(Reason.FORGED, "the proof is not signed by the key on the label")
    return proof


def chain_payload(signed: Signed) -> dict[str, Any]:
    """The ``bind_device`` payload (docs/chain.md): one device statement."""
    return {"statement": signed.to_body()}


def parse_public_key(text: str, what: str = "public key") -> bytes:
    try:
        raw = bytes.fromhex(text.strip())
    except (ValueError, AttributeError):
        raise BindingError(422, f"{what}: 64 hex digits expected") from None
    if len(raw) != 32:
        raise BindingError(422, f"{what}: 32 bytes (64 hex digits) expected, got {len(raw)}")
    return raw


def parse_commands(commands: list[str] | None) -> tuple[str, ...]:
    """``relay.turn_on`` names (or ``*``, every command: a second admin)."""
    if not commands:
        return (WILDCARD,)
    out = []
    for name in commands:
        name = name.strip()
        if name != WILDCARD and (name.count(".") != 1 or not all(name.split("."))):
            raise BindingError(422, f"command {name!r}: write ENTITY.COMMAND (relay.turn_on) or * for every command")
        out.append(name)
    return tuple(sorted(set(out)))


# --- the flows ------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What a flow did, for the API and the terminal: never a secret."""

    device: str
    action: str
    statement: dict[str, Any]
    controller: str | None = None
    chain: dict[str, Any] = field(default_factory=lambda: {"published": False, "reason": "no chain"})

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "action": self.action, "controller": self.controller,
                "statement": self.statement, "chain": self.chain}


def _hex_or_bytes(value: Any) -> bytes | None:
    if value is None or value == "" or value == b"":
        return None
    if isinstance(value, bytes):
        return value
    return bytes.fromhex(value)


def _grant(value: Any) -> Grant:
    """A grant as a record lists it: signed (JSON or object) or its statement's body alone."""
    if isinstance(value, Signed):
        return value.statement
    if isinstance(value, dict) and "kind" in value:
        return Signed.from_json(value).statement
    return Grant.from_json(value)


class Binder:
    """The flows over the identity service (the gate's ``Identity``) and the chain (a ``ChainAccess``
    or None). ``request_proof(device_id, controller, nonce, mac)`` asks a key-holding device for a
    strong binding's proof (``hub_request_bind_proof``)."""

    def __init__(self, identity: Any, chain: Callable[[], Any], now_ms: Callable[[], int],
                 request_proof: Callable[[str, bytes, bytes, bytes], Awaitable[Signed]] | None = None) -> None:
        self.identity = identity
        self._chain = chain
        self.now_ms = now_ms
        self._request_proof = request_proof

    # --- what is known ----------------------------------------------------------------------------
    @property
    def network(self) -> Network:
        network = self.identity.network
        if network is None:
            raise BindingError(409, "this hub has no chain (config `chain:`), so signed statements have no network "
                                    "to be signed for; enable the embedded chain or point `chain.rpc` at a node")
        return network

    @property
    def controller_key(self) -> PrivateKey:
        return self.identity.controller_key

    def record(self, device_id: str) -> Any:
        rec = self.identity.record(device_id)
        if rec is None or _hex_or_bytes(getattr(rec, "public_key", None)) is None:
            raise BindingError(409, f"device {device_id!r} has no key yet: `hub device keygen --device {device_id}` "
                                    "makes one for a keyless device; a key-holding device announces its own")
        return rec

    def device_key(self, device_id: str) -> bytes:
        return _hex_or_bytes(self.record(device_id).public_key)

    def _controller_of(self, rec: Any) -> bytes | None:
        return _hex_or_bytes(getattr(rec, "controller", None))

    def _must_control(self, device_id: str) -> Any:
        rec = self.record(device_id)
        controller = self._controller_of(rec)
        mine = self.controller_key.public_key
        if controller is None:
            raise Refused(Reason.UNBOUND, f"device {device_id!r} has no controller: bind it first")
        if controller != mine:
            raise Refused(Reason.NOT_AUTHORISED, f"device {device_id!r} is controlled by {controller.hex()[:16]}..., "
                                                 f"not by this hub's key {mine.hex()[:16]}...")
        return rec

    # --- applying a statement to the device -------------------------------------------------------
    async def _apply(self, device_id: str, signed: Signed, rec: Any) -> None:
        """The device accepts the statement or refuses it (``Refused``): a key-holding device itself,
        the hub's light node for a keyless one (``identity.deliver``, which also keeps the hub's
        mirror of the device and the owner's list of grants)."""
        await _reach(device_id, signed.statement.DOMAIN, self.identity.deliver(device_id, signed))

    def _mirror(self, device_id: str, apply: Callable[[Any], None], what: str) -> None:
        """What a key-holding device did by itself (a strong binding, its reset button), in the hub's
        mirror of its record; a mirror that disagrees is logged, never trusted over the device."""
        try:
            apply(self.identity.lightnode(device_id))
        except Refused as exc:
            log.warning("%s: the device's %s does not apply to the hub's mirror of it (%s)", device_id, what, exc)

    async def publish(self, signed: Signed) -> dict[str, Any]:
        """Publish a device statement in a ``bind_device`` transaction paid by the controller key;
        never raises: what happened is the answer."""
        chain = self._chain()
        if chain is None:
            return {"published": False, "reason": "no chain configured"}
        from hub.chain.access import ChainUnavailable, TxRefused

        try:
            tx = await chain.submit(self.controller_key, "bind_device", chain_payload(signed))
        except ChainUnavailable as exc:
            return {"published": False, "reason": f"chain unreachable: {exc}"}
        except TxRefused as exc:
            return {"published": False, "reason": f"refused by the chain: {exc.reason}: {exc.message}"}
        try:
            status = await chain.status(tx)
        except ChainUnavailable:
            status = {"status": "unknown"}
        return {"published": True, "tx": tx.hex(), **{k: v for k, v in status.items() if k in ("status", "height", "reason")}}

    async def _chain_dev(self, device: bytes) -> tuple[bytes | None, int, int, int] | None:
        """The chain's record of a device: (controller, seq, time, epoch), or None (unknown, no chain)."""
        chain = self._chain()
        if chain is None:
            return None
        from hub.chain.access import ChainUnavailable

        try:
            value = await chain.state("dev", device)
        except ChainUnavailable:
            return None
        if not value:
            return None
        controller, seq, time_ms, epoch = value
        return (controller or None, seq, time_ms, epoch)

    def _outcome(self, device_id: str, action: str, signed: Signed) -> Outcome:
        rec = self.identity.record(device_id)
        controller = self._controller_of(rec) if rec is not None else None
        return Outcome(device_id, action, signed.to_json(), controller.hex() if controller else None)

    # --- bind ------------------------------------------------------------------------------------
    async def bind(self, device_id: str, *, signed: Signed | None = None, label: labels.Label | None = None) -> Outcome:
        """Whitepaper mode (a ``Bind`` signed with the label's seed, or the seed label itself) or
        strong mode (a label with the public key and setup code)."""
        rec = self.record(device_id)
        device = _hex_or_bytes(rec.public_key)
        controller = self.controller_key.public_key
        network = self.network
        if label is not None and label.public_key != device:
            raise Refused(Reason.WRONG_DEVICE, f"the label is for device key {label.public_key.hex()[:16]}..., "
                                               f"{device_id!r} has {device.hex()[:16]}...")
        if label is not None and label.strong:
            if not getattr(rec, "holds_key", False):
                raise BindingError(409, f"{device_id!r} does not hold its own key, so it cannot prove it: "
                                        "a strong label is for a key-holding device")
            if self._request_proof is None:
                raise BindingError(409, "no driver can ask this device for a proof")
            nonce = new_nonce()
            mac = labels.code_mac(label.setup_code, controller, nonce)
            answer = await _reach(device_id, "bind proof", self._request_proof(device_id, controller, nonce, mac))
            proof = check_proof(answer, device, controller, nonce, network)
            # The device recorded the controller when it signed; the hub's mirror follows.
            self._mirror(device_id, lambda node: node.bind(proof), "binding")
            signed = proof
        else:
            if signed is None:
                if label is None:
                    raise BindingError(422, "give the signed binding or the device's label")
                signed = sign_bind(label, controller, self.now_ms(), network)
            st = signed.statement
            if not isinstance(st, Bind):
                raise Refused(Reason.MALFORMED, f"expected a bind statement, got {st.DOMAIN}")
            if st.device != device:
                raise Refused(Reason.WRONG_DEVICE, f"the binding is for device key {st.device.hex()[:16]}..., "
                                                   f"{device_id!r} has {device.hex()[:16]}...")
            if not signed.verify(device, network):
                raise Refused(Reason.FORGED, "the binding is not signed by the device's key on this chain")
            await self._apply(device_id, signed, rec)
        outcome = self._outcome(device_id, "bind", signed)
        outcome.chain = await self.publish(signed)
        log.info("device %s bound to %s (%s mode); chain: %s", device_id, signed.statement.controller.hex()[:16],
                 "strong" if isinstance(signed.statement, BindProof) else "label", _said(outcome.chain))
        return outcome

    # --- hand over ---------------------------------------------------------------------------------
    async def transfer(self, device_id: str, to: bytes) -> Outcome:
        rec = self._must_control(device_id)
        device = _hex_or_bytes(rec.public_key)
        if to == self.controller_key.public_key:
            raise BindingError(422, "the new controller is this hub's own key: nothing to hand over")
        signed = sign(Handover(device=device, controller=self.controller_key.public_key, to=to, seq=int(rec.seq)),
                      self.controller_key, self.network)
        await self._apply(device_id, signed, rec)
        outcome = self._outcome(device_id, "transfer", signed)
        outcome.chain = await self.publish(signed)
        log.info("device %s handed over to %s; chain: %s", device_id, to.hex()[:16], _said(outcome.chain))
        return outcome

    # --- sell --------------------------------------------------------------------------------------
    async def offer(self, device_id: str, price: int, expires_in_ms: int, buyer: bytes | None = None) -> Signed:
        """A signed offer: whoever's ``bind_device`` transaction carries it (only ``buyer``, if
        named) pays ``price`` to this hub's key's address and takes control in the same block. The
        binding counter is the chain's: the chain is where the offer is redeemed."""
        if price <= 0:
            raise BindingError(422, "price: a positive amount expected")
        if not 0 < expires_in_ms <= MAX_OFFER_MS:
            raise BindingError(422, f"expires: between 1 ms and {MAX_OFFER_MS // 86_400_000} days expected")
        rec = self._must_control(device_id)
        device = _hex_or_bytes(rec.public_key)
        if self._chain() is None:
            raise BindingError(409, "a sale is settled on chain, and this hub has no chain")
        on_chain = await self._chain_dev(device)
        mine = self.controller_key.public_key
        if on_chain is None or on_chain[0] != mine:
            raise BindingError(409, f"the chain does not name this hub's key as {device_id!r}'s controller yet "
                                    "(publish the binding first: is the chain reachable?)")
        sale = Sale(device=device, seller=mine, buyer=buyer or b"", price=price, seq=on_chain[1],
                    expires=self.now_ms() + expires_in_ms)
        return sign(sale, self.controller_key, self.network)

    # --- reset -------------------------------------------------------------------------------------
    async def reset(self, device_id: str, signed: Signed) -> Outcome:
        """A factory reset signed by the device key: by the label's seed for a keyless device, by a
        key-holding device itself after its button (its driver passes it on, and the device has
        already forgotten its controller)."""
        rec = self.record(device_id)
        device = _hex_or_bytes(rec.public_key)
        st = signed.statement
        if not isinstance(st, Reset):
            raise Refused(Reason.MALFORMED, f"expected a reset statement, got {st.DOMAIN}")
        if st.device != device:
            raise Refused(Reason.WRONG_DEVICE, "the reset is for another device key")
        if not signed.verify(device, self.network):
            raise Refused(Reason.FORGED, "the reset is not signed by the device's key on this chain")
        if not getattr(rec, "holds_key", False):
            await self._apply(device_id, signed, rec)
        else:  # the device reset itself (its button); the hub's mirror follows
            self._mirror(device_id, lambda node: node.reset(st.time), "reset")
        outcome = self._outcome(device_id, "reset", signed)
        outcome.chain = await self.publish(signed)
        log.info("device %s reset; chain: %s", device_id, _said(outcome.chain))
        return outcome

    # --- share and revoke --------------------------------------------------------------------------
    async def share(self, device_id: str, to: bytes, commands: tuple[str, ...] = (WILDCARD,),
                    not_after: int = 0, ref: str = "share") -> Outcome:
        rec = self._must_control(device_id)
        device = _hex_or_bytes(rec.public_key)
        if to == self.controller_key.public_key:
            raise BindingError(422, "the grantee is this hub's own key, the controller: it needs no grant")
        now = self.now_ms()
        if not_after and not_after <= now:
            raise BindingError(422, "until: the grant would end before it starts")
        grant = Grant(device=device, controller=self.controller_key.public_key, grantee=to, commands=commands,
                      not_before=now, not_after=not_after, epoch=int(rec.epoch), ref=ref)
        signed = sign(grant, self.controller_key, self.network)
        await self._apply(device_id, signed, rec)
        log.info("device %s shared with %s for %s", device_id, to.hex()[:16], ", ".join(commands))
        outcome = self._outcome(device_id, "share", signed)
        outcome.chain = {"published": False, "reason": "grants travel with the commands they allow"}
        return outcome

    async def revoke(self, device_id: str, grantee: bytes | None = None) -> Outcome:
        """Raise the device's epoch, which voids every grant made before (the device enforces it
        while offline); then grant again, in the new epoch, every live grant not of ``grantee``
        (None: revoke them all)."""
        rec = self._must_control(device_id)
        device = _hex_or_bytes(rec.public_key)
        now = self.now_ms()
        grants = [_grant(g) for g in getattr(rec, "grants", None) or []]
        live = [st for st in grants if not (st.not_after and st.not_after < now)]
        if grantee is not None and not any(st.grantee == grantee for st in live):
            raise BindingError(404, f"{device_id!r} has no live grant for {grantee.hex()[:16]}...")
        keep = [] if grantee is None else [st for st in live if st.grantee != grantee]
        epoch = int(rec.epoch)
        on_chain = await self._chain_dev(device)
        if on_chain is not None:
            epoch = max(epoch, on_chain[3])
        signed = sign(Revoke(device=device, controller=self.controller_key.public_key, epoch=epoch + 1),
                      self.controller_key, self.network)
        await self._apply(device_id, signed, rec)
        for st in keep:
            again = Grant(device=st.device, controller=st.controller, grantee=st.grantee, commands=st.commands,
                          not_before=st.not_before, not_after=st.not_after, epoch=epoch + 1, ref=st.ref)
            await self._apply(device_id, sign(again, self.controller_key, self.network), self.record(device_id))
        outcome = self._outcome(device_id, "revoke", signed)
        outcome.chain = await self.publish(signed)
        log.info("device %s: grants before epoch %d revoked, %d granted again; chain: %s", device_id, epoch + 1,
                 len(keep), _said(outcome.chain))
        return outcome


async def _reach(device_id: str, what: str, call: Awaitable[Any]) -> Any:
    """Await a call that reaches a key-holding device. Its refusal (``Refused``) is the answer; any
    other failure means the device (or its driver) could not be asked: a 502 naming the device, not
    a 500, and nothing recorded or published."""
    try:
        return await call
    except (Refused, BindingError):
        raise
    except Exception as exc:  # noqa: BLE001 - a driver's own error types are unknown here
        log.warning("%s: the %s did not reach the device: %s", device_id, what, exc, exc_info=True)
        raise BindingError(502, f"{device_id}: the device could not be asked ({what}): "
                                f"{type(exc).__name__}: {exc}") from None


async def _maybe_await(value: Any) -> Any:
    if hasattr(value, "__await__"):
        return await value
    return value


def _said(chain: dict[str, Any]) -> str:
    return f"tx {chain['tx'][:16]}... {chain.get('status', '')}" if chain.get("published") else chain.get("reason", "")


__all__ = ["Binder", "BindingError", "Outcome", "check_proof", "chain_payload", "new_nonce", "parse_commands",
           "parse_public_key", "sign_bind", "sign_reset", "StatementError"]
