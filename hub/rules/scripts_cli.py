"""``hub scripts``: list the scripts of scripts.yaml, run one with field values, read its traces.

Everything talks to the running hub (``/api/scripts``); field values are checked there against the
script's ``fields``, so a typo is refused naming the field.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from hub.rules.cli import _api, _cli, _common, print_runs


@click.group()
def scripts() -> None:
    """Home Assistant's scripts (scripts.yaml): named sequences of actions with fields."""


@scripts.command("list")
@click.option("--json", "as_json", is_flag=True)
@_common
def list_scripts(ctx, as_json: bool) -> None:
    """Every script: status, fields, last run, where it is defined."""
    answer = _api(ctx, "GET", "/api/scripts")
    cli = _cli()
    if as_json:
        cli.emit_json(answer)
        return
    cli.table("Scripts", ["id", "status", "fields", "last run", "source", "alias"],
              [[s["id"], s["status"], ", ".join(f + ("*" if spec.get("required") else "") for f, spec in s["fields"].items()),
                (s["last_run"] or "never")[:19].replace("T", " ") + (f" ({s['last_outcome']})" if s["last_outcome"] else ""),
                Path(s["source"] or "").name, s["alias"]] for s in answer["scripts"]])
    for s in answer["scripts"]:
        for issue in s["issues"]:
            click.secho(issue, fg="red", err=True)


def _value(text: str):
    """``--var n=5`` gives the number 5, ``--var who=Paulus`` the text: a value is read as JSON
    when it is JSON, else kept as text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@scripts.command("run")
@click.argument("script_id")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="A field value (repeatable); JSON or text.")
# not --data: every command's --data is the hub's data directory
@click.option("--fields", "data_json", metavar="JSON", help="All field values as one JSON object.")
@click.option("--wait", is_flag=True, help="Wait for the run to end and print its outcome.")
@_common
def run(ctx, script_id: str, variables: tuple[str, ...], data_json: str | None, wait: bool) -> None:
    """Run a script with field values; exit 1 if it is refused or (with --wait) fails."""
    cli = _cli()
    data: dict = {}
    if data_json is not None:
        try:
            data = json.loads(data_json)
        except ValueError as exc:
            cli.fail(f"--fields: not JSON: {exc}")
        if not isinstance(data, dict):
            cli.fail("--fields: a JSON object of field values, e.g. '{\"minutes\": 5}'")
    for item in variables:
        name, sep, value = item.partition("=")
        if not sep or not name:
            cli.fail(f"--var {item!r}: write NAME=VALUE")
        data[name] = _value(value)
    path = f"/api/scripts/{script_id}" + ("?wait=true" if wait else "")
    answer = _api(ctx, "POST", path, data)
    line = f"script.{script_id}: run {answer['run_id']} {answer['outcome']}"
    if answer.get("error"):
        line += f" ({answer['error']})"
    click.echo(line)
    if answer.get("note"):
        click.echo(f"note: {answer['note']}")
    if wait and answer["outcome"] == "error":
        raise SystemExit(1)


@scripts.command("trace")
@click.argument("script_id")
@click.option("--last", default=5, show_default=True, help="How many runs.")
@click.option("--json", "as_json", is_flag=True)
@_common
def trace(ctx, script_id: str, last: int, as_json: bool) -> None:
    """The last runs of a script: what started it, its steps with timings, outcome."""
    runs = _api(ctx, "GET", f"/api/scripts/{script_id}/traces")[:last]
    if as_json:
        _cli().emit_json(runs)
        return
    if not runs:
        click.echo(f"script.{script_id} has not run since the hub started")
    print_runs(runs)
