"""The driver against the emulated ZNP coordinator over a real pty pair, in a real ``hub run``:
zigpy-znp's own serial code talks to the emulator, so framing, interview and reporting are real.

Needs socat (``.ci/run`` installs it) and hardware-in-loop/simulators/znp_sim.py.
"""

from __future__ import annotations

import json
import stat

import pytest

from hil import require_socat
from tests.hubproc import run_cli
from znp_rig import Rig, connected, entity_state, zigbee_devices

FAST = ("  availability: {mains: 1, battery: 2, check_interval: 0.2}\n"
        "  poll_interval: 0.5\n")


@pytest.fixture
def rig(tmp_path):
    require_socat()
    made: list[Rig] = []

    def make(**devices: str) -> Rig:
        r = Rig(tmp_path, devices)
        r.pair.plug()
        made.append(r)
        return r.start_sim()

    yield make
    for r in made:
        r.close()


def _paired(hub, ieee: str, timeout: float = 15) -> dict:
    return hub.wait_for(lambda: next((d for d in zigbee_devices(hub) if d["ieee"] == ieee and d["entities"]), None),
                        timeout, f"{ieee} interviewed with its entities")


def _switch(row: dict) -> str:
    return next(e for e in row["entities"] if e.startswith("switch."))


def _backup(data) -> dict:
    return json.loads((data / "plugins" / "zigbee" / "backups" / "zigbee-network.json").read_text())


