"""The demo's simulation model, without a hub: physics that a newcomer would find believable."""

from __future__ import annotations

import math
import random

import pytest

from hub_demo import physics
from hub_demo.physics import HOUR, MotionSensor, Room


def run(room: Room, hours: float, outside: float, mode: str, target: float, dt: float = 60.0) -> list[Room]:
    rooms = []
    for _ in range(round(hours * HOUR / dt)):
        room = room.step(dt, outside, mode, target)
        rooms.append(room)
    return rooms


def test_heating_reaches_the_target_in_tens_of_minutes_and_levels_off_around_it():
    rooms = run(Room(18.0), hours=8, outside=8.0, mode="heat", target=21.0)
    temps = [r.temperature for r in rooms]
    reached = next(i for i, t in enumerate(temps) if t >= 21.0)  # minutes, at dt = 60 s
    assert 10 <= reached <= 60
    assert max(temps) > 21.0  # a radiator stays warm after the thermostat cuts it: a little overshoot
    assert max(temps) < 21.5
    settled = temps[120:]
    assert min(settled) > 21.0 - physics.HYSTERESIS - 0.2
    assert abs(sum(settled) / len(settled) - 21.0) < 0.3
    actions = {r.action for r in rooms[120:]}
    assert actions == {"heating", "idle"}  # it cycles, like a real thermostat


def test_heating_stops_at_target_and_restarts_only_below_the_hysteresis_band():
    assert physics.hvac_action("heat", 20.8, 21.0, previous="idle") == "idle"
    assert physics.hvac_action("heat", 20.6, 21.0, previous="idle") == "heating"
    assert physics.hvac_action("heat", 20.8, 21.0, previous="heating") == "heating"
    assert physics.hvac_action("heat", 21.0, 21.0, previous="heating") == "idle"
    assert physics.hvac_action("cool", 21.4, 21.0, previous="idle") == "cooling"
    assert physics.hvac_action("heat", 25.0, 21.0, previous="idle") == "idle"  # heat mode never cools
    assert physics.hvac_action("off", 10.0, 21.0, previous="heating") == "off"
    assert physics.hvac_action("auto", 19.0, 21.0, previous="idle") == "heating"
    assert physics.hvac_action("auto", 23.0, 21.0, previous="idle") == "cooling"
    assert physics.hvac_action("auto", 21.5, 21.0, previous="heating") == "idle"


def test_a_room_with_the_heating_off_drifts_to_the_outside_temperature():
    rooms = run(Room(21.0), hours=24, outside=8.0, mode="off", target=21.0)
    temps = [r.temperature for r in rooms]
    assert all(a > b for a, b in zip(temps, temps[1:]))  # monotonic, no heating sneaking in
    # Newton's law: after one time constant, 1/e of the difference is left.
    one_tau = temps[round(physics.ROOM_TIME_CONSTANT / 60) - 1]
    assert one_tau == pytest.approx(8.0 + 13.0 / math.e, abs=0.01)
    assert temps[-1] == pytest.approx(8.0, abs=0.05)
    assert {r.action for r in rooms} == {"off"}


def test_cooling_brings_a_hot_room_down_to_the_target():
    temps = [r.temperature for r in run(Room(28.0), hours=3, outside=32.0, mode="cool", target=22.0)]
    assert temps[-1] == pytest.approx(22.0, abs=0.5)
    assert min(temps) > 21.0


def test_a_long_step_is_stable_and_agrees_with_many_short_ones():
    one = Room(15.0).step(2 * HOUR, 8.0, "heat", 21.0)
    many = run(Room(15.0), hours=2, outside=8.0, mode="heat", target=21.0, dt=5.0)[-1]
    assert one.temperature == pytest.approx(many.temperature, abs=0.2)
    day = Room(15.0).step(24 * HOUR, 8.0, "heat", 21.0)  # time_scale 43200 at the default interval
    assert day.temperature == pytest.approx(21.0, abs=0.5)


def test_outside_temperature_follows_the_day_around_the_mean():
    warmest = physics.outside_temperature(15 * HOUR, mean=8.0)
    coldest = physics.outside_temperature(3 * HOUR, mean=8.0)
    assert warmest == pytest.approx(8.0 + physics.OUTSIDE_AMPLITUDE)
    assert coldest == pytest.approx(8.0 - physics.OUTSIDE_AMPLITUDE)
    day = [physics.outside_temperature(h * HOUR, mean=8.0) for h in range(24)]
    assert sum(day) / 24 == pytest.approx(8.0)


