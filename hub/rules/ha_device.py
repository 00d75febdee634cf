"""Home Assistant's *device* triggers, conditions and actions, as its automation editor writes them,
translated by ``hub rules import`` into the plain steps they stand for.

HA's editor saves ``- trigger: device`` with ``device_id``, ``domain``, ``type`` and an ``entity_id``
that (in automations saved since 2023) is a hash from HA's entity registry, not an entity id. The hub will never learn
HA's registries, so the import reads them once (``.storage/core.entity_registry`` and
``core.device_registry`` in HA's configuration folder) and rewrites each device item into what HA
itself runs for it: every per-domain ``device_trigger.py`` / ``device_condition.py`` /
``device_action.py`` in HA core attaches a ``state`` or ``numeric_state`` trigger, checks a ``state``
or ``numeric_state`` condition, or calls a service on the entity. The translation runs before the
entity mapping, so the resolved ids are then mapped (``--map``, prompts) like any other.

What has no such equivalent stays as it is (an integration's own device triggers, such as a ZHA
remote's button presses, which are events and not states; presets; tilt) and the report says why,
with the item's key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STORAGE = ".storage"
ENTITY_REGISTRY = "core.entity_registry"
DEVICE_REGISTRY = "core.device_registry"
MAX_REGISTRY_BYTES = 64 * 1024 * 1024

_ENTITY_ID = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")

# --- what HA's device automation modules define, per domain ---------------------------------------
#: homeassistant/components/device_automation/toggle_entity.py (and entity.py for changed_states)
TOGGLE_DOMAINS = frozenset({"light", "switch", "fan", "remote", "humidifier", "siren"})

#: binary_sensor/device_trigger.py: per device class the "on" type, then the "off" type. The lock
#: class is "on" when unlocked (HA's own quirk, kept: ``not_locked`` is on).
_BINARY_PAIRS = (
    ("bat_low", "not_bat_low"), ("charging", "not_charging"), ("co", "no_co"), ("cold", "not_cold"),
    ("connected", "not_connected"), ("gas", "no_gas"), ("glass_break", "no_glass_break"), ("hot", "not_hot"),
    ("light", "no_light"), ("not_locked", "locked"), ("moist", "not_moist"), ("motion", "no_motion"),
    ("moving", "not_moving"), ("occupied", "not_occupied"), ("opened", "not_opened"), ("plugged_in", "not_plugged_in"),
    ("powered", "not_powered"), ("present", "not_present"), ("problem", "no_problem"), ("running", "not_running"),
    ("unsafe", "not_unsafe"), ("smoke", "no_smoke"), ("sound", "no_sound"), ("tampered", "not_tampered"),
    ("update", "no_update"), ("vibration", "no_vibration"), ("turned_on", "turned_off"),
)
BINARY_TRIGGERS = {on: "on" for on, _ in _BINARY_PAIRS} | {off: "off" for _, off in _BINARY_PAIRS}
#: binary_sensor/device_condition.py: the same with ``is_``, and ``is_open`` for the opening classes.
BINARY_CONDITIONS = ({f"is_{on}": "on" for on, _ in _BINARY_PAIRS if on not in ("opened", "turned_on")}
                     | {f"is_{off}": "off" for _, off in _BINARY_PAIRS if off not in ("not_opened", "turned_off")}
                     | {"is_open": "on", "is_not_open": "off", "is_on": "on", "is_off": "off"})

LOCK_TRIGGERS = {"locked": "locked", "unlocked": "unlocked", "locking": "locking", "unlocking": "unlocking",
                 "jammed": "jammed", "open": "open", "opening": "opening"}
LOCK_CONDITIONS = {f"is_{k}": v for k, v in LOCK_TRIGGERS.items()}
LOCK_ACTIONS = {"lock": "lock", "unlock": "unlock", "open": "open"}

COVER_TRIGGERS = {"opened": "open", "closed": "closed", "opening": "opening", "closing": "closing"}
COVER_CONDITIONS = {"is_open": "open", "is_closed": "closed", "is_opening": "opening", "is_closing": "closing"}
COVER_ACTIONS = {"open": "open_cover", "close": "close_cover", "stop": "stop_cover"}
#: HA's cover attribute ``current_position`` is the hub's ``position``.
COVER_POSITION = "position"

HVAC_MODES = ("off", "heat", "cool", "heat_cool", "auto", "dry", "fan_only")
CLIMATE_CURRENT = {"current_temperature_changed": "current_temperature",
                   "current_humidity_changed": "current_humidity"}

#: What ``homeassistant.turn_on/off/toggle`` reaches of a device: the domains with those services
#: (homeassistant/components/homeassistant/__init__.py calls each domain's own; others are skipped).
HA_SWITCHABLE = frozenset({"light", "switch", "fan", "cover", "climate", "humidifier", "remote", "siren",
                           "media_player", "input_boolean", "water_heater", "vacuum", "valve"})

DOMAINS = TOGGLE_DOMAINS | {"binary_sensor", "sensor", "lock", "cover", "climate", "button"}

#: Keys every device item may carry beside its own: HA's, and the hub's step keys.
_BASE = {"device_id", "domain", "entity_id", "type", "metadata", "alias", "enabled"}
_TRIGGER_BASE = _BASE | {"trigger", "platform", "id", "variables"}
_CONDITION_BASE = _BASE | {"condition"}
_ACTION_BASE = _BASE | {"continue_on_error"}


class RegistryError(ValueError):
    """A registry file that is there but cannot be read: the import stops, naming it."""


class Untranslatable(Exception):
    """Why one device item stays as it is."""


@dataclass
class Registries:
    """What the import needs of HA's registries: registry id -> entity id, and each device's name and
    entities (for the report, and for a ``target.device_id``)."""

    folder: Path
    entities: dict[str, str] = field(default_factory=dict)  # entity registry id -> entity id
    device_of: dict[str, str | None] = field(default_factory=dict)  # entity id -> device id
    devices: dict[str, str] = field(default_factory=dict)  # device id -> name
    secondary: set[str] = field(default_factory=set)  # config/diagnostic or hidden: not a device target's
    found: bool = False  # an entity registry was there

    def device_entities(self, device_id: str) -> list[str]:
        """The entities HA's service call picks for a device target (helpers/service.py leaves out
        those with an entity category and hidden ones)."""
        return sorted(e for e, d in self.device_of.items() if d == device_id and e not in self.secondary)

    def is_device(self, device_id: str) -> bool:
        return device_id in self.devices or device_id in self.device_of.values()

    def device_name(self, device_id: str) -> str:
        name = self.devices.get(device_id)
        return f"{name!r} ({device_id})" if name else str(device_id)


def _read_store(path: Path, key: str) -> dict | None:
    """The ``data`` of one of HA's ``.storage`` files (``{"version", "minor_version", "key", "data"}``,
    homeassistant/helpers/storage.py), or None when it is not there."""
    if not path.is_file():
        return None
    try:
        if path.stat().st_size > MAX_REGISTRY_BYTES:
            raise RegistryError(f"{path}: larger than {MAX_REGISTRY_BYTES} bytes")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: cannot read it: {exc}") from None
    except json.JSONDecodeError as exc:
        raise RegistryError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict) or doc.get("key", key) != key:
        raise RegistryError(f"{path}: not Home Assistant's {key} (expected {{\"key\": \"{key}\", \"data\": {{...}}}})")
    return doc["data"]


def read_registries(folder: Path) -> Registries:
    """HA's entity and device registries from ``folder/.storage`` (either may be missing: then
    registry ids stay unresolved and the report says so)."""
    regs = Registries(folder)
    storage = folder / STORAGE
    entities = _read_store(storage / ENTITY_REGISTRY, ENTITY_REGISTRY)
    if entities is not None:
        regs.found = True
        for entry in entities.get("entities") or []:
            if isinstance(entry, dict) and isinstance(entry.get("entity_id"), str):
                if isinstance(entry.get("id"), str):
                    regs.entities[entry["id"]] = entry["entity_id"]
                regs.device_of[entry["entity_id"]] = entry.get("device_id")
                if entry.get("entity_category") or entry.get("hidden_by"):
                    regs.secondary.add(entry["entity_id"])
    devices = _read_store(storage / DEVICE_REGISTRY, DEVICE_REGISTRY)
    for entry in (devices or {}).get("devices") or []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            name = entry.get("name_by_user") or entry.get("name")
            regs.devices[entry["id"]] = str(name) if name else ""
    return regs


# --- the translation -------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What became of one automation's (or script's) device items."""

    translated: dict[str, int] = field(default_factory=lambda: {"trigger": 0, "condition": 0, "action": 0,
                                                                "device target": 0})
    left: list[str] = field(default_factory=list)  # "key: why" of each item left as it is

    @property
    def count(self) -> int:
        return sum(self.translated.values())

    def summary(self) -> str | None:
        if not self.count:
            return None
        parts = [f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in self.translated.items() if n]
        return f"translated from Home Assistant's device ids to entity ids: {', '.join(parts)}"


