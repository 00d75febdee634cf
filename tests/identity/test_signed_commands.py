"""Signed commands against a real ``hub run``: the demo plug, keyless, bound to OWNER; the hub
plays its light node. Every refusal carries its reason; the owner's token and rules still work."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hub.crypto.keys import PrivateKey
from tests.hubproc import HubProcess
from tests.identity.kit import (
    OWNER,
    PLUG,
    RENTER,
    STRANGER,
    bind_plug,
    command,
    command_log,
    network_of,
)

ROUTE = f"/api/devices/{PLUG}/signed-commands"


def _bound_hub(data: Path, **bind) -> tuple[HubProcess, object]:
    first = HubProcess(data).start()  # makes the embedded chain's genesis
    first.stop()
    net = network_of(data)
    bind_plug(data, net, **bind)
    return HubProcess(data).start(), net


@pytest.fixture(scope="module")
def bound(tmp_path_factory):
    data = tmp_path_factory.mktemp("signed") / "data"
    hub, net = _bound_hub(data, renter_until_ms=int(time.time() * 1000) + 3_600_000)
    try:
        yield hub, net
    finally:
        hub.stop()


def _send(hub: HubProcess, signed, route: str = ROUTE) -> tuple[int, dict]:
    return hub.request("POST", route, signed.to_json(), auth=False)


def _outlet(hub: HubProcess) -> str:
    return hub.get("/api/states/switch.smart_plug")["value"]


def test_the_controller_turns_the_plug_on_and_off_with_no_token(bound):
    hub, net = bound
    assert _send(hub, command(net, OWNER, "turn_on")) == (200, {"ok": True, "result": None})
    hub.wait_for(lambda: _outlet(hub) == "on", what="the plug on")
    assert _send(hub, command(net, OWNER, "turn_off"))[0] == 200
    hub.wait_for(lambda: _outlet(hub) == "off", what="the plug off")


@pytest.mark.parametrize("case, status, reason", [
    ("replayed", 409, "replayed"),
    ("forged", 401, "forged"),
    ("other genesis", 401, "forged"),
    ("stale", 422, "stale"),
    ("future", 422, "stale"),
    ("stranger", 403, "not_authorised"),
    ("wrong device", 422, "wrong_device"),
    ("wrong chain", 422, "wrong_chain"),
    ("not granted", 403, "not_granted"),
])
def test_refusals_name_their_reason_and_leave_the_plug_alone(bound, case, status, reason):
    hub, net = bound
    now = int(time.time() * 1000)
    if case == "replayed":
        signed = command(net, OWNER, "turn_off")
        assert _send(hub, signed)[0] == 200
    else:
        from hub.crypto.signing import Network

        signed = {
            "forged": lambda: command(net, OWNER, "turn_on", signed_by=STRANGER),
            "other genesis": lambda: command(Network(net.chain_id, b"\x00" * 32), OWNER, "turn_on"),
            "stale": lambda: command(net, OWNER, "turn_on", issued_at=now - 60_000),
            "future": lambda: command(net, OWNER, "turn_on", issued_at=now + 60_000),
            "stranger": lambda: command(net, STRANGER, "turn_on"),
            "wrong device": lambda: command(net, OWNER, "turn_on", device=PrivateKey(b"\x99" * 32).public_key),
            "wrong chain": lambda: command(net, OWNER, "turn_on", chain="another-chain"),
            "not granted": lambda: command(net, RENTER, "turn_off"),
        }[case]()
    before = _outlet(hub)
    answer = _send(hub, signed)
    assert answer[0] == status and answer[1]["reason"] == reason and not answer[1]["ok"], answer
    assert answer[1]["message"]
    assert _outlet(hub) == before


def test_a_renter_runs_the_granted_command_only(bound):
    hub, net = bound
    assert _send(hub, command(net, OWNER, "turn_off"))[0] == 200
    assert _send(hub, command(net, RENTER, "turn_on")) == (200, {"ok": True, "result": None})
    hub.wait_for(lambda: _outlet(hub) == "on", what="the plug on by the renter")
    assert _send(hub, command(net, RENTER, "turn_off"))[1]["reason"] == "not_granted"


def test_a_batch_answers_each_command_in_order(bound):
    hub, net = bound
    good = command(net, OWNER, "turn_on")
    batch = [good.to_json(), good.to_json(), command(net, STRANGER).to_json(), {"kind": "command"}]
    status, answers = hub.request("POST", ROUTE, batch, auth=False)
    assert status == 200
    assert [a["ok"] for a in answers] == [True, False, False, False]
    assert [a.get("reason") for a in answers[1:]] == ["replayed", "not_authorised", "malformed"]
    assert hub.request("POST", ROUTE, [good.to_json()] * 101, auth=False)[0] == 422
    assert hub.request("POST", ROUTE, [], auth=False)[0] == 422


def test_malformed_bodies_are_4xx_naming_the_field(bound):
    hub, net = bound
    good = command(net, OWNER).to_json()
    for body, field in [({**good, "sig": "zz"}, "sig"), ({**good, "kind": "bogus"}, "kind"),
                        ({**good, "body": {**good["body"], "counter": -1}}, "counter"), ("text", "kind")]:
        status, answer = hub.request("POST", ROUTE, body, auth=False)
        assert status == 422 and answer["reason"] == "malformed" and field in answer["message"], (body, answer)
    status, answer = hub.request("POST", ROUTE, raw=b'{"kind": "' + b"x" * 300_000 + b'"}', auth=False)
    assert status == 413 and "limit" in answer["message"], answer


def test_owner_token_commands_still_work_and_the_identity_is_shown(bound):
    hub, net = bound
    hub.post("/api/entities/switch.smart_plug/commands/turn_off")
    hub.wait_for(lambda: _outlet(hub) == "off", what="the plug off by token")
    device = hub.get(f"/api/devices/{PLUG}")
    identity = device["identity"]
    assert identity["controller"] == OWNER.public_key.hex() and identity["holds_key"] is False
    assert identity["seq"] == 1 and [g["grantee"] for g in identity["grants"]] == [RENTER.public_key.hex()]
    assert "seed" not in str(device)
    assert hub.get("/api/identity", auth=False)["chain_id"] == net.chain_id
    listed = {d["id"]: d for d in hub.get("/api/devices")}
    assert listed[PLUG]["identity"]["public_key"] == identity["public_key"]
    assert listed["demo:thermostat"]["identity"] is None


def test_a_device_with_no_key_and_the_token_route_are_apart(bound):
    hub, net = bound
    status, answer = _send(hub, command(net, OWNER), route="/api/devices/demo:thermostat/signed-commands")
    assert (status, answer["reason"]) == (422, "wrong_device")
    # The signed route is no way around the token for the rest of the API.
    assert hub.request("GET", "/api/devices", auth=False)[0] == 401


def test_replays_stay_refused_after_kill_9_and_everything_is_logged(tmp_path):
    data = tmp_path / "data"
    hub, net = _bound_hub(data)
    accepted = command(net, OWNER, "turn_on")
    try:
        assert _send(hub, accepted)[0] == 200
        hub.kill()  # no shutdown: the counter must already be on disk
        hub = HubProcess(data).start()
        assert _send(hub, accepted)[1]["reason"] == "replayed"
        assert _send(hub, command(net, OWNER, "turn_off"))[0] == 200
        hub.post("/api/entities/switch.smart_plug/commands/turn_on")
    finally:
        hub.stop()
    log = [row for row in command_log(data) if row[0] == "switch.smart_plug"]
    signer = f"signed:{OWNER.public_key.hex()[:16]}"
    assert (("switch.smart_plug", "turn_off", signer, 1, None) in log)
    refused = [row for row in log if row[3] == 0]
    assert refused and refused[-1][2] == signer and refused[-1][4].startswith("replayed: ")
    assert log[-1][2].startswith("api:")


def test_hub_device_call_signs_locally_and_hub_devices_shows_the_binding(bound, tmp_path):
    from hub.chain.node.files import write_key
    from tests.hubproc import run_cli

    hub, net = bound
    write_key(tmp_path / "owner.key", OWNER)
    write_key(tmp_path / "renter.key", RENTER)
    nowhere = tmp_path / "no-data"  # a signer with no token and no data directory of this hub

    def call(key: str, *args: str):
        return run_cli(nowhere, "device", "call", PLUG, "outlet", *args, "--key", str(tmp_path / key), "--url", hub.url)

    done = call("owner.key", "turn_off")
    assert done.returncode == 0 and "turn_off: ok" in done.stdout, done.stderr
    hub.wait_for(lambda: _outlet(hub) == "off", what="the plug off by the CLI")
    counter = int((tmp_path / "owner.key.counter").read_text())
    again = call("owner.key", "turn_on", "--counter", str(counter))
    assert again.returncode == 1 and "refused (replayed)" in again.stderr
    refused = call("renter.key", "turn_off")
    assert refused.returncode == 1 and "not_granted" in refused.stderr
    assert call("renter.key", "turn_on").returncode == 0
    shown = run_cli(hub.data, "devices", "--url", hub.url)
    assert shown.returncode == 0, shown.stderr
    line = next(line for line in shown.stdout.splitlines() if PLUG in line)
    assert OWNER.public_key.hex()[:16] in line and "outlet.turn_on" in line
