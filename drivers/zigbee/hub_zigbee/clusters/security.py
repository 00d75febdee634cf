"""IAS Zone -> ``binary_sensor`` by zone type, with the enrollment a real sensor waits for.

An IAS sensor reports nothing until it is enrolled: the coordinator writes its own IEEE address to
the zone's ``cie_addr``, the sensor sends a Zone Enroll Request, and the coordinator answers with a
Zone Enroll Response (ZHA also sends that response unasked, which sensors that enrolled before the
write accept). From then on the sensor sends Zone Status Change Notifications, which zigpy passes
to listeners as cluster commands.
"""

from __future__ import annotations

from typing import Any

from zigpy.zcl.clusters.security import IasZone

from hub_zigbee.clusters.entity import ClusterEntity, check_status

#: ZCL zone type -> (what it detects, binary_sensor device class); as ZHA's mapping.
ZONE_TYPES: dict[int, tuple[str, str]] = {
    0x000D: ("motion", "motion"),
    0x0015: ("contact", "opening"),
    0x0028: ("smoke", "smoke"),
    0x002A: ("moisture", "moisture"),
    0x002B: ("carbon monoxide", "carbon_monoxide"),
    0x002D: ("vibration", "vibration"),
}
STATUS_CHANGE_NOTIFICATION, ENROLL_REQUEST = 0x00, 0x01
ALARM_BITS = 0x0003  # Alarm 1 or Alarm 2


def ias_entities(endpoint: Any) -> list[ClusterEntity]:
    cluster = endpoint.in_clusters.get(IasZone.cluster_id)
    return [] if cluster is None else [IasZoneSensor(endpoint, cluster)]


class IasZoneSensor(ClusterEntity):
    capability = "binary_sensor"

    def __init__(self, endpoint: Any, cluster: Any) -> None:
        zone_type = cluster.get("zone_type")
        label, device_class = ZONE_TYPES.get(int(zone_type), ("ias zone", None)) if zone_type is not None \
            else ("ias zone", None)
        # The key does not depend on the zone type: the type is read from the device, and an
        # entity whose key changed once it was known would be a second entity.
        super().__init__(endpoint, device_class=device_class, what="ias_zone")
        self.label = label
        self.cluster = cluster
        self.watch(cluster, also=("zone_status",), static=("zone_type",))

    def compute(self) -> tuple[Any, dict] | None:
        status = self.cluster.get("zone_status")
        if status is None:
            return None
        return ("on" if int(status) & ALARM_BITS else "off"), {
            "tamper": bool(int(status) & 0x0004), "battery_low": bool(int(status) & 0x0008)}

    def cluster_command(self, cluster: Any, command_id: int, args: Any) -> None:
        if command_id == STATUS_CHANGE_NOTIFICATION:
            cluster.update_attribute(cluster.find_attribute("zone_status").id, args[0])
        elif command_id == ENROLL_REQUEST:
            cluster.create_catching_task(self._enroll_response())

    async def _enroll_response(self) -> None:
        await self.cluster.enroll_response(enroll_response_code=IasZone.EnrollResponse.Success, zone_id=0)

    async def configure(self) -> None:
        if self.endpoint.device.skip_configuration:
            return
        ieee = self.endpoint.device.application.state.node_info.ieee
        await self.cluster.bind()
        check_status(await self.cluster.write_attributes({"cie_addr": ieee}), "the CIE address")
        await self._enroll_response()

