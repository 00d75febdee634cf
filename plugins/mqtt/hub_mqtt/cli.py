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
    s = call_api(ctx, lambda c: c.get(f"{BASE}/status"))
    if as_json:
        emit_json(s)
        return
    where = f"{s['broker']}{' (TLS)' if s.get('tls') else ''}"
    if s["connected"]:
        click.echo(f"connected to {where}, MQTT {s.get('protocol')}, as {s.get('client_id')}")
    else:
        click.echo(f"NOT connected to {where}: {s.get('last_error') or 'connecting'}")
    click.echo(f"topics: {s.get('topics')}/...  (node {s['node_id']})")
    click.echo(f"entities: {s.get('published')} published, {s.get('commandable')} commandable over MQTT")
    click.echo(f"messages: {s['sent']} sent, {s['received']} received, {s['queued']} queued, "
               f"{s['dropped']} dropped (queue full), {s.get('resent', 0)} sent again, "
               f"{s['oversized']} too large refused")
    click.echo(f"connections: {s['connections']}")
    if s["connected"] and s.get("last_error"):
        click.echo(f"last error: {s['last_error']}")