def _kind(value: dict) -> str | None:
    if value.get("trigger") == "device" or (value.get("platform") == "device" and "trigger" not in value):
        return "trigger"
    if value.get("condition") == "device":
        return "condition"
    if ("device_id" in value and "domain" in value and "type" in value
            and not any(k in value for k in ("action", "service", "condition", "trigger", "platform"))):
        return "action"
    return None


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Translator:
    def __init__(self, regs: Registries) -> None:
        self.regs = regs

    def translate(self, raw: Any, name: str) -> tuple[Any, Outcome]:
        """``raw`` with every device item it can translate replaced; the others are kept as written."""
        outcome = Outcome()
        memo: dict[int, Any] = {}

        def walk(value: Any, path: tuple) -> Any:
            if isinstance(value, list):
                if id(value) not in memo:
                    memo[id(value)] = out = []
                    out.extend(walk(v, path + (i,)) for i, v in enumerate(value))
                return memo[id(value)]
            if not isinstance(value, dict):
                return value
            if id(value) in memo:  # shared by a YAML alias: translated once
                return memo[id(value)]
            kind = _kind(value)
            if kind is None and _device_target(value):
                kind = "device target"
            if kind is not None:
                try:
                    new = getattr(self, kind.replace("device ", ""))(value)
                except Untranslatable as exc:
                    what = kind if kind == "device target" else f"device {kind} {self._what(value)}"
                    outcome.left.append(f"{_dotted((name,) + path)}: {what} left as it is: {exc}")
                else:
                    if new is not value:
                        outcome.translated[kind] += 1
                        memo[id(value)] = new
                        return new
            memo[id(value)] = out = {}
            out.update({k: walk(v, path + (k,)) for k, v in value.items()})
            return out

        return walk(raw, ()), outcome

    # -- shared --------------------------------------------------------------------------------------
    def _what(self, item: dict) -> str:
        parts = [str(item[k]) for k in ("domain", "type", "subtype") if isinstance(item.get(k), (str, int))]
        device = item.get("device_id")
        of = f" of {self.regs.device_name(device)}" if isinstance(device, str) and device in self.regs.devices else ""
        return f"({' '.join(parts)}){of}" if parts else of.strip()

    def _entity(self, item: dict) -> tuple[str, str]:
        """(domain, entity id) of a device item, its registry id resolved."""
        domain = item.get("domain")
        if not isinstance(domain, str):
            raise Untranslatable("it has no domain")
        if domain not in DOMAINS:
            raise Untranslatable(f"{domain}'s device automations are that integration's own (a remote's button "
                                 "press is an event, not an entity's state): the hub has no equivalent")
        ref = item.get("entity_id")
        if ref is None:
            raise Untranslatable("it names no entity_id")
        if not isinstance(ref, str):
            raise Untranslatable("its entity_id is not one id")
        if ref in self.regs.entities:
            entity_id = self.regs.entities[ref]
        elif _ENTITY_ID.match(ref):
            entity_id = ref
        elif not self.regs.found:
            raise Untranslatable(f"entity_id {ref} is an entity registry id and there is no "
                                 f"{STORAGE}/{ENTITY_REGISTRY} in {self.regs.folder} to look it up in")
        else:
            raise Untranslatable(f"entity_id {ref} is not in {STORAGE}/{ENTITY_REGISTRY} (a deleted entity?)")
        if entity_id.split(".", 1)[0] != domain:
            raise Untranslatable(f"its entity {entity_id} is not of domain {domain}")
        return domain, entity_id

    @staticmethod
    def _keys(item: dict, base: set[str], extra: tuple[str, ...] = ()) -> None:
        unknown = sorted(str(k) for k in item if k not in base and k not in extra)
        if unknown:
            raise Untranslatable(f"it has {', '.join(repr(k) for k in unknown)}, which this type does not take")

    @staticmethod
    def _bounds(item: dict, out: dict) -> None:
        for key in ("above", "below"):
            if item.get(key) is not None:
                out[key] = item[key]
        if "above" not in out and "below" not in out:
            raise Untranslatable("it needs above, below or both")

    @staticmethod
    def _unknown(kind: str, domain: str, typ: Any, known: Any) -> Untranslatable:
        return Untranslatable(f"{domain} has no device {kind} type {typ!r}; it has {', '.join(sorted(known))}")

    # -- triggers ------------------------------------------------------------------------------------
    def trigger(self, item: dict) -> dict:
        domain, entity_id = self._entity(item)
        typ = item.get("type")
        body: dict[str, Any]
        extra: tuple[str, ...] = ("for",)
        if domain in TOGGLE_DOMAINS and typ in ("turned_on", "turned_off"):
            kind, body = "state", {"to": "on" if typ == "turned_on" else "off"}
        elif typ == "changed_states" and domain in TOGGLE_DOMAINS:
            kind, body = "state", {}  # HA's `to: null`: any change of the state, not of an attribute
        elif domain == "binary_sensor":
            if typ not in BINARY_TRIGGERS:
                raise self._unknown("trigger", domain, typ, BINARY_TRIGGERS)
            kind, body = "state", {"to": BINARY_TRIGGERS[typ]}
        elif domain == "sensor":
            if not isinstance(typ, str):
                raise self._unknown("trigger", domain, typ, ["value", "temperature", "humidity", "power", "..."])
            kind, body, extra = "numeric_state", {}, ("for", "above", "below")
            self._bounds(item, body)
        elif domain == "lock":
            if typ not in LOCK_TRIGGERS:
                raise self._unknown("trigger", domain, typ, LOCK_TRIGGERS)
            kind, body = "state", {"to": LOCK_TRIGGERS[typ]}
        elif domain == "cover":
            if typ == "position":
                # HA: above defaults to -1 and below to 101, on the current_position attribute.
                kind, extra = "numeric_state", ("for", "above", "below")
                if item.get("above") is None and item.get("below") is None:
                    raise Untranslatable("it needs above, below or both")
                body = {"attribute": COVER_POSITION, "above": -1 if item.get("above") is None else item["above"],
                        "below": 101 if item.get("below") is None else item["below"]}
            elif typ in COVER_TRIGGERS:
                kind, body = "state", {"to": COVER_TRIGGERS[typ]}
            elif typ == "tilt_position":
                raise Untranslatable("the hub's covers have no tilt")
            else:
                raise self._unknown("trigger", domain, typ, list(COVER_TRIGGERS) + ["position"])
        elif domain == "climate":
            if typ == "hvac_mode_changed":
                mode = item.get("to")
                if mode not in HVAC_MODES:
                    raise Untranslatable(f"'to' must be one of {', '.join(HVAC_MODES)}, got {mode!r}")
                # HA: from any other mode (not from unavailable) to this one.
                kind, body, extra = "state", {"from": [m for m in HVAC_MODES if m != mode], "to": mode}, ("for", "to")
            elif typ in CLIMATE_CURRENT:
                kind, body, extra = "numeric_state", {"attribute": CLIMATE_CURRENT[typ]}, ("for", "above", "below")
                self._bounds(item, body)
            else:
                raise self._unknown("trigger", domain, typ, ["hvac_mode_changed", *CLIMATE_CURRENT])
        elif domain == "button":
            if typ != "pressed":
                raise self._unknown("trigger", domain, typ, ["pressed"])
            kind, body, extra = "state", {}, ()  # a button's state is when it was last pressed
        elif domain in TOGGLE_DOMAINS:
            raise self._unknown("trigger", domain, typ, ["turned_on", "turned_off", "changed_states"])
        else:
            raise Untranslatable(f"the hub does not translate {domain}'s device triggers")
        self._keys(item, _TRIGGER_BASE, extra)
        key = "platform" if "platform" in item and "trigger" not in item else "trigger"
        out: dict[str, Any] = {key: kind, "entity_id": entity_id, **body}
        if item.get("for") is not None and "for" in extra:
            out["for"] = item["for"]
        return _with_common(out, item, ("id", "variables", "alias", "enabled"))

    # -- conditions ----------------------------------------------------------------------------------
    def condition(self, item: dict) -> dict:
        domain, entity_id = self._entity(item)
        typ = item.get("type")
        extra: tuple[str, ...] = ("for",)
        if domain in TOGGLE_DOMAINS and typ in ("is_on", "is_off"):
            body: dict[str, Any] = {"condition": "state", "state": typ[3:]}
        elif domain == "binary_sensor":
            if typ not in BINARY_CONDITIONS:
                raise self._unknown("condition", domain, typ, BINARY_CONDITIONS)
            body = {"condition": "state", "state": BINARY_CONDITIONS[typ]}
        elif domain == "sensor":
            if not isinstance(typ, str) or not typ.startswith("is_"):
                raise self._unknown("condition", domain, typ, ["is_value", "is_temperature", "is_humidity", "..."])
            body, extra = {"condition": "numeric_state"}, ("above", "below")
            self._bounds(item, body)
        elif domain == "lock":
            if typ not in LOCK_CONDITIONS:
                raise self._unknown("condition", domain, typ, LOCK_CONDITIONS)
            body, extra = {"condition": "state", "state": LOCK_CONDITIONS[typ]}, ()
        elif domain == "cover":
            if typ == "is_position":
                body, extra = {"condition": "numeric_state", "attribute": COVER_POSITION}, ("above", "below")
                self._bounds(item, body)
            elif typ in COVER_CONDITIONS:
                body, extra = {"condition": "state", "state": COVER_CONDITIONS[typ]}, ()
            elif typ == "is_tilt_position":
                raise Untranslatable("the hub's covers have no tilt")
            else:
                raise self._unknown("condition", domain, typ, list(COVER_CONDITIONS) + ["is_position"])
        elif domain == "climate":
            if typ == "is_hvac_mode":
                mode = item.get("hvac_mode")
                if mode not in HVAC_MODES:
                    raise Untranslatable(f"hvac_mode must be one of {', '.join(HVAC_MODES)}, got {mode!r}")
                body, extra = {"condition": "state", "state": mode}, ("hvac_mode",)
            elif typ == "is_preset_mode":
                raise Untranslatable("the hub's thermostats have no preset modes")
            else:
                raise self._unknown("condition", domain, typ, ["is_hvac_mode", "is_preset_mode"])
        elif domain in TOGGLE_DOMAINS:
            raise self._unknown("condition", domain, typ, ["is_on", "is_off"])
        else:
            raise Untranslatable(f"the hub does not translate {domain}'s device conditions")
        self._keys(item, _CONDITION_BASE, extra)
        out = {"condition": body.pop("condition"), "entity_id": entity_id, **body}
        if item.get("for") is not None and "for" in extra:
            out["for"] = item["for"]
        return _with_common(out, item, ("alias", "enabled"))

    # -- actions -------------------------------------------------------------------------------------
    def action(self, item: dict) -> dict:
        domain, entity_id = self._entity(item)
        typ = item.get("type")
        data: dict[str, Any] = {}
        extra: tuple[str, ...] = ()
        if domain == "light" and typ in ("brightness_increase", "brightness_decrease"):
            self._keys(item, _ACTION_BASE)
            return _with_common(_brightness_step(entity_id, typ == "brightness_increase"), item,
                                ("alias", "enabled", "continue_on_error"))
        if domain == "light" and (typ == "flash" or item.get("flash") is not None):
            raise Untranslatable("the hub's lights do not flash")
        if domain in TOGGLE_DOMAINS and typ in ("turn_on", "turn_off", "toggle"):
            service = typ
            if domain == "light" and typ == "turn_on" and item.get("brightness_pct") is not None:
                data["brightness_pct"] = item["brightness_pct"]
            extra = ("brightness_pct", "flash") if domain == "light" else ()
        elif domain == "lock":
            if typ not in LOCK_ACTIONS:
                raise self._unknown("action", domain, typ, LOCK_ACTIONS)
            service, extra = LOCK_ACTIONS[typ], ("code",)
            if item.get("code") is not None:
                data["code"] = item["code"]
        elif domain == "cover":
            if typ in COVER_ACTIONS:
                service = COVER_ACTIONS[typ]
            elif typ == "set_position":
                service, extra = "set_cover_position", ("position",)
                data["position"] = item.get("position", 0)  # HA's default: 0
            elif typ in ("open_tilt", "close_tilt", "set_tilt_position"):
                raise Untranslatable("the hub's covers have no tilt")
            else:
                raise self._unknown("action", domain, typ, list(COVER_ACTIONS) + ["set_position"])
        elif domain == "climate":
            if typ == "set_hvac_mode":
                mode = item.get("hvac_mode")
                if mode not in HVAC_MODES:
                    raise Untranslatable(f"hvac_mode must be one of {', '.join(HVAC_MODES)}, got {mode!r}")
                service, extra, data["hvac_mode"] = "set_hvac_mode", ("hvac_mode",), mode
            elif typ == "set_preset_mode":
                raise Untranslatable("the hub's thermostats have no preset modes")
            else:
                raise self._unknown("action", domain, typ, ["set_hvac_mode", "set_preset_mode"])
        elif domain == "button":
            if typ != "press":
                raise self._unknown("action", domain, typ, ["press"])
            service = "press"
        elif domain in TOGGLE_DOMAINS:
            raise self._unknown("action", domain, typ, ["turn_on", "turn_off", "toggle"]
                                + (["brightness_increase", "brightness_decrease", "flash"] if domain == "light" else []))
        else:
            raise Untranslatable(f"the hub does not translate {domain}'s device actions")
        self._keys(item, _ACTION_BASE, extra)
        out: dict[str, Any] = {"action": f"{domain}.{service}", "target": {"entity_id": entity_id}}
        if data:
            out["data"] = data
        return _with_common(out, item, ("alias", "enabled", "continue_on_error"))


    # -- a service step's target.device_id -----------------------------------------------------------
    def target(self, step: dict) -> dict:
        """HA's device ids in ``target.device_id`` become the entities of each device that the service
        applies to (its domain's; those that switch for ``homeassistant.*``), as HA's call picks them. Ids
        that are not in HA's device registry stay (the hub's own ``plugin:device`` ids, or a map's)."""
        service = str(step.get("action", step.get("service")))
        domain = service.split(".", 1)[0]
        target = dict(step["target"])
        devices = target["device_id"] if isinstance(target["device_id"], list) else [target["device_id"]]
        kept, entities = [], []
        for device_id in devices:
            if not isinstance(device_id, str) or not self.regs.is_device(device_id):
                kept.append(device_id)
                continue
            mine = [e for e in self.regs.device_entities(device_id)
                    if e.split(".", 1)[0] in (HA_SWITCHABLE if domain == "homeassistant" else (domain,))]
            if not mine:
                raise Untranslatable(f"device {self.regs.device_name(device_id)} has no {domain} entity in "
                                     f"{STORAGE}/{ENTITY_REGISTRY} for {service}")
            entities += [e for e in mine if e not in entities]
        if not entities:
            return step  # none of HA's: nothing to translate
        named = target.get("entity_id")
        named = [] if named is None else named if isinstance(named, list) else [named]
        target["entity_id"] = named + [e for e in entities if e not in named]
        if kept:
            target["device_id"] = kept if len(kept) > 1 else kept[0]
        else:
            del target["device_id"]
        order = ["entity_id"] + [k for k in target if k != "entity_id"]
        return {**step, "target": {k: target[k] for k in order}}


