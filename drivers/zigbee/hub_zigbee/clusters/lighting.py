"""On/Off, Level Control and Color Control: a plug's outlet (``switch``) or a light (``light``)."""

from __future__ import annotations

from typing import Any

from zigpy.profiles import zha, zll
from zigpy.zcl.clusters.general import LevelControl, OnOff
from zigpy.zcl.clusters.lighting import Color

from hub.core.commands import CommandRefused
from hub_zigbee.clusters.color import (from_zcl_xy, kelvin_to_mireds, mireds_to_kelvin, rgb_to_xy, to_zcl_xy,
                                       xy_to_rgb)
from hub_zigbee.clusters.entity import ClusterEntity
from hub_zigbee.clusters.reporting import ASAP, DEFAULT, IMMEDIATE, report

LIGHT_TYPES = {
    (zha.PROFILE_ID, t) for t in (
        zha.DeviceType.ON_OFF_LIGHT, zha.DeviceType.DIMMABLE_LIGHT, zha.DeviceType.COLOR_DIMMABLE_LIGHT,
        zha.DeviceType.COLOR_TEMPERATURE_LIGHT, zha.DeviceType.EXTENDED_COLOR_LIGHT,
        zha.DeviceType.DIMMABLE_PLUG_IN_UNIT, zha.DeviceType.DIMMABLE_BALLAST,
    )
} | {
    (zll.PROFILE_ID, t) for t in (
        zll.DeviceType.ON_OFF_LIGHT, zll.DeviceType.DIMMABLE_LIGHT, zll.DeviceType.COLOR_LIGHT,
        zll.DeviceType.EXTENDED_COLOR_LIGHT, zll.DeviceType.COLOR_TEMPERATURE_LIGHT,
        zll.DeviceType.DIMMABLE_PLUGIN_UNIT,
    )
}
OUTLET_TYPES = {
    (zha.PROFILE_ID, zha.DeviceType.MAIN_POWER_OUTLET), (zha.PROFILE_ID, zha.DeviceType.SMART_PLUG),
    (zha.PROFILE_ID, zha.DeviceType.ON_OFF_PLUG_IN_UNIT), (zll.PROFILE_ID, zll.DeviceType.ON_OFF_PLUGIN_UNIT),
}

# ZCL Color Control: ColorCapabilities bits and ColorMode values.
XY_CAPABLE, COLOR_TEMP_CAPABLE = 0x08, 0x10
MODE_XY, MODE_COLOR_TEMP = 1, 2
#: ZCL's defaults when a light does not say its range: 6500 K to 2000 K.
DEFAULT_MIREDS = (153, 500)


def level_to_brightness(level: int) -> int:
    """ZCL levels run 0-254 (255 means unknown); the hub's brightness 0-255."""
    return round(min(level, 254) * 255 / 254)


def brightness_to_level(brightness: int) -> int:
    return max(1, round(brightness * 254 / 255))


def device_type(endpoint: Any) -> tuple[int | None, int | None]:
    return getattr(endpoint, "profile_id", None), getattr(endpoint, "device_type", None)


def on_off_entity(endpoint: Any) -> ClusterEntity:
    """A light when the endpoint says it is one or can dim; else a switch, an outlet for a plug."""
    kind = device_type(endpoint)
    if kind in LIGHT_TYPES or (kind not in OUTLET_TYPES and LevelControl.cluster_id in endpoint.in_clusters):
        return Light(endpoint)
    return Switch(endpoint, "outlet" if kind in OUTLET_TYPES else "switch")


class Switch(ClusterEntity):
    capability, what = "switch", "on_off"

    def __init__(self, endpoint: Any, device_class: str) -> None:
        super().__init__(endpoint, device_class=device_class)
        self.on_off = endpoint.in_clusters[OnOff.cluster_id]
        self.watch(self.on_off, report("on_off", IMMEDIATE))

    def compute(self) -> tuple[Any, dict] | None:
        on = self.on_off.get("on_off")
        return None if on is None else ("on" if on else "off", {})

    async def command(self, command: str, args: Any) -> Any:
        await switch_command(self, self.on_off, command)


async def switch_command(entity: ClusterEntity, on_off: Any, command: str) -> None:
    if command == "turn_on":
        await entity.call(on_off, "on", "on")
        entity.confirmed(on_off, {"on_off": 1})
    elif command == "turn_off":
        await entity.call(on_off, "off", "off")
        entity.confirmed(on_off, {"on_off": 0})
    elif command == "toggle":
        await entity.call(on_off, "toggle", "toggle")
        await on_off.read_attributes(["on_off"])  # only the device knows where a toggle left it
        entity.publish()
    else:
        raise CommandRefused(f"a Zigbee {entity.capability} has no command {command!r}")


