"""``hub mqtt ...``: through the running hub's API, like every other plugin's commands."""

from __future__ import annotations

import click

from hub.cliutil import Ctx, call_api, connection_options, emit_json, json_option, pass_ctx

BASE = "/api/plugins/mqtt"


@click.group()
def mqtt() -> None:
    """The MQTT bridge: connection, what is published, what was adopted."""


@mqtt.command()
@json_option
@connection_options
@pass_ctx
def status(ctx: Ctx, as_json: bool) -> None:
    """Is the hub connected to its broker, and what has it sent and dropped."""
    answer = call_api(ctx, lambda c: c.get(f"{BASE}/status"))
    if as_json:
        emit_json(answer)
        return
    for key, value in answer.items():
        click.echo(f"{key}: {value}")
