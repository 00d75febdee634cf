"""``hub rules import``: a Home Assistant configuration folder's automations, scripts, scenes and
automation blueprints, with HA's entity ids mapped to the hub's, checked exactly as the hub will load
them before anything is written.

Reading is tolerant of HA's own YAML tags (``!include*``, ``!secret``, ``!env_var``, ``!input``):
they are read as markers and settled per automation, so one automation needing a secret is reported
(never with the value) while the others import. The verdict per item comes from
``hub.rules.loader.load_rules`` run on a staging copy of the hub's configuration folder with the
imported files in place: what the report says is what ``hub rules reload`` will do.
"""

from __future__ import annotations

import difflib
import filecmp
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from hub.config import BlueprintInput, ConfigIssue, read_yaml
from hub.devices.model import slugify
from hub.rules import ha_device
from hub.rules.blueprints import BLUEPRINT_DIR
from hub.rules.loader import MAX_FILE_BYTES, RULES_DIR, RULES_FILE

OUT_NAME = "ha_import.yaml"
SCRIPTS_FILE, SCRIPTS_DIR = "scripts.yaml", "scripts"
SCENES_FILE, SCENES_DIR = "scenes.yaml", "scenes"
#: What of the hub's configuration folder ``load_rules`` reads: the staging copy holds these.
CONFIG_PARTS = ("configuration.yaml", "secrets.yaml", RULES_FILE, RULES_DIR, SCRIPTS_FILE, SCRIPTS_DIR,
                SCENES_FILE, SCENES_DIR, "blueprints")
MAX_INCLUDE_DEPTH = 8
#: HA's entity domains: a quoted ``'light.kitchen'`` in a template is an entity id, ``trigger.id`` is not.
HA_DOMAINS = frozenset(
    "alarm_control_panel assist_satellite automation binary_sensor button calendar camera climate "
    "conversation counter cover date datetime device_tracker event fan group humidifier image "
    "input_boolean input_button input_datetime input_number input_select input_text lawn_mower light "
    "lock media_player meter notify number person remote scene schedule script select sensor siren sun "
    "switch text time timer todo update vacuum valve water_heater weather zone".split())
_ENTITY_RE = re.compile(r"^(?!_)[a-z0-9_]+(?<!_)\.(?!_)[a-z0-9_]+(?<!_)$")
_DOMAIN_ALT = "|".join(sorted(HA_DOMAINS, key=len, reverse=True))
_TEMPLATE_REF = re.compile(rf"""(['"])((?:{_DOMAIN_ALT})\.[a-z0-9_]+)\1|states\.((?:{_DOMAIN_ALT})\.[a-z0-9_]+)""")
#: Keys whose (non-template) values name entities in HA's automations, scripts and scenes.
_ENTITY_KEYS = frozenset({"entity_id", "zone", "at", "after", "before", "scene"})


class UnusableInput(Exception):
    """The folder cannot be imported at all (no such folder, a YAML error): exit status 2."""


# --- reading HA's YAML ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Secret:
    name: str


@dataclass(frozen=True)
class EnvVar:
    name: str
    default: Any = None


@dataclass(frozen=True)
class Include:
    tag: str
    path: str
    file: Path  # the file that holds the tag: a path is relative to its folder
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class UnknownTag:
    tag: str


class _HaLoader(yaml.SafeLoader):
    """HA's tags read as markers (``Include`` is resolved later, only where an import needs it: a
    ``sensor: !include`` elsewhere in configuration.yaml is never opened)."""

    file: Path = Path("configuration.yaml")


def _scalar(loader, node) -> str:
    return str(loader.construct_scalar(node)) if isinstance(node, yaml.ScalarNode) else ""


def _construct_include(loader, tag_suffix, node):
    tag = "!" + tag_suffix
    return Include(tag, _scalar(loader, node), loader.file, node.start_mark.line + 1)


