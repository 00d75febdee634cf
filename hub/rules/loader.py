"""Where rules come from: ``automations.yaml`` and ``automations/*.yaml`` beside the configuration
(Home Assistant's places), plus rules made through the API, which live in ``automations/api.yaml``.

Every file is read with line numbers; a rule with any problem is reported (file, line, key, reason)
and left out, and every other rule still loads.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hub.config import ConfigIssue, read_yaml
from hub.rules.blueprints import expand as expand_blueprint
from hub.rules.blueprints import refuse_stray_inputs
from hub.rules.parse import PlainReporter, RuleParser

if TYPE_CHECKING:
    from hub.rules.context import RuleContext
    from hub.rules.engine import LoadedRule

RULES_FILE = "automations.yaml"
RULES_DIR = "automations"
API_FILE = "api.yaml"
EXAMPLES = "examples.yaml"  # packaged: the embedded default's rules
#: The largest rules file read: thousands of rules fit; a runaway generator's output does not get
#: parsed into memory (split a real collection into ``automations/*.yaml``).
MAX_FILE_BYTES = 4 * 1024 * 1024


def rule_files(config_dir: Path) -> list[Path]:
    files = [config_dir / RULES_FILE] if (config_dir / RULES_FILE).is_file() else []
    folder = config_dir / RULES_DIR
    if folder.is_dir():
        files += sorted(p for p in folder.glob("*.yaml") if p.is_file())
    return files


def load_rules(ctx: "RuleContext", config_dir: Path, *, embedded: bool) -> tuple[list["LoadedRule"], list[ConfigIssue]]:
    """All rules, loaded or refused. ``embedded``: the hub runs its embedded default, so with no rule
    files the packaged example rules (for the demo devices) are used."""
    from hub.rules import scenes
    from hub.rules.engine import LoadedRule

    files = rule_files(config_dir)
    sources: list[tuple[str, Any, Any]] = []  # (file name, data, document)
    issues: list[ConfigIssue] = scenes.load(ctx, config_dir)  # first: rules and scripts naming scene.x are checked
    from hub.rules.scripts import load as load_scripts

    issues += load_scripts(ctx, config_dir)  # then scripts: a rule's 'action: script.x' is checked against them
    if not files and embedded:
        text = resources.files("hub.rules").joinpath(EXAMPLES).read_text()
        from hub.config import YamlDocument

        doc = YamlDocument(f"<built-in {EXAMPLES}>", None, top_mapping=False)
        sources.append((doc.file, doc.parse(text), doc))
    for path in files:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            issues.append(ConfigIssue(str(path), None, None, None,
                                      f"the file is {size} bytes; a rules file may have at most {MAX_FILE_BYTES} "
                                      f"(split it into files in {RULES_DIR}/): none of its rules is loaded"))
            continue
        data, doc = read_yaml(path, inputs=True)
        sources.append((str(path), data, doc))
    loaded: list[LoadedRule] = []
    seen: dict[str, str] = {}
    for file, data, doc in sources:
        if isinstance(data, list):
            for index, raw in enumerate(data):
                line = doc.positions.get((index,), (None, None))[0]
                source = f"{file}:{line}" if line else file
                rule_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
                if rule_id is not None and rule_id in seen:
                    doc.issue((index, "id"), f"duplicate rule id {rule_id!r} (first at {seen[rule_id]})")
                    continue
                start = len(doc.issues)
                if isinstance(raw, dict) and "use_blueprint" in raw:
                    raw = expand_blueprint(config_dir, raw, doc, (index,))
                elif refuse_stray_inputs(raw, doc, (index,)):
                    raw = None
                rule = RuleParser(ctx, doc, (index,)).rule(raw, source=source, file=file) if raw is not None else None
                if rule_id is not None:  # "bad_args.action[0]" reads better than "[3].action[0]"
                    doc.issues[start:] = [_named(issue, index, rule_id) for issue in doc.issues[start:]]
                key = rule_id or source
                seen[key] = source
                loaded.append(LoadedRule(key, rule, doc.issues[start:], source))
        elif data not in (None, {}):
            doc.issue((), "a rules file is a list of rules (each starting with '- id: ...')")
        issues += doc.issues
    return loaded, issues


def _named(issue: ConfigIssue, index: int, rule_id: str) -> ConfigIssue:
    prefix = f"[{index}]"
    if issue.key and issue.key.startswith(prefix):
        return dataclasses.replace(issue, key=rule_id + issue.key[len(prefix):])
    return issue


def parse_api_rule(ctx: "RuleContext", raw: Any):
    """A rule sent to the API as JSON: (rule or None, issues naming keys)."""
    reporter = PlainReporter("request body")
    rule = RuleParser(ctx, reporter, ()).rule(raw, source=f"{RULES_DIR}/{API_FILE}")
    return rule, reporter.issues


def is_api_source(source: str | None) -> bool:
    return bool(source) and f"{RULES_DIR}/{API_FILE}" in source.replace("\\", "/")


def api_rules_path(config_dir: Path) -> Path:
    return config_dir / RULES_DIR / API_FILE


def read_api_rules(config_dir: Path) -> list[dict]:
    path = api_rules_path(config_dir)
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text()) or []
    return data if isinstance(data, list) else []


def examples_in_use(config_dir: Path, *, embedded: bool) -> bool:
    """Whether the packaged example rules are the ones loaded (no rule file exists yet)."""
    return embedded and not rule_files(config_dir)


def example_rules() -> list[dict]:
    return yaml.safe_load(resources.files("hub.rules").joinpath(EXAMPLES).read_text())


def api_rules_to_edit(config_dir: Path, *, embedded: bool) -> tuple[list[dict], bool]:
    """The API's rules before a change, and whether they now include the example rules.

    The examples run only while no rule file exists, and the API's first write creates one: without
    this, creating a first rule made the three example rules a user had been watching vanish. Home
    Assistant keeps every automation the user saw in the one file its editor writes, so the
    examples are copied into the API's file, where they can be edited and deleted like any other.
    """
    if examples_in_use(config_dir, embedded=embedded):
        return example_rules(), True
    return read_api_rules(config_dir), False


def write_api_rules(config_dir: Path, rules: list[dict]) -> None:
    """Rewrite the API's own file whole (atomically: a crash leaves the old or the new file)."""
    path = api_rules_path(config_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    header = "# Rules made through the hub's API. Edit them with `hub rules` or the API, or by hand while\n# the hub is stopped.\n"
    tmp.write_text(header + yaml.safe_dump(rules, sort_keys=False, allow_unicode=True))
    tmp.replace(path)
