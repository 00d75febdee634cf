"""The fake BlueZ as a process, for the BLE scenarios here and drivers/ble/tests.

``FakeBluez(folder, {"kitchen": "bthome_thermometer", "led": "lbs"}).start()`` runs
simulators/fake_bluez.py (its own private dbus-daemon); ``bus_address`` is what to put in
``DBUS_SYSTEM_BUS_ADDRESS`` of the process under test, ``env()`` the whole environment for it.
``call`` speaks the control protocol: what a user's hands do to the devices (press the button, take a
sensor out of range, pull the adapter) and what a probe on the real LED would read (``get``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SIMULATORS = HERE / "simulators"
if str(SIMULATORS) not in sys.path:
    sys.path.insert(0, str(SIMULATORS))

from fake_bluez import DEFAULT_BIND_KEY, LBS_BUTTON, LBS_LED, LBS_SERVICE, address_of  # noqa: E402,F401
from hil import _end, free_port  # noqa: E402


def require_dbus_daemon() -> str:
    path = shutil.which("dbus-daemon")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("dbus-daemon is not installed; CI must have it (.ci/run installs it)")
        pytest.skip("dbus-daemon is not installed (apt-get install dbus-daemon)")
    return path


class FakeBluez:
    def __init__(self, folder: Path, devices: dict[str, str], *, adapter: str = "hci0",
                 bind_key: str = DEFAULT_BIND_KEY, interval: float = 1.0) -> None:
        self.devices = dict(devices)
        self.control_port = free_port()
        self.args = [sys.executable, str(SIMULATORS / "fake_bluez.py"), "--control",
                     f"127.0.0.1:{self.control_port}", "--adapter", adapter, "--bind-key", bind_key,
                     "--interval", str(interval)]
        for name, kind in devices.items():
            self.args += ["--device", f"{name}={kind}"]
        self.folder = folder
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []
        self.bus_address = ""

    def start(self, timeout: float = 15) -> "FakeBluez":
        require_dbus_daemon()
        env = {k: v for k, v in os.environ.items() if k != "DBUS_SYSTEM_BUS_ADDRESS"}
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env)
        ready = threading.Event()

        def pump() -> None:  # a thread, so the pipe never fills up and blocks the fake
            for line in self.proc.stdout:
                self.output.append(line)
                if line.startswith("ready "):
                    self.bus_address = line.split(" ", 1)[1].strip()
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout):
            _end(self.proc)
            raise RuntimeError(f"fake BlueZ {self.args} did not get ready:\n{''.join(self.output)}")
        return self

    def env(self) -> dict[str, str]:
        """Extra environment of a process that should see this fake as the system's BlueZ."""
        return {"DBUS_SYSTEM_BUS_ADDRESS": self.bus_address}

    def address(self, name: str) -> str:
        return address_of(name)

    def call(self, op: str, **fields) -> dict:
        """One control request; an ``{"ok": false}`` answer raises, naming the request."""
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=120) as conn:
            conn.sendall((json.dumps({"op": op, **fields}) + "\n").encode())
            answer = conn.makefile().readline()
        reply = json.loads(answer or "{}")
        if not reply.get("ok"):
            raise AssertionError(f"fake BlueZ refused {op} {fields}: {reply.get('error')}")
        return reply

    def advertise(self, device: str, values: dict | None = None, count: int = 1, rate: float | None = None,
                  step: float = 0) -> int:
        fields = {"device": device, "values": values or {}, "count": count}
        if step:
            fields["step"] = step
        if rate:
            fields["rate"] = rate
        return self.call("advertise", **fields)["sent"]

    def get(self, device: str, characteristic: str | None = None) -> dict:
        if characteristic is None:
            return self.call("get", device=device)
        return self.call("get", device=device, characteristic=characteristic)

    def stats(self) -> dict:
        return self.call("stats")

    def stop(self) -> None:
        if self.proc is not None:
            _end(self.proc)


@pytest.fixture
def fake_bluez(tmp_path):
    """Factory: ``fake_bluez({"kitchen": "bthome_thermometer"}, **options)`` -> a started
    :class:`FakeBluez`, stopped (with its dbus-daemon) at the end of the test."""
    fakes: list[FakeBluez] = []

    def start(devices: dict[str, str], **options) -> FakeBluez:
        fake = FakeBluez(tmp_path, devices, **options)
        fakes.append(fake)
        return fake.start()

    yield start
    for fake in fakes:
        fake.stop()