_HaLoader.add_constructor("!secret", lambda l, n: Secret(_scalar(l, n)))
_HaLoader.add_constructor("!input", lambda l, n: BlueprintInput(_scalar(l, n), n.start_mark.line + 1))
_HaLoader.add_constructor("!env_var", lambda l, n: EnvVar(*(_scalar(l, n).split(None, 1) or [""])))
for _tag in ("include", "include_dir_list", "include_dir_merge_list", "include_dir_named", "include_dir_merge_named"):
    _HaLoader.add_constructor(f"!{_tag}", lambda l, n, t=_tag: _construct_include(l, t, n))
_HaLoader.add_multi_constructor("!", lambda l, suffix, n: UnknownTag("!" + suffix))


def read_ha_yaml(path: Path) -> tuple[Any, Callable[[Any], int | None]]:
    """(data, line of a top-level item or key) of one HA file; UnusableInput names file:line."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UnusableInput(f"{path}: {size} bytes; a file may have at most {MAX_FILE_BYTES}")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UnusableInput(f"{path}: cannot read it: {exc}") from None
    loader = _HaLoader(text)
    loader.file = path
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        # The problem text and mark only: str(exc) quotes the file, which may hold a secret.
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise UnusableInput(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise UnusableInput(f"{path}: invalid YAML: {type(exc).__name__}") from None
    finally:
        loader.dispose()
    lines: dict[Any, int] = {}
    if isinstance(root, yaml.SequenceNode):
        lines = {i: n.start_mark.line + 1 for i, n in enumerate(root.value)}
    elif isinstance(root, yaml.MappingNode):
        lines = {k.value: k.start_mark.line + 1 for k, _ in root.value if isinstance(k, yaml.ScalarNode)}
    return data, lines.get


@dataclass
class Item:
    """One automation, script or scene as found in HA's files, and what became of it."""

    kind: str  # automation | script | scene
    name: str  # automation id, script id, scene id (or name)
    raw: Any
    file: Path
    line: int | None
    problems: list[str] = field(default_factory=list)  # why it cannot even be written
    notes: list[str] = field(default_factory=list)
    status: str = ""  # loaded | not loaded | not imported
    reasons: list[str] = field(default_factory=list)
    written: bool = False

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else str(self.file)

    @property
    def label(self) -> str:
        """What the report calls it: a scene made in HA's editor has a number for id, and a name."""
        name = self.raw.get("name") if self.kind == "scene" and isinstance(self.raw, dict) else None
        return f"{name} ({self.name})" if name and str(name) != self.name else self.name


