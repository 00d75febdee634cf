"""The virtual devices: one class each, wiring the models of :mod:`hub_demo.physics` to the hub.

Every device follows the same shape, which is the shape of a real driver:

* ``device`` and ``entities`` declare what the hub will show. Each entity has an explicit
  ``object_id`` so its ``entity_id`` is predictable (``switch.smart_plug``), whatever its name.
* ``__init__`` resumes from the states recorded before a restart: restarting the hub does not reset
  a real energy meter or unlock a real door, so the simulation must not either.
* ``step(dt, clock)`` advances the simulation by ``dt`` simulated seconds and reports the readings.
* ``command(key, command, args)`` carries out a command and reports the new state once "the device
  has confirmed it". Raising refuses the command; the message reaches whoever sent it.

Readings are rounded before they are written. The hub drops writes that change nothing, so rounding
is what keeps sensor noise in the last decimal from flooding the history.
"""

from __future__ import annotations

import asyncio
import hmac
import random
import time
from typing import Any

from hub.context import EntityHandle, PluginContext
from hub.core.commands import CommandRefused
from hub.devices.capabilities import Args
from hub.devices.model import Device, EntitySpec

from hub_demo import physics
from hub_demo.config import DemoConfig

MANUFACTURER = "Ruff Demo"

Handles = dict[str, EntityHandle]


def last_value(handle: EntityHandle, default: Any, attribute: str | None = None) -> Any:
    """The value (or an attribute) recorded before the restart, or ``default`` on a first start.

    A value of another type than ``default`` (an older plugin version, a hand-edited database) is
    ignored rather than trusted.
    """
    state = handle.state
    if state is None:
        return default
    value = state.value if attribute is None else state.attributes.get(attribute)
    if isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, type(default))
    return value if ok else default


def seconds_of_day(clock: float) -> float:
    t = time.localtime(clock)
    return t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec + clock % 1


class SimulatedDevice:
    device: Device
    entities: list[EntitySpec]

    @classmethod
    def add(cls, hub: PluginContext, config: DemoConfig, rng: random.Random, clock: float) -> SimulatedDevice:
        return cls(hub.add_device(cls.device, cls.entities), config, rng, clock)

    def __init__(self, handles: Handles, config: DemoConfig, rng: random.Random, clock: float) -> None:
        self.handles = handles
        self.config = config
        self.rng = rng

    def step(self, dt: float, clock: float) -> None:
        pass

    async def command(self, key: str, command: str, args: Args) -> Any:
        raise ValueError(f"this device does not support {command!r}")


class SmartPlug(SimulatedDevice):
    device = Device(id="smart_plug", name="Smart plug", manufacturer=MANUFACTURER, model="Plug P1")
    entities = [
        EntitySpec(key="outlet", capability="switch", device_class="outlet",
                   name="Smart plug", object_id="smart_plug"),
        EntitySpec(key="power", capability="sensor", device_class="power",
                   name="Smart plug power", object_id="smart_plug_power"),
        EntitySpec(key="energy", capability="meter", device_class="energy",
                   name="Smart plug energy", object_id="smart_plug_energy"),
    ]

    def __init__(self, handles: Handles, config: DemoConfig, rng: random.Random, clock: float) -> None:
        super().__init__(handles, config, rng, clock)
        self.on = last_value(handles["outlet"], "on") == "on"
        # Full precision inside; only the rounded value is reported, so small steps still add up.
        self.energy = float(last_value(handles["energy"], 0.0))
        self.watts = physics.plug_power(self.on, None, 0.0, rng)
        self._report()

    def step(self, dt: float, clock: float) -> None:
        self.energy = physics.energy_after(self.energy, self.watts, dt)  # what flowed since the last step
        self.watts = physics.plug_power(self.on, self.watts, dt, self.rng)
        self._report()

    async def command(self, key: str, command: str, args: Args) -> None:
        if command not in ("turn_on", "turn_off", "toggle"):
            return await super().command(key, command, args)
        self.on = {"turn_on": True, "turn_off": False, "toggle": not self.on}[command]
        self.watts = physics.plug_power(self.on, self.watts, 0.0, self.rng)
        self._report()

    def _report(self) -> None:
        self.handles["outlet"].set("on" if self.on else "off")
        self.handles["power"].set(round(self.watts, 1))
        self.handles["energy"].set(round(self.energy, 3))


