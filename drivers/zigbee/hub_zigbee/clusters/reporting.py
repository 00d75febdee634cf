"""Reporting intervals, as ZHA configures them (zha/zigbee/cluster_handlers/const.py), so a device
paired here reports as often as under Home Assistant: (min seconds, max seconds)."""

from __future__ import annotations

from hub_zigbee.clusters.base import Reporting

IMMEDIATE = (0, 900)  # on/off, occupancy, lock state, cover position: a change is news at once
ASAP = (1, 900)  # a light's level while it moves
OP = (5, 900)  # power, voltage, current
DEFAULT = (30, 900)  # measurements, colour, energy
BATTERY_SAVE = (3600, 10800)


def report(attribute: str, intervals: tuple[int, int], change: int | float = 1) -> Reporting:
    return Reporting(attribute, intervals[0], intervals[1], change)
