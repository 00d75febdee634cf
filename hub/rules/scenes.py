"""Home Assistant's scenes: ``scenes.yaml`` and ``scenes/*.yaml`` beside the configuration.

A scene is a set of target states. Home Assistant reaches them at activation through each domain's
``reproduce_state``; the hub translates them when the scene loads into the capability commands that
reach them (a light's ``state: on`` with ``brightness`` and ``xy_color`` becomes ``light.turn_on``
with ``brightness`` and ``rgb_color``), each checked by the command gate, so a scene asking a switch
to be ``dim`` or a light for brightness 300 is refused with its file and line, not when it is
applied. Applying a scene sends every entity's commands concurrently through the command gate; one
entity failing does not stop the others, and the answer names each that failed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.config import ConfigIssue, read_yaml
from hub.core.commands import CommandError
from hub.devices.capabilities import LightOnArgs
from hub.devices.model import slugify as _hub_slugify
from hub.rules import actions as A
from hub.rules.model import MAX_NAME, is_template
from hub.rules.scene_states import MAX_SCENE_ENTITIES, Commands, plan_entities

if TYPE_CHECKING:
    from hub.rules.context import RuleContext
    from hub.rules.parse import RuleParser
    from hub.runtime import Hub

log = logging.getLogger("hub.rules")

SCENES_FILE = "scenes.yaml"
SCENES_DIR = "scenes"


@dataclass
class Scene:
    id: str  # HA's ``id`` when the scene has one, else the slug of its name
    name: str
    entity_id: str  # scene.<slug of the name>, as Home Assistant names the scene's entity
    plan: dict[str, Commands]  # entity id -> the hub commands that reach its target state, in order
    capabilities: dict[str, str]
    icon: str | None = None
    source: str | None = None
    ignored: dict[str, list[str]] = field(default_factory=dict)  # entity -> attributes not settable

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "entity_id": self.entity_id, "name": self.name, "icon": self.icon,
                "entities": sorted(self.plan), "source": self.source,
                **({"ignored_attributes": self.ignored} if self.ignored else {})}


class SceneHead(BaseModel):
    """HA's scene schema: ``id``, ``name``, ``icon``, ``entities`` and the editor's ``metadata``;
    anything else is refused, as HA refuses it."""

    model_config = ConfigDict(extra="forbid", str_max_length=MAX_NAME)

    id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1)
    icon: str | None = None
    entities: dict[str, Any] = Field(min_length=1, max_length=MAX_SCENE_ENTITIES)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        """HA's editor writes ``id: '1700000000000'``; unquoted, YAML makes it a number."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def slugify(name: str) -> str:
    """HA's entity id of a scene: ``scene.`` + the name slugified, accents folded (``Küche`` is
    ``kuche``)."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _hub_slugify(folded)


# --- loading -------------------------------------------------------------------------------------


def scene_files(config_dir: Path) -> list[Path]:
    files = [config_dir / SCENES_FILE] if (config_dir / SCENES_FILE).is_file() else []
    folder = config_dir / SCENES_DIR
    if folder.is_dir():
        files += sorted(p for p in folder.glob("*.yaml") if p.is_file())
    return files


def is_scene_file(file: str | None) -> bool:
    if not file:
        return False
    path = Path(file)
    return path.name == SCENES_FILE or path.parent.name == SCENES_DIR


def load(ctx: "RuleContext", config_dir: Path) -> list[ConfigIssue]:
    """Every scene beside the configuration onto ``ctx.scenes`` (by id); what is refused, as issues.
    A refused scene is left out; every other one still loads."""
    from hub.rules.loader import MAX_FILE_BYTES
    from hub.rules.parse import RuleParser

    scenes: dict[str, Scene] = {}
    taken: dict[str, str] = {}  # scene entity id -> where the scene that has it is
    issues: list[ConfigIssue] = []
    for path in scene_files(config_dir):
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            issues.append(ConfigIssue(str(path), None, None, None,
                                      f"the file is {size} bytes; a scenes file may have at most {MAX_FILE_BYTES} "
                                      f"(split it into files in {SCENES_DIR}/): none of its scenes is loaded"))
            continue
        data, doc = read_yaml(path)
        if isinstance(data, list):
            for index, raw in enumerate(data):
                start = len(doc.issues)
                line = doc.positions.get((index,), (None, None))[0]
                source = f"{path}:{line}" if line else str(path)
                scene = _scene(ctx, doc, index, raw, source, RuleParser) if isinstance(raw, dict) else None
                if not isinstance(raw, dict):
                    doc.issue((index,), "a scene is a mapping with name and entities")
                elif scene is not None and scene.id in scenes:
                    first = scenes[scene.id].source
                    if "id" in raw:
                        doc.issue((index, "id"), f"duplicate scene id {scene.id!r} (first at {first})")
                    else:  # both named alike and without an id: HA would tell them apart by its own ids
                        doc.issue((index, "name"), f"another scene is named {raw.get('name')!r} (at {first}): "
                                                   f"give this one an id")
                    scene = None
                if scene is not None:
                    # HA gives a second scene of the same name the entity id scene.<slug>_2
                    base, n = scene.entity_id, 2
                    while scene.entity_id in taken:
                        scene.entity_id, n = f"{base}_{n}", n + 1
                    taken[scene.entity_id] = source
                    scenes[scene.id] = scene
                    if scene.ignored:
                        log.warning("scene %s: attributes that cannot be set are ignored: %s", scene.id,
                                    "; ".join(f"{e}: {', '.join(a)}" for e, a in scene.ignored.items()))
                name = _label(raw, index)
                doc.issues[start:] = [_named(i, index, name) for i in doc.issues[start:]]
        elif data not in (None, {}):
            doc.issue((), "a scenes file is a list of scenes (each starting with '- name: ...')")
        issues += doc.issues
    ctx.scenes = scenes
    return issues


def _label(raw: Any, index: int) -> str | None:
    if not isinstance(raw, dict):
        return None
    for key in ("id", "name"):
        value = raw.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def _named(issue: ConfigIssue, index: int, name: str | None) -> ConfigIssue:
    prefix = f"[{index}]"
    if name is not None and issue.key and issue.key.startswith(prefix):
        return dataclasses.replace(issue, key=name + issue.key[len(prefix):])
    return issue


def _scene(ctx: "RuleContext", doc, index: int, raw: dict, source: str, parser_class) -> Scene | None:
    parser = parser_class(ctx, doc, (index,))
    if not parser.bounded(raw):
        return None
    try:
        head = SceneHead.model_validate(raw)
    except ValidationError as err:
        doc.report((index,), err, raw)
        return None
    label = head.id or head.name
    failed = []

    def fail(path: tuple, message: str) -> None:
        failed.append(path)
        doc.issue((index, "entities") + path, f"scene {label!r}: {message}")

    plan, capabilities, ignored = plan_entities(ctx.hub, head.entities, fail)
    if failed:
        return None
    slug = slugify(head.name)
    return Scene(head.id or slug, head.name, f"scene.{slug}", plan, capabilities, head.icon, source, ignored)


def find(scenes: dict[str, Scene], ref: str) -> Scene | None:
    """``scene.<id>`` or ``scene.<slug of the name>`` (HA's entity id), with or without ``scene.``."""
    key = ref[len("scene."):] if ref.startswith("scene.") else ref
    if key in scenes:
        return scenes[key]
    return next((s for s in scenes.values() if s.entity_id == f"scene.{key}"), None)


# --- applying ------------------------------------------------------------------------------------


async def apply(hub: "Hub", plan: dict[str, Commands], capabilities: dict[str, str], *, source: str,
                transition: float | None = None) -> dict[str, dict]:
    """Every entity's commands, all entities at once (each entity's in order: a thermostat's mode
    before its set-point). One failing does not stop the others; each answer says how it went."""

    async def one(entity_id: str, commands: Commands) -> dict:
        sent = []
        for command, args in commands:
            if transition is not None and capabilities.get(entity_id) == "light" and command == "turn_on":
                args = {**args, "transition": transition}
            try:
                await hub.commands.call(entity_id, command, args, source=source)
            except CommandError as exc:
                return {"ok": False, "commands": sent, "error": exc.message, "code": exc.code, "status": exc.status}
            sent.append({"command": command, "args": args})
        return {"ok": True, "commands": sent}

    answers = await asyncio.gather(*(one(e, c) for e, c in plan.items()))
    return dict(zip(plan, answers))


def failures(results: dict[str, dict]) -> list[str]:
    return [f"{entity_id}: {r['error']}" for entity_id, r in results.items() if not r["ok"]]


# --- in rules: scene.turn_on and scene.apply -----------------------------------------------------

REFUSED_SERVICES = {
    "scene.create": "scenes made while the hub runs are not supported yet: write the scene in scenes.yaml",
    "scene.delete": "scenes made while the hub runs are not supported yet: delete it from scenes.yaml",
    "scene.reload": "scenes reload with the rules: 'hub rules reload' (POST /api/rules/reload)",
}


class ApplyScenes(A.Step):
    """``scene.turn_on`` (the named scenes, in order) or ``scene.apply`` (the step's own entities)."""

    kind = "scene"

    def __init__(self, pos: A.Pos, service: str, scene_ids: list[str], inline: Any, transition: Any,
                 continue_on_error: bool) -> None:
        super().__init__(pos)
        self.service = service
        self.scene_ids = scene_ids
        self.inline = inline  # scene.apply: (plan, capabilities), or a render function of the run
        self.transition = transition  # a number, or a render function, or None
        self.continue_on_error = continue_on_error

    async def run(self, run, resume: A.Resume) -> Any:
        hub = run.engine.hub
        caller = getattr(run, "source", None) or f"rule:{run.rule.id}"
        transition = self.transition(run.env) if callable(self.transition) else self.transition
        if transition is not None:
            try:
                transition = LightOnArgs.model_validate({"transition": transition}).transition
            except ValidationError as exc:
                raise A.ActionFailed(f"transition {transition!r}: {exc.errors()[0]['msg']}") from None
        batches: list[tuple[str, dict[str, Commands], dict[str, str]]] = []
        if self.service == "scene.apply":
            plan, capabilities = self.inline(run.env) if callable(self.inline) else self.inline
            batches.append(("apply", plan, capabilities))
        for scene_id in self.scene_ids:
            scene = run.engine.scenes.get(scene_id)
            if scene is None:
                raise A.ActionFailed(f"scene {scene_id!r} is no longer loaded")
            batches.append((scene.id, scene.plan, scene.capabilities))
        result: dict[str, Any] = {"service": self.service, "scenes": {}}
        errors: list[str] = []
        for scene_id, plan, capabilities in batches:
            answers = await apply(hub, plan, capabilities, source=f"{caller}/scene:{scene_id}", transition=transition)
            result["scenes"][scene_id] = {e: ("ok" if r["ok"] else r["error"]) for e, r in answers.items()}
            errors += [f"scene {scene_id}: {f}" for f in failures(answers)]
        if errors and not self.continue_on_error:
            raise A.ActionFailed("; ".join(errors))
        return {**result, **({"errors": errors} if errors else {})}


def service_step(parser: "RuleParser", path: tuple, pos: A.Pos, name: str, cfg: Any) -> A.Step | None:
    """A rule's ``scene.*`` step, checked at load: the scenes exist, ``scene.apply``'s entities can
    be reached, ``transition`` fits a light."""
    key = "action" if cfg.action is not None else "service"
    if name in REFUSED_SERVICES:
        parser.fail(path + (key,), f"{name}: {REFUSED_SERVICES[name]}")
        return None
    if name not in ("scene.turn_on", "scene.apply"):
        parser.fail(path + (key,), f"unknown service {name!r}; scene has scene.turn_on, scene.apply")
        return None
    data = dict(cfg.data)
    allowed = ("transition", "entity_id") if name == "scene.turn_on" else ("entities", "transition")
    takes = ", ".join(a for a in allowed if a != "entity_id")
    for k in data:
        if k not in allowed:
            parser.fail(path + ("data", k), f"{name} has no data {k!r}; it takes {takes}")
    for k in cfg.target:
        if k != "entity_id":
            parser.fail(path + ("target", k), f"{name} takes target.entity_id (scene.<id>), not {k!r}")
    transition = data.get("transition")
    if is_template(transition):
        transition = parser.value(path + ("data", "transition"), transition)
    elif transition is not None:
        try:
            transition = LightOnArgs.model_validate({"transition": transition}).transition
        except ValidationError as exc:
            parser.fail(path + ("data", "transition"), f"transition {transition!r}: {exc.errors()[0]['msg']}")
    scene_ids: list[str] = []
    named = [(("target", "entity_id"), cfg.target.get("entity_id")), (("entity_id",), cfg.entity_id),
             (("data", "entity_id"), data.get("entity_id"))]
    for where, value in named:
        if value is None:
            continue
        refs = [value] if isinstance(value, str) else value
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            parser.fail(path + where, "entity_id is a scene's entity id (scene.<id>) or a list of them")
            continue
        for ref in (r.strip() for v in refs for r in ([v] if is_template(v) else v.split(","))):
            scene = find(parser.ctx.scenes, ref) if ref.startswith("scene.") else None
            if is_template(ref):
                parser.fail(path + where, "a templated scene is not supported yet: name the scenes")
            elif scene is None:
                known = ", ".join(sorted(s.entity_id for s in parser.ctx.scenes.values())) or "none"
                parser.fail(path + where, f"unknown scene {ref!r}; loaded scenes: {known}")
            elif scene.id not in scene_ids:
                scene_ids.append(scene.id)
    inline: Any = None
    if name == "scene.apply":
        if scene_ids or any(v is not None for _, v in named):
            parser.fail(path + ("target",), "scene.apply takes its entities in data.entities, not a target")
        entities = data.get("entities")
        if entities is None:
            parser.fail(path + ("data",), "scene.apply needs data.entities: {entity_id: state, ...}")
        elif _templated(entities):
            render = parser.value(path + ("data", "entities"), entities)
            hub = parser.ctx.hub

            def inline(env: dict, render=render) -> tuple[dict, dict]:
                problems: list[str] = []
                plan, capabilities, _ = plan_entities(
                    hub, render(env), lambda p, m: problems.append(f"{'.'.join(map(str, p)) or 'entities'}: {m}"))
                if problems:
                    raise A.ActionFailed("; ".join(problems))
                return plan, capabilities
        else:
            plan, capabilities, _ = plan_entities(
                parser.ctx.hub, entities, lambda p, m: parser.fail(path + ("data", "entities") + p, m))
            inline = (plan, capabilities)
    elif not scene_ids and not parser.failed:
        parser.fail(path, "scene.turn_on needs target.entity_id: scene.<id>")
    if parser.failed:
        return None
    return ApplyScenes(pos, name, scene_ids, inline, transition, cfg.continue_on_error)


def _templated(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_templated(k) or _templated(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    return is_template(value)


__all__ = ["Scene", "apply", "find", "load", "service_step", "slugify"]