class _Reader:
    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()

    def _target(self, inc: Include) -> Path:
        target = (inc.file.parent / inc.path).resolve()
        if not target.is_relative_to(self.folder):
            raise UnusableInput(f"{inc.where}: {inc.tag} {inc.path} leaves {self.folder}")
        if not target.exists():
            raise UnusableInput(f"{inc.where}: {inc.tag} {inc.path}: no such file or folder")
        return target

    def _dir_files(self, folder: Path) -> list[Path]:
        # As HA: every .yaml below, hidden ones left out, in name order.
        return sorted(p for p in folder.rglob("*.yaml")
                      if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))

    def resolve(self, value: Any, depth: int = 0, memo: dict | None = None) -> Any:
        """``value`` with nested ``!include*`` replaced by what they name. A mapping or list shared
        through YAML aliases is resolved once and stays shared (a "billion laughs" file stays small)."""
        memo = {} if memo is None else memo
        if isinstance(value, Include):
            if depth >= MAX_INCLUDE_DEPTH:
                raise UnusableInput(f"{value.where}: includes nested deeper than {MAX_INCLUDE_DEPTH}")
            return self.resolve(self._include(value), depth + 1)
        if isinstance(value, (dict, list)):
            if id(value) not in memo:
                memo[id(value)] = out = {} if isinstance(value, dict) else []
                if isinstance(value, dict):
                    out.update({k: self.resolve(v, depth, memo) for k, v in value.items()})
                else:
                    out.extend(self.resolve(v, depth, memo) for v in value)
            return memo[id(value)]
        return value

    def _include(self, inc: Include) -> Any:
        target = self._target(inc)
        if inc.tag == "!include":
            return read_ha_yaml(target)[0]
        files = self._dir_files(target)
        if inc.tag == "!include_dir_list":
            return [read_ha_yaml(p)[0] for p in files]
        if inc.tag == "!include_dir_named":
            return {p.stem: read_ha_yaml(p)[0] for p in files}
        merged: Any = [] if inc.tag == "!include_dir_merge_list" else {}
        for p in files:
            data = read_ha_yaml(p)[0]
            if isinstance(merged, list) and isinstance(data, list):
                merged += data
            elif isinstance(merged, dict) and isinstance(data, dict):
                merged.update(data)
        return merged

    def located(self, value: Any, file: Path, line_of: Callable[[Any], int | None], *, named: bool,
                own_line: int | None = None, depth: int = 0) -> list[tuple[Any, Any, Path, int | None]]:
        """(key or index, item, file, line) of a list (``named``: a mapping) that may be, or hold, an
        include: each item keeps the file and line it was written at."""
        if isinstance(value, Include):
            if depth >= MAX_INCLUDE_DEPTH:  # a file that includes itself
                raise UnusableInput(f"{value.where}: includes nested deeper than {MAX_INCLUDE_DEPTH}")
            target = self._target(value)
            if value.tag == "!include":
                return self.located(*_pair(read_ha_yaml(target), target), named=named, depth=depth + 1)
            found = []
            for p in self._dir_files(target):
                data, lines = read_ha_yaml(p)
                if value.tag in ("!include_dir_list", "!include_dir_named"):
                    found.append((p.stem, data, p, 1))
                else:
                    found += self.located(data, p, lines, named=named, depth=depth + 1)
            return found
        if named and isinstance(value, dict):
            return [(k, v, file, line_of(k) or own_line) for k, v in value.items()]
        if not named and isinstance(value, list):
            return [(i, v, file, line_of(i) or own_line) for i, v in enumerate(value)]
        if value in (None, [], {}):
            return []
        raise UnusableInput(f"{file}: expected {'a mapping' if named else 'a list'} of "
                            f"{'scripts' if named else 'automations or scenes'}")


def _pair(read: tuple, path: Path) -> tuple:
    return read[0], path, read[1]


@dataclass
class HaFolder:
    folder: Path
    automations: list[Item]
    scripts: list[Item]
    scenes: list[Item]
    blueprints: list[Path]  # relative to blueprints/automation/
    #: HA's local calendars (``.storage/local_calendar.<name>.ics``) by name: the calendar plugin
    #: reads ``calendars/<name>.ics`` as ``calendar.<name>``, the entity id HA gave it.
    calendars: dict[str, Path] = field(default_factory=dict)


def read_folder(path: Path) -> HaFolder:
    """Everything an import takes from ``path`` (a folder, or its automations.yaml alone)."""
    path = Path(path)
    if not path.exists():
        raise UnusableInput(f"{path}: no such folder")
    single = path if path.is_file() else None
    folder = (path.parent if single else path).resolve()
    reader = _Reader(folder)
    sources: dict[str, list] = {"automation": [], "script": [], "scene": []}
    defaults = {"automation": folder / RULES_FILE, "script": folder / SCRIPTS_FILE, "scene": folder / SCENES_FILE}
    if single:
        sources["automation"].append((single.resolve(), *read_ha_yaml(single.resolve())))
    else:
        configured: set[str] = set()
        conf = folder / "configuration.yaml"
        if conf.is_file():
            data, line_of = read_ha_yaml(conf)
            for key, value in (data or {}).items() if isinstance(data, dict) else ():
                kind = str(key).split(" ", 1)[0]
                if kind in sources and value is not None:
                    configured.add(kind)
                    sources[kind].append((conf, value, lambda _k, line=line_of(key): line))
        for kind, file in defaults.items():
            if kind not in configured and file.is_file():
                sources[kind].append((file, *read_ha_yaml(file)))
    found = HaFolder(folder, [], [], [], [])
    for kind, entries in sources.items():
        for file, value, line_of in entries:
            for key, raw, where, line in reader.located(value, file, line_of, named=kind == "script"):
                raw = reader.resolve(raw)
                where = where.relative_to(folder) if where.is_relative_to(folder) else where
                if kind == "script":
                    found.scripts.append(Item("script", str(key), raw, where, line))
                elif kind == "scene":
                    name = raw.get("id") or raw.get("name") if isinstance(raw, dict) else None
                    found.scenes.append(Item("scene", str(name or f"scene {key}"), raw, where, line))
                else:
                    found.automations.append(Item("automation", "", raw, where, line))
    _name_automations(found.automations)
    bp_root = folder / BLUEPRINT_DIR
    if not single and bp_root.is_dir():
        for p in reader._dir_files(bp_root):
            read_ha_yaml(p)  # a YAML error is reported now, with its line, not when a rule uses it
            found.blueprints.append(p.relative_to(bp_root))
    if not single:
        for p in sorted((folder / ".storage").glob("local_calendar.*.ics")):
            found.calendars[p.name[len("local_calendar."):-len(".ics")]] = p
    if not single and not (found.automations or found.scripts or found.scenes or found.blueprints) \
            and not any(f.is_file() for f in defaults.values()):
        raise UnusableInput(f"{path}: no automations.yaml, scripts.yaml, scenes.yaml or blueprints/automation/: "
                            "is it a Home Assistant configuration folder?")
    return found


