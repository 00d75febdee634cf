"""Helpers of the hardware-in-the-loop scenarios: socat pty pairs, simulator processes, real hubs.

Everything started here is a real process and is ended by the fixture that started it, whatever the
test did to it (paused, killed, unplugged). Tests that need socat fail, not skip, when ``CI`` is set.

Real hardware instead of simulators: set ``HIL_MODBUS_PORT`` (an RS-485 adapter with an SDM120 and/or a
relay board on it) or ``HIL_SERIAL_PORT`` (a USB serial device speaking the serial simulator's protocol);
see README.md in this folder. Scenarios that need to control the peer (mute it, unplug it) run only
against the simulators.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SIMULATORS = HERE / "simulators"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.hubproc import HubProcess, free_port, run_cli  # noqa: E402,F401  (re-exported for the tests)

REAL_MODBUS_PORT = os.environ.get("HIL_MODBUS_PORT")
REAL_SERIAL_PORT = os.environ.get("HIL_SERIAL_PORT")


def require_socat() -> str:
    path = shutil.which("socat")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("socat is not installed; CI must have it (.ci/run installs it)")
        pytest.skip("socat is not installed (apt-get install socat)")
    return path


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s")


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
        proc.terminate()
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class SocatPair:
    """Two pty ends joined by socat, reached through stable symlinks like /dev/serial/by-id names.

    ``unplug`` ends socat: the ptys vanish, the hub's open port fails, the links disappear, as when a
    USB adapter is pulled. ``replug`` starts socat again under the same link names (new /dev/pts
    numbers behind them, as a real replug gets a new ttyUSBn)."""

    def __init__(self, folder: Path, name: str) -> None:
        self.hub_end = folder / f"{name}-hub"
        self.device_end = folder / f"{name}-device"
        self.proc: subprocess.Popen | None = None

    def plug(self) -> "SocatPair":
        socat = require_socat()
        self.proc = subprocess.Popen(
            [socat, f"pty,raw,echo=0,link={self.hub_end}", f"pty,raw,echo=0,link={self.device_end}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: self.hub_end.exists() and self.device_end.exists(), 5, "socat's pty links")
        return self

    def unplug(self) -> None:
        if self.proc is not None:
            _end(self.proc)
        for link in (self.hub_end, self.device_end):
            link.unlink(missing_ok=True)

    replug = plug


class Simulator:
    """A simulator script as its own process; ``ready`` on its stdout means it serves."""

    def __init__(self, script: str, args: list[str], folder: Path) -> None:
        self.control = folder / f"control-{free_port()}.json"
        self.args = [sys.executable, str(SIMULATORS / script), *args]
        if script == "modbus_sim.py":
            self.args += ["--control", str(self.control)]
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 15) -> "Simulator":
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()

        def pump() -> None:  # a thread, so the pipe never fills up and blocks the simulator
            for line in self.proc.stdout:
                self.output.append(line)
                if line.strip() == "ready":
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout):
            _end(self.proc)
            raise RuntimeError(f"simulator {self.args} did not get ready:\n{''.join(self.output)}")
        return self

    def mute(self, *ids: int) -> None:
        """Those device ids stop answering (the others on the line go on)."""
        self.control.write_text(json.dumps({"muted": list(ids)}))
        self.proc.send_signal(signal.SIGUSR1)

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            _end(self.proc)


def state(hub: HubProcess, entity_id: str) -> dict:
    status, body = hub.request("GET", f"/api/states/{entity_id}")
    assert status == 200, (status, body)
    return body


def wait_state(hub: HubProcess, entity_id: str, predicate, timeout: float = 10, what: str = "") -> dict:
    return hub.wait_for(lambda: (s := state(hub, entity_id)) and predicate(s) and s, timeout,
                        what or f"{entity_id} to match")


def available(s: dict) -> bool:
    return s["available"] and s["value"] is not None
