"""The bridge's skeleton against a real mosquitto: a hub connects, says it is online, and says
offline through its last will when it dies."""

from __future__ import annotations

from mqtt_testing import hub_yaml
from tests.hubproc import HubProcess


def test_hub_online_then_offline_by_last_will(tmp_path, mosquitto, mqtt_client):
    watcher = mqtt_client(subscribe="ruffhub/#")
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(hub_yaml(mosquitto.port))
    hub = HubProcess(data).start()
    try:
        assert watcher.wait("ruffhub/hub1/status", lambda p: p == b"online") == b"online"
        status = hub.get("/api/plugins/mqtt/status")
        assert status["connected"] is True and status["node_id"] == "hub1"
    finally:
        hub.kill()
    assert watcher.wait("ruffhub/hub1/status", lambda p: p == b"offline", timeout=100) == b"offline"
