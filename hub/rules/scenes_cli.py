"""``hub scenes``: list the scenes of scenes.yaml and apply one, through the running hub."""

from __future__ import annotations

import sys
from pathlib import Path

import click


def _cli():
    from hub import cliutil

    return cliutil


@click.group()
def scenes() -> None:
    """Scenes (scenes.yaml): sets of states applied at once."""


def _common(fn):
    cli = _cli()
    return cli.connection_options(cli.pass_ctx(fn))


@scenes.command("list")
@click.option("--json", "as_json", is_flag=True)
@_common
def list_scenes(ctx, as_json: bool) -> None:
    """Every scene that loaded (and the problems of those that did not)."""
    from hub.client import ClientError

    cli = _cli()
    try:
        answer = ctx.client().request("GET", "/api/scenes")
    except ClientError as exc:
        cli.fail(str(exc))
    if as_json:
        cli.emit_json(answer)
        return
    cli.table("Scenes", ["id", "entity id", "name", "entities", "source"],
              [[s["id"], s["entity_id"], s["name"], len(s["entities"]), Path(s["source"] or "").name]
               for s in answer["scenes"]])
    for issue in answer["issues"]:
        click.secho(issue, fg="red", err=True)


@scenes.command("apply")
@click.argument("scene_id")
@click.option("--transition", type=float, help="Seconds the lights take to reach their state.")
@click.option("--json", "as_json", is_flag=True)
@_common
def apply(ctx, scene_id: str, transition: float | None, as_json: bool) -> None:
    """Apply a scene (its id, or scene.<name> as Home Assistant names it); exits 1 if an entity failed."""
    from hub.client import ClientError

    cli = _cli()
    body = {"transition": transition} if transition is not None else None
    try:
        answer = ctx.client().request("POST", f"/api/scenes/{scene_id}", body=body)
    except ClientError as exc:
        if exc.status != 502 or "entities" not in exc.body:
            cli.fail(str(exc))
        answer = exc.body
    if as_json:
        cli.emit_json(answer)
    else:
        for entity_id, result in answer["entities"].items():
            if result["ok"]:
                click.echo(f"{entity_id}: ok")
            else:
                click.secho(f"{entity_id}: {result['error']}", fg="red")
        click.echo(f"{answer['scene']}: {'applied' if answer['ok'] else 'applied, with failures'}")
    sys.exit(0 if answer["ok"] else 1)
