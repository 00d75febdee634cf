"""The gate in front of a device that verifies for itself (an in-process stand-in for the keyplug,
running the same LightNode): owner and rule commands reach it signed by the hub's controller key,
signed commands are forwarded as they came, and refusals are the device's."""

from __future__ import annotations

import time
from pathlib import Path

from hub.chain.node.files import read_key
from hub.crypto.statements import Bind, sign
from hub.identity.lightnode import JsonFlash, LightNode
from tests.hubproc import HubProcess
from tests.identity.holderplugin.keyholder import KEY
from tests.identity.kit import OWNER, STRANGER, command, command_log, network_of

PLUGINS = Path(__file__).parent / "holderplugin"
DEVICE = "keyholder:fakeplug"


def test_owner_commands_arrive_signed_and_the_device_refuses_for_itself(tmp_path):
    data = tmp_path / "data"
    hub = HubProcess(data, plugins_dir=PLUGINS).start()
    try:
        # Unbound: the device itself refuses the hub's signed owner command.
        status, answer = hub.request("POST", "/api/entities/switch.fake_plug_relay/commands/turn_on")
        assert (status, answer["error"]) == (409, "unbound"), answer
        assert hub.get(f"/api/devices/{DEVICE}")["identity"]["holds_key"] is True
    finally:
        hub.stop()
    # Bound (as `hub device bind` would) to the hub's controller key: the embedded chain's owner.
    net = network_of(data)
    controller = read_key(data / "chain" / "keys" / "owner.key")
    node = LightNode(KEY.public_key, net, JsonFlash(data / "plugins" / "keyholder" / "flash.json"))
    node.bind(sign(Bind(KEY.public_key, controller.public_key, int(time.time() * 1000)), KEY, net))
    hub = HubProcess(data, plugins_dir=PLUGINS).start()
    try:
        answer = hub.post("/api/entities/switch.fake_plug_relay/commands/turn_on")
        assert answer["result"] == {"by": controller.public_key.hex()[:16]}
        assert answer["state"]["value"] == "on"
        route = f"/api/devices/{DEVICE}/signed-commands"
        refused = hub.request("POST", route, command(net, STRANGER, "turn_off", device=KEY.public_key, entity="relay").to_json(), auth=False)
        assert refused[0] == 403 and refused[1]["reason"] == "not_authorised"
        # The owner's own key (not the hub's) is no controller of this device either.
        refused = hub.request("POST", route, command(net, OWNER, "turn_off", device=KEY.public_key, entity="relay").to_json(), auth=False)
        assert refused[1]["reason"] == "not_authorised"
        assert hub.get("/api/states/switch.fake_plug_relay")["value"] == "on"
    finally:
        hub.stop()
    log = [row for row in command_log(data) if row[0] == "switch.fake_plug_relay"]
    assert log[0][3:] == (0, "unbound: the device has no controller")
    assert log[1][2].startswith("api:") and log[1][3] == 1
    assert [row[4].split(":")[0] for row in log[2:]] == ["not_authorised", "not_authorised"]
