"""A rental's grant on the light node: one per (renter, call), and it only ever narrows."""

from __future__ import annotations

import pytest

from hub.crypto.keys import PrivateKey
from hub.crypto.signing import Network
from hub.crypto.statements import Bind, Command, Grant, sign
from hub.identity.errors import Reason, Refused
from hub.identity.lightnode import LightNode, MemoryFlash

NET = Network("ruff-test", b"\x11" * 32)
DEVICE, OWNER, RENTER = PrivateKey(b"\x01" * 32), PrivateKey(b"\x03" * 32), PrivateKey(b"\x04" * 32)
NOW = 1_700_000_000_000


def _node() -> LightNode:
    node = LightNode(DEVICE.public_key, NET, MemoryFlash())
    node.bind(sign(Bind(DEVICE.public_key, OWNER.public_key, NOW - 60_000), DEVICE, NET))
    return node


def _grant(not_after: int, ref: str = "call:ab", grantee: PrivateKey = RENTER):
    return sign(Grant(DEVICE.public_key, OWNER.public_key, grantee.public_key, ["outlet.turn_on"], NOW, not_after, 0,
                      ref), OWNER, NET)


def _command(at: int, counter: int):
    return sign(Command("ruff-test", DEVICE.public_key, "outlet", "turn_on", {}, at, counter, RENTER.public_key),
                RENTER, NET)


def test_a_closing_grant_ends_access_and_a_replayed_opening_grant_does_not_reopen_it():
    node = _node()
    opening = _grant(NOW + 3_600_000)
    node.grant(opening)
    node.check(_command(NOW + 1_000, 1), NOW + 1_000)
    node.grant(_grant(NOW + 2_000))  # the renter ended early: closed at +2 s
    node.grant(opening)  # the renter (or a restarted hub) sends the opening grant again
    assert len(node.grants()) == 1
    with pytest.raises(Refused) as refused:
        node.check(_command(NOW + 5_000, 2), NOW + 5_000)
    assert refused.value.reason is Reason.NOT_GRANTED


def test_other_rentals_and_shares_keep_their_own_grants():
    node = _node()
    node.grant(_grant(NOW + 10_000, "call:ab"))
    node.grant(_grant(NOW + 20_000, "call:cd"))
    node.grant(_grant(NOW + 5_000, "share"))
    node.grant(_grant(NOW + 50_000, "share"))  # a share given again replaces the earlier one, longer or not
    ends = sorted((g.statement.ref, g.statement.not_after) for g in node.grants())
    assert ends == [("call:ab", NOW + 10_000), ("call:cd", NOW + 20_000), ("share", NOW + 50_000)]
