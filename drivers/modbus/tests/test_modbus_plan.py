"""Coalescing: as few requests as the map and the protocol allow."""

import pytest

from hub_modbus.config import DeviceConfig
from hub_modbus.device import ModbusDevice
from hub_modbus.plan import ReadItem, plan, split


def items(register, *addresses, width=1):
    return [ReadItem(f"{register}{a}", register, a, width) for a in addresses]


def test_neighbours_within_the_gap_share_a_request():
    blocks = plan(items("holding", 0, 1, 2, 10, 30), max_gap=8)
    assert [(b.address, b.count) for b in blocks] == [(0, 11), (30, 1)]
    assert [i.key for i in blocks[0].items] == ["holding0", "holding1", "holding2", "holding10"]


def test_gap_zero_merges_only_adjacent_registers():
    blocks = plan(items("input", 0, 2, 4, width=2) + items("input", 7), max_gap=0)
    assert [(b.address, b.count) for b in blocks] == [(0, 6), (7, 1)]


def test_register_types_are_never_mixed():
    blocks = plan(items("holding", 0, 1) + items("input", 0, 1) + items("coil", 0, 5))
    assert sorted((b.register, b.count) for b in blocks) == [("coil", 6), ("holding", 2), ("input", 2)]


def test_a_request_never_exceeds_the_protocol_limit():
    blocks = plan(items("holding", *range(0, 300)), max_gap=8)
    assert [b.count for b in blocks] == [125, 125, 50]
    bits = plan(items("coil", *range(0, 2500)))
    assert [b.count for b in bits] == [2000, 500]
    small = plan(items("input", *range(0, 100)), max_registers=80)
    assert [b.count for b in small] == [80, 20]


def test_overlapping_and_duplicate_entries_are_served_by_one_read():
    blocks = plan([ReadItem("a", "input", 0, 2), ReadItem("b", "input", 0, 1), ReadItem("c", "input", 1, 2)])
    assert [(b.address, b.count, len(b.items)) for b in blocks] == [(0, 3, 3)]


def test_a_value_wider_than_a_request_is_a_mistake():
    with pytest.raises(ValueError, match="exceed"):
        plan([ReadItem("s", "holding", 0, 126)])


def test_split_gives_one_request_per_entity():
    (block,) = plan(items("input", 0, 2, 4))
    assert [(b.address, b.count) for b in split(block)] == [(0, 1), (2, 1), (4, 1)]


def test_the_sdm120_profile_costs_three_requests_and_honours_its_80_register_limit():
    device = ModbusDevice(DeviceConfig(name="m", connection="c", profile="sdm120"), bus=None)
    assert device.requests_per_cycle == 3
    assert all(b.count <= 80 for g in device.groups for b in g.blocks)


def test_entities_with_their_own_interval_get_their_own_group():
    config = DeviceConfig(name="d", connection="c", poll_interval=5, entities=[
        {"key": "a", "address": 0}, {"key": "b", "address": 1}, {"key": "slow", "address": 2, "poll_interval": 60}])
    device = ModbusDevice(config, bus=None)
    assert [(g.interval, len(g.blocks)) for g in device.groups] == [(5, 1), (60, 1)]


def test_two_hundred_registers_over_three_devices_cost_a_handful_of_requests():
    total = 0
    for unit in (1, 2, 3):
        entities = [{"key": f"h{a}", "address": a} for a in range(0, 60)]
        entities += [{"key": f"f{a}", "register": "input", "address": a, "data_type": "float32"} for a in range(100, 110, 2)]
        config = DeviceConfig(name=f"d{unit}", connection="c", device_id=unit, entities=entities)
        total += ModbusDevice(config, bus=None).requests_per_cycle
    assert total == 6  # against 195 with one request per entity
