"""A hub on a simulated clock with a small fake home, for rule tests: time moves only when a test
says so, so a 10-minute ``for:`` takes milliseconds and the suite never sleeps."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hub import hookimpl
from hub.core.commands import CommandRefused
from hub.devices import Device, EntitySpec
from hub.runtime import Hub
from hub.testing import FakeScheduler

START = 1_767_261_600.0  # 2026-01-01 10:00:00 UTC, a Thursday


class Home:
    """Entities that rules watch and command; every command is recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        self.fail_on: set[str] = set()
        self.h = {}

    @hookimpl
    def hub_discover(self, hub):
        self.h = hub.add_device(Device(id="home", name="Home"), [
            EntitySpec(key="temp", capability="sensor", device_class="temperature", object_id="temp"),
            EntitySpec(key="power", capability="sensor", device_class="power", object_id="power"),
            EntitySpec(key="motion", capability="binary_sensor", device_class="motion", object_id="motion"),
            EntitySpec(key="ac", capability="switch", object_id="ac"),
            EntitySpec(key="fan", capability="switch", object_id="fan"),
            EntitySpec(key="lamp", capability="light", object_id="lamp"),
        ])
        for key, value in (("temp", 20.0), ("power", 100.0), ("motion", "off"), ("ac", "on"), ("fan", "off"), ("lamp", "off")):
            if self.h[key].state is None or self.h[key].state.value is None:
                self.h[key].set(value)
            else:  # after a restart the driver confirms what it reads from the device
                self.h[key].set(self.h[key].state.value)

    @hookimpl
    def hub_handle_command(self, entity, command, args):
        self.calls.append((entity.entity_id, command, args.model_dump(exclude_none=True)))
        if entity.entity_id in self.fail_on:
            raise OSError("relay did not answer")
        if command == "refuse":
            raise CommandRefused("no")
        entity.set("on" if command == "turn_on" else "off" if command == "turn_off" else
                   ("off" if entity.state.value == "on" else "on"))

    def set(self, key: str, value, **attrs) -> None:
        self.h[key].set(value, **attrs)


class RuleHub:
    def __init__(self, path: Path, clock: FakeScheduler, home: Home) -> None:
        self.path = path
        self.clock = clock
        self.home = home
        self.hub: Hub | None = None
        self.plugins: dict[str, object] = {}  # more plugins to register beside the home, by name

    def write(self, rules: str, name: str = "automations.yaml") -> Path:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(rules))
        return path

    async def start(self) -> Hub:
        self.hub = Hub(self.path, scheduler=self.clock, entrypoints=False)
        self.hub.plugins.register("home", self.home)
        for name, plugin in self.plugins.items():
            self.hub.plugins.register(name, plugin)
        await self.hub.start()
        await self.clock.settle()
        return self.hub

    async def stop(self) -> None:
        if self.hub is not None:
            await self.hub.stop()
            self.hub = None

    @property
    def engine(self):
        return self.hub.rules

    def traces(self, rule_id: str):
        return [t.as_dict() for t in self.engine.traces.for_rule(rule_id)]

    def calls(self, command: str | None = None, entity_id: str | None = None):
        return [c for c in self.home.calls if (command is None or c[1] == command) and (entity_id is None or c[0] == entity_id)]


@pytest.fixture
def clock():
    return FakeScheduler(START)


@pytest.fixture
async def rh(tmp_path, clock):
    (tmp_path / "configuration.yaml").write_text(
        "hub: {time_zone: UTC, latitude: 48.8566, longitude: 2.3522, commit_interval: 0.01}\n"
    )
    helper = RuleHub(tmp_path, clock, Home())
    yield helper
    await helper.stop()
