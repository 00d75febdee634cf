"""``hub rules``: list, show, create, change, delete, enable, disable, reload, check and trace rules.

Everything but ``check`` talks to the running hub. ``check`` asks the running hub if there is one,
and otherwise checks the files itself against the devices recorded in the data directory, so a rule
file can be checked before the hub is (re)started.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click


def _cli():
    from hub import cliutil

    return cliutil


def _api(ctx, method: str, path: str, body=None):
    cli = _cli()
    from hub.client import ClientError

    try:
        return ctx.client().request(method, path, body=body)
    except ClientError as exc:
        cli.fail(str(exc))


@click.group()
def rules() -> None:
    """Local automation rules (automations.yaml)."""


def _common(fn):
    cli = _cli()
    return cli.connection_options(cli.pass_ctx(fn))


@rules.command("list")
@click.option("--json", "as_json", is_flag=True)
@_common
def list_rules(ctx, as_json: bool) -> None:
    """Every rule: status, mode, last triggered, where it is defined."""
    answer = _api(ctx, "GET", "/api/rules")
    cli = _cli()
    if as_json:
        cli.emit_json(answer)
        return
    cli.table("Rules", ["id", "status", "mode", "last run", "source", "alias"],
              [[r["id"], r["status"], r["mode"], (r["last_triggered"] or "never")[:19].replace("T", " "),
                Path(r["source"] or "").name.rstrip(">"), r["alias"]] for r in answer["rules"]])
    for issue in answer["issues"]:
        click.secho(issue, fg="red", err=True)


@rules.command("show")
@click.argument("rule_id")
@_common
def show(ctx, rule_id: str) -> None:
    """A rule's definition and status, as JSON."""
    _cli().emit_json(_api(ctx, "GET", f"/api/rules/{rule_id}"))


@rules.command("enable")
@click.argument("rule_id")
@_common
def enable(ctx, rule_id: str) -> None:
    """Enable a rule (kept across restarts)."""
    click.echo(f"{rule_id}: {_api(ctx, 'POST', f'/api/rules/{rule_id}/enable')['status']}")


@rules.command("disable")
@click.argument("rule_id")
@_common
def disable(ctx, rule_id: str) -> None:
    """Disable a rule: it stops triggering and its running runs stop (kept across restarts)."""
    click.echo(f"{rule_id}: {_api(ctx, 'POST', f'/api/rules/{rule_id}/disable')['status']}")


@rules.command("reload")
@_common
def reload(ctx) -> None:
    """Read the rule files again without restarting the hub."""
    answer = _api(ctx, "POST", "/api/rules/reload")
    for key in ("added", "changed", "removed", "unchanged"):
        if answer[key]:
            click.echo(f"{key}: {', '.join(answer[key])}")
    for issue in answer["issues"]:
        click.secho(issue, fg="red")
    sys.exit(1 if answer["issues"] else 0)


@rules.command("check")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path))
@_common
def check(ctx, config_path) -> None:
    """Check the rule files; exit 1 if any rule would be refused."""
    from hub.client import ClientError

    try:
        answer = ctx.client().request("POST", "/api/rules/check")
        issues, where = answer["issues"], "by the running hub"
    except ClientError as exc:
        if exc.status is not None:
            _cli().fail(str(exc))
        issues, where = [str(i) for i in offline_check(ctx.data, config_path)], f"against {ctx.data}"
    for issue in issues:
        click.secho(issue, fg="red")
    click.echo(f"{len(issues)} problem(s) found (checked {where})" if issues else f"rules OK (checked {where})")
    sys.exit(1 if issues else 0)


def _read_rule(source) -> dict:
    import yaml

    try:
        data = yaml.safe_load(source.read())
    except yaml.YAMLError as exc:
        _cli().fail(f"{source.name}: not YAML: {exc}")
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        _cli().fail(f"{source.name}: expected one rule (a mapping with id, trigger, action)")
    return data