def _brightness_step(entity_id: str, up: bool) -> dict:
    """HA's brightness_increase/decrease: ``brightness_step_pct: ±10`` (a step of 26 of 255, from 0
    when the light is off), and a light stepped down to 0 turns off (light/__init__.py)."""
    now = f"(state_attr('{entity_id}', 'brightness') | int(0) if is_state('{entity_id}', 'on') else 0)"

    def target() -> dict:  # one mapping per step: a shared one would be written as a YAML alias
        return {"entity_id": entity_id}

    if up:
        return {"action": "light.turn_on", "target": target(),
                "data": {"brightness": f"{{{{ [{now} + 26, 255] | min }}}}"}}
    return {"if": [f"{{{{ {now} <= 26 }}}}"],
            "then": [{"action": "light.turn_off", "target": target()}],
            "else": [{"action": "light.turn_on", "target": target(), "data": {"brightness": f"{{{{ {now} - 26 }}}}"}}]}


def _with_common(out: dict, item: dict, keys: tuple[str, ...]) -> dict:
    for key in keys:
        if key in item:
            out[key] = item[key]
    return out


def _device_target(step: dict) -> bool:
    """A service step whose ``target`` names devices."""
    service = step.get("action", step.get("service"))
    target = step.get("target")
    return isinstance(service, str) and "." in service and isinstance(target, dict) and "device_id" in target
