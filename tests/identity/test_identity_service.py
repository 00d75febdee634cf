"""The Identity service in a running Hub (in-process, the demo plug keyless): binding, grants,
revocation and hand-over through ``deliver``, and what the owner's view shows of them."""

from __future__ import annotations

import time

import pytest

from hub.crypto.signing import Network
from hub.crypto.statements import Bind, Grant, Handover, Reset, Revoke, sign
from hub.identity.errors import Reason, Refused
from hub.runtime import Hub
from tests.identity.kit import OWNER, PLUG, PLUG_KEY, RENTER, STRANGER, command

NET = Network("ruff-test", b"\x42" * 32)


class _Chain:  # all the gate asks of the chain service
    network = NET


@pytest.fixture
async def hub(tmp_path):
    (tmp_path / "configuration.yaml").write_text("demo:\n  update_interval: 0.05\n")
    hub = Hub(tmp_path, entrypoints=True)
    hub.services["chain"] = _Chain()
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


async def _refusal(coro) -> Reason | None:
    try:
        await coro
    except Refused as exc:
        return exc.reason
    return None


async def test_bind_grant_revoke_hand_over_and_reset(hub):
    identity = hub.services["identity"]
    now = int(time.time() * 1000)
    identity.set_key(PLUG, PLUG_KEY.public_key, False)
    assert identity.record(PLUG).controller is None
    assert await _refusal(identity.signed_call(command(NET, OWNER))) == Reason.UNBOUND
    await identity.deliver(PLUG, sign(Bind(PLUG_KEY.public_key, OWNER.public_key, now), PLUG_KEY, NET))
    assert identity.record(PLUG).controller == OWNER.public_key.hex()
    await identity.signed_call(command(NET, OWNER, "turn_on"))
    assert hub.states.get("switch.smart_plug").value == "on"

    share = sign(Grant(PLUG_KEY.public_key, OWNER.public_key, RENTER.public_key, ["*"], 0, 0, 0, "share"), OWNER, NET)
    identity.add_grant(PLUG, share)
    identity.add_grant(PLUG, share)  # twice is once
    assert [g["grantee"] for g in identity.record(PLUG).grants] == [RENTER.public_key.hex()]
    await identity.signed_call(command(NET, RENTER, "turn_off"))
    assert hub.states.get("switch.smart_plug").value == "off"

    identity.revoke(PLUG, sign(Revoke(PLUG_KEY.public_key, OWNER.public_key, 1), OWNER, NET))
    assert identity.record(PLUG).grants == [] and identity.record(PLUG).epoch == 1
    assert identity.store.grants(PLUG) == [] and identity.store.grants(PLUG, include_revoked=True)[0]["revoked"]
    assert await _refusal(identity.signed_call(command(NET, RENTER, "turn_on"))) == Reason.NOT_AUTHORISED
    # A grant made before the revocation cannot be brought back.
    with pytest.raises(Refused) as refused:
        identity.add_grant(PLUG, share)
    assert refused.value.reason == Reason.NOT_AUTHORISED

    await identity.deliver(PLUG, sign(Handover(PLUG_KEY.public_key, OWNER.public_key, STRANGER.public_key, 1), OWNER, NET))
    assert identity.record(PLUG).controller == STRANGER.public_key.hex() and identity.record(PLUG).seq == 2
    assert await _refusal(identity.signed_call(command(NET, OWNER))) == Reason.NOT_AUTHORISED
    await identity.signed_call(command(NET, STRANGER, "turn_on"))

    await identity.deliver(PLUG, sign(Reset(PLUG_KEY.public_key, now + 1), PLUG_KEY, NET))
    assert identity.record(PLUG).controller is None
    old_bind = sign(Bind(PLUG_KEY.public_key, OWNER.public_key, now), PLUG_KEY, NET)
    assert await _refusal(identity.deliver(PLUG, old_bind)) == Reason.ALREADY_BOUND


async def test_the_hub_signs_with_rising_counters_and_local_commands_need_no_key(hub):
    identity = hub.services["identity"]
    identity.set_key(PLUG, PLUG_KEY.public_key, False)
    first = identity.sign_command(PLUG, "outlet", "turn_on", {})
    second = identity.sign_command(PLUG, "outlet", "turn_off", {})
    assert second.statement.counter > first.statement.counter
    assert first.verify(identity.controller_key.public_key, NET)
    # A keyless device with a key but no controller still obeys its owner's token and rules.
    await hub.commands.call("switch.smart_plug", "turn_on", source="api:owner")
    assert hub.states.get("switch.smart_plug").value == "on"


async def test_a_command_may_bring_its_grant_and_the_chain_its_own_clock(hub):
    """chainctl's path: a control_command carries the grantee's grant, checked at block time."""
    identity = hub.services["identity"]
    block_ms = int(time.time() * 1000) - 3_600_000  # an hour ago: stale by the hub's clock, not the block's
    identity.set_key(PLUG, PLUG_KEY.public_key, False)
    await identity.deliver(PLUG, sign(Bind(PLUG_KEY.public_key, OWNER.public_key, block_ms - 1000), PLUG_KEY, NET))
    grant = sign(Grant(PLUG_KEY.public_key, OWNER.public_key, RENTER.public_key, ["outlet.turn_on"],
                       block_ms - 60_000, block_ms + 60_000, 0, "contract:ab"), OWNER, NET)
    late = command(NET, RENTER, "turn_on", issued_at=block_ms)
    assert await _refusal(identity.signed_call(late)) == Reason.NOT_AUTHORISED  # no grant known yet
    # The grant is recorded now, but by the hub's clock it ended long ago.
    assert await _refusal(identity.signed_call(late, grant=grant)) == Reason.NOT_GRANTED
    await identity.signed_call(late, grant=grant, source="chain:0123456789abcdef", now_ms=block_ms + 2000)
    assert hub.states.get("switch.smart_plug").value == "on"
    assert [g["ref"] for g in identity.record(PLUG).grants] == ["contract:ab"]
