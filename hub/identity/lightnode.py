"""The whitepaper's light node: the verifier a device runs on every statement it is sent.

A key-holding device (``hardware-in-loop/simulators/keyplug.py``) runs this code itself; for a
keyless device (a Modbus relay, the demo plug) the hub runs the same code on the device's behalf,
so both refuse the same command for the same reason. It depends on nothing but ``hub.crypto`` and
``hub.identity.errors``: it has no clock (the caller passes ``now_ms``), no network and no store of
its own. What it must remember (controller, binding counter, epoch, grants, the highest counter
accepted from each signer) goes through a ``flash`` object: ``load() -> dict | None`` and
``save(dict)``, durable before ``save`` returns, so a kill -9 right after a command was accepted
can never re-open it for a replay. A flash may also offer ``save_counter(signer_hex, counter)``,
used instead of a whole ``save`` on the hot path (the hub's SQLite flash writes one row).

The rules of :meth:`LightNode.check`, in the order they are applied (the first that fails names the
refusal): a ``Command`` (malformed), for this chain id (wrong_chain), for this device
(wrong_device), signed by its signer (forged), the device bound (unbound), the signer the controller
or holding a grant of the current controller made in an epoch not below the device's
(not_authorised) that allows this command now (not_granted), ``issued_at`` within the window
(stale), the counter above the last one accepted from this signer (replayed).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hub.crypto.signing import Network
from hub.crypto.statements import (
    Bind,
    BindProof,
    Command,
    Grant,
    Handover,
    Revoke,
    Signed,
    StatementError,
)
from hub.identity.errors import Reason, Refused

RECORD_VERSION = 1
MAX_GRANTS = 256  # grants one device keeps; expired ones make room
RENTAL_REF = "call:"  # a grant's ref for a rental (the market's): "call:<call id hex>"


def _empty() -> dict[str, Any]:
    return {"v": RECORD_VERSION, "controller": None, "seq": 0, "time": None, "epoch": 0, "grants": [],
            "counters": {}}


class LightNode:
    """One device's verifier and its remembered state."""

    def __init__(self, device_public_key: bytes, network: Network, flash: Any, window_ms: int = 30_000) -> None:
        if not isinstance(device_public_key, bytes) or len(device_public_key) != 32:
            raise ValueError("a device public key is 32 bytes")
        if window_ms < 0:
            raise ValueError("window_ms must not be negative")
        self.public_key = device_public_key
        self.network = network
        self.window_ms = int(window_ms)
        self._flash = flash
        record = flash.load()
        self._record = _empty() if record is None else _checked(record)
        self._grants = [Signed.from_json(g) for g in self._record["grants"]]
        self._save_counter = getattr(flash, "save_counter", None)

    # --- what it knows --------------------------------------------------------------------------
    @property
    def controller(self) -> bytes | None:
        hexed = self._record["controller"]
        return bytes.fromhex(hexed) if hexed else None

    @property
    def seq(self) -> int:
        return self._record["seq"]

    @property
    def epoch(self) -> int:
        return self._record["epoch"]

    def counter(self, signer: bytes) -> int | None:
        return self._record["counters"].get(signer.hex())

    def grants(self) -> list[Signed]:
        return list(self._grants)

    def state(self) -> dict[str, Any]:
        """Everything it remembers, JSON-ready: nothing in it is secret."""
        return {
            "device": self.public_key.hex(),
            "controller": self._record["controller"],
            "seq": self._record["seq"],
            "time": self._record["time"],
            "epoch": self._record["epoch"],
            "grants": [g.to_json() for g in self._grants],
            "counters": dict(self._record["counters"]),
        }

    # --- ownership ------------------------------------------------------------------------------
    def bind(self, signed: Signed) -> None:
        """A ``Bind`` (the label's key) or ``BindProof`` (strong mode), signed by the device key.
        It applies to an unbound device, or over a binding (or reset) of an earlier ``time``: the
        label's holder wins, the whitepaper's weakness (docs/identity.md)."""
        st = self._expect(signed, (Bind, BindProof))
        self._for_me(st.device)
        self._signed_by(signed, self.public_key, "the device key")
        current = self._record["time"]
        if current is not None and st.time <= current:
            raise Refused(Reason.ALREADY_BOUND, f"a binding or reset of time {current} is newer than this one ({st.time})")
        self._change(controller=st.controller.hex(), time=st.time, grants=[])

    def handover(self, signed: Signed) -> None:
        """Control passes to ``to``: signed by the current controller, naming the current ``seq``."""
        st = self._expect(signed, (Handover,))
        self._for_me(st.device)
        self._from_controller(signed, st.controller)
        if st.seq != self.seq:
            raise Refused(Reason.REPLAYED, f"the hand-over names binding {st.seq}, the device is at {self.seq}")
        self._change(controller=st.to.hex(), grants=[])

    def reset(self, time_ms: int) -> None:
        """The factory-reset button: no controller, no grants. ``time_ms`` only rises, so a binding
        signed before the reset cannot be replayed to take the device back."""
        previous = self._record["time"] or 0
        self._change(controller=None, time=max(int(time_ms), previous), grants=[])

    def grant(self, signed: Signed, now_ms: int | None = None) -> None:
        """Record a grant of the current controller. Grants made below the device's epoch are void;
        with ``now_ms``, expired grants are dropped first."""
        st = self._expect(signed, (Grant,))
        self._for_me(st.device)
        self._from_controller(signed, st.controller)
        if st.epoch < self.epoch:
            raise Refused(Reason.NOT_AUTHORISED, f"the grant is of epoch {st.epoch}, revoked (the device is at epoch {self.epoch})")
        kept = [g for g in self._grants if g.signature != signed.signature
                and not (now_ms is not None and g.statement.not_after and g.statement.not_after < now_ms)]
        # One grant per (grantee, ref). A rental's (ref "call:...") only narrows: a grant that would
        # end later than the one kept is ignored, so a renter replaying its opening grant (or a hub
        # re-applying it after a restart) cannot re-open a window its controller closed early.
        same = [g for g in kept if g.statement.grantee == st.grantee and g.statement.ref == st.ref]
        if same and st.ref.startswith(RENTAL_REF) and any(_end(g.statement) <= _end(st) for g in same):
            return
        kept = [g for g in kept if g not in same]
        if len(kept) >= MAX_GRANTS:
            raise Refused(Reason.MALFORMED, f"the device keeps at most {MAX_GRANTS} grants; revoke some first")
        self._change(grants=kept + [signed], bump=False)

    def revoke(self, signed: Signed) -> None:
        """Raise the epoch: every grant made below it is void from now on, also while offline."""
        st = self._expect(signed, (Revoke,))
        self._for_me(st.device)
        self._from_controller(signed, st.controller)
        if st.epoch <= self.epoch:
            raise Refused(Reason.REPLAYED, f"epoch {st.epoch} is not above the device's epoch {self.epoch}")
        kept = [g for g in self._grants if g.statement.epoch >= st.epoch]
        self._change(epoch=st.epoch, grants=kept, bump=False)

    def transfer(self, controller: bytes) -> None:
        """Control passed to ``controller`` by a hand-over or sale the chain accepted in a final
        block. Only the hub calls this, for a keyless device it plays the light node of: a sale's
        payment can be checked on chain alone, so for on-chain transfers the chain is authoritative
        (``hub.identity.chainctl``). The previous controller's grants end, as with a hand-over."""
        if not isinstance(controller, bytes) or len(controller) != 32:
            raise ValueError("a controller is a 32-byte public key")
        self._change(controller=controller.hex(), grants=[])

    # --- commands -------------------------------------------------------------------------------
    def check(self, signed: Signed, now_ms: int) -> Command:
        """Accept a signed command or raise :class:`Refused`; on acceptance the signer's counter
        is already durable."""
        st = self._expect(signed, (Command,))
        if st.chain != self.network.chain_id:
            raise Refused(Reason.WRONG_CHAIN, f"signed for chain {st.chain!r}, this is {self.network.chain_id!r}")
        self._for_me(st.device)
        if not signed.verify(st.signer, self.network):
            raise Refused(Reason.FORGED, "the signature does not verify for its signer on this chain")
        controller = self.controller
        if controller is None:
            raise Refused(Reason.UNBOUND, "the device has no controller")
        if st.signer != controller:
            self._granted(st, now_ms)
        if abs(st.issued_at - now_ms) > self.window_ms:
            raise Refused(Reason.STALE, f"issued at {st.issued_at}, {st.issued_at - now_ms:+d} ms from the device's "
                                        f"clock; the window is ±{self.window_ms} ms")
        key = st.signer.hex()
        last = self._record["counters"].get(key)
        if last is not None and st.counter <= last:
            raise Refused(Reason.REPLAYED, f"counter {st.counter} is not above {last}, the last accepted from this signer")
        if self._save_counter is not None:
            self._save_counter(key, st.counter)
            self._record["counters"][key] = st.counter
        else:
            record = dict(self._record, counters={**self._record["counters"], key: st.counter})
            self._flash.save(record)
            self._record = record
        return st

    def _granted(self, st: Command, now_ms: int) -> None:
        controller = self.controller
        mine = [g.statement for g in self._grants
                if g.statement.grantee == st.signer and g.statement.controller == controller
                and g.statement.epoch >= self.epoch]
        if not mine:
            raise Refused(Reason.NOT_AUTHORISED, "the signer is neither the controller nor holds a grant")
        if not any(g.allows(st.entity, st.command, now_ms) for g in mine):
            raise Refused(Reason.NOT_GRANTED, f"no grant of this signer allows {st.entity}.{st.command} now")

    # --- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _expect(signed: Any, kinds: tuple[type, ...]) -> Any:
        if not isinstance(signed, Signed) or not isinstance(signed.statement, kinds):
            names = " or ".join(k.DOMAIN for k in kinds)
            got = signed.statement.DOMAIN if isinstance(signed, Signed) else type(signed).__name__
            raise Refused(Reason.MALFORMED, f"expected a signed {names}, got {got}")
        return signed.statement

    def _for_me(self, device: bytes) -> None:
        if device != self.public_key:
            raise Refused(Reason.WRONG_DEVICE, f"addressed to device {device.hex()[:16]}..., this is {self.public_key.hex()[:16]}...")

    def _signed_by(self, signed: Signed, key: bytes, who: str) -> None:
        if not signed.verify(key, self.network):
            raise Refused(Reason.FORGED, f"not signed by {who} on this chain")

    def _from_controller(self, signed: Signed, named: bytes) -> None:
        controller = self.controller
        if controller is None:
            raise Refused(Reason.UNBOUND, "the device has no controller")
        self._signed_by(signed, named, "the key it names")
        if named != controller:
            raise Refused(Reason.NOT_AUTHORISED, "signed by a key that is not the device's controller")

    def _change(self, *, bump: bool = True, grants: list[Signed] | None = None, **fields: Any) -> None:
        record = dict(self._record, **fields)
        if bump:
            record["seq"] = self._record["seq"] + 1
        if grants is not None:
            record["grants"] = [g.to_json() for g in grants]
        self._flash.save(record)  # durable first: memory never runs ahead of the flash
        self._record = record
        if grants is not None:
            self._grants = list(grants)