def test_energy_integrates_power_over_time():
    assert physics.energy_after(0.0, 1000.0, HOUR) == pytest.approx(1.0)
    kwh = 0.0
    for _ in range(3600):
        kwh = physics.energy_after(kwh, 1000.0, 1.0)
    assert kwh == pytest.approx(1.0)
    assert physics.energy_after(5.0, 115.0, 30 * 60) == pytest.approx(5.0575)


def test_energy_never_decreases():
    assert physics.energy_after(2.0, -50.0, 60.0) == 2.0  # a miswired CT clamp must not run it back
    assert physics.energy_after(2.0, 100.0, -60.0) == 2.0  # nor a clock that jumped backwards
    rng = random.Random(3)
    kwh, watts = 0.0, None
    for _ in range(1000):
        watts = physics.plug_power(rng.random() < 0.5, watts, 2.0, rng)
        new = physics.energy_after(kwh, watts, 2.0)
        assert new >= kwh
        kwh = new


def test_plug_draws_a_realistic_load_when_on_and_standby_power_when_off():
    rng = random.Random(1)
    watts = None
    on = []
    for _ in range(2000):
        watts = physics.plug_power(True, watts, 2.0, rng)
        on.append(watts)
    assert all(physics.LOAD_MIN <= w <= physics.LOAD_MAX for w in on)
    assert len({round(w, 1) for w in on}) > 100  # noisy, like a real reading
    assert sum(on) / len(on) == pytest.approx(physics.LOAD_MEAN, abs=5)
    off = physics.plug_power(False, watts, 2.0, rng)
    assert 0.3 <= off <= 0.5


def test_motion_is_a_poisson_process_at_the_configured_rate():
    rng = random.Random(7)
    times = [0.0]
    for _ in range(20000):
        times.append(physics.next_motion(times[-1], 12.0, rng))
    gaps = [b - a for a, b in zip(times, times[1:])]
    mean = sum(gaps) / len(gaps)
    assert mean == pytest.approx(HOUR / 12, rel=0.03)
    spread = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps))
    assert spread / mean == pytest.approx(1.0, abs=0.05)  # exponential gaps: memoryless, not a metronome


def test_motion_sensor_shows_motion_as_often_as_the_rate_and_hold_time_imply():
    rng = random.Random(7)
    sensor = MotionSensor(physics.next_motion(0.0, 12.0, rng))
    seen = 0
    samples = 100 * 360  # 100 hours, every 10 s
    for i in range(1, samples + 1):
        sensor = sensor.step(i * 10.0, 12.0, rng)
        seen += sensor.detected(i * 10.0)
    expected = 1 - math.exp(-12 * physics.MOTION_HOLD / HOUR)  # any movement in the last hold time
    assert seen / samples == pytest.approx(expected, rel=0.1)


def test_motion_clears_after_the_hold_time():
    sensor = MotionSensor(next_event=100.0)
    rng = random.Random(0)
    assert not sensor.step(99.0, 0.0, rng).detected(99.0)
    sensor = sensor.step(101.0, 0.0, rng)  # rate 0 after this movement: nothing more will happen
    assert sensor.detected(101.0)
    assert sensor.detected(100.0 + physics.MOTION_HOLD)
    later = 100.0 + physics.MOTION_HOLD + 1
    assert not sensor.step(later, 0.0, rng).detected(later)


def test_a_movement_inside_a_long_step_is_still_reported_once():
    rng = random.Random(0)
    sensor = MotionSensor(next_event=100.0).step(1000.0, 0.0, rng)
    assert sensor.detected(1000.0)
    assert not sensor.step(1100.0, 0.0, rng).detected(1100.0)


def test_no_motion_at_rate_zero():
    assert physics.next_motion(0.0, 0.0, random.Random(0)) == math.inf


def test_the_same_seed_replays_the_same_simulation():
    def trace(seed: int) -> list[float]:
        rng = random.Random(seed)
        watts, out = None, []
        for _ in range(50):
            watts = physics.plug_power(True, watts, 2.0, rng)
            out.append(watts)
        return out

    assert trace(42) == trace(42)
    assert trace(42) != trace(43)
