"""The hub as a user meets it: a real ``hub run`` process, its REST and WebSocket API, the CLI."""

from __future__ import annotations

import json
import textwrap

from websockets.sync.client import connect

from tests.hubproc import DEMO, HubProcess, run_cli

def test_fresh_data_dir_runs_the_embedded_default(tmp_path):
    proc = HubProcess(tmp_path / "fresh").start()
    try:
        states = {s["entity_id"]: s for s in proc.get("/api/states")}
        for entity_id in ("switch.smart_plug", "sensor.smart_plug_power", "meter.smart_plug_energy",
                          "climate.thermostat", "lock.front_door", "light.living_room", "binary_sensor.hallway_motion"):
            assert entity_id in states, entity_id
        assert (tmp_path / "fresh" / "owner-token").stat().st_mode & 0o077 == 0  # owner-only
        assert proc.token not in proc.log()  # the secret never reaches the log
        assert "owner-token" in proc.log() and "/docs" in proc.log()
    finally:
        assert proc.stop() == 0


def test_every_route_but_health_needs_a_token(hub):
    status, body = hub.request("GET", "/api/health", auth=False)
    assert status == 200 and body["status"] == "ok"
    status, body = hub.request("GET", "/api/states", auth=False)
    assert status == 401 and "Bearer" in body["message"]
    status, body = hub.request("GET", "/api/states", token="not-a-token")
    assert status == 401 and body["error"] == "unauthorized"

    created = run_cli(hub.data, "token", "create", "ci-bot")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert hub.request("GET", "/api/states", token=token)[0] == 200
    assert run_cli(hub.data, "token", "revoke", "ci-bot").returncode == 0
    assert hub.request("GET", "/api/states", token=token)[0] == 401


def test_commands_change_states_and_bad_input_names_the_field(hub):
    answer = hub.post("/api/entities/light.living_room/commands/turn_on", {"brightness": 128})
    assert answer["state"]["state"] == "on" and answer["state"]["attributes"]["brightness"] == 128

    status, body = hub.request("POST", "/api/entities/light.living_room/commands/turn_on", {"brightness": 300})
    assert status == 422 and body["errors"][0]["field"] == "brightness"
    status, body = hub.request("POST", "/api/entities/light.nowhere/commands/turn_on")
    assert status == 404 and body["error"] == "unknown_entity"
    status, body = hub.request("POST", "/api/entities/light.living_room/commands/explode")
    assert status == 404 and "turn_off" in body["message"]
    status, body = hub.request("POST", "/api/entities/light.living_room/commands/turn_on", raw=b"{not json")
    assert status == 422 and body["error"] == "invalid_request"
    status, body = hub.request("POST", "/api/entities/light.living_room/commands/turn_on", [1, 2])
    assert status == 422
    status, body = hub.request("GET", "/api/history/light.living_room?start=yesterday")
    assert status == 422 and "start" in body["message"]


def test_history_returns_recorded_changes_in_order(hub):
    for level in (10, 20, 30):
        hub.post("/api/entities/light.living_room/commands/turn_on", {"brightness": level})
    history = hub.get("/api/history/light.living_room")
    levels = [s["attributes"].get("brightness") for s in history["states"] if s["state"] == "on"]
    assert levels[-3:] == [10, 20, 30]
    times = [s["last_updated"] for s in history["states"]]
    assert times == sorted(times)


def test_websocket_subscribe_and_call(hub):
    with connect(f"ws://127.0.0.1:{hub.port}/api/ws", additional_headers={"Authorization": f"Bearer {hub.token}"}) as ws:
        assert json.loads(ws.recv())["type"] == "auth_ok"
        ws.send(json.dumps({"id": 1, "type": "subscribe_states", "entity_ids": ["light.living_room"]}))
        assert json.loads(ws.recv()) == {"id": 1, "type": "result", "success": True, "result": None}
        ws.send(json.dumps({"id": 2, "type": "call", "entity_id": "light.living_room", "command": "turn_on",
                            "args": {"brightness": 77}}))
        seen = {}
        while not ("event" in seen and "result" in seen):
            msg = json.loads(ws.recv(timeout=10))
            if msg["id"] == 1 and msg["type"] == "event":
                new = msg["event"]["data"]["new_state"]
                if new["attributes"].get("brightness") == 77:
                    seen["event"] = new
            elif msg["id"] == 2:
                assert msg["success"] is True
                seen["result"] = msg
        ws.send(json.dumps({"id": 3, "type": "call", "entity_id": "light.living_room", "command": "turn_on",
                            "args": {"brightness": -1}}))
        reply = json.loads(ws.recv(timeout=10))
        while reply.get("id") != 3:
            reply = json.loads(ws.recv(timeout=10))
        assert reply["success"] is False and reply["error"]["errors"][0]["field"] == "brightness"
        ws.send("not json")
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == "invalid_json"


