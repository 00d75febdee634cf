"""What a scene's target states mean as the hub's commands, the way each of Home Assistant's domains
reproduces a state (its ``reproduce_state``): a light's ``on`` with ``brightness`` and ``xy_color``
is ``light.turn_on`` with ``brightness`` and ``rgb_color``, a thermostat's ``heat`` with a
``temperature`` is ``set_hvac_mode`` then ``set_temperature``. Every command is checked by the
command gate here, when the scene loads, so an unreachable state is refused with its line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.core.commands import CommandError
from hub.rules import ha_services

if TYPE_CHECKING:
    from hub.runtime import Hub

Commands = list[tuple[str, dict]]
#: Entities one scene may set: each is commanded at once, so a runaway file must not start
#: thousands of concurrent commands. Real scenes set a room or a house: tens.
MAX_SCENE_ENTITIES = 500


class SceneError(ValueError):
    """A target state the hub cannot reach; ``attribute`` names the attribute at fault, if one is."""

    def __init__(self, message: str, attribute: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.attribute = attribute


# --- what each capability can be set to ------------------------------------------------------------

#: Attributes any entity's state carries that nothing sets (HA's editor saves them with the scene).
READ_ONLY = frozenset({
    "friendly_name", "icon", "entity_picture", "supported_features", "assumed_state", "attribution",
    "device_class", "unit_of_measurement", "unit", "state_class", "restored", "editable", "id", "entity_id",
    "last_changed", "last_updated", "available",
})
READ_ONLY_BY_CAPABILITY = {
    "light": frozenset({"supported_color_modes", "color_mode", "min_mireds", "max_mireds", "min_color_temp_kelvin",
                        "max_color_temp_kelvin", "effect_list", "off_with_transition", "off_brightness"}),
    "climate": frozenset({"hvac_modes", "min_temp", "max_temp", "target_temp_step", "current_temperature",
                          "current_humidity", "hvac_action", "preset_modes", "fan_modes", "swing_modes",
                          "min_humidity", "max_humidity", "target_temperature"}),
    "cover": frozenset({"position"}),  # the hub's own name of current_position, read below
    "lock": frozenset({"code_format", "code_required", "changed_by"}),
    "number": frozenset({"min", "max", "step", "mode"}),
    "select": frozenset({"options"}),
    "switch": frozenset({"current_power_w", "today_energy_kwh"}),
}
#: Attributes HA's services can set that the hub's capability cannot: a scene asking for one is
#: refused rather than applied half (a value of None, which HA's editor saves, asks for nothing).
UNSUPPORTED = {
    "light": ("effect", "flash", "profile", "color_name", "white_value"),
    "climate": ("preset_mode", "fan_mode", "swing_mode", "humidity", "target_temp_high", "target_temp_low", "aux_heat"),
    "cover": ("current_tilt_position", "tilt_position"),
}
#: The colour attributes, in the order HA's light takes the first one present when the scene has
#: no ``color_mode`` (its ``COLOR_GROUP``); ``color_temp`` (mireds) and ``kelvin`` are older names.
COLOR_ATTRS = ("hs_color", "color_temp_kelvin", "color_temp", "kelvin", "rgb_color", "rgbw_color", "rgbww_color",
               "xy_color")
COLOR_MODE_ATTR = {"hs": "hs_color", "rgb": "rgb_color", "rgbw": "rgbw_color", "rgbww": "rgbww_color",
                   "xy": "xy_color"}
NO_EFFECT = (None, "none", "None", "off", "")
#: The attributes each capability's translation reads (a light's other colours included: its
#: color_mode picks one of those HA's editor saves).
USED = {"light": ("brightness", "brightness_pct", *COLOR_ATTRS), "climate": ("temperature",),
        "cover": ("current_position",)}


def _state_text(state: Any) -> str | None:
    """YAML reads an unquoted ``on`` as true; HA's scene turns it back into ``"on"``."""
    if isinstance(state, bool):
        return "on" if state else "off"
    if state is None or isinstance(state, str):
        return state
    if isinstance(state, (int, float)):
        return str(state)
    raise SceneError(f"the state must be a text like 'on', got {state!r}")