def _end(grant: Grant) -> float:
    return grant.not_after or float("inf")


def _checked(record: Any) -> dict[str, Any]:
    """A record read back from flash: refuse a damaged one loudly rather than run on guesses."""
    if not isinstance(record, dict) or record.get("v") != RECORD_VERSION:
        raise ValueError(f"light-node record: version {record.get('v') if isinstance(record, dict) else None!r} "
                         f"is not {RECORD_VERSION}")
    out = _empty()
    for key in out:
        if key in record:
            out[key] = record[key]
    if not isinstance(out["counters"], dict) or not isinstance(out["grants"], list):
        raise ValueError("light-node record: counters must be a map and grants a list")
    try:
        for g in out["grants"]:
            Signed.from_json(g)
    except StatementError as exc:
        raise ValueError(f"light-node record: a stored grant is damaged: {exc}") from None
    return out


class JsonFlash:
    """A flash of a device that is a JSON file: written to a temporary file, fsync'd, renamed over
    the old one (and the directory fsync'd), so a kill -9 or power cut leaves the old or the new
    record, never half of one. Mode 0600: a device's file holds its seed too.

    ``section``: the key of the file's top-level map this flash reads and writes, so one file
    holds the light node's record beside the device's seed and setup code."""

    def __init__(self, path: str | os.PathLike[str], section: str | None = "lightnode") -> None:
        self.path = Path(path)
        self.section = section

    def read_all(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict):
            raise ValueError(f"{self.path}: not a JSON object")
        return data

    def load(self) -> dict[str, Any] | None:
        data = self.read_all()
        return data.get(self.section) if self.section else (data or None)

    def save(self, record: dict[str, Any]) -> None:
        if self.section:
            self.update({self.section: record})
        else:
            self._write(record)

    def update(self, items: dict[str, Any]) -> None:
        """Replace some top-level keys, keeping the others (the seed beside the record)."""
        data = self.read_all()
        data.update(items)
        self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class MemoryFlash:
    """A flash that forgets on exit: for tests, and for a verifier that keeps nothing."""

    def __init__(self, record: dict[str, Any] | None = None) -> None:
        self.record = json.loads(json.dumps(record)) if record is not None else None

    def load(self) -> dict[str, Any] | None:
        return json.loads(json.dumps(self.record)) if self.record is not None else None

    def save(self, record: dict[str, Any]) -> None:
        self.record = json.loads(json.dumps(record))
