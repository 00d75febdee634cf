"""What both MQTT benchmarks share: mosquitto, and a ``hub run`` with the bridge and the benchmark
driver on it."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

import _hubproc

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "plugins" / "mqtt" / "tests"))

from mqtt_testing import Mosquitto  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@contextlib.contextmanager
def hub_and_broker(folder: Path, *, qos: int = 0, commit_interval: float = 5.0, freeze_gc: bool = False, entities: int = 1000, hub_core: int | None = 0):
    # set_tcp_nodelay: mosquitto leaves Nagle on towards its subscribers by default, which holds
    # small messages back for tens of milliseconds (docs/plugins/mqtt.md, troubleshooting).
    broker = Mosquitto(folder / "broker", extra="set_tcp_nodelay true\nautosave_interval 1800").start()
    data = folder / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(
        f"hub: {{commit_interval: {commit_interval}}}\nbench_mqtt_driver:\n  entities: {entities}\n  freeze_gc: {str(freeze_gc).lower()}\n"
        f"mqtt:\n  port: {broker.port}\n  node_id: bench\n  queue_size: 100000\n"
        f"  publish:\n    qos: {qos}\n  commands:\n    include: ['switch.mqb_*']\n")
    port = _hubproc.free_port()
    proc = _hubproc.start(data, port, plugins_dir=HERE / "mqtt_plugins", core=hub_core)
    try:
        _hubproc.wait_healthy(proc, port)
        api = Api(f"http://127.0.0.1:{port}", (data / "owner-token").read_text().strip())
        api.pid = proc.pid
        deadline = time.monotonic() + 20
        while not api.get("/api/plugins/mqtt/status")["connected"]:
            assert time.monotonic() < deadline, "the hub did not connect to mosquitto"
            time.sleep(0.05)
        yield broker, api
    finally:
        _hubproc.stop(proc)
        broker.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def request(self, method: str, path: str, body=None, timeout: float = 120):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")

    def get(self, path: str):
        return self.request("GET", path)
