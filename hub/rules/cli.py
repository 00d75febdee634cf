"""``hub rules``: list, show, create, change, delete, enable, disable, reload, check and trace rules.

Everything but ``check`` talks to the running hub. ``check`` asks the running hub if there is one,
and otherwise checks the files itself against the devices recorded in the data directory, so a rule
file can be checked before the hub is (re)started.
"""

from __future__ import annotations

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


def offline_check(data_dir: Path, config_path: Path | None):
    """Check rules as the hub would, without running it: its configuration, the plugins' rule
    types, and the devices and entities it recorded last time it ran."""
    import logging

    from hub.context import PluginContext
    from hub.rules.context import RuleContext
    from hub.rules.loader import load_rules
    from hub.runtime import Hub
    from hub.store import Store

    logging.disable(logging.CRITICAL)
    hub = Hub(data_dir, config_path=config_path)
    hub.load_configuration()
    if (hub.data_dir / "hub.db").exists():
        store = Store(hub.data_dir)
        try:
            hub.devices.load(store.load_devices())
            hub.entities.load(store.load_entities())
        finally:
            store.close()
    for name in hub.plugins.loaded():
        hub.register_rule_types(name, PluginContext(hub, name, hub.config.plugin_configs.get(name)))
    _, issues = load_rules(RuleContext.for_hub(hub), hub.config_path.parent, embedded=not hub.config_path.exists())
    return issues