def test_websocket_auth_by_first_message_and_refusal(hub):
    with connect(f"ws://127.0.0.1:{hub.port}/api/ws") as ws:
        assert json.loads(ws.recv())["type"] == "auth_required"
        ws.send(json.dumps({"type": "auth", "access_token": hub.token}))
        assert json.loads(ws.recv())["type"] == "auth_ok"
        ws.send(json.dumps({"id": 5, "type": "ping"}))
        assert json.loads(ws.recv()) == {"id": 5, "type": "pong"}
    with connect(f"ws://127.0.0.1:{hub.port}/api/ws") as ws:
        ws.recv()
        ws.send(json.dumps({"type": "auth", "access_token": "wrong"}))
        assert json.loads(ws.recv())["type"] == "auth_invalid"


def test_kill_9_loses_no_committed_state_and_restores_registries(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(DEMO)
    proc = HubProcess(data).start()
    proc.post("/api/entities/lock.front_door/commands/unlock")
    proc.wait_for(lambda: proc.get("/api/states/lock.front_door")["state"] == "unlocked", what="unlocked")
    proc.post("/api/entities/light.living_room/commands/turn_on", {"brightness": 42})
    before = proc.get("/api/history/light.living_room")["states"]  # reading history commits the batch
    devices_before = sorted(d["id"] for d in proc.get("/api/devices"))
    entities_before = sorted(e["entity_id"] for e in proc.get("/api/entities"))
    proc.kill()

    again = HubProcess(data)
    again.port = proc.port
    again.url = proc.url
    again.start()
    try:
        assert sorted(d["id"] for d in again.get("/api/devices")) == devices_before
        assert sorted(e["entity_id"] for e in again.get("/api/entities")) == entities_before
        light = again.get("/api/states/light.living_room")
        assert light["value"] == "on" and light["attributes"]["brightness"] == 42
        assert again.get("/api/states/lock.front_door")["value"] == "unlocked"
        after = again.get("/api/history/light.living_room")["states"]
        assert after[: len(before)] == before
    finally:
        again.stop()


def test_cli_against_the_running_hub(hub):
    out = run_cli(hub.data, "states", "light.*", "--json")
    assert out.returncode == 0, out.stderr
    assert [s["entity_id"] for s in json.loads(out.stdout)] == ["light.living_room"]
    out = run_cli(hub.data, "call", "light.living_room", "turn_on", "brightness=99")
    assert out.returncode == 0 and "now on" in out.stdout, out.stderr
    out = run_cli(hub.data, "call", "light.living_room", "turn_on", "brightness=999")
    assert out.returncode == 1 and "brightness" in out.stderr
    out = run_cli(hub.data, "devices", env={"COLUMNS": "200"})
    assert out.returncode == 0 and "demo:thermostat" in out.stdout
    out = run_cli(hub.data, "plugins", "--json")
    assert {"name": "demo", "status": "running"}.items() <= next(p for p in json.loads(out.stdout) if p["name"] == "demo").items()
    out = run_cli(hub.data, "history", "light.living_room", "--since", "10m", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["states"][-1]["attributes"]["brightness"] == 99


def test_cli_says_clearly_when_no_hub_runs(tmp_path):
    (tmp_path / "owner-token").write_text("x\n")
    out = run_cli(tmp_path, "states", "--url", "http://127.0.0.1:1")
    assert out.returncode == 1 and "Is `hub run` running?" in out.stderr


def test_broken_plugins_are_reported_and_the_hub_runs(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "no_import.py").write_text("raise ImportError('needs libfoo')\n")
    (plugins / "bad_setup.py").write_text(textwrap.dedent("""
        from hub import hookimpl
        @hookimpl
        def hub_setup(hub):
            raise RuntimeError("no such port /dev/ttyXYZ")
    """))
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(DEMO)
    proc = HubProcess(data, plugins_dir=plugins).start()
    try:
        info = {p["name"]: p for p in proc.get("/api/plugins")}
        assert info["no_import"]["status"] == "import_failed" and "needs libfoo" in info["no_import"]["error"]
        assert info["bad_setup"]["status"] == "failed" and "/dev/ttyXYZ" in info["bad_setup"]["error"]
        assert info["demo"]["status"] == "running"
        out = run_cli(data, "plugins")
        assert "needs libfoo" in out.stdout and "import_failed" in out.stdout
    finally:
        proc.stop()


def test_bad_configuration_is_refused_with_file_and_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text("hub:\n  port: eighty\ndemo:\n  update_interval: -1\nmodbsu: {}\n")
    out = run_cli(data, "config", "check")
    assert out.returncode == 1
    assert "configuration.yaml:2" in out.stdout and "hub.port" in out.stdout
    assert "demo.update_interval" in out.stdout
    assert "modbsu" in out.stdout
    out = run_cli(data, "run", "--port", "1")
    assert out.returncode == 1 and "hub.port" in out.stderr


def test_a_busy_port_is_a_clear_error(tmp_path):
    import socket

    from tests.hubproc import free_port

    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        out = run_cli(tmp_path / "data", "run", "--port", str(port))
    assert out.returncode == 1
    assert f"127.0.0.1:{port}" in out.stderr and "Address already in use" in out.stderr
    assert "Traceback" not in out.stderr
