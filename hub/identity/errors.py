"""Why a statement or a command was refused: one code per reason, the same on every verifier.

The codes travel (HTTP bodies, the TCP device protocol, ``state_change`` transactions, the command
log), so they are stable strings, never renamed.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    MALFORMED = "malformed"  # not a well-formed statement
    WRONG_CHAIN = "wrong_chain"  # signed for another chain id
    WRONG_DEVICE = "wrong_device"  # addressed to another device
    FORGED = "forged"  # the signature does not verify
    REPLAYED = "replayed"  # counter not above the last one accepted from this signer
    STALE = "stale"  # issued_at outside the verifier's window
    UNBOUND = "unbound"  # the device has no controller
    NOT_AUTHORISED = "not_authorised"  # the signer is neither controller nor a grantee
    NOT_GRANTED = "not_granted"  # a grantee, but not for this command or not now
    ALREADY_BOUND = "already_bound"  # a binding that does not supersede the current one
    BAD_SETUP_CODE = "bad_setup_code"  # strong mode: the label's setup code does not match


#: HTTP status for each reason: the caller's fault (4xx) in every case.
STATUS = {Reason.MALFORMED: 422, Reason.WRONG_CHAIN: 422, Reason.WRONG_DEVICE: 422, Reason.FORGED: 401,
          Reason.REPLAYED: 409, Reason.STALE: 422, Reason.UNBOUND: 409, Reason.NOT_AUTHORISED: 403,
          Reason.NOT_GRANTED: 403, Reason.ALREADY_BOUND: 409, Reason.BAD_SETUP_CODE: 403}


class Refused(Exception):
    """A verifier (the hub's light node, or a device) refused: ``reason`` says why, for machines;
    ``message`` for people."""

    def __init__(self, reason: Reason | str, message: str = "") -> None:
        self.reason = Reason(reason)
        self.message = message or self.reason.value.replace("_", " ")
        super().__init__(f"{self.reason.value}: {self.message}")

    @property
    def status(self) -> int:
        return STATUS[self.reason]
