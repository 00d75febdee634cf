"""The demo home as a whole: builds the devices, keeps the simulated clock, routes commands."""

from __future__ import annotations

import random
from typing import Any

from hub.context import EntityHandle, PluginContext
from hub.devices.capabilities import Args

from hub_demo.config import DemoConfig
from hub_demo.devices import (
    FrontDoor,
    HallwayMotion,
    LivingRoomLight,
    SimulatedDevice,
    SmartPlug,
    Thermostat,
    VirtualSensors,
    WaterHeater,
)

DEVICES: list[type[SimulatedDevice]] = [SmartPlug, Thermostat, FrontDoor, LivingRoomLight, HallwayMotion, WaterHeater]


class Home:
    def __init__(self, hub: PluginContext, config: DemoConfig) -> None:
        # One seeded generator for the whole house: the same seed replays the same evening.
        self.rng = random.Random(config.seed)
        # Simulated time starts at the real time and runs time_scale times faster, so the outside
        # temperature follows a plausible day.
        self.clock = hub.now()
        kinds = DEVICES + ([VirtualSensors] if config.extra_entities else [])
        self.devices = [kind.add(hub, config, self.rng, self.clock) for kind in kinds]
        self._by_entity = {
            handle.entity_id: (device, key) for device in self.devices for key, handle in device.handles.items()
        }

    def step(self, dt: float) -> None:
        """Advance the whole house by ``dt`` simulated seconds."""
        self.clock += dt
        for device in self.devices:
            device.step(dt, self.clock)

    async def command(self, entity: EntityHandle, command: str, args: Args) -> Any:
        device, key = self._by_entity[entity.entity_id]
        return await device.command(key, command, args)