def test_pair_by_rule_and_cli_control_list_and_remove(rig, tmp_path):
    r = rig(plug1="plug", light1="light")
    data = tmp_path / "data"
    data.mkdir()
    (data / "automations.yaml").write_text(
        "- id: pair_button\n  trigger: [{trigger: event, event_type: pair_button}]\n"
        "  actions: [{zigbee_permit_join: 60}]\n"
        "- id: watch\n  trigger:\n    - trigger: event\n"
        "      event_type: [zigbee_device_joined, zigbee_device_left, zigbee_device_removed]\n"
        "  mode: queued\n  actions: [{log: seen}]\n")
    hub = r.hub(data)
    hub.wait_for(lambda: connected(hub), 20, "the radio connected")
    env = {"HUB_URL": hub.url}

    assert r.control("join", device="plug1") == {"ok": False, "error": "permit join is closed"}
    hub.post("/api/events/pair_button")  # the rule's zigbee_permit_join opens the network
    hub.wait_for(lambda: r.control("join", device="plug1")["ok"], 5, "the rule to open joining")
    plug_ieee = r.control.device("plug1")["ieee"]
    plug = _paired(hub, plug_ieee)

    out = run_cli(data, "zigbee", "permit-join", "0", env=env)
    assert out.returncode == 0 and "closed" in out.stdout
    assert not r.control("join", device="light1")["ok"]
    out = run_cli(data, "zigbee", "permit-join", "30", env=env)
    assert out.returncode == 0 and "open for 30 s" in out.stdout, out.stderr
    assert r.control("join", device="light1")["ok"]
    light_ieee = r.control.device("light1")["ieee"]
    _paired(hub, light_ieee)

    # The device as the hub has it: manufacturer and model from its Basic cluster, a state read.
    assert plug["manufacturer"] and plug["model"] and plug["power_source"] == "mains"
    assert plug["device_id"] == f"zigbee:{plug_ieee}"
    switch = _switch(plug)
    hub.wait_for(lambda: (s := entity_state(hub, switch)) and s["available"], 10, "the plug's first state")
    out = run_cli(data, "zigbee", "devices", env=env)
    assert out.returncode == 0 and plug_ieee in out.stdout and plug["model"] in out.stdout
    assert "joining open until" in out.stdout

    hub.post(f"/api/entities/{switch}/commands/turn_on")
    assert entity_state(hub, switch)["state"] == "on"
    assert r.control("get", device="plug1", endpoint=1, cluster="on_off", attribute="on_off")["value"] in (True, 1)

    out = run_cli(data, "zigbee", "remove", plug_ieee, env=env)
    assert out.returncode == 0 and plug_ieee in out.stdout, out.stderr
    assert entity_state(hub, switch) is None
    assert f"zigbee:{plug_ieee}" not in [d["id"] for d in hub.get("/api/devices")]
    assert plug_ieee not in [d["ieee"] for d in zigbee_devices(hub)]
    assert r.control.device("plug1")["joined"] is False  # it was asked to leave, and left
    status, body = hub.request("DELETE", f"/api/plugins/zigbee/devices/{plug_ieee}")
    assert status == 404 and plug_ieee in body["message"]

    # A device that leaves by itself is unavailable; it no longer answers, so it is kept until the
    # user insists.
    assert r.control("leave", device="light1")["ok"]
    hub.wait_for(lambda: not next(d for d in zigbee_devices(hub) if d["ieee"] == light_ieee)["available"], 10,
                 "the light unavailable once it left")
    out = run_cli(data, "zigbee", "remove", light_ieee, env=env)
    assert out.returncode == 1 and "--force" in out.stderr and light_ieee in [d["ieee"] for d in zigbee_devices(hub)]
    out = run_cli(data, "zigbee", "remove", light_ieee.replace(":", "").upper(), "--force", env=env)
    assert out.returncode == 0, out.stderr
    assert light_ieee not in [d["ieee"] for d in zigbee_devices(hub)]

    out = run_cli(data, "zigbee", "backup", env=env)
    assert out.returncode == 0 and out.stdout.strip().endswith("zigbee-network.json"), out.stderr

    # The bus events, as a rule sees them.
    seen = [(t["trigger"]["event"]["event_type"], t["trigger"]["event"]["data"])
            for t in reversed(hub.get("/api/rules/watch/traces"))]
    for ieee, kinds in ((plug_ieee, ("joined", "removed")), (light_ieee, ("joined", "left", "removed"))):
        assert [(kind, d) for kind, d in seen if d["ieee"] == ieee] == [
            (f"zigbee_device_{kind}", {"ieee": ieee, "device_id": f"zigbee:{ieee}"}) for kind in kinds]

    # The network key is in two files, both the owner's only, and never in the log.
    zdir = data / "plugins" / "zigbee"
    for path in (zdir / "zigbee.db", zdir / "backups" / "zigbee-network.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((zdir / "backups").stat().st_mode) == 0o700
    key = _backup(data)["network_key"]["key"].lower()
    log = hub.log().lower()
    assert key not in log and ":".join(key[i:i + 2] for i in range(0, 32, 2)) not in log


def test_silence_unplugging_and_return(rig, tmp_path):
    r = rig(plug1="plug", motion1="motion")
    hub = r.hub(tmp_path / "data", extra=FAST)
    hub.wait_for(lambda: connected(hub), 20, "the radio connected")
    r.control("join_when_open", device="plug1")
    r.control("join_when_open", device="motion1")
    hub.post("/api/plugins/zigbee/permit_join", {"duration": 60})
    switch = _switch(_paired(hub, r.control.device("plug1")["ieee"]))
    motion_ieee = r.control.device("motion1")["ieee"]
    hub.wait_for(lambda: any(d["ieee"] == motion_ieee for d in zigbee_devices(hub)), 15, "the motion sensor")
    hub.wait_for(lambda: entity_state(hub, switch)["available"], 10, "the plug's state")

    # A battery device silent past `battery` is unavailable; a mains one once a poll fails too.
    motion = lambda: next(d for d in zigbee_devices(hub) if d["ieee"] == motion_ieee)  # noqa: E731
    assert motion()["quirk"].endswith("MotionAQ2") and motion()["power_source"] == "battery"
    hub.wait_for(lambda: not motion()["available"], 10, "the silent motion sensor unavailable")
    assert r.control("join", device="motion1")["ok"]  # it wakes and announces itself again
    hub.wait_for(lambda: motion()["available"], 10, "the motion sensor back when it speaks")
    r.control("mute", device="plug1")
    hub.wait_for(lambda: not entity_state(hub, switch)["available"], 15, "the muted plug unavailable")
    r.control("unmute", device="plug1")
    r.control("set", device="plug1", endpoint=1, cluster="on_off", attribute="on_off", value=True)
    hub.wait_for(lambda: (s := entity_state(hub, switch))["available"] and s["state"] == "on", 10,
                 "the plug back with its report")

    # The stick unplugged: every Zigbee entity unavailable, the hub up; replugged: back.
    r.pair.unplug()
    hub.wait_for(lambda: not entity_state(hub, switch)["available"], 10, "unavailable with the stick gone")
    assert hub.request("GET", "/api/health", auth=False)[0] == 200
    assert {p["name"]: p for p in hub.get("/api/plugins")}["zigbee"]["status"] == "running"
    r.pair.replug()
    hub.wait_for(lambda: connected(hub), 20, "the radio reconnected")
    hub.wait_for(lambda: entity_state(hub, switch)["available"], 15, "the plug back after the replug")


def test_restart_keeps_network_and_devices_without_re_pairing(rig, tmp_path):
    r = rig(plug1="plug", motion1="motion")
    data = tmp_path / "data"
    hub = r.hub(data)
    hub.wait_for(lambda: connected(hub), 20, "the radio connected")
    r.control("join_when_open", device="plug1")
    r.control("join_when_open", device="motion1")
    hub.post("/api/plugins/zigbee/permit_join", {"duration": 60})
    ieee, motion_ieee = r.control.device("plug1")["ieee"], r.control.device("motion1")["ieee"]
    entities = _paired(hub, ieee)["entities"]
    switch = _switch(_paired(hub, ieee))
    occupancy = next(e for e in _paired(hub, motion_ieee)["entities"] if "occupancy" in e)
    hub.wait_for(lambda: entity_state(hub, switch)["available"], 10, "the plug's first state")
    hub.wait_for(lambda: entity_state(hub, occupancy)["available"], 10, "the sensor's first state")
    sensed = entity_state(hub, occupancy)["state"]
    hub.post(f"/api/entities/{switch}/commands/turn_on")
    before = _backup(data)
    hub.stop()

    hub = r.hub(data)  # joining stays closed: the plug can only come back from zigpy's database
    hub.wait_for(lambda: connected(hub), 20, "the radio connected again")
    assert _paired(hub, ieee)["entities"] == entities  # the same entity ids, from zigpy's database
    # The sleepy sensor cannot be read; heard recently, it shows its last state again meanwhile.
    hub.wait_for(lambda: (s := entity_state(hub, occupancy))["available"] and s["state"] == sensed, 10,
                 "the sleepy sensor's last state")
    hub.wait_for(lambda: (s := entity_state(hub, switch))["available"] and s["state"] == "on", 10,
                 "the plug read again after the restart")
    hub.post(f"/api/entities/{switch}/commands/turn_off")
    assert r.control("get", device="plug1", endpoint=1, cluster="on_off", attribute="on_off")["value"] in (False, 0)
    after = _backup(data)
    assert (after["pan_id"], after["extended_pan_id"], after["channel"]) == \
        (before["pan_id"], before["extended_pan_id"], before["channel"])


def test_a_blank_stick_gets_the_backup_not_a_new_network(rig, tmp_path):
    r = rig(plug1="plug")
    data = tmp_path / "data"
    hub = r.hub(data)
    hub.wait_for(lambda: connected(hub), 20, "the radio connected")
    hub.wait_for(lambda: (data / "plugins/zigbee/backups/zigbee-network.json").exists(), 10, "the first backup")
    before = _backup(data)
    hub.stop()
    # A new stick (blank NVRAM) and a lost database: only the JSON backup knows the network.
    r.stop_sim()
    r.start_sim(state=tmp_path / "new-stick.json")
    for suffix in ("", "-wal", "-shm"):
        (data / "plugins" / "zigbee" / f"zigbee.db{suffix}").unlink(missing_ok=True)

    hub = r.hub(data)
    hub.wait_for(lambda: connected(hub), 20, "the new stick connected")
    after = _backup(data)
    for field in ("pan_id", "extended_pan_id", "channel", "network_key"):
        assert after[field] == before[field] if field != "network_key" else \
            after[field]["key"] == before[field]["key"], field