def _name_automations(items: list[Item]) -> None:
    """The hub needs an id on each rule; HA does not (hand-written automations often have none)."""
    taken = {str(i.raw["id"]) for i in items if isinstance(i.raw, dict) and i.raw.get("id") is not None}
    for n, item in enumerate(items):
        raw = item.raw
        if not isinstance(raw, dict):
            item.name = f"automation {n + 1}"
            continue
        if raw.get("id") is not None:
            raw["id"] = item.name = str(raw["id"])  # 1700000000000 unquoted is an int
            continue
        base = slugify(str(raw.get("alias") or f"ha_automation_{n + 1}"))
        name, k = base, 2
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        item.raw = {"id": name, **raw}
        item.name = name
        item.notes.append(f"no id in Home Assistant: given id {name!r}")


# --- secrets, entity ids -------------------------------------------------------------------------
class Settler:
    """Replaces ``!secret``/``!env_var`` by their values (only when the user allowed it) and records,
    per item, what could not be settled. The values used are kept to scrub them from the report."""

    def __init__(self, folder: Path, use_secrets: bool) -> None:
        self.folder = folder
        self.use_secrets = use_secrets
        self._secrets: dict | None = None
        self.values: set[str] = set()

    def _secret_values(self) -> dict:
        if self._secrets is None:
            path = self.folder / "secrets.yaml"
            data = read_ha_yaml(path)[0] if path.is_file() else {}
            self._secrets = data if isinstance(data, dict) else {}
        return self._secrets

    def settle(self, item: Item) -> None:
        memo: dict[int, Any] = {}

        def walk(value: Any) -> Any:
            if isinstance(value, (dict, list)):
                if id(value) in memo:  # shared by a YAML alias: settled once, shared again
                    return memo[id(value)]
                out: Any = {} if isinstance(value, dict) else []
                memo[id(value)] = out
                if isinstance(value, dict):
                    out.update({k: walk(v) for k, v in value.items()})
                else:
                    out.extend(walk(v) for v in value)
                return out
            if isinstance(value, Secret):
                if not self.use_secrets:
                    item.problems.append(f"uses !secret {value.name}: pass --secrets to read Home Assistant's secrets.yaml")
                    return None
                secrets = self._secret_values()
                if value.name not in secrets:
                    item.problems.append(f"!secret {value.name} is not in {self.folder / 'secrets.yaml'}")
                    return None
                return self._used(secrets[value.name])
            if isinstance(value, EnvVar):
                if not self.use_secrets:
                    item.problems.append(f"uses !env_var {value.name}: pass --secrets to read it from the environment")
                    return None
                if value.name not in os.environ and value.default is None:
                    item.problems.append(f"!env_var {value.name} is not set")
                    return None
                return self._used(os.environ.get(value.name, value.default))
            if isinstance(value, UnknownTag):
                item.problems.append(f"uses the YAML tag {value.tag}, which the hub does not know")
                return None
            return value

        item.raw = walk(item.raw)

    def _used(self, value: Any) -> Any:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value):
            self.values.add(str(value))
        return value

    def scrub(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, "***")
        return text


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def entity_refs(raw: Any) -> set[str]:
    """Every entity id an automation, script or scene names: at entity keys (``entity_id``, a
    target's, a trigger's, ``zone``, a time's ``at``), as a scene's ``entities``, in a blueprint's
    ``input`` values, and quoted (or as ``states.x.y``) inside templates."""
    found: set[str] = set()
    _Rewriter({}, found).walk(raw)
    return found


