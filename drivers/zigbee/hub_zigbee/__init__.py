"""Ruff Hub's Zigbee driver: zigpy with a TI (zigpy-znp) or Silicon Labs (bellows) coordinator.

Layers, as in zigpy itself: the radio library speaks to the USB stick, zigpy keeps the network and
its devices (database, interview, quirks), :mod:`hub_zigbee.clusters` maps a device's ZCL clusters
to the hub's capabilities, and this module wires them to the hub's hooks. zigpy is imported lazily
so that ``hub --help`` (which loads every plugin to collect its subcommands) does not pay for it.
"""

from __future__ import annotations

__version__ = "0.1.0"
