"""Fixtures for the hardware-in-the-loop scenarios; the helpers they use are in ``hil.py``.

Every process a fixture starts (socat, a simulator, ``hub run``) is ended by that fixture, whatever
the test did to it: paused, killed or unplugged.
"""

from __future__ import annotations

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
