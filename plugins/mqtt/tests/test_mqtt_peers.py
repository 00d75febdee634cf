"""Two real hubs on one real mosquitto: each sees the other's devices and commands them through the
other's own gate (docs/plugins/mqtt.md, "Two hubs")."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqtt_testing import hub_yaml
from tests.hubproc import HubProcess

PLUG = "mqtt:peer:hub_a:demo:smart_plug"


def _start(tmp_path: Path, name: str, yaml: str) -> HubProcess:
    data = tmp_path / name
    data.mkdir(exist_ok=True)
    (data / "configuration.yaml").write_text(yaml)
    return HubProcess(data).start()


def _state(hub: HubProcess, entity_id: str) -> dict:
    return hub.get(f"/api/states/{entity_id}")


@pytest.fixture
def two_hubs(tmp_path, mosquitto, mqtt_client):
    a_yaml = hub_yaml(mosquitto.port, "hub_a", "  commands:\n    include: ['switch.*', 'light.*']\n")
    b_yaml = f"hub: {{}}\nmqtt:\n  port: {mosquitto.port}\n  node_id: hub_b\n  reconnect_max: 1\n"
    hubs = {"a": _start(tmp_path, "a", a_yaml), "b": _start(tmp_path, "b", b_yaml)}
    yield hubs
    for hub in hubs.values():
        if hub.proc is not None and hub.proc.poll() is None:
            hub.stop()


def test_two_hubs_mirror_state_and_command(two_hubs, mosquitto, mqtt_client):
    a, b = two_hubs["a"], two_hubs["b"]
    watcher = mqtt_client(subscribe="ruffhub/#")

    # B lists A's devices, named after A, with A's capabilities, classes, units and options.
    device = b.wait_for(lambda: next((d for d in b.get("/api/devices") if d["id"] == PLUG), None), what="A's plug on B")
    assert device["name"] == "Smart plug (hub_a)"
    theirs = {e["entity_id"]: e for e in a.get("/api/entities")}
    ours = {e["entity_id"]: e for e in b.wait_for(
        lambda: [e for e in b.get("/api/entities") if e["entity_id"].split(".")[1].startswith("hub_a_")]
        if len(b.get("/api/devices")) >= len(a.get("/api/devices")) else None, what="every device of A on B")}
    assert len(ours) == len(theirs)
    for entity_id, entry in theirs.items():
        domain, object_id = entity_id.split(".", 1)
        mirror = ours[f"{domain}.hub_a_{object_id}"]
        for key in ("capability", "device_class", "unit", "options", "commands"):
            assert mirror.get(key) == entry.get(key), (entity_id, key)
        assert mirror["name"] == f"{entry['name']} (hub_a)"

    # A state change on A shows on B.
    b.wait_for(lambda: _state(b, "light.hub_a_living_room")["state"] == _state(a, "light.living_room")["state"])
    a.post("/api/entities/light.living_room/commands/turn_on", {"brightness": 40})
    b.wait_for(lambda: _state(b, "light.hub_a_living_room")["value"] == _state(a, "light.living_room")["value"]
               and _state(b, "light.hub_a_living_room")["state"] == "on", what="A's light on, on B")

    # A command from B's API switches A's plug, through A's gate, which names B in its log.
    before = _state(a, "switch.smart_plug")["value"]
    command = "turn_off" if before == "on" else "turn_on"
    answer = b.post(f"/api/entities/switch.hub_a_smart_plug/commands/{command}", {})
    wanted = "off" if before == "on" else "on"
    a.wait_for(lambda: _state(a, "switch.smart_plug")["state"] == wanted, what="A's plug switched")
    b.wait_for(lambda: _state(b, "switch.hub_a_smart_plug")["state"] == wanted, what="B follows A's plug")
    assert answer["entity_id"] == "switch.hub_a_smart_plug"
    logged = a.wait_for(lambda: [row for row in a.get("/api/commands?limit=20") if row["entity_id"] == "switch.smart_plug"],
                        what="A's command log")
    assert logged[0]["source"] == "mqtt:peer:hub_b", logged

    # A's gate refuses what A does not expose for commands, and B's caller gets A's reason.
    status, body = b.request("POST", "/api/entities/lock.hub_a_front_door/commands/unlock", {})
    assert status == 422 and body["error"] == "command_refused", body
    assert body["message"].startswith("hub hub_a: "), body  # A's own reason, naming A
    assert _state(a, "lock.front_door")["state"] == "locked"

    # No loop: B publishes nothing of its mirrors, and A mirrors nothing.
    assert not [t for t, _, _ in watcher.messages if t.startswith(("ruffhub/hub_b/device/", "ruffhub/hub_b/state/"))]
    assert not [d for d in a.get("/api/devices") if d["id"].startswith("mqtt:")]

    # A dies: its last will makes its entities unavailable on B at once; back when A is.
    a.kill()
    b.wait_for(lambda: _state(b, "switch.hub_a_smart_plug")["state"] == "unavailable", what="unavailable on B")
    status, body = b.request("POST", "/api/entities/switch.hub_a_smart_plug/commands/turn_on", {})
    assert status == 409, body
    a.start()
    b.wait_for(lambda: _state(b, "switch.hub_a_smart_plug")["state"] == _state(a, "switch.smart_plug")["state"] != "unavailable",
               timeout=20, what="available again on B")

    # The broker dies: B cannot know A's states any more, so its mirrors are unavailable until it is back.
    mosquitto.kill()
    b.wait_for(lambda: _state(b, "switch.hub_a_smart_plug")["state"] == "unavailable", what="no broker, no state")
    mosquitto.start()
    b.wait_for(lambda: _state(b, "switch.hub_a_smart_plug")["state"] == _state(a, "switch.smart_plug")["state"] != "unavailable",
               timeout=20, what="available again after the broker's return")
    for hub in (a, b):
        assert "Traceback" not in hub.log(), hub.log()[-3000:]
