"""The simulated physics of the demo home, with no hub and no I/O.

Everything here is a plain function or a frozen dataclass that takes a time step (simulated seconds)
and returns new values, so the model can be tested in microseconds without a hub, and so the same
inputs always give the same outputs (randomness comes in as a seeded ``random.Random``).

Updates are exact exponential solutions over each step rather than Euler steps, so a large
``time_scale`` (hours per step) cannot make the model unstable, only coarser.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

HOUR = 3600.0
DAY = 86400.0

# --- the room and its thermostat ----------------------------------------------------------------

ROOM_TIME_CONSTANT = 3 * HOUR  # a lived-in, averagely insulated room loses 63 % of its lead in 3 h
HEATING_RATE = 12.0 / HOUR  # °C/s a full-power radiator adds, before losses
COOLING_RATE = 6.0 / HOUR  # °C/s a full-power air conditioner removes
HVAC_LAG = 150.0  # s for a radiator to warm up or cool down: why the room overshoots a little
HYSTERESIS = 0.3  # °C below (above) target before heating (cooling) starts again: no relay chatter
AUTO_DEADBAND = 1.0  # °C: in auto, a wider band so heating and cooling never fight each other
MAX_SUBSTEP = 10.0  # s: the thermostat looks at the room at least this often

OUTSIDE_AMPLITUDE = 4.0  # °C either side of the daily mean
OUTSIDE_WARMEST = 15 * HOUR  # 15:00; the coldest is twelve hours earlier, before dawn


def relax(value: float, target: float, dt: float, time_constant: float) -> float:
    """Exact first-order approach of ``value`` towards ``target`` over ``dt``."""
    return target + (value - target) * math.exp(-dt / time_constant)


def outside_temperature(seconds_of_day: float, mean: float, amplitude: float = OUTSIDE_AMPLITUDE) -> float:
    """A daily sine: warmest mid-afternoon, coldest before dawn."""
    phase = 2 * math.pi * (seconds_of_day - OUTSIDE_WARMEST) / DAY
    return mean + amplitude * math.cos(phase)


def hvac_action(mode: str, current: float, target: float, previous: str) -> str:
    """What a bang-bang thermostat does now: ``heating``, ``cooling``, ``idle`` or ``off``.

    It keeps heating (cooling) until the target is reached, but starts again only once the room has
    drifted past the hysteresis band, as a real thermostat does to spare its relay.
    """
    if mode == "off":
        return "off"
    band = AUTO_DEADBAND if mode == "auto" else HYSTERESIS
    if mode in ("heat", "auto") and (current < target - band or (previous == "heating" and current < target)):
        return "heating"
    if mode in ("cool", "auto") and (current > target + band or (previous == "cooling" and current > target)):
        return "cooling"
    return "idle"


@dataclass(frozen=True)
class Room:
    """A room's air temperature and its heating/cooling output (-1 full cooling .. 1 full heating)."""

    temperature: float
    output: float = 0.0
    action: str = "off"

    def step(self, dt: float, outside: float, mode: str, target: float) -> Room:
        room = self
        remaining = max(dt, 0.0)
        while remaining > 0:
            h = min(remaining, MAX_SUBSTEP)
            room = room._substep(h, outside, mode, target)
            remaining -= h
        return room

    def _substep(self, dt: float, outside: float, mode: str, target: float) -> Room:
        action = hvac_action(mode, self.temperature, target, self.action)
        drive = {"heating": 1.0, "cooling": -1.0}.get(action, 0.0)
        output = relax(self.output, drive, dt, HVAC_LAG)
        rate = HEATING_RATE if output > 0 else COOLING_RATE
        # Newton's cooling towards outside, shifted by what the radiator (or AC) puts in.
        equilibrium = outside + output * rate * ROOM_TIME_CONSTANT
        temperature = relax(self.temperature, equilibrium, dt, ROOM_TIME_CONSTANT)
        return replace(self, temperature=temperature, output=output, action=action)


# --- noise that looks like a measurement --------------------------------------------------------


def wander(value: float, mean: float, spread: float, dt: float, time_constant: float, rng: random.Random) -> float:
    """One step of a mean-reverting random walk (Ornstein-Uhlenbeck), exact for any ``dt``.

    Real readings fluctuate but do not drift off forever; ``spread`` is the long-run standard deviation.
    """
    decay = math.exp(-max(dt, 0.0) / time_constant)
    return mean + (value - mean) * decay + spread * math.sqrt(1 - decay * decay) * rng.gauss(0.0, 1.0)


# --- the smart plug -----------------------------------------------------------------------------

LOAD_MEAN, LOAD_SPREAD, LOAD_MIN, LOAD_MAX = 115.0, 8.0, 90.0, 140.0  # W: a lamp and a TV
STANDBY_MEAN, STANDBY_SPREAD, STANDBY_MIN, STANDBY_MAX = 0.4, 0.03, 0.3, 0.5  # W: the plug's own relay
LOAD_TIME_CONSTANT = 60.0  # s: a TV's draw follows the picture, roughly minute by minute


def plug_power(on: bool, previous: float | None, dt: float, rng: random.Random) -> float:
    """The plug's measured power in W: the load when on, its own standby draw when off."""
    if on:
        mean, spread, low, high = LOAD_MEAN, LOAD_SPREAD, LOAD_MIN, LOAD_MAX
    else:
        mean, spread, low, high = STANDBY_MEAN, STANDBY_SPREAD, STANDBY_MIN, STANDBY_MAX
    if previous is None or not low <= previous <= high:
        previous = mean  # just switched: start from the typical draw, not from the other state's
    return min(max(wander(previous, mean, spread, dt, LOAD_TIME_CONSTANT, rng), low), high)


def energy_after(kwh: float, watts: float, dt: float) -> float:
    """The meter after ``watts`` flowed for ``dt`` seconds; a meter only ever counts up."""
    return kwh + max(watts, 0.0) * max(dt, 0.0) / (1000 * HOUR)


# --- the motion sensor --------------------------------------------------------------------------

MOTION_HOLD = 30.0  # s a PIR sensor keeps reporting motion after the last movement


def next_motion(after: float, per_hour: float, rng: random.Random) -> float:
    """When the next movement happens: a Poisson process, so the gaps are exponential."""
    if per_hour <= 0:
        return math.inf
    return after + rng.expovariate(per_hour / HOUR)


@dataclass(frozen=True)
class MotionSensor:
    next_event: float  # simulated time of the next movement
    clears_at: float = -math.inf

    def step(self, now: float, per_hour: float, rng: random.Random) -> MotionSensor:
        next_event, clears_at = self.next_event, self.clears_at
        while next_event <= now:
            # max(): a movement in this step is reported at least once, even if a long step
            # (a large time_scale) already covers its whole hold time.
            clears_at = max(next_event + MOTION_HOLD, now)
            next_event = next_motion(next_event, per_hour, rng)
        return MotionSensor(next_event, clears_at)

    def detected(self, now: float) -> bool:
        return now <= self.clears_at