def _rgbw_to_rgb(value: Any) -> list[int]:
    """HA's ``color_rgbw_to_rgb``: the white channel added to the others, scaled back to the input's
    largest channel."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise SceneError(f"rgbw_color must be four numbers, got {value!r}", "rgbw_color")
    r, g, b, w = (float(v) for v in value)
    rgb = [r + w, g + w, b + w]
    top_in, top_out = max(r, g, b, w), max(rgb)
    return [round(c * top_in / top_out) if top_out else 0 for c in rgb]


def _light(state: str | None, attrs: dict) -> Commands:
    if state == "off":
        return [("turn_off", {})]
    if state != "on":
        raise SceneError(f"a light is 'on' or 'off', not {state!r}")
    data: dict[str, Any] = {}
    if attrs.get("brightness") is not None:
        data["brightness"] = attrs["brightness"]
    elif attrs.get("brightness_pct") is not None:
        data["brightness_pct"] = attrs["brightness_pct"]
    mode = attrs.get("color_mode")
    if mode in (None, "unknown"):  # an older scene: the first colour given, as HA does
        colour = next((a for a in COLOR_ATTRS if attrs.get(a) is not None), None)
    elif mode == "color_temp":
        colour = next((a for a in ("color_temp_kelvin", "color_temp", "kelvin") if attrs.get(a) is not None), None)
        if colour is None:
            raise SceneError("color_mode is color_temp but the scene has no color_temp_kelvin", "color_mode")
    elif mode in COLOR_MODE_ATTR:
        colour = COLOR_MODE_ATTR[mode]
        if attrs.get(colour) is None:
            raise SceneError(f"color_mode is {mode} but the scene has no {colour}", "color_mode")
    elif mode in ("onoff", "brightness", "white"):
        colour = None
    else:
        raise SceneError(f"unknown color_mode {mode!r}", "color_mode")
    if colour == "rgbw_color":
        data["rgb_color"] = _rgbw_to_rgb(attrs[colour])
    elif colour == "rgbww_color":  # needs the lamp's white points: HA saves rgb_color beside it
        if attrs.get("rgb_color") is None:
            raise SceneError("the hub's lights take rgb_color, hs_color, xy_color or a colour temperature; "
                             "rgbww_color needs rgb_color beside it", "rgbww_color")
        data["rgb_color"] = attrs["rgb_color"]
    elif colour is not None:
        data[colour] = attrs[colour]
    try:
        return ha_services.light_on("turn_on", data)
    except ha_services.ServiceDataError as exc:
        raise SceneError(exc.message, exc.field) from None


def _climate(state: str | None, attrs: dict) -> Commands:
    out: Commands = []
    if state is not None:
        out.append(("set_hvac_mode", {"hvac_mode": state}))
    if attrs.get("temperature") is not None:
        out.append(("set_temperature", {"temperature": attrs["temperature"]}))
    if not out:
        raise SceneError("a climate entity needs a state (its hvac mode) or a temperature")
    return out


def _cover(state: str | None, attrs: dict) -> Commands:
    """As HA's cover: closed (or closing) closes; open with a position goes to it, else opens."""
    position = attrs.get("current_position", attrs.get("position"))
    if state in ("closed", "closing"):
        return [("close", {})]
    if state in ("open", "opening", None):
        if position is not None:
            return [("set_position", {"position": position})]
        if state is not None:
            return [("open", {})]
    raise SceneError(f"a cover is 'open' or 'closed' (or has a current_position), not {state!r}")


def _lock(state: str | None, attrs: dict, needs_code: bool, entity_id: str) -> Commands:
    command = {"locked": "lock", "unlocked": "unlock", "open": "open"}.get(state or "")
    if command is None:
        raise SceneError(f"a lock is 'locked', 'unlocked' or 'open', not {state!r}")
    if command != "lock" and needs_code:
        raise SceneError(f"{entity_id} needs a code to {command}, and a scene cannot give one (nor can "
                         f"Home Assistant's): unlock it with a rule's lock.{command} step and its code")
    return [(command, {})]


def _switch(state: str | None, attrs: dict) -> Commands:
    if state not in ("on", "off"):
        raise SceneError(f"a switch is 'on' or 'off', not {state!r}")
    return [(f"turn_{state}", {})]