class _Rewriter:
    def __init__(self, mapping: dict[str, str], found: set[str] | None = None) -> None:
        self.mapping = mapping
        self.found = found if found is not None else set()
        self._memo: dict[int, Any] = {}
        self._patterns = {old: re.compile(rf"(?<![\w.]){re.escape(old)}(?!\w)|(?<=states\.){re.escape(old)}(?!\w)")
                          for old in mapping}

    def walk(self, value: Any, key: Any = None, loose: bool = False) -> Any:
        if isinstance(value, dict):
            if id(value) in self._memo:
                return self._memo[id(value)]
            out: dict = {}
            self._memo[id(value)] = out
            for k, v in value.items():
                if k == "entities" and isinstance(v, dict):  # a scene: entity id -> state
                    out[k] = {self._id(str(e)): self.walk(s) for e, s in v.items()}
                elif k == "input" and key == "use_blueprint":
                    out[k] = self.walk(v, k, loose=True)
                else:
                    out[k] = self.walk(v, k, loose)
            return out
        if isinstance(value, list):
            if id(value) in self._memo:
                return self._memo[id(value)]
            out_list: list = []
            self._memo[id(value)] = out_list
            out_list.extend(self.walk(v, key, loose) for v in value)
            return out_list
        if not isinstance(value, str):
            return value
        if _is_template(value):
            return self._template(value)
        if key in _ENTITY_KEYS or (loose and value.split(".", 1)[0] in HA_DOMAINS):
            return ", ".join(self._id(p) for p in value.split(",")) if "," in value else self._id(value)
        if key == "device_id" and value in self.mapping:  # a map may name devices too
            return self.mapping[value]
        return value

    def _id(self, text: str) -> str:
        text = text.strip()
        if _ENTITY_RE.match(text):
            self.found.add(text)
            return self.mapping.get(text) or text
        return text

    def _template(self, text: str) -> str:
        for match in _TEMPLATE_REF.finditer(text):
            self.found.add(match.group(2) or match.group(3))
        for old, pattern in self._patterns.items():
            if self.mapping.get(old):
                text = pattern.sub(self.mapping[old], text)
        return text


def rewrite(raw: Any, mapping: dict[str, str]) -> Any:
    """``raw`` with every HA entity id in ``mapping`` replaced by the hub's, templates included
    (whole ids only: ``light.kitchen`` is not touched inside ``light.kitchen_2``)."""
    return _Rewriter({k: v for k, v in mapping.items() if v}).walk(raw) if mapping else raw


def closest(entity_id: str, hub_ids: list[str], n: int = 3) -> list[str]:
    """The hub's entities of the same domain whose names are closest to ``entity_id``'s."""
    domain, _, obj = entity_id.partition(".")
    same = {e.partition(".")[2]: e for e in hub_ids if e.partition(".")[0] == domain}
    return [same[m] for m in difflib.get_close_matches(obj, list(same), n=n, cutoff=0.0)]


def read_map(path: Path) -> dict[str, str]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UnusableInput(f"{path}: cannot read it: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise UnusableInput(f"{path}:{mark.line + 1 if mark else '?'}: invalid YAML: {exc.problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str))
                                             for k, v in data.items()):
        raise UnusableInput(f"{path}: a map is a mapping of Home Assistant entity ids to the hub's "
                            "('light.kitchen_ceiling: light.living_room')")
    return {k: v for k, v in data.items() if v}