class Thermostat(SimulatedDevice):
    MODES = ("off", "heat", "cool", "auto")
    MIN_TEMP, MAX_TEMP = 5.0, 35.0

    device = Device(id="thermostat", name="Thermostat", manufacturer=MANUFACTURER, model="Thermo T2")
    entities = [
        EntitySpec(key="climate", capability="climate", name="Thermostat", object_id="thermostat", unit="°C",
                   options={"min_temp": MIN_TEMP, "max_temp": MAX_TEMP, "hvac_modes": list(MODES)}),
        EntitySpec(key="room", capability="sensor", device_class="temperature",
                   name="Room temperature", object_id="room_temperature"),
        EntitySpec(key="outside", capability="sensor", device_class="temperature",
                   name="Outside temperature", object_id="outside_temperature"),
    ]

    def __init__(self, handles: Handles, config: DemoConfig, rng: random.Random, clock: float) -> None:
        super().__init__(handles, config, rng, clock)
        climate = handles["climate"]
        mode = last_value(climate, "heat")
        self.mode = mode if mode in self.MODES else "heat"
        self.resume_mode = self.mode if self.mode != "off" else "heat"  # what turn_on goes back to
        target = float(last_value(climate, 21.0, "target_temperature"))
        self.target = min(max(target, self.MIN_TEMP), self.MAX_TEMP)
        self.outside = physics.outside_temperature(seconds_of_day(clock), config.outside_mean)
        self.room = physics.Room(float(last_value(handles["room"], 18.0)))
        self._report()

    def step(self, dt: float, clock: float) -> None:
        self.outside = physics.outside_temperature(seconds_of_day(clock), self.config.outside_mean)
        self.room = self.room.step(dt, self.outside, self.mode, self.target)
        self._report()

    async def command(self, key: str, command: str, args: Any) -> None:
        if command == "set_temperature":
            if not self.MIN_TEMP <= args.temperature <= self.MAX_TEMP:
                raise CommandRefused(
                    f"target {args.temperature:g} °C is out of range: "
                    f"this thermostat accepts {self.MIN_TEMP:g} to {self.MAX_TEMP:g} °C"
                )
            self.target = args.temperature
        elif command == "set_hvac_mode":
            if args.hvac_mode not in self.MODES:
                raise CommandRefused(f"mode {args.hvac_mode!r} is not supported; supported: {', '.join(self.MODES)}")
            self.mode = args.hvac_mode
        elif command == "turn_on":
            self.mode = self.resume_mode
        elif command == "turn_off":
            self.mode = "off"
        else:
            return await super().command(key, command, args)
        if self.mode != "off":
            self.resume_mode = self.mode
        self._report()

    def _report(self) -> None:
        current = round(self.room.temperature, 1)
        self.handles["climate"].set(
            self.mode,
            current_temperature=current,
            target_temperature=self.target,
            # Asked of the controller now, so a mode change shows at once, not at the next step.
            hvac_action=physics.hvac_action(self.mode, self.room.temperature, self.target, self.room.action),
            min_temp=self.MIN_TEMP,
            max_temp=self.MAX_TEMP,
            hvac_modes=list(self.MODES),
        )
        self.handles["room"].set(current)
        self.handles["outside"].set(round(self.outside, 1))


