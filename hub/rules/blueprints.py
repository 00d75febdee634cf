"""Home Assistant's automation blueprints: ``blueprints/automation/<folder>/<name>.yaml`` beside
the configuration, used by a rule written as ``use_blueprint: {path, input}``.

A blueprint is expanded into a plain rule before the rule parser sees it, so every check a rule gets
(services, templates, triggers) applies to the blueprint's content too; a missing or unknown input
is reported at the rule's line, an ``!input`` naming no declared input at the blueprint's line.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from hub.config import BlueprintInput, ConfigIssue, read_yaml

BLUEPRINT_DIR = Path("blueprints") / "automation"
_MISSING = object()


def _declared(inputs: Any) -> dict[str, Any]:
    """Input name -> default (or _MISSING). HA 2024.6's ``input:`` sections nest inputs one level."""
    found: dict[str, Any] = {}
    for name, spec in (inputs or {}).items():
        if isinstance(spec, dict) and isinstance(spec.get("input"), dict):  # a section
            found.update(_declared(spec["input"]))
        else:
            found[str(name)] = spec.get("default", _MISSING) if isinstance(spec, dict) else _MISSING
    return found


def _fill(value: Any, values: dict[str, Any], unknown: list[BlueprintInput], memo: dict | None = None) -> Any:
    # memo: what YAML aliases share is filled once and stays shared, so nested aliases cost their
    # size in the file, not every use (the rule parser's size limit counts the uses).
    memo = {} if memo is None else memo
    if isinstance(value, BlueprintInput):
        if value.name not in values:
            unknown.append(value)
            return None
        return values[value.name]
    if isinstance(value, (dict, list)):
        if id(value) not in memo:
            memo[id(value)] = out = {} if isinstance(value, dict) else []
            if isinstance(value, dict):
                out.update({k: _fill(v, values, unknown, memo) for k, v in value.items()})
            else:
                out.extend(_fill(v, values, unknown, memo) for v in value)
        return memo[id(value)]
    return value


def expand(config_dir: Path, raw: dict, doc: Any, at: tuple) -> dict | None:
    """The rule ``raw`` with its blueprint filled in, or None after reporting why not (through
    ``doc.issue`` at the rule's path ``at``, or as an issue in the blueprint's own file)."""
    use = raw.get("use_blueprint")
    where = at + ("use_blueprint",)
    if not isinstance(use, dict) or not isinstance(use.get("path"), str):
        doc.issue(where, "use_blueprint needs 'path' (like 'homeassistant/motion_light.yaml') and 'input'")
        return None
    given = use.get("input") or {}
    if not isinstance(given, dict):
        doc.issue(where + ("input",), "'input' is a mapping of input names to values")
        return None
    relative = PurePosixPath(use["path"])
    if relative.is_absolute() or ".." in relative.parts:
        doc.issue(where + ("path",), f"blueprint path {use['path']!r} must stay inside {BLUEPRINT_DIR}/")
        return None
    file = config_dir / BLUEPRINT_DIR / relative
    if not file.is_file():
        doc.issue(where + ("path",), f"no blueprint {use['path']!r}: {file} does not exist")
        return None
    data, bdoc = read_yaml(file, inputs=True)
    if bdoc.issues:
        doc.issues.extend(bdoc.issues)
        return None
    meta = data.get("blueprint") if isinstance(data, dict) else None
    if not isinstance(meta, dict) or meta.get("domain", "automation") != "automation":
        doc.issue(where + ("path",), f"{file} is not an automation blueprint (it needs 'blueprint:' with domain: automation)")
        return None
    declared = _declared(meta.get("input"))
    ok = True
    for name in given:
        if name not in declared:
            doc.issue(where + ("input", name), f"blueprint {use['path']!r} has no input {name!r} "
                                               f"(it has: {', '.join(sorted(declared)) or 'none'})")
            ok = False
    values: dict[str, Any] = {}
    for name, default in declared.items():
        if name in given:
            values[name] = given[name]
        elif default is _MISSING:
            doc.issue(where + ("input",), f"missing input {name!r} of blueprint {use['path']!r}")
            ok = False
        else:
            values[name] = default
    if not ok:
        return None
    unknown: list[BlueprintInput] = []
    body = _fill({k: v for k, v in data.items() if k != "blueprint"}, values, unknown)
    if unknown:
        for ref in unknown:
            doc.issues.append(ConfigIssue(str(file), ref.line, None, None,
                                          f"!input {ref.name!r} is not declared under blueprint.input"))
        return None
    body.update({k: v for k, v in raw.items() if k != "use_blueprint"})
    return body


def stray_inputs(value: Any, path: tuple, seen: set[int] | None = None) -> list[tuple[tuple, str]]:
    """Where an ``!input`` sits in a rule that uses no blueprint: (path, name) for each, so the
    rule is refused with what was wrong rather than a type error on the placeholder. A mapping or
    list shared through YAML aliases is looked at once: walking each use of nested aliases ("billion
    laughs") hung the loader before the rule-size check could refuse the rule."""
    seen = set() if seen is None else seen
    if isinstance(value, BlueprintInput):
        return [(path, value.name)]
    if not isinstance(value, (dict, list)) or id(value) in seen:
        return []
    seen.add(id(value))
    pairs = value.items() if isinstance(value, dict) else enumerate(value)
    return [hit for k, v in pairs for hit in stray_inputs(v, path + (k,), seen)]


def refuse_stray_inputs(raw: Any, doc: Any, at: tuple) -> bool:
    """True (after reporting each) when a rule outside a blueprint holds an ``!input``."""
    hits = stray_inputs(raw, at)
    for path, name in hits:
        doc.issue(path, f"!input {name!r} belongs in a blueprint file (blueprints/automation/...), "
                        "not in a rule; a rule gives inputs under use_blueprint.input")
    return bool(hits)