def map_template(unknown: dict[str, list[str]], hub_ids: list[str], mapping: dict[str, str]) -> str:
    """A ``--map`` file to fill in: each unknown id, its best guesses as comments."""
    lines = ["# Home Assistant entity id: the hub's entity id. An id left empty stays as it is.",
             "# Then: hub rules import PATH --map THIS_FILE"]
    for entity_id in sorted(unknown):
        guesses = closest(entity_id, hub_ids)
        lines.append(f"# used by {', '.join(unknown[entity_id])}"
                     + (f"; closest on the hub: {', '.join(guesses)}" if guesses else "; nothing of its domain on the hub"))
        lines.append(f"{entity_id}: {mapping.get(entity_id, '')}".rstrip())
    return "\n".join(lines) + "\n"


# --- staging, checking, writing ------------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(BlueprintInput, lambda d, v: d.represent_scalar("!input", v.name))


def dump(data: Any, header: str) -> str:
    return header + yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)


@dataclass
class Plan:
    """What an import writes into the hub's configuration folder."""

    automations: list[Item]
    scripts: list[Item]
    scenes: list[Item]
    blueprints: list[tuple[Path, Path]]  # (HA file, path under blueprints/automation/)
    header: str

    def files(self) -> dict[Path, str]:
        """Relative path -> text of the three import files (only those with something in them)."""
        out: dict[Path, str] = {}
        autos = [i.raw for i in self.automations if not i.problems]
        scripts = {i.name: i.raw for i in self.scripts if not i.problems}
        scenes = [i.raw for i in self.scenes if not i.problems]
        if autos:
            out[Path(RULES_DIR) / OUT_NAME] = dump(autos, self.header)
        if scripts:
            out[Path(SCRIPTS_DIR) / OUT_NAME] = dump(scripts, self.header)
        if scenes:
            out[Path(SCENES_DIR) / OUT_NAME] = dump(scenes, self.header)
        return out


def blueprint_actions(plan: Plan, config_dir: Path, force: bool) -> list[tuple[Path, Path, str]]:
    """(HA file, path under blueprints/automation/, what happens): copied, already there, replaced,
    or kept (the hub's differs and no --force)."""
    actions = []
    for source, rel in plan.blueprints:
        dest = config_dir / BLUEPRINT_DIR / rel
        if not dest.exists():
            actions.append((source, rel, "copied"))
        elif filecmp.cmp(source, dest, shallow=False):
            actions.append((source, rel, "already there"))
        else:
            actions.append((source, rel, "replaced" if force else "kept the hub's copy (it differs; --force replaces it)"))
    return actions


def calendar_actions(ha: HaFolder, config_dir: Path, force: bool) -> list[tuple[Path, Path, str]]:
    """(HA file, the hub's calendars/<name>.ics, what happens), as for blueprints."""
    actions = []
    for name, source in sorted(ha.calendars.items()):
        dest = config_dir / "calendars" / f"{name}.ics"
        if not dest.exists():
            actions.append((source, dest, "copied"))
        elif filecmp.cmp(source, dest, shallow=False):
            actions.append((source, dest, "already there"))
        else:
            actions.append((source, dest, "replaced" if force else "kept the hub's copy (it differs; --force replaces it)"))
    return actions


def stage(config_dir: Path, staging: Path, plan: Plan, force: bool) -> None:
    """The hub's configuration folder as it will be after the import, in ``staging``."""
    for part in CONFIG_PARTS:
        src = config_dir / part
        if src.is_dir():
            shutil.copytree(src, staging / part, symlinks=False, dirs_exist_ok=True)
        elif src.is_file():
            shutil.copy2(src, staging / part)
    for rel, text in plan.files().items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_text(text, encoding="utf-8")
    for source, rel, action in blueprint_actions(plan, config_dir, force):
        if action in ("copied", "replaced"):
            target = staging / BLUEPRINT_DIR / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _owns(key: str | None, name: str) -> bool:
    return bool(key) and (key == name or key.startswith((name + ".", name + "[")))


