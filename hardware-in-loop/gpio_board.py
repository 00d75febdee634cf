"""A GPIO board for the scenarios: ``gpio_sim.py`` in its own process, the fake ``gpiod`` first on the
hub's ``PYTHONPATH``, sysfs trees for PWM and 1-Wire laid out as the kernel's, and a ``hub run``.

With ``HIL_GPIO_CHIP`` set (a Pi 5: ``gpiochip0``) the hub runs on the real chip and the real
``/sys`` instead, lines as ``HIL_GPIO_LINES`` says (README.md, "GPIO on a Pi 5"); scenarios that need
the simulator's hands (press the button, bounce the contact) are skipped there.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from hil import SIMULATORS, HubProcess, Simulator, free_port

FAKE_GPIOD = SIMULATORS / "fake_gpiod"
REAL_CHIP = os.environ.get("HIL_GPIO_CHIP")

#: The scenarios' lines: the Pi 5 header's BCM numbers a real run wires up (README.md).
LINES = {"button": 17, "pir": 27, "door": 5, "relay": 22, "fan": 23}
if REAL_CHIP:
    LINES.update({k: int(v) for k, v in (i.split("=") for i in os.environ.get("HIL_GPIO_LINES", "").split(",") if i)})

DS18B20 = {"boiler": "28-0316a2794aff", "attic": "28-0416b3a01cee"}
PWM = {"chip": 0, "channel": 0}
if REAL_CHIP:
    DS18B20 = {name: i for name, i in zip(("boiler", "attic"), os.environ.get("HIL_GPIO_DS18B20", "").split(",")) if i}
    chip, _, channel = os.environ.get("HIL_GPIO_PWM", "0:0").partition(":")
    PWM = {"chip": int(chip), "channel": int(channel or 0)}


def w1_slave(milli: int, crc_ok: bool = True) -> str:
    """A w1_slave file as the kernel's w1_therm writes it (the scratchpad's bytes, the CRC verdict)."""
    raw = (milli * 16 // 1000) & 0xFFFF
    data = f"{raw & 0xFF:02x} {raw >> 8:02x} 4b 46 7f ff 0c 10 1c"
    return f"{data} : crc=1c {'YES' if crc_ok else 'NO'}\n{data} t={milli}\n"


class GpioBoard:
    def __init__(self, folder: Path, **config) -> None:
        self.folder = folder
        self.dev = folder / "dev"
        self.pwm_root = folder / "sys/class/pwm"
        self.w1_root = folder / "sys/bus/w1/devices"
        self.data = folder / "hub"
        self.sim: Simulator | None = None
        self.control_port = free_port()
        self.hub: HubProcess | None = None
        self.config = config

    # --- the kernel's sysfs, as files ---------------------------------------------------------------
    def make_sysfs(self) -> None:
        chip = self.pwm_root / "pwmchip0"
        chip.mkdir(parents=True)
        (chip / "npwm").write_text("4\n")
        (chip / "export").write_text("")
        (chip / "unexport").write_text("")
        channel = chip / "pwm0"  # exported already, as after `echo 0 > export`
        channel.mkdir()
        for name, value in (("period", "0"), ("duty_cycle", "0"), ("enable", "0"), ("polarity", "normal")):
            (channel / name).write_text(value + "\n")
        master = self.folder / "sys/devices/w1_bus_master1"
        master.mkdir(parents=True)
        self.w1_root.mkdir(parents=True)
        (self.w1_root / "w1_bus_master1").symlink_to(master)
        for sensor in DS18B20.values():
            folder = master / sensor
            folder.mkdir()
            (folder / "name").write_text(sensor + "\n")
            (folder / "id").write_bytes(bytes.fromhex("28" + sensor[3:]))
            (self.w1_root / sensor).symlink_to(folder)  # /sys/bus/w1/devices/28-... are links, as in the kernel
        self.set_temperature("boiler", 61250)
        self.set_temperature("attic", -4500)

    def set_temperature(self, sensor: str, milli: int, crc_ok: bool = True) -> None:
        (self.w1_root / DS18B20[sensor] / "w1_slave").write_text(w1_slave(milli, crc_ok))

    def pwm(self, name: str) -> str:
        return (self.pwm_root / "pwmchip0/pwm0" / name).read_text().strip()

    # --- the configuration and the processes ---------------------------------------------------------
    def configuration(self) -> str:
        real = REAL_CHIP is not None
        gpio = {
            "chip": REAL_CHIP or "gpiochip0",
            "retry": 0.5,
            "onewire_interval": 1,
            "inputs": [
                {"name": "Doorbell", "line": LINES["button"], "kind": "button", "bias": "pull_up", "active_low": True,
                 "debounce": 0.005, "timings": {"double": 0.5, "long": 1.0}},
                {"name": "Hall PIR", "line": f"GPIO{LINES['pir']}", "bias": "pull_down", "device_class": "motion"},
                {"name": "Ghost", "line": "GPIO99", "device_class": "door"},  # no such line on the chip
                {"name": "Front door", "line": LINES["door"], "bias": "pull_up", "device_class": "door",
                 "debounce": 0.03},
                {"name": "Garage door", "line": 3, "chip": "gpiochip9", "device_class": "door"},
            ],
            "outputs": [
                {"name": "Pump relay", "line": LINES["relay"], "inverted": True, "initial": "off"},
                {"name": "Fan relay", "line": LINES["fan"], "initial": "on"},
            ],
            "pwm": [{"name": "Desk LED", **PWM, "frequency": 1000}],
            "onewire": [{"name": f"{k.title()} temperature", "id": v} for k, v in DS18B20.items()],
        }
        if not real:
            gpio.update(dev_dir=str(self.dev), pwm_root=str(self.pwm_root), w1_root=str(self.w1_root))
        gpio.update(self.config)
        return "gpio: " + json.dumps(gpio) + "\n"

    def env(self) -> dict[str, str]:
        if REAL_CHIP:
            return {}
        path = os.pathsep.join(filter(None, [str(FAKE_GPIOD), os.environ.get("PYTHONPATH")]))
        return {"PYTHONPATH": path, "FAKE_GPIOD_SIM": f"127.0.0.1:{self.control_port}", "HUB_GPIO_DEV": str(self.dev)}

    def start(self) -> "GpioBoard":
        if not REAL_CHIP:
            self.dev.mkdir(parents=True, exist_ok=True)
            self.make_sysfs()
            self.sim = Simulator("gpio_sim.py", ["--control", f"127.0.0.1:{self.control_port}",
                                                 "--chip", "gpiochip0=pinctrl-rp1:" + ",".join(f"GPIO{i}" for i in range(54)), "--dev-dir", str(self.dev)],
                                 self.folder).start()
        self.data.mkdir(exist_ok=True)
        (self.data / "configuration.yaml").write_text(self.configuration())
        self.hub = HubProcess(self.data, extra_env={"PYTHONUNBUFFERED": "1", **self.env()})
        self.hub.start(timeout=30)
        return self

    def stop(self) -> None:
        if self.hub is not None:
            try:
                self.hub.stop()
            except Exception:  # noqa: BLE001 - the simulator must stop too
                pass
        if self.sim is not None:
            self.sim.stop()

    # --- the simulator's hands --------------------------------------------------------------------------
    def needs_sim(self) -> None:
        if self.sim is None:
            pytest.skip("needs the simulator's hands (press, bounce); on a real board: by hand, README.md")

    def call(self, op: str, **fields) -> dict:
        self.needs_sim()
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=10) as conn:
            conn.sendall((json.dumps({"op": op, "chip": "gpiochip0", **fields}) + "\n").encode())
            reply = json.loads(conn.makefile().readline())
        if not reply.get("ok"):
            raise AssertionError(f"gpio_sim refused {op} {fields}: {reply.get('error')}")
        return reply

    def press(self, line: str) -> dict:
        return self.call("press", line=LINES[line])

    def release(self, line: str) -> dict:
        return self.call("release", line=LINES[line])

    def level(self, line: str) -> int:
        return self.call("level", line=LINES[line])["level"]
