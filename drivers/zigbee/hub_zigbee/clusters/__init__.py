"""ZCL clusters to hub capabilities. ``entities_for(device)`` (added by the cluster mapping) returns
every :class:`~hub_zigbee.clusters.base.ZigbeeEntity` of an interviewed device."""