def judge(plan: Plan, staging: Path, ctx: Any, loaded: list, issues: list[ConfigIssue]) -> None:
    """Set each item's status and reasons from what ``load_rules`` made of the staging folder."""
    autos_file = staging / RULES_DIR / OUT_NAME
    autos = [i for i in plan.automations if not i.problems]
    if autos_file.is_file():
        _, doc = read_yaml(autos_file, inputs=True)
        by_source = {r.source: r for r in loaded}
        for index, item in enumerate(autos):
            line = doc.positions.get((index,), (None, None))[0]
            rule = by_source.get(f"{autos_file}:{line}")
            mine = [i for i in issues if i.file == str(autos_file)
                    and (i.key is None or _owns(i.key, f"[{index}]") or (rule is not None and _owns(i.key, rule.id)))]
            ok = rule is not None and rule.rule is not None
            item.status = "loaded" if ok else "not loaded"
            item.reasons = [] if ok else _texts(rule.issues if rule is not None and rule.issues else mine, staging)
    for kind, items, attr in (("script", plan.scripts, "scripts"), ("scene", plan.scenes, "scenes")):
        staged = str(staging / (SCRIPTS_DIR if kind == "script" else SCENES_DIR) / OUT_NAME)
        known = getattr(ctx, attr)  # every script or scene load_rules read, refused ones too
        for item in items:
            if item.problems:
                continue
            names = {item.name, f"{kind}.{item.name}"}
            if kind == "scene" and isinstance(item.raw, dict) and item.raw.get("name"):
                names |= {str(item.raw["name"]), f"scene.{slugify(str(item.raw['name']))}"}
            mine = [i for i in issues if i.file == staged and (i.key is None or any(_owns(i.key, n) for n in names))]
            found = [v for k, v in known.items() if k in names or getattr(v, "id", None) in names
                     or getattr(v, "name", None) in names]
            if found and all(getattr(v, "rule", True) is not None for v in found):  # a refused script has no rule
                item.status = "loaded"
            else:
                own = [i for v in found for i in getattr(v, "issues", [])]
                item.status, item.reasons = "not loaded", _texts(own or mine, staging) or ["not loaded (see `hub rules check`)"]


def _texts(issues: list[ConfigIssue], staging: Path | None = None) -> list[str]:
    """``ha_import.yaml:9: id.key: reason``: the place in the file as written (or in the blueprint).
    The staging folder, which is gone once the import ends, is left out of the messages."""
    out = []
    for issue in issues:
        where = Path(issue.file).name + (f":{issue.line}" if issue.line else "") if issue.file else ""
        message = issue.message.replace(f"{staging}/", "") if staging is not None else issue.message
        out.append(": ".join(part for part in (where, issue.key, message) if part))
    return out or ["refused"]


# --- the whole import ----------------------------------------------------------------------------
@dataclass
class Options:
    use_secrets: bool = False
    mapping: dict[str, str] | None = None  # --map
    ask: Callable[[str, list[str], list[str]], str | None] | None = None  # (ha id, used by, guesses) -> hub id
    dry_run: bool = False
    only_valid: bool = False
    force: bool = False


@dataclass
class Result:
    items: list[Item]
    blueprints: list[tuple[Path, Path, str]]  # (HA file, path under blueprints/automation/, what happened)
    unknown: dict[str, list[str]]  # HA ids the hub does not have (before mapping) -> items using them
    mapping: dict[str, str]
    written: list[Path]
    scrub: Callable[[str], str]
    calendars: list[tuple[Path, Path, str]] = field(default_factory=list)  # (HA file, hub file, what happened)

    @property
    def ok(self) -> bool:
        return all(i.status == "loaded" for i in self.items)


def known_ids(hub_ids: list[str], ha: HaFolder) -> set[str]:
    """What an imported item may name: the hub's entities and the scripts and scenes imported along."""
    known = set(hub_ids) | {f"script.{i.name}" for i in ha.scripts} | {f"calendar.{n}" for n in ha.calendars}
    for scene in ha.scenes:
        known.add(f"scene.{slugify(scene.name)}")
        if isinstance(scene.raw, dict) and scene.raw.get("name"):
            known.add(f"scene.{slugify(str(scene.raw['name']))}")
    return known


