"""Measurement clusters -> ``sensor`` (temperature, humidity, pressure, illuminance) and Occupancy
Sensing -> ``binary_sensor``; also the sensor shape Electrical Measurement and Power Configuration
reuse: one attribute, scaled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zigpy.zcl.clusters.measurement import (IlluminanceMeasurement, OccupancySensing, PressureMeasurement,
                                            RelativeHumidity, TemperatureMeasurement)

from hub_zigbee.clusters.base import Reporting
from hub_zigbee.clusters.entity import ClusterEntity
from hub_zigbee.clusters.reporting import DEFAULT, IMMEDIATE, report


def _centi(value: int) -> float | None:
    return None if value in (-0x8000, 0x8000, 0xFFFF) else round(value / 100, 2)


def _signed_invalid(value: int) -> int | None:
    return None if value in (-0x8000, 0x8000) else int(value)


def _lux(value: int) -> float | None:
    """ZCL illuminance is 10000 * log10(lux) + 1; 0 is too dark to measure, 0xFFFF invalid."""
    if value == 0xFFFF:
        return None
    return 0.0 if value == 0 else round(10 ** ((value - 1) / 10000), 1)


class Sensor(ClusterEntity):
    """One attribute of one cluster, converted to the hub's unit."""

    capability = "sensor"

    def __init__(self, endpoint: Any, cluster: Any, *, what: str, device_class: str, reporting: Reporting,
                 convert: Callable[[Any], Any], unit: str | None = None, static: tuple[str, ...] = ()) -> None:
        super().__init__(endpoint, device_class=device_class, unit=unit, what=what)
        self.cluster, self.attribute, self.convert = cluster, reporting.attribute, convert
        self.watch(cluster, reporting, static=static)

    def compute(self) -> tuple[Any, dict] | None:
        raw = self.cluster.get(self.attribute)
        if raw is None:
            return None
        return self.convert(raw), {}  # a plain write: the hub's fast path for a new reading



#: cluster id -> (what, device class, ZHA's reportable change, conversion)
MEASUREMENTS = {
    TemperatureMeasurement.cluster_id: ("temperature", "temperature", 50, _centi),  # 0.01 °C
    RelativeHumidity.cluster_id: ("humidity", "humidity", 100, _centi),  # 0.01 %
    PressureMeasurement.cluster_id: ("pressure", "pressure", 1, _signed_invalid),  # 0.1 kPa = 1 hPa
    IlluminanceMeasurement.cluster_id: ("illuminance", "illuminance", 1, _lux),
}


def measurement_entities(endpoint: Any) -> list[ClusterEntity]:
    entities: list[ClusterEntity] = []
    for cluster_id, (what, device_class, change, convert) in MEASUREMENTS.items():
        cluster = endpoint.in_clusters.get(cluster_id)
        if cluster is not None:
            entities.append(Sensor(endpoint, cluster, what=what, device_class=device_class,
                                   reporting=report("measured_value", DEFAULT, change), convert=convert))
    cluster = endpoint.in_clusters.get(OccupancySensing.cluster_id)
    if cluster is not None:
        entities.append(Occupancy(endpoint, cluster))
    return entities


class Occupancy(ClusterEntity):
    capability, what = "binary_sensor", "occupancy"

    def __init__(self, endpoint: Any, cluster: Any) -> None:
        super().__init__(endpoint, device_class="occupancy")
        self.cluster = cluster
        self.watch(cluster, report("occupancy", IMMEDIATE))

    def compute(self) -> tuple[Any, dict] | None:
        value = self.cluster.get("occupancy")
        return None if value is None else ("on" if int(value) & 1 else "off", {})