def _number(state: str | None, attrs: dict) -> Commands:
    try:
        value = float(state)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SceneError(f"a number's state is its value, got {state!r}") from None
    return [("set_value", {"value": value})]


def _select(state: str | None, attrs: dict) -> Commands:
    if not state:
        raise SceneError("a select's state is the option to choose")
    return [("select_option", {"option": state})]


TRANSLATORS = {"light": _light, "switch": _switch, "climate": _climate, "cover": _cover, "number": _number,
               "select": _select}


def translate(hub: "Hub", entity_id: str, target: Any) -> tuple[Commands, list[str]]:
    """The hub commands that bring ``entity_id`` to ``target`` (a state, or a mapping of ``state``
    and attributes), each validated by the command gate; and the attributes ignored as read-only."""
    entry = hub.entities.get(entity_id)
    if entry is None:
        raise SceneError(f"unknown entity {entity_id!r}")
    if isinstance(target, dict):
        attrs = dict(target)
        state = _state_text(attrs.pop("state", None))
    else:
        attrs, state = {}, _state_text(target)
    capability = entry.capability
    if capability not in TRANSLATORS and capability != "lock":
        raise SceneError(f"{entity_id} is a {capability}: it cannot be set, so a scene cannot hold it "
                         f"(settable: {', '.join(sorted([*TRANSLATORS, 'lock']))})")
    for attr in UNSUPPORTED.get(capability, ()):
        value = attrs.get(attr)
        if value is not None and not (attr == "effect" and value in NO_EFFECT):
            raise SceneError(f"the hub's {capability} entities have no {attr} (the scene asks for {value!r})", attr)
    if capability == "lock":
        current = hub.states.get(entity_id)
        needs_code = bool(
            (current is not None and (current.attributes.get("code_required") or current.attributes.get("code_format")))
            or entry.options.get("code_required") or entry.options.get("code_format"))
        commands = _lock(state, attrs, needs_code, entity_id)
    else:
        commands = TRANSLATORS[capability](state, attrs)
    for command, args in commands:
        try:
            hub.commands.validate(entity_id, command, args)
        except CommandError as exc:
            field_name = next((e["field"] for e in exc.errors if e.get("field")), None)
            shown = attrs.get(field_name, args.get(field_name)) if field_name else state
            what = f"{field_name} {shown!r}" if field_name else repr(state)
            detail = "; ".join(e["message"] for e in exc.errors) or exc.message
            raise SceneError(f"{entity_id} cannot be set to {what}: {detail}",
                             field_name if field_name in attrs else None) from None
    used = {"state", *USED.get(capability, ()), *UNSUPPORTED.get(capability, ())}
    known = READ_ONLY | READ_ONLY_BY_CAPABILITY.get(capability, frozenset())
    ignored = sorted(a for a in attrs if a not in used and a not in known)
    return commands, ignored


def plan_entities(hub: "Hub", entities: Any, fail) -> tuple[dict[str, Commands], dict[str, str], dict[str, list[str]]]:
    """Every entity of a scene (or of ``scene.apply``'s data) translated; ``fail(path, message)``
    reports each one that cannot be, at its own key."""
    plan: dict[str, Commands] = {}
    capabilities: dict[str, str] = {}
    ignored: dict[str, list[str]] = {}
    if not isinstance(entities, dict) or not entities:
        fail((), "entities is a mapping of entity ids to their states")
        return plan, capabilities, ignored
    if len(entities) > MAX_SCENE_ENTITIES:
        fail((), f"a scene sets at most {MAX_SCENE_ENTITIES} entities, this one {len(entities)}")
        return plan, capabilities, ignored
    for entity_id, target in entities.items():
        if not isinstance(entity_id, str):
            fail((entity_id,), f"{entity_id!r} is not an entity id")
            continue
        try:
            plan[entity_id], skipped = translate(hub, entity_id, target)
        except SceneError as exc:
            fail((entity_id,) + ((exc.attribute,) if exc.attribute and isinstance(target, dict) else ()), exc.message)
            continue
        capabilities[entity_id] = hub.entities.get(entity_id).capability
        if skipped:
            ignored[entity_id] = skipped
    return plan, capabilities, ignored
