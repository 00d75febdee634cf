"""The driver in a real ``hub run`` against the keyplug simulator in its own process: the device,
not the hub, decides which command runs, and says why it refused one."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from hub.crypto import keys
from hub.crypto.signing import Network
from hub.crypto.statements import Bind, Signed, sign

from keyplug_proc import Client, KeyPlug, command

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.hubproc import HubProcess  # noqa: E402

CONFIG = """\
lightnode:
  ping_interval: 0.5
  timeout: 2
  reconnect_max: 0.5
  devices:
    - {{host: 127.0.0.1, port: {port}, name: Kitchen plug}}
"""


@pytest.fixture
def keyplug(tmp_path):
    started: list[KeyPlug] = []

    def start(*args: str) -> KeyPlug:
        device = KeyPlug(tmp_path / "plug", *args)
        device.folder.mkdir(exist_ok=True)
        started.append(device.start())
        return device

    yield start
    for device in started:
        device.stop()


@pytest.fixture
def hub(tmp_path):
    started: list[HubProcess] = []

    def start(configuration: str, **kw) -> HubProcess:
        data = tmp_path / "hub"
        data.mkdir(exist_ok=True)
        (data / "configuration.yaml").write_text(configuration)
        process = HubProcess(data, extra_env={"PYTHONUNBUFFERED": "1"}, **kw)
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.stop()


def state(process: HubProcess, entity_id: str) -> dict:
    return process.request("GET", f"/api/states/{entity_id}")[1]


def test_the_devices_entities_appear_and_follow_its_link(keyplug, hub):
    device = keyplug()
    process = hub(CONFIG.format(port=device.port))
    process.wait_for(lambda: state(process, "switch.kitchen_plug_relay").get("value") == "off", what="the relay")
    assert state(process, "sensor.kitchen_plug_power")["value"] == 0.0
    meter = state(process, "meter.kitchen_plug_energy")
    assert meter["attributes"]["unit"] == "kWh"
    devices = process.get("/api/devices")
    mine = next(d for d in devices if d["id"] == f"lightnode:{device.public_key.hex()}")
    assert mine["connection"] == f"tcp://127.0.0.1:{device.port}"

    device.kill()
    process.wait_for(lambda: not state(process, "switch.kitchen_plug_relay")["available"], what="unavailable")
    status = process.get("/api/plugins/lightnode/status")
    assert status["links"][0]["connected"] is False

    device.start()  # the same flash, the same port: the hub reconnects by itself
    process.wait_for(lambda: state(process, "switch.kitchen_plug_relay")["available"], what="back")
    assert process.get("/api/plugins/lightnode/status")["links"][0]["connected"] is True


CHAINED = "chain: {{}}\n" + CONFIG
RELAY = "switch.kitchen_plug_relay"


def network(process: HubProcess) -> tuple[Network, bytes]:
    """The network the hub signs for and its controller key, as ``GET /api/identity`` tells them."""
    info = process.get("/api/identity", auth=False)
    return Network(info["chain_id"], bytes.fromhex(info["genesis_hash"])), bytes.fromhex(info["controller"])


def bind_to_hub(device: KeyPlug, process: HubProcess) -> Network:
    """What ``hub device bind`` does with a whitepaper label: the label's key signs that the hub's
    controller key controls the plug. Sent straight to the device (it serves several peers)."""
    net, controller = network(process)
    client = Client(device.port)
    bound = sign(Bind(device.public_key, controller, int(time.time() * 1000)), device.device_key(), net)
    assert client.deliver(bound, net)["ok"]
    client.close()
    return net


def owner_call(process: HubProcess, name: str) -> tuple[int, dict]:
    return process.request("POST", f"/api/entities/{RELAY}/commands/{name}")


def signed_call(process: HubProcess, device: KeyPlug, signed: Signed) -> tuple[int, dict]:
    return process.request("POST", f"/api/devices/lightnode:{device.public_key.hex()}/signed-commands",
                           signed.to_json(), auth=False)


@pytest.fixture
def bound(keyplug, hub):
    device = keyplug()
    process = hub(CHAINED.format(port=device.port))
    process.wait_for(lambda: state(process, RELAY).get("available"), what="the relay")
    code, body = owner_call(process, "turn_on")
    assert (code, body["reason"]) == (409, "unbound"), body  # the device said so: nobody controls it yet
    return device, process, bind_to_hub(device, process)


def test_owner_commands_are_signed_by_the_hub_and_checked_by_the_device(bound):
    device, process, _ = bound
    code, body = owner_call(process, "turn_on")
    assert code == 200, body
    process.wait_for(lambda: state(process, RELAY)["value"] == "on", what="the relay on")
    process.wait_for(lambda: state(process, "sensor.kitchen_plug_power")["value"] == 1500.0, what="power")
    assert owner_call(process, "toggle")[0] == 200
    process.wait_for(lambda: state(process, RELAY)["value"] == "off", what="the relay off")


def test_a_stranger_is_refused_by_the_device_and_its_reason_travels_back(bound):
    device, process, net = bound
    stranger = keys.PrivateKey.generate()
    code, body = signed_call(process, device, command(device.public_key, stranger, "turn_on", 1, network=net))
    assert (code, body["reason"]) == (403, "not_authorised"), body
    assert "the device refused" in body["message"]
    assert any("refused deliver: not_authorised" in line for line in device.lines)
    assert state(process, RELAY)["value"] == "off"


def test_a_replay_is_refused_after_kill_9_of_the_device_and_of_the_hub(bound, tmp_path):
    device, process, net = bound
    controller = _controller_key(process)
    accepted = command(device.public_key, controller, "turn_on", 10, network=net)
    assert signed_call(process, device, accepted)[0] == 200
    device.kill()
    process.kill()
    device.start()
    process.start()
    process.wait_for(lambda: state(process, RELAY).get("available"), what="the relay back")
    code, body = signed_call(process, device, accepted)
    assert (code, body["reason"]) == (409, "replayed"), body
    # The hub's own counter for owner commands went on rising too: they still work.
    assert owner_call(process, "turn_off")[0] == 200


def test_the_reset_button_clears_control_and_the_hub_learns_it(bound):
    device, process, net = bound
    assert owner_call(process, "turn_on")[0] == 200
    device.press_reset()
    device_id = f"lightnode:{device.public_key.hex()}"
    process.wait_for(lambda: device_id in process.get("/api/plugins/lightnode/status")["resets"], what="the reset")
    reset = Signed.from_json(process.get(f"/api/plugins/lightnode/resets/{device_id}"))
    assert reset.statement.device == device.public_key and reset.verify(device.public_key, net)
    code, body = owner_call(process, "turn_off")
    assert (code, body["reason"]) == (409, "unbound"), body


def _controller_key(process: HubProcess) -> keys.PrivateKey:
    """The hub's controller key (the embedded chain's owner key): a user signing from elsewhere
    with the same key, as `hub device call --key` does."""
    from hub.chain.node.files import read_key

    return read_key(process.data / "chain" / "keys" / "owner.key")
