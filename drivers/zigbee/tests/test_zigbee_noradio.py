"""A hub whose stick is missing: the hub is up, the driver says so, and operations that need the
radio are refused with a clear 503 (bad input first gets its 422)."""

from zigbee_testing import zigbee_yaml
from tests.hubproc import HubProcess, run_cli


def test_a_missing_stick_leaves_the_hub_up_and_refuses_what_needs_the_radio(tmp_path, hub_data):
    (hub_data / "configuration.yaml").write_text(zigbee_yaml(str(tmp_path / "no-such-stick")))
    hub = HubProcess(hub_data).start()
    try:
        hub.wait_for(lambda: "cannot start the radio" in hub.log(), what="the driver's retry")
        answer = hub.get("/api/plugins/zigbee/devices")
        assert answer["connected"] is False and answer["devices"] == []
        status, body = hub.request("POST", "/api/plugins/zigbee/permit_join", {"duration": 60})
        assert status == 503 and "not connected" in body["message"]
        status, body = hub.request("POST", "/api/plugins/zigbee/permit_join", {"duration": 300})
        assert status == 422 and "duration" in str(body)
        status, body = hub.request("DELETE", "/api/plugins/zigbee/devices/not-an-address")
        assert status == 422 and "not an IEEE address" in body["message"]
        status, body = hub.request("POST", "/api/plugins/zigbee/backup")
        assert status == 503
        plugins = {p["name"]: p for p in hub.get("/api/plugins")}
        assert plugins["zigbee"]["status"] == "running"

        # The rule action is checked when the rule loads, and run, like any other.
        rule = {"id": "pair", "trigger": [{"trigger": "event", "event_type": "pair"}],
                "actions": [{"zigbee_permit_join": 300}]}
        checked = hub.post("/api/rules/check", rule)
        assert not checked["ok"] and "zigbee_permit_join" in str(checked["issues"])
        rule["actions"] = [{"zigbee_permit_join": 60}]
        assert hub.post("/api/rules/check", rule)["ok"]
        status, _ = hub.request("POST", "/api/rules", rule)
        assert status == 201
        hub.post("/api/rules/pair/trigger")
        trace = hub.wait_for(lambda: (t := hub.get("/api/rules/pair/traces")) and t[0]["finished"] and t[0], 5,
                             what="the rule's run")
        assert trace["outcome"] != "ok" and "not connected" in str(trace)

        env = {"HUB_URL": hub.url}
        out = run_cli(hub_data, "zigbee", "devices", env=env)
        assert out.returncode == 0 and "not connected" in out.stderr
        out = run_cli(hub_data, "zigbee", "permit-join", "30", env=env)
        assert out.returncode == 1 and "not connected" in out.stderr
        out = run_cli(hub_data, "zigbee", "permit-join", "255", env=env)
        assert out.returncode == 2 and "255" in out.stderr
    finally:
        hub.stop()


async def test_a_shutdown_cut_short_still_ends_the_database_thread(tmp_path, monkeypatch):
    """zigpy's database thread (aiosqlite's, not a daemon) outlived a radio shutdown that timed out,
    and kept `hub run`'s process from exiting after it had stopped. Whatever the radio library does,
    the thread ends once the driver has given up on it."""
    import asyncio
    import importlib

    from hub_zigbee import radio as R
    from hub_zigbee.config import ZigbeeConfig

    config = ZigbeeConfig(radio_type="znp", port=str(tmp_path / "no-such-stick"))
    cls = importlib.import_module(R.RADIOS["znp"]).ControllerApplication
    app = cls(R.zigpy_config(config, tmp_path))
    await app._load_db()
    thread = app._dblistener._db
    assert thread.is_alive()

    async def hangs(*args, **kwargs):
        await asyncio.sleep(3600)

    monkeypatch.setattr(app, "disconnect", hangs)  # a radio library whose close never returns
    monkeypatch.setattr(R, "STOP_TIMEOUT", 0.2)
    await R._shutdown(app)
    await asyncio.to_thread(thread.join, 5)
    assert not thread.is_alive()