class Light(ClusterEntity):
    capability, what = "light", "light"

    def __init__(self, endpoint: Any) -> None:
        self.on_off = endpoint.in_clusters[OnOff.cluster_id]
        self.level = endpoint.in_clusters.get(LevelControl.cluster_id)
        self.color = endpoint.in_clusters.get(Color.cluster_id)
        self.modes: list[str] = []
        self.asked_rgb: tuple[int, int, tuple[int, int, int]] | None = None
        self.mireds = DEFAULT_MIREDS
        options: dict[str, Any] = {}
        if self.color is not None:
            caps = self.color.get("color_capabilities")
            caps = XY_CAPABLE | COLOR_TEMP_CAPABLE if caps is None else int(caps)
            if caps & XY_CAPABLE:
                self.modes.append("xy")
            if caps & COLOR_TEMP_CAPABLE:
                self.modes.append("color_temp")
                low, high = self.color.get("color_temp_physical_min"), self.color.get("color_temp_physical_max")
                if low and high and 0 < low < high < 0xFFFF:
                    self.mireds = (int(low), int(high))
                options.update(min_color_temp_kelvin=mireds_to_kelvin(self.mireds[1]),
                               max_color_temp_kelvin=mireds_to_kelvin(self.mireds[0]))
        if not self.modes:
            self.modes.append("brightness" if self.level is not None else "onoff")
        options["supported_color_modes"] = list(self.modes)  # Home Assistant's name for them
        super().__init__(endpoint, options=options)
        self.watch(self.on_off, report("on_off", IMMEDIATE))
        if self.level is not None:
            self.watch(self.level, report("current_level", ASAP))
        if self.color is not None:
            reporting = []
            if "xy" in self.modes:
                reporting += [report("current_x", DEFAULT), report("current_y", DEFAULT)]
            if "color_temp" in self.modes:
                reporting.append(report("color_temperature", DEFAULT))
            self.watch(self.color, *reporting, also=("color_mode",),
                       static=("color_capabilities", "color_temp_physical_min", "color_temp_physical_max"))

    def compute(self) -> tuple[Any, dict] | None:
        on = self.on_off.get("on_off")
        if on is None:
            return None
        attributes: dict[str, Any] = {}
        if self.level is not None:
            level = self.level.get("current_level")
            attributes["brightness"] = None if level is None or level == 0xFF else level_to_brightness(level)
        if self.color is not None:
            mode = self.color.get("color_mode")
            mode = None if mode is None else int(mode)
            if mode is None:  # a light that never said: the one mode it has, or what it reported
                mode = MODE_COLOR_TEMP if self.modes == ["color_temp"] else MODE_XY
            x, y, mireds = (self.color.get(a) for a in ("current_x", "current_y", "color_temperature"))
            rgb = None
            if "xy" in self.modes and None not in (x, y):
                # The colour asked for while the light holds it; xy -> RGB loses a step or two.
                asked = self.asked_rgb
                rgb = asked[2] if asked and asked[:2] == (x, y) else xy_to_rgb(from_zcl_xy(x), from_zcl_xy(y))
            kelvin = mireds_to_kelvin(mireds) if "color_temp" in self.modes and mireds else None
            attributes["color_mode"] = "color_temp" if mode == MODE_COLOR_TEMP else "xy"
            attributes["rgb_color"] = list(rgb) if rgb is not None and mode != MODE_COLOR_TEMP else None
            attributes["color_temp_kelvin"] = kelvin if mode == MODE_COLOR_TEMP else None
        return ("on" if on else "off"), attributes

    async def command(self, command: str, args: Any) -> Any:
        if command != "turn_on":
            return await switch_command(self, self.on_off, command)
        tenths = round(args.transition * 10) if args.transition is not None else 0
        if args.rgb_color is not None and args.color_temp_kelvin is not None:
            raise CommandRefused("give rgb_color or color_temp_kelvin, not both")
        if args.rgb_color is not None and "xy" not in self.modes:
            raise CommandRefused(f"this light cannot take a colour (rgb_color); it supports {', '.join(self.modes)}")
        if args.color_temp_kelvin is not None and "color_temp" not in self.modes:
            raise CommandRefused("this light has no colour temperature (color_temp_kelvin); "
                                 f"it supports {', '.join(self.modes)}")
        if args.brightness is not None and self.level is None:
            raise CommandRefused("this light cannot dim (brightness)")
        with self.held():
            await self._turn_on(args, tenths)

    async def _turn_on(self, args: Any, tenths: int) -> None:
        if args.brightness is not None:
            level = 0 if args.brightness == 0 else brightness_to_level(args.brightness)
            await self.call(self.level, "move_to_level_with_on_off", "move to level", level=level,
                            transition_time=tenths)
            self.on_off.update_attribute(self.on_off.find_attribute("on_off").id, 1 if level else 0)
            self.confirmed(self.level, {"current_level": level} if level else {})
            if not level:
                return
        elif args.transition is not None and self.level is not None and not self.on_off.get("on_off"):
            # Fade in to where it was (ZCL's On has no transition time).
            level = self.level.get("current_level")
            level = 254 if not level or level == 0xFF else int(level)
            await self.call(self.level, "move_to_level_with_on_off", "move to level", level=level,
                            transition_time=tenths)
            self.on_off.update_attribute(self.on_off.find_attribute("on_off").id, 1)
            self.confirmed(self.level, {"current_level": level})
        elif not (self.on_off.get("on_off") and (args.rgb_color or args.color_temp_kelvin)):
            await self.call(self.on_off, "on", "on")
            self.confirmed(self.on_off, {"on_off": 1})
        if args.color_temp_kelvin is not None:
            low, high = self.mireds
            mireds = min(max(kelvin_to_mireds(args.color_temp_kelvin), low), high)
            await self.call(self.color, "move_to_color_temp", "move to colour temperature",
                            color_temp_mireds=mireds, transition_time=tenths)
            self.confirmed(self.color, {"color_temperature": mireds, "color_mode": MODE_COLOR_TEMP})
        if args.rgb_color is not None:
            x, y = rgb_to_xy(tuple(args.rgb_color))
            zx, zy = to_zcl_xy(x), to_zcl_xy(y)
            await self.call(self.color, "move_to_color", "move to colour", color_x=zx, color_y=zy,
                            transition_time=tenths)
            self.asked_rgb = (zx, zy, tuple(args.rgb_color))
            self.confirmed(self.color, {"current_x": zx, "current_y": zy, "color_mode": MODE_XY})