@rules.command("create")
@click.argument("source", type=click.File("r"))
@_common
def create(ctx, source) -> None:
    """Create a rule from a YAML file ('-' for standard input); it is kept in automations/api.yaml."""
    answer = _api(ctx, "POST", "/api/rules", _read_rule(source))
    click.echo(f"{answer['id']}: created ({answer['status']})")
    _note(answer)


@rules.command("change")
@click.argument("rule_id")
@click.argument("source", type=click.File("r"))
@_common
def change(ctx, rule_id: str, source) -> None:
    """Replace a rule made through the API or CLI with the one in a YAML file ('-' for stdin)."""
    answer = _api(ctx, "PUT", f"/api/rules/{rule_id}", _read_rule(source))
    click.echo(f"{answer['id']}: changed ({answer['status']})")
    _note(answer)


@rules.command("delete")
@click.argument("rule_id")
@_common
def delete(ctx, rule_id: str) -> None:
    """Delete a rule made through the API or CLI."""
    answer = _api(ctx, "DELETE", f"/api/rules/{rule_id}")
    click.echo(f"{rule_id}: deleted")
    _note(answer)


def _note(answer: dict) -> None:
    """What else the change did, e.g. the example rules copied to the API's file."""
    if answer.get("note"):
        click.echo(f"note: {answer['note']}")


@rules.command("trace")
@click.argument("rule_id")
@click.option("--last", default=5, show_default=True, help="How many runs.")
@click.option("--json", "as_json", is_flag=True)
@_common
def trace(ctx, rule_id: str, last: int, as_json: bool) -> None:
    """The last runs of a rule: trigger, conditions, actions with timings, outcome."""
    runs = _api(ctx, "GET", f"/api/rules/{rule_id}/traces")[:last]
    if as_json:
        _cli().emit_json(runs)
        return
    if not runs:
        click.echo(f"{rule_id} has not run since the hub started")
    print_runs(runs)


def print_runs(runs: list[dict]) -> None:
    """Traces, oldest first (``hub rules trace``, ``hub scripts trace``)."""
    for run in reversed(runs):
        colour = {"finished": "green", "error": "red", "condition_failed": "yellow"}.get(run["outcome"])
        click.secho(f"run {run['run_id']} at {run['started'][:19].replace('T', ' ')}: {run['outcome']}"
                    + (f" ({run['error']})" if run["error"] else ""), fg=colour, bold=True)
        click.echo(f"  trigger: {run['trigger_description'] or run['trigger'].get('platform')}")
        for c in run["conditions"]:
            click.echo(f"  condition {c['path']} ({c['condition']}): {c['result']}" + (f" - {c['error']}" if c.get("error") else ""))
        if run.get("conditions_dropped"):
            click.echo(f"  ({run['conditions_dropped']} more condition checks in between were not kept)")
        for i, s in enumerate(run["steps"]):
            if i == run.get("steps_dropped_at"):
                click.echo(f"  ... {run['steps_dropped']} steps not kept ...")
            detail = s.get("error") or json.dumps(s.get("result"), ensure_ascii=False, default=str)
            click.echo(f"  {s['path']} {s['action']} {s['duration_ms']} ms: {detail}")


