"""Fixtures for the hardware-in-the-loop scenarios; the helpers they use are in ``hil.py``.

Every process a fixture starts (socat, a simulator, ``hub run``) is ended by that fixture, whatever
the test did to it: paused, killed or unplugged.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hil import HubProcess, Simulator, SocatPair  # noqa: E402


@pytest.fixture
def pty_pair(tmp_path):
    """Factory: ``pty_pair(name)`` -> a plugged :class:`SocatPair`, unplugged at the end."""
    pairs: list[SocatPair] = []

    def make(name: str = "tty") -> SocatPair:
        pair = SocatPair(tmp_path, name).plug()
        pairs.append(pair)
        return pair

    yield make
    for pair in pairs:
        pair.unplug()


@pytest.fixture
def simulator(tmp_path):
    """Factory: ``simulator("modbus_sim.py", [args])`` -> a started :class:`Simulator`."""
    sims: list[Simulator] = []

    def start(script: str, args: list[str]) -> Simulator:
        sim = Simulator(script, args, tmp_path)
        sims.append(sim)
        return sim.start()

    yield start
    for sim in sims:
        sim.stop()


@pytest.fixture
def hub_process(tmp_path):
    """Factory: ``hub_process(configuration_text)`` -> a started ``hub run`` on a free port."""
    hubs: list[HubProcess] = []

    def start(configuration: str) -> HubProcess:
        data = tmp_path / f"hub{len(hubs)}"
        data.mkdir()
        (data / "configuration.yaml").write_text(configuration)
        hub = HubProcess(data, extra_env={"PYTHONUNBUFFERED": "1"})
        hubs.append(hub)
        return hub.start()

    yield start
    for hub in hubs:
        hub.stop()


#: The shared network's devices: one of each kind, plus a plug to silence, a contact sensor that
#: leaves and a motion sensor that drives a rule, so those scenarios do not disturb the others.
ZIGBEE_DEVICES = {
    "plug1": "plug", "light1": "light", "motion1": "motion", "contact1": "contact", "thermo1": "thermostat",
    "lock1": "lock", "cover1": "cover", "temp1": "climate_sensor",
    "plug2": "plug", "contact2": "contact", "motion2": "motion",
}


def _radios() -> list:
    """Both emulated coordinators, each on its own xdist worker; ``HIL_ZIGBEE_RADIO`` picks one."""
    wanted = os.environ.get("HIL_ZIGBEE_RADIO")
    out = []
    for radio in ("znp", "ezsp"):
        marks = [pytest.mark.xdist_group(f"hil_zigbee_{radio}")]  # one shared network per worker
        if wanted and radio != wanted:
            marks.append(pytest.mark.skip(reason=f"HIL_ZIGBEE_RADIO={wanted}"))
        elif not (Path(__file__).resolve().parent / "simulators" / f"{radio}_sim.py").exists():
            marks.append(pytest.mark.skip(reason=f"no {radio} emulator (simulators/{radio}_sim.py)"))
        out.append(pytest.param(radio, marks=marks))
    return out


@pytest.fixture(scope="module", params=_radios())
def zigbee_network(request, tmp_path_factory):
    """One emulated coordinator (ZNP for zigpy-znp, then EZSP for bellows) with
    :data:`ZIGBEE_DEVICES` behind it, and one ``hub run`` for the module's scenarios; or, with
    ``HIL_ZIGBEE_PORT`` set, a real coordinator whose devices were paired by hand (README.md)."""
    from hil import REAL_ZIGBEE_PORT, RealZigbeeNetwork, ZigbeeNetwork

    radio = request.param
    if REAL_ZIGBEE_PORT:
        if radio != "znp":
            pytest.skip("a real coordinator runs the scenarios once")
        network = RealZigbeeNetwork(REAL_ZIGBEE_PORT)
    else:
        network = ZigbeeNetwork(tmp_path_factory.mktemp(f"zigbee-{radio}"), ZIGBEE_DEVICES,
                                script=f"{radio}_sim.py", radio_type=radio)
    try:
        yield network.start()
    finally:
        network.stop()
