"""The one path every command takes to a device, knowing who sent it.

:class:`hub.core.commands.CommandRegistry` validates every command (the API's, a rule's, a signed
one, one from the chain) and asks :meth:`Gate.route` where it goes:

* a keyless device (a Modbus relay, the demo plug): to its driver, as always. A signed command has
  been checked by then by the hub's light node for that device (:meth:`Identity.signed_call`); a
  local one (the owner's token, a rule) needs no signature, so the hub works with no chain at all;
* a device that holds its own key (an ESP32 plug): to the device, signed. A signed command is
  forwarded as it came; an owner's or a rule's is signed with the hub's controller key first. The
  device verifies it itself, so the hub never stands in for the device's own check.

A refusal, by the hub's light node or by the device, is a :class:`GateRefused`: a
``CommandError`` (the API answers with its status, the command log records ``"<reason>: ..."``)
and a :class:`hub.identity.errors.Refused` (callers that want the reason code have it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.core.commands import CommandError
from hub.identity.errors import STATUS, Refused

if TYPE_CHECKING:
    from hub.identity.service import Identity


class GateRefused(CommandError, Refused):
    def __init__(self, refused: Refused) -> None:
        Refused.__init__(self, refused.reason, refused.message)  # str(self): "<reason>: <message>"
        self.detail = refused.message
        self.message = str(self)  # what the command log and CommandError.as_dict show
        self.errors = []

    @property
    def status(self) -> int:  # type: ignore[override]
        return STATUS[self.reason]

    @property
    def code(self) -> str:  # type: ignore[override]
        return self.reason.value

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "reason": self.reason.value, "message": self.message}


class SignedControlOff(CommandError):
    """A signed command reached a hub with no chain: signatures are bound to a chain's network."""

    status, code = 409, "signed_control_off"


class Gate:
    def __init__(self, identity: "Identity") -> None:
        self._identity = identity

    def route(self, entry: Any, handler: Any, signed: Any) -> Any:
        """The handler for this command: the driver's own, or delivery to a key-holding device."""
        if not self._identity.holds_key(entry.device_id):
            return handler
        identity = self._identity

        async def deliver(entry: Any, command: str, model: Any) -> Any:
            try:
                statement = signed if signed is not None else identity.sign_command(
                    entry.device_id, entry.key, command, model.model_dump(mode="json", exclude_none=True))
                return await identity.deliver(entry.device_id, statement)
            except Refused as exc:
                raise exc if isinstance(exc, GateRefused) else GateRefused(exc) from None

        return deliver
