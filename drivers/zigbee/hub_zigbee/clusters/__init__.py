"""ZCL clusters to hub capabilities: :func:`entities_for` lists the entities of an interviewed device.

One module per family of clusters (``lighting``, ``measurement``, ``power``, ``security``,
``closures``, ``hvac``); each entity keys itself ``"<endpoint>_<what>"`` (``1_light``,
``1_temperature``), stable across restarts. The table in docs/drivers/zigbee.md lists them.

Some choices depend on what the device says rather than on its clusters (an IAS zone's type, a
colour light's capabilities, a thermostat's limits, whether a sensor measures voltage):
:func:`prepare` reads those once after the interview, into zigpy's attribute cache, which zigpy
keeps in its database, so a restart builds the same entities without asking the device again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hub_zigbee.clusters.base import Reporting, ZigbeeEntity

if TYPE_CHECKING:
    import zigpy.device

__all__ = ["Reporting", "ZigbeeEntity", "entities_for", "prepare"]

log = logging.getLogger(__name__)

#: cluster id -> attributes that decide the entities (read by prepare(), allowed from cache).
IDENTITY_ATTRIBUTES: dict[int, tuple[str, ...]] = {
    0x0001: ("battery_percentage_remaining", "battery_voltage"),  # Power Configuration
    0x0102: ("window_covering_type",),  # Window Covering
    0x0201: ("ctrl_sequence_of_oper", "abs_min_heat_setpoint_limit", "abs_max_heat_setpoint_limit",
             "abs_min_cool_setpoint_limit", "abs_max_cool_setpoint_limit"),  # Thermostat
    0x0300: ("color_capabilities", "color_temp_physical_min", "color_temp_physical_max"),  # Color Control
    0x0500: ("zone_type",),  # IAS Zone
    0x0702: ("unit_of_measure", "multiplier", "divisor", "metering_device_type"),  # Metering
    0x0B04: ("rms_voltage", "rms_current", "ac_power_multiplier", "ac_power_divisor", "ac_voltage_multiplier",
             "ac_voltage_divisor", "ac_current_multiplier", "ac_current_divisor"),  # Electrical Measurement
}


async def prepare(device: "zigpy.device.Device") -> None:
    """Read the attributes :func:`entities_for` decides by. Call it after the interview of a device
    that has just joined, before :func:`entities_for`; a device that does not answer one read
    gets the defaults (a generic IAS zone, ZCL's default limits) rather than no entities."""
    for endpoint in _endpoints(device):
        for cluster_id, names in IDENTITY_ATTRIBUTES.items():
            cluster = endpoint.in_clusters.get(cluster_id)
            if cluster is None:
                continue
            try:
                await cluster.read_attributes(list(names), allow_cache=True)
            except Exception as exc:  # noqa: BLE001 - a sleepy device may have gone back to sleep
                log.info("zigbee %s: could not read %s of %s (%s); using defaults",
                         device.ieee, ", ".join(names), cluster.name, exc or type(exc).__name__)


def entities_for(device: "zigpy.device.Device", name: str | None = None) -> list[ZigbeeEntity]:
    """Every entity of an interviewed device (zigpy has already applied its quirk), endpoint by
    endpoint in ascending order, each endpoint's in the order of the families below.

    With ``name`` (the hub device's name), each entity is named "<name> <what it is>" ("Hall plug
    power", "Relay on off 2" on a device with several endpoints), which is also where its first
    entity id comes from; without it the hub names it "<device name> <key>"."""
    from hub_zigbee.clusters.closures import closure_entities
    from hub_zigbee.clusters.hvac import thermostat_entities
    from hub_zigbee.clusters.lighting import on_off_entity
    from hub_zigbee.clusters.measurement import measurement_entities
    from hub_zigbee.clusters.power import battery_entities, electrical_entities, metering_entities
    from hub_zigbee.clusters.security import ias_entities

    entities: list[ZigbeeEntity] = []
    for endpoint in _endpoints(device):
        if 0x0006 in endpoint.in_clusters:  # On/Off
            entities.append(on_off_entity(endpoint))
        for family in (measurement_entities, ias_entities, electrical_entities, metering_entities,
                       closure_entities, thermostat_entities, battery_entities):
            entities.extend(family(endpoint))
    if name is not None:
        several = len(_endpoints(device)) > 1
        for entity in entities:
            suffix = f" {entity.endpoint.endpoint_id}" if several else ""
            entity.spec.name = f"{name} {getattr(entity, 'label', entity.spec.key)}{suffix}"
    return entities


def _endpoints(device: "zigpy.device.Device") -> list:
    """The application endpoints (not ZDO's 0, not Green Power's 242), by id."""
    return [ep for ep_id, ep in sorted(device.endpoints.items()) if ep_id not in (0, 242)]
