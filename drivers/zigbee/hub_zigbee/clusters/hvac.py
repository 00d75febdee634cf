"""Thermostat -> ``climate``: the state is the HVAC mode (ZCL system_mode), temperatures in °C
(ZCL counts hundredths)."""

from __future__ import annotations

from typing import Any

from zigpy.zcl.clusters.hvac import Thermostat

from hub.core.commands import CommandRefused
from hub_zigbee.clusters.entity import ClusterEntity
from hub_zigbee.clusters.reporting import DEFAULT, report

# ZCL SystemMode <-> the hub's hvac_mode (Auto is heat_cool, as in ZHA: it heats and cools to
# keep between the set-points).
SYSTEM_TO_HVAC = {0x00: "off", 0x01: "heat_cool", 0x03: "cool", 0x04: "heat", 0x05: "heat",
                  0x07: "fan_only", 0x08: "dry"}
HVAC_TO_SYSTEM = {"off": 0x00, "heat_cool": 0x01, "cool": 0x03, "heat": 0x04, "fan_only": 0x07, "dry": 0x08}
# ctrl_sequence_of_oper -> the modes a thermostat offers.
HEAT_ONLY = ("off", "heat")
COOL_ONLY = ("off", "cool")
HEAT_COOL = ("off", "heat", "cool", "heat_cool")
SEQUENCES = {0x00: COOL_ONLY, 0x01: COOL_ONLY, 0x02: HEAT_ONLY, 0x03: HEAT_ONLY, 0x04: HEAT_COOL, 0x05: HEAT_COOL}
# ZCL's defaults for the absolute set-point limits, in hundredths of °C.
DEFAULT_LIMITS = {"abs_min_heat_setpoint_limit": 700, "abs_max_heat_setpoint_limit": 3000,
                  "abs_min_cool_setpoint_limit": 1600, "abs_max_cool_setpoint_limit": 3200}
STATIC = ("ctrl_sequence_of_oper", *DEFAULT_LIMITS)


def thermostat_entities(endpoint: Any) -> list[ClusterEntity]:
    cluster = endpoint.in_clusters.get(Thermostat.cluster_id)
    return [] if cluster is None else [Climate(endpoint, cluster)]


def _temperature(value: Any) -> float | None:
    return None if value is None or int(value) in (-0x8000, 0x8000) else round(int(value) / 100, 2)


class Climate(ClusterEntity):
    capability, what = "climate", "climate"

    def __init__(self, endpoint: Any, cluster: Any) -> None:
        self.cluster = cluster
        sequence = cluster.get("ctrl_sequence_of_oper")
        self.modes = SEQUENCES.get(int(sequence) if sequence is not None else 0x04, HEAT_COOL)
        limit = {name: _temperature(cluster.get(name, default)) for name, default in DEFAULT_LIMITS.items()}
        low, high = [], []
        if "heat" in self.modes:
            low.append(limit["abs_min_heat_setpoint_limit"])
            high.append(limit["abs_max_heat_setpoint_limit"])
        if "cool" in self.modes:
            low.append(limit["abs_min_cool_setpoint_limit"])
            high.append(limit["abs_max_cool_setpoint_limit"])
        self.min_temp, self.max_temp = min(low), max(high)
        super().__init__(endpoint, unit="°C", options={"min_temp": self.min_temp, "max_temp": self.max_temp,
                                                       "hvac_modes": list(self.modes)})
        self.last_on = "heat" if "heat" in self.modes else "cool"
        change = 25  # ZHA's REPORT_CONFIG_CLIMATE: a quarter of a degree
        self.watch(cluster, report("local_temperature", DEFAULT, change),
                   report("occupied_heating_setpoint", DEFAULT, change),
                   *([report("occupied_cooling_setpoint", DEFAULT, change)] if "cool" in self.modes else []),
                   report("system_mode", DEFAULT), report("running_state", DEFAULT, 5), static=STATIC)

    def mode(self) -> str | None:
        system = self.cluster.get("system_mode")
        return None if system is None else SYSTEM_TO_HVAC.get(int(system))

    def setpoint(self, mode: str | None) -> str:
        return "occupied_cooling_setpoint" if mode == "cool" or "heat" not in self.modes \
            else "occupied_heating_setpoint"

    def compute(self) -> tuple[Any, dict] | None:
        mode = self.mode()
        if mode is None:
            return None
        if mode != "off":
            self.last_on = mode
        running = self.cluster.get("running_state")
        action = None
        if running is not None:
            running = int(running)
            action = "heating" if running & 0x09 else "cooling" if running & 0x12 else \
                "fan" if running & 0x64 else "idle"
        if mode == "off":
            action = "off"
        return mode, {
            "current_temperature": _temperature(self.cluster.get("local_temperature")),
            "target_temperature": _temperature(self.cluster.get(self.setpoint(mode))),
            "hvac_action": action,
            "min_temp": self.min_temp,
            "max_temp": self.max_temp,
            "unit": "°C",
        }

    async def command(self, command: str, args: Any) -> Any:
        if command == "set_temperature":
            attribute = self.setpoint(self.mode())
            await self.write_attribute(self.cluster, {attribute: round(args.temperature * 100)},
                                       f"target temperature {args.temperature:g} °C")
        elif command in ("set_hvac_mode", "turn_on", "turn_off"):
            mode = {"turn_on": self.last_on, "turn_off": "off"}.get(command) or args.hvac_mode
            if mode not in self.modes:
                raise CommandRefused(f"this thermostat has no mode {mode!r}; it offers {', '.join(self.modes)}")
            await self.write_attribute(self.cluster, {"system_mode": HVAC_TO_SYSTEM[mode]}, f"mode {mode}")
        else:
            raise CommandRefused(f"a Zigbee thermostat has no command {command!r}")