@rules.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--map", "map_file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML 'ha_entity_id: hub_entity_id' lines: rewrites them everywhere, templates included.")
@click.option("--write-map", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a map to fill in (unknown ids, best guesses as comments); writes nothing else.")
@click.option("--input/--no-input", "ask", default=None,
              help="Ask what each unknown entity id becomes (default: when standard input is a terminal "
                   "and no --map is given).")
@click.option("--secrets", "use_secrets", is_flag=True,
              help="Resolve !secret from Home Assistant's secrets.yaml (and !env_var); the values are written "
                   "into the imported files.")
@click.option("--dry-run", is_flag=True, help="Check and report only.")
@click.option("--only-valid", is_flag=True, help="Write only what loads (the rest is still listed).")
@click.option("--force", is_flag=True, help="Replace a different blueprint of the same name.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path))
@_common
def import_ha(ctx, path, map_file, write_map, ask, use_secrets, dry_run, only_valid, force, config_path) -> None:
    """Import a Home Assistant configuration folder (or its automations.yaml): automations, scripts,
    scenes and automation blueprints, checked as the hub will load them. Exit 1 if any does not load,
    2 if the input cannot be read."""
    from datetime import datetime, timezone

    from hub.client import ClientError
    from hub.rules import ha_import as ha
    from hub.rules.context import RuleContext
    from hub.rules.loader import examples_in_use, load_rules

    cli = _cli()
    if not path.exists():  # before the hub's plugins are loaded: that takes a while
        cli.fail(f"{path}: no such folder", 2)
    client, running = ctx.client(), True
    try:
        entities, devices = client.request("GET", "/api/entities"), client.request("GET", "/api/devices")
    except ClientError as exc:
        if exc.status is not None:
            cli.fail(str(exc))
        entities = devices = None
        running = False
    with quiet_logs():
        _, hub = rules_context(ctx.data, config_path, devices, entities)
    hub_ids = sorted(e.entity_id for e in hub.entities)
    asking = sys.stdin.isatty() if ask is None else ask
    options = ha.Options(use_secrets=use_secrets, dry_run=dry_run or write_map is not None, only_valid=only_valid,
                         force=force, ask=_ask_entity(hub_ids) if asking and not map_file and not write_map else None)
    if not hub_ids:
        click.secho(f"the hub has no entities yet (none running, none recorded in {ctx.data}): every entity id "
                    "will be unknown; start the hub once with its devices first", fg="yellow")
    try:
        options.mapping = ha.read_map(map_file) if map_file else None
        prepared = ha.prepare(path, hub_ids, options)
    except ha.UnusableInput as exc:
        cli.fail(str(exc), 2)
    config_dir = hub.config_path.parent
    embedded = not hub.config_path.exists()

    def load(folder: Path):
        rctx = RuleContext.for_hub(hub)  # a fresh one each time: loading stores scripts and scenes on it
        with quiet_logs():
            loaded, issues = load_rules(rctx, folder, embedded=embedded)
        return rctx, loaded, issues

    header = (f"# Imported from Home Assistant ({Path(path).resolve()}) by `hub rules import` on "
              f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.\n# Importing again replaces this file: "
              "move what you change by hand to another file.\n")
    examples = examples_in_use(config_dir, embedded=embedded)
    result = ha.run(*prepared, config_dir, load, options, header)
    if write_map is not None:
        try:
            write_map.write_text(ha.map_template(result.unknown, hub_ids, result.mapping), encoding="utf-8")
        except OSError as exc:
            cli.fail(f"{write_map}: cannot write the map: {exc}", 2)
    _import_report(result, checked="by the running hub's entities" if running else f"against {ctx.data}")
    if write_map is not None:
        click.echo(f"map to fill in: {write_map} ({len(result.unknown)} entity ids); nothing else written")
    elif dry_run:
        click.echo("dry run: nothing written")
    else:
        for file in result.written:
            click.echo(f"wrote {file}")
        if examples and any(f.parent.name == "automations" for f in result.written):
            click.echo("note: the packaged example rules no longer run now that a rule file exists "
                       "(docs/rules.md, 'Where rules live')")
        if running and result.written:
            try:
                answer = client.request("POST", "/api/rules/reload")
                click.echo("hub reloaded: " + "; ".join(f"{k} {', '.join(answer[k])}" for k in
                                                        ("added", "changed", "removed") if answer.get(k))
                           + f" ({len(answer.get('issues', []))} problem(s))")
            except ClientError as exc:
                click.secho(f"the hub did not reload: {exc}", fg="red")
    sys.exit(0 if result.ok else 1)


def _ask_entity(hub_ids: list[str]):
    def ask(ha_id: str, used_by: list[str], guesses: list[str]) -> str | None:
        click.echo(f"\n{ha_id} (used by {', '.join(used_by)}) is not on this hub:")
        for n, guess in enumerate(guesses, 1):
            click.echo(f"  {n}) {guess}")
        click.echo("  0) leave as is\n  or type one of the hub's entity ids")

        def choice(text: str) -> str | None:
            text = text.strip()
            if text in ("", "0"):
                return None
            if text.isdigit() and 1 <= int(text) <= len(guesses):
                return guesses[int(text) - 1]
            if text in hub_ids:
                return text
            raise click.BadParameter(f"{text!r} is neither a number above nor one of the hub's entity ids")

        return click.prompt("choice", default="0", value_proc=choice, show_default=True)

    return ask


def _import_report(result, checked: str) -> None:
    """A table of what was imported, then the reasons under it, one per line, as pytest lists its
    failures: in a table column, long reasons came out one word per line on an 80-column terminal."""
    cli, scrub = _cli(), result.scrub
    rows = [[item.label, item.kind, item.where, item.status, "yes" if item.written else "no"] for item in result.items]
    rows += [[str(rel), "blueprint", f"blueprints/automation/{rel}", action,
              "yes" if action in ("copied", "replaced") and result.written else "no"]
             for _, rel, action in result.blueprints]
    rows += [[f"calendar.{dest.stem}", "calendar", f"calendars/{dest.name}", action,
              "yes" if action in ("copied", "replaced") and result.written else "no"]
             for _, dest, action in result.calendars]
    cli.table(f"Home Assistant import (checked {checked})", ["name", "kind", "from", "result", "written"], rows)
    explained = [item for item in result.items if item.notes or item.reasons]
    if explained:
        click.echo()
    for item in explained:
        click.secho(f"{item.label} ({item.kind}, {item.where}): {item.status}", bold=True,
                    fg="red" if item.status in ("not loaded", "not imported") else None)
        for line in item.notes + item.reasons:
            click.echo(f"  {scrub(line)}")
    left = sorted(set(result.unknown) - set(result.mapping))
    if left:
        click.secho(f"{len(left)} Home Assistant entity id(s) not on this hub, left as they are: {', '.join(left)}"
                    " (map them with --map FILE; --write-map FILE writes one to fill in)", fg="yellow")
    if result.mapping:
        click.echo("mapped: " + ", ".join(f"{k} -> {v}" for k, v in sorted(result.mapping.items())))
    loaded = sum(1 for i in result.items if i.status == "loaded")
    click.echo(f"{loaded} of {len(result.items)} loaded")


def offline_check(data_dir: Path, config_path: Path | None):
    """Check rules as the hub would, without running it: its configuration, the plugins' rule
    types, and the devices and entities it recorded last time it ran."""
    from hub.rules.loader import load_rules

    with quiet_logs():
        ctx, hub = rules_context(data_dir, config_path)
        _, issues = load_rules(ctx, hub.config_path.parent, embedded=not hub.config_path.exists())
    return issues


@contextlib.contextmanager
def quiet_logs():
    """The hub's start-up and loading log lines, silenced while a command checks rules without a
    hub (the command reports the problems itself), and turned back on afterwards: a global
    ``logging.disable`` left in place silenced everything the process logged after it."""
    import logging

    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


def rules_context(data_dir: Path, config_path: Path | None, devices: list[dict] | None = None,
                  entities: list[dict] | None = None):
    """(RuleContext, Hub) that checks rules as the hub would without running one: its configuration,
    the plugins' rule types, and the devices and entities given (a running hub's) or else those it
    recorded in the data directory last time it ran."""
    from hub.context import PluginContext
    from hub.rules.context import RuleContext
    from hub.runtime import Hub
    from hub.store import Store

    hub = Hub(data_dir, config_path=config_path)
    hub.load_configuration()
    if entities is not None:
        hub.devices.load(devices or [])
        hub.entities.load(entities)
    elif (hub.data_dir / "hub.db").exists():
        store = Store(hub.data_dir)
        try:
            hub.devices.load(store.load_devices())
            hub.entities.load(store.load_entities())
        finally:
            store.close()
    for name in hub.plugins.loaded():
        hub.register_rule_types(name, PluginContext(hub, name, hub.config.plugin_configs.get(name)))
    return RuleContext.for_hub(hub), hub
