"""BLE advertisements parsed per second by a running hub, through D-Bus as on a Pi.

The fake BlueZ (hardware-in-loop/simulators/fake_bluez.py, its own dbus-daemon) sends BTHome v2
thermometer advertisements (real payloads: temperature, humidity, battery; the temperature 0.01 °C
higher in each, so each is a state change in the hub, not a repeat) as bluetoothd reports them
(``PropertiesChanged`` of RSSI and ServiceData on the device objects); a real ``hub run`` with those
sensors configured receives them through bleak's BlueZ backend, parses each with bthome-ble and sets
its entities' states. The figure counts what the hub took in (its ``advertisements`` counter in
``GET /api/plugins/ble/devices``), not what was sent, and checks that every sensor's last value
reached its state.

Issue #19's target: at least 2,000 advertisements a second. Two runs: a burst (as fast as the fake
sends) and a sustained rate (``--rate`` per second, spread over the sensors), each reporting sent,
taken in and the rate taken in. The hub is pinned to one core, the fake and its dbus-daemon to the
other.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _hubproc import free_port, hub_executable, stop, wait_healthy

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "hardware-in-loop"))
sys.path.insert(0, str(REPO / "hardware-in-loop" / "simulators"))

from hil_ble import FakeBluez, address_of  # noqa: E402


class Api:
    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> dict:
        try:
            self.conn.request("GET", path, headers=self.headers)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):  # the server's keep-alive ran out
            self.conn.close()
            self.conn.request("GET", path, headers=self.headers)
            resp = self.conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 200, (resp.status, body)
        return body


def taken_in(api: Api) -> int:
    return api.get("/api/plugins/ble/devices")["advertisements"]


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"{what} not reached within {timeout} s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def run(fake: FakeBluez, api: Api, names: list[str], per_sensor: int, rate: float | None, mark: float,
        hub_pid: int) -> dict:
    """Every sensor sends ``per_sensor`` advertisements (at ``rate`` per second in all, or as fast as
    it can), the last one carrying the temperature ``mark``; waits until the hub took them all in."""
    before = taken_in(api)
    sent = [0] * len(names)

    def send(i: int, name: str) -> None:
        each = rate / len(names) if rate else None
        sent[i] = fake.advertise(name, {"temperature": 0.0}, count=per_sensor - 1, rate=each, step=0.01)
        sent[i] += fake.advertise(name, {"temperature": mark}, count=1)

    threads = [threading.Thread(target=send, args=(i, n)) for i, n in enumerate(names)]
    cpu_before = cpu_seconds(hub_pid)
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent_total = sum(sent)
    try:
        wait(lambda: taken_in(api) - before >= sent_total, 60, "the hub taking in every advertisement")
    except RuntimeError:
        pass  # reported below as fewer taken in than sent
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(hub_pid) - cpu_before
    got = taken_in(api) - before
    return {"sent": sent_total, "taken_in": got, "seconds": round(elapsed, 3),
            "taken_in_per_s": round(got / elapsed), "offered_per_s": rate or "as fast as sent",
            "hub_cpu_percent_of_one_core": round(100 * cpu / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument("--per-sensor", type=int, default=1000, help="advertisements each sensor sends per run")
    parser.add_argument("--rate", type=float, default=2500, help="offered per second in the sustained run")
    args = parser.parse_args()
    names = [f"sensor{i:02d}" for i in range(args.sensors)]
    cores = os.sched_getaffinity(0)
    hub_core, fake_core = (0, 1) if len(cores) >= 2 else (None, None)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if fake_core is not None:
            os.sched_setaffinity(0, {fake_core})  # the fake (and its dbus-daemon) inherit it
        fake = FakeBluez(folder, {n: "bthome_thermometer" for n in names}, interval=0).start()
        data = folder / "hub"
        data.mkdir()
        config = ["ble:", "  adapter: hci0", "  availability: 900", "  devices:"]
        for name in names:
            config += [f"    - address: \"{address_of(name)}\"", f"      name: {name}", "      type: bthome"]
        (data / "configuration.yaml").write_text("\n".join(config) + "\n")
        port = free_port()
        pin = (lambda: os.sched_setaffinity(0, {hub_core})) if hub_core is not None else None
        log = open(folder / "hub.log", "wb")
        hub = subprocess.Popen([*hub_executable(), "run", "--data", str(data), "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, **fake.env()}, preexec_fn=pin)
        try:
            wait_healthy(hub, port)
            api = Api(port, (data / "owner-token").read_text().strip())
            wait(lambda: api.get("/api/plugins/ble/devices")["scanning"], 30, "the hub scanning")
            run(fake, api, names, 50, None, 1.0, hub.pid)  # warm-up: entities created, parsers' first calls
            burst = run(fake, api, names, args.per_sensor, None, 2.0, hub.pid)
            sustained = run(fake, api, names, args.per_sensor, args.rate, 3.0, hub.pid)
            states = {e["unique_id"].rsplit(":", 1)[0]: e["state"]["value"] for e in api.get("/api/entities")
                      if e["platform"] == "ble" and e["key"] == "temperature"}
            last_values_ok = all(states.get(address_of(n)) == 3.0 for n in names)
            fake_stats = fake.stats()
        except BaseException:
            print("".join(fake.output)[-4000:], file=sys.stderr)
            print((folder / "hub.log").read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            stop(hub)
            fake.stop()
    print(json.dumps({"sensors": args.sensors, "per_sensor": args.per_sensor, "burst": burst,
                      "sustained": sustained, "every_last_value_in_its_state": last_values_ok,
                      "fake": {k: fake_stats[k] for k in ("advertisements", "dropped_not_discovering")}}, indent=2))


if __name__ == "__main__":
    main()