class FrontDoor(SimulatedDevice):
    BOLT_TRAVEL = 0.5  # simulated seconds the motor takes to throw or draw the bolt
    LATCH_RELEASE = 3.0  # simulated seconds "open" holds the latch back before it springs shut

    device = Device(id="front_door", name="Front door", manufacturer=MANUFACTURER, model="Lock L3")
    entities = [EntitySpec(key="lock", capability="lock", name="Front door", object_id="front_door")]

    def __init__(self, handles: Handles, config: DemoConfig, rng: random.Random, clock: float) -> None:
        super().__init__(handles, config, rng, clock)
        # A bolt caught moving by the restart finished its travel; an opened latch sprang back.
        settled = {"locking": "locked", "unlocking": "unlocked", "open": "unlocked", "unlocked": "unlocked"}
        self.state = settled.get(last_value(handles["lock"], "locked"), "locked")
        self.relatch_at: float | None = None
        self.clock = clock
        handles["lock"].set(self.state, code_required=config.lock_code is not None)

    def step(self, dt: float, clock: float) -> None:
        self.clock = clock
        if self.relatch_at is not None and clock >= self.relatch_at:
            self.relatch_at = None
            self._report("unlocked")

    async def command(self, key: str, command: str, args: Any) -> None:
        if command == "lock":
            await self._move("locking", "locked")
        elif command in ("unlock", "open"):
            self._check_code(args.code)
            await self._move("unlocking", "unlocked" if command == "unlock" else "open")
            if self.state == "open":  # and not locked again by a command sent meanwhile
                self.relatch_at = self.clock + self.LATCH_RELEASE
        else:
            await super().command(key, command, args)

    def _check_code(self, code: str | None) -> None:
        expected = self.config.lock_code
        # compare_digest: the time taken must not tell how many leading digits were right.
        if expected is not None and not (
            code is not None and hmac.compare_digest(code.encode(), expected.get_secret_value().encode())
        ):
            raise CommandRefused("wrong or missing code")

    async def _move(self, moving: str, final: str) -> None:
        self.relatch_at = None
        if self.state == final:
            return
        self._report(moving)
        await asyncio.sleep(self.BOLT_TRAVEL / self.config.time_scale)
        if self.state == moving:  # not reversed by another command while the motor ran
            self._report(final)

    def _report(self, state: str) -> None:
        self.state = state
        self.handles["lock"].set(state)


class LivingRoomLight(SimulatedDevice):
    device = Device(id="living_room_light", name="Living room light", manufacturer=MANUFACTURER, model="Bulb B4")
    entities = [EntitySpec(key="light", capability="light", name="Living room light", object_id="living_room",
                           options={"supported_color_modes": ["rgb"]})]

    def __init__(self, handles: Handles, config: DemoConfig, rng: random.Random, clock: float) -> None:
        super().__init__(handles, config, rng, clock)
        light = handles["light"]
        self.on = last_value(light, "off") == "on"
        self.brightness = int(last_value(light, 255, "brightness"))  # what turn_on goes back to
        rgb = last_value(light, [255, 244, 229], "rgb_color")
        self.rgb = list(rgb) if len(rgb) == 3 else [255, 244, 229]
        self._report()

    async def command(self, key: str, command: str, args: Any) -> None:
        if command == "turn_on":
            self._turn_on(args)
        elif command == "turn_off":
            self.on = False
        elif command == "toggle":
            self.on = not self.on
        else:
            return await super().command(key, command, args)
        self._report()

    def _turn_on(self, args: Any) -> None:
        if args.color_temp_kelvin is not None:
            raise CommandRefused("this light has no colour temperature setting; use rgb_color")
        if args.rgb_color is not None:
            self.rgb = list(args.rgb_color)
        if args.brightness == 0:  # as in Home Assistant: dimming to 0 is switching off
            self.on = False
            return
        if args.brightness is not None:
            self.brightness = args.brightness
        self.on = True

    def _report(self) -> None:
        if self.on:
            self.handles["light"].set("on", brightness=self.brightness, rgb_color=self.rgb, color_mode="rgb")
        else:
            # Home Assistant's convention: an off light has no brightness or colour.
            self.handles["light"].set("off", brightness=None, rgb_color=None, color_mode=None)


class HallwayMotion(SimulatedDevice):
    device = Device(id="hallway_motion", name="Hallway motion sensor", manufacturer=MANUFACTURER, model="PIR M5")
    entities = [
        EntitySpec(key="motion", capability="binary_sensor", device_class="motion",
                   name="Hallway motion", object_id="hallway_motion"),
    ]

    def __init__(self, handles: Handles, config: DemoConfig, rng: random.Random, clock: float) -> None:
        super().__init__(handles, config, rng, clock)
        self.sensor = physics.MotionSensor(physics.next_motion(clock, config.motion_per_hour, rng))
        handles["motion"].set("off")

    def step(self, dt: float, clock: float) -> None:
        self.sensor = self.sensor.step(clock, self.config.motion_per_hour, self.rng)
        self.handles["motion"].set("on" if self.sensor.detected(clock) else "off")


