"""The driver in a real ``hub run`` against the keyplug simulator in its own process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from keyplug_proc import KeyPlug

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

    def start(configuration: str) -> HubProcess:
        data = tmp_path / "hub"
        data.mkdir(exist_ok=True)
        (data / "configuration.yaml").write_text(configuration)
        process = HubProcess(data, extra_env={"PYTHONUNBUFFERED": "1"})
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