def translate_devices(ha: HaFolder) -> None:
    """HA's device triggers, conditions and actions into plain steps (``hub.rules.ha_device``),
    before the entity mapping so that it maps the ids they resolve to; each item's notes say how
    many were translated and why any was left as it is."""
    try:
        translator = ha_device.Translator(ha_device.read_registries(ha.folder))
    except ha_device.RegistryError as exc:
        raise UnusableInput(str(exc)) from None
    for item in ha.automations + ha.scripts:
        item.raw, outcome = translator.translate(item.raw, item.name)
        item.notes += [text for text in (outcome.summary(),) if text] + outcome.left


def prepare(path: Path, hub_ids: list[str], options: Options) -> tuple[HaFolder, Settler, dict[str, list[str]], dict[str, str]]:
    """Read, settle secrets, find the unknown entity ids and decide their mapping (asking if allowed)."""
    ha = read_folder(path)
    settler = Settler(ha.folder, options.use_secrets)
    items = ha.automations + ha.scripts + ha.scenes
    for item in items:
        settler.settle(item)
    translate_devices(ha)
    known = known_ids(hub_ids, ha)
    unknown: dict[str, list[str]] = {}
    for item in items:
        for ref in sorted(entity_refs(item.raw) - known):
            unknown.setdefault(ref, []).append(item.name)
    mapping = dict(options.mapping or {})
    if options.mapping is None and options.ask is not None:
        for ha_id in sorted(unknown):
            answer = options.ask(ha_id, unknown[ha_id], closest(ha_id, hub_ids))
            if answer and answer != ha_id:
                mapping[ha_id] = answer
    for item in items:
        item.raw = rewrite(item.raw, mapping)
    return ha, settler, unknown, mapping


def run(ha: HaFolder, settler: Settler, unknown: dict, mapping: dict, config_dir: Path,
        load: Callable[[Path], tuple[Any, list, list]], options: Options, header: str) -> Result:
    """Check what the import would make of the hub's configuration (``load(folder)`` runs the hub's
    ``load_rules`` on a folder: (ctx, loaded, issues)), then write it unless told not to."""
    plan = Plan(ha.automations, ha.scripts, ha.scenes,
                [(ha.folder / BLUEPRINT_DIR / rel, rel) for rel in ha.blueprints], header)
    items = plan.automations + plan.scripts + plan.scenes
    for item in items:
        if item.problems:
            item.status, item.reasons = "not imported", list(item.problems)
    calendars = calendar_actions(ha, config_dir, options.force)
    if not options.dry_run:  # data, not rules: copied first, so the check sees them as the next start will
        for source, dest, action in calendars:
            if action in ("copied", "replaced"):
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest)
    for _ in range(len(items) + 1):  # --only-valid: leaving one out can refuse another (a script it calls)
        with tempfile.TemporaryDirectory(prefix="hub-import-") as tmp:
            staging = Path(tmp)
            stage(config_dir, staging, plan, options.force)
            ctx, loaded, issues = load(staging)
            judge(plan, staging, ctx, loaded, issues)
        dropped = [i for i in items if not i.problems and i.status == "not loaded"] if options.only_valid else []
        if not dropped:
            break
        for item in dropped:  # its verdict stays: it says why it was left out
            item.problems.append("left out (--only-valid)")
    blueprints = blueprint_actions(plan, config_dir, options.force)
    written: list[Path] = [dest for _, dest, action in calendars if action in ("copied", "replaced")
                           and not options.dry_run]
    if not options.dry_run:
        for rel, text in plan.files().items():
            dest = config_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp_file = dest.with_suffix(".yaml.tmp")
            tmp_file.write_text(text, encoding="utf-8")
            if settler.values:  # it holds secrets (--secrets): as private as HA's secrets.yaml
                tmp_file.chmod(0o600)
            tmp_file.replace(dest)
            written.append(dest)
        for source, rel, action in blueprints:
            if action in ("copied", "replaced"):
                dest = config_dir / BLUEPRINT_DIR / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest)
                written.append(dest)
        for item in items:
            item.written = not item.problems
    return Result(items, blueprints, unknown, mapping, written, settler.scrub, calendars)
