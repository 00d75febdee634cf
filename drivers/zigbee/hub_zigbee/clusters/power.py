"""Electrical Measurement -> power, voltage and current ``sensor``s; Metering -> the ``meter`` the
market bills; Power Configuration -> the battery ``sensor``.

Electrical Measurement and Metering send raw integers with a multiplier and a divisor read from the
device (both cached by zigpy, read once at pairing): a value is ``raw * multiplier / divisor`` in
the cluster's unit (W, V, A; kWh for an electricity meter).
"""

from __future__ import annotations

from typing import Any

from zigpy.zcl.clusters.general import PowerConfiguration
from zigpy.zcl.clusters.homeautomation import ElectricalMeasurement
from zigpy.zcl.clusters.smartenergy import Metering

from hub_zigbee.clusters.entity import ClusterEntity, factor
from hub_zigbee.clusters.measurement import Sensor
from hub_zigbee.clusters.reporting import BATTERY_SAVE, DEFAULT, OP, report


def _scaled(cluster: Any, raw: Any, multiplier: str, divisor: str, digits: int) -> float:
    return round(raw * factor(cluster, multiplier) / factor(cluster, divisor), digits)


#: what -> (attribute, device class, multiplier, divisor, decimals); ZHA's entities of the cluster.
ELECTRICAL = {
    "power": ("active_power", "power", "ac_power_multiplier", "ac_power_divisor", 1),
    "voltage": ("rms_voltage", "voltage", "ac_voltage_multiplier", "ac_voltage_divisor", 1),
    "current": ("rms_current", "current", "ac_current_multiplier", "ac_current_divisor", 3),
}


def electrical_entities(endpoint: Any) -> list[ClusterEntity]:
    cluster = endpoint.in_clusters.get(ElectricalMeasurement.cluster_id)
    if cluster is None:
        return []
    entities: list[ClusterEntity] = []
    for what, (attribute, device_class, mul, div, digits) in ELECTRICAL.items():
        if what != "power" and cluster.is_attribute_unsupported(attribute):
            continue  # the device said at pairing it does not measure this
        entities.append(Sensor(
            endpoint, cluster, what=what, device_class=device_class, reporting=report(attribute, OP),
            convert=lambda raw, m=mul, d=div, n=digits: _scaled(cluster, raw, m, d, n), static=(mul, div)))
    return entities


# Metering's unit_of_measure (low nibble; the high one only says BCD formatting).
UNIT_KWH, UNIT_M3, UNIT_LITRES = 0x00, 0x01, 0x07
METERING_WATER = 2


def metering_entities(endpoint: Any) -> list[ClusterEntity]:
    cluster = endpoint.in_clusters.get(Metering.cluster_id)
    if cluster is None:
        return []
    unit = int(cluster.get("unit_of_measure") or 0) & 0x0F
    kind = cluster.get("metering_device_type")
    if unit == UNIT_KWH:
        return [Meter(endpoint, cluster, "energy", factor=1)]
    if unit == UNIT_LITRES or (unit == UNIT_M3 and kind is not None and int(kind) & 0x7F == METERING_WATER):
        return [Meter(endpoint, cluster, "water", factor=1000 if unit == UNIT_M3 else 1)]
    if unit == UNIT_M3:
        return [Meter(endpoint, cluster, "gas", factor=1)]
    return []  # ft³, BTU, gallons: no meter class the market bills in


class Meter(ClusterEntity):
    """current_summ_delivered: the cumulative count a contract bills against."""

    capability = "meter"

    def __init__(self, endpoint: Any, cluster: Any, device_class: str, factor: int) -> None:
        super().__init__(endpoint, device_class=device_class, what=device_class)
        self.cluster, self.factor = cluster, factor
        self.watch(cluster, report("current_summ_delivered", DEFAULT),
                   static=("multiplier", "divisor", "unit_of_measure", "metering_device_type"))

    def compute(self) -> tuple[Any, dict] | None:
        raw = self.cluster.get("current_summ_delivered")
        if raw is None:
            return None
        return _scaled(self.cluster, raw * self.factor, "multiplier", "divisor", 6), {}



def battery_entities(endpoint: Any) -> list[ClusterEntity]:
    """As ZHA: a battery sensor for a device that is not mains powered; its percentage, or its
    voltage when the device said at pairing it cannot give a percentage."""
    cluster = endpoint.in_clusters.get(PowerConfiguration.cluster_id)
    node = endpoint.device.node_desc
    if cluster is None or (node is not None and node.is_mains_powered):
        return []
    if cluster.is_attribute_unsupported("battery_percentage_remaining") and \
            not cluster.is_attribute_unsupported("battery_voltage"):
        return [Sensor(endpoint, cluster, what="battery", device_class="voltage",
                       reporting=report("battery_voltage", BATTERY_SAVE),
                       convert=lambda raw: None if raw in (0, 0xFF) else round(raw / 10, 1))]
    return [Sensor(endpoint, cluster, what="battery", device_class="battery",
                   reporting=report("battery_percentage_remaining", BATTERY_SAVE),
                   convert=lambda raw: None if raw == 0xFF else min(100, round(raw / 2)))]