class WaterHeater(SimulatedDevice):
    """A ``number`` (the set-point) and a ``select`` (the mode): the hub checks the range, the step and
    the option before the command gets here, so the device only applies what it is sent."""

    MODES = ("eco", "comfort", "boost", "away")
    MIN_TEMP, MAX_TEMP, STEP = 40.0, 65.0, 0.5

    device = Device(id="water_heater", name="Water heater", manufacturer=MANUFACTURER, model="Boiler W3")
    entities = [
        EntitySpec(key="set_point", capability="number", device_class="temperature",
                   name="Water heater set-point", object_id="water_heater_set_point",
                   options={"min": MIN_TEMP, "max": MAX_TEMP, "step": STEP, "mode": "slider"}),
        EntitySpec(key="mode", capability="select", name="Water heater mode", object_id="water_heater_mode",
                   options={"options": list(MODES)}),
    ]

    def __init__(self, handles: Handles, config: DemoConfig, rng: random.Random, clock: float) -> None:
        super().__init__(handles, config, rng, clock)
        target = float(last_value(handles["set_point"], 55.0))
        self.target = min(max(target, self.MIN_TEMP), self.MAX_TEMP)
        mode = last_value(handles["mode"], "comfort")
        self.mode = mode if mode in self.MODES else "comfort"
        self._report()

    async def command(self, key: str, command: str, args: Any) -> None:
        if command == "set_value":
            self.target = args.value
        elif command == "select_option":
            self.mode = args.option
        else:
            return await super().command(key, command, args)
        self._report()

    def _report(self) -> None:
        self.handles["set_point"].set(self.target)
        self.handles["mode"].set(self.mode)


class VirtualSensors(SimulatedDevice):
    """``extra_entities`` sensors spread over up to ten devices, to load-test the hub.

    A step touches only the sensors due for a reading (one per ``REPORT_EVERY`` simulated seconds
    each, on average), so its cost follows the number of readings, not the number of sensors.
    """

    DEVICES = 10
    REPORT_EVERY = 60.0
    MEAN, SPREAD, TIME_CONSTANT = 20.0, 2.0, 600.0

    @classmethod
    def add(cls, hub: PluginContext, config: DemoConfig, rng: random.Random, clock: float) -> VirtualSensors:
        count = config.extra_entities
        handles: Handles = {}
        for d in range(1, min(cls.DEVICES, count) + 1):
            device = Device(id=f"virtual_{d}", name=f"Virtual device {d}", manufacturer=MANUFACTURER, model="V1")
            specs = [
                EntitySpec(key=f"value_{n}", capability="sensor", device_class="temperature",
                           name=f"Virtual sensor {n}", object_id=f"virtual_{n}")
                for n in range(d, count + 1, cls.DEVICES)
            ]
            handles.update(hub.add_device(device, specs))
        return cls(handles, config, rng, clock)

    def __init__(self, handles: Handles, config: DemoConfig, rng: random.Random, clock: float) -> None:
        super().__init__(handles, config, rng, clock)
        self.sensors = list(handles.values())
        self.values = [float(last_value(h, self.MEAN)) for h in self.sensors]
        for handle, value in zip(self.sensors, self.values):
            handle.set(round(value, 1))

    def step(self, dt: float, clock: float) -> None:
        due = len(self.sensors) * min(dt / self.REPORT_EVERY, 1.0)
        count = int(due) + (self.rng.random() < due % 1)  # right on average, whatever the step
        for i in self.rng.sample(range(len(self.sensors)), count):
            self.values[i] = physics.wander(
                self.values[i], self.MEAN, self.SPREAD, self.REPORT_EVERY, self.TIME_CONSTANT, self.rng
            )
            self.sensors[i].set(round(self.values[i], 1))
