"""``hub zigbee permit-join|devices|remove|backup``: through the running hub's API, as ``hub call``
is, because only the hub holds the stick's serial port."""

from __future__ import annotations

import time
import urllib.parse

import click

from hub.client import ClientError
from hub.cliutil import Ctx, ago, call_api, connection_options, emit_json, fail, json_option, pass_ctx, table

BASE = "/api/plugins/zigbee"


@click.group()
def zigbee() -> None:
    """Zigbee network: pair devices, list them, remove them, back up the network."""


@zigbee.command("permit-join")
@click.argument("seconds", type=click.IntRange(0, 254), default=60)
@json_option
@connection_options
@pass_ctx
def permit_join(ctx: Ctx, seconds: int, as_json: bool) -> None:
    """Let new devices join for SECONDS (default 60, 0 closes). Then put the device in pairing mode."""
    answer = call_api(ctx, lambda c: c.post(f"{BASE}/permit_join", {"duration": seconds}))
    if as_json:
        emit_json(answer)
    elif seconds:
        click.echo(f"joining open for {seconds} s, until {time.strftime('%H:%M:%S', time.localtime(answer['until']))}")
    else:
        click.echo("joining closed")


@zigbee.command("devices")
@json_option
@connection_options
@pass_ctx
def devices(ctx: Ctx, as_json: bool) -> None:
    """The network's devices, with link quality and when each was last heard."""
    answer = call_api(ctx, lambda c: c.get(f"{BASE}/devices"))
    if as_json:
        emit_json(answer)
        return
    rows = [[d["ieee"], d["nwk"], d["name"], d["power_source"] or "", d["lqi"] if d["lqi"] is not None else "",
             ago(d["last_seen"]), "yes" if d["available"] else "no", len(d["entities"])] for d in answer["devices"]]
    table(None, ["ieee", "nwk", "name", "power", "lqi", "last seen", "available", "entities"], rows)
    if not answer["connected"]:
        click.secho("the radio is not connected", fg="yellow", err=True)
    elif answer["permit_until"]:
        click.echo(f"joining open until {time.strftime('%H:%M:%S', time.localtime(answer['permit_until']))}")


@zigbee.command("remove")
@click.argument("ieee")
@click.option("--force", is_flag=True, help="Forget the device even if it does not confirm that it left.")
@json_option
@connection_options
@pass_ctx
def remove(ctx: Ctx, ieee: str, force: bool, as_json: bool) -> None:
    """Ask device IEEE to leave the network, and forget it and its entities."""
    path = f"{BASE}/devices/{urllib.parse.quote(ieee, safe='')}"
    try:
        answer = ctx.client().request("DELETE", path, query={"force": "true" if force else None})
    except ClientError as exc:
        if exc.status == 504:
            fail(f"{exc.body.get('message', exc)}; if it is gone for good: hub zigbee remove {ieee} --force")
        fail(str(exc))
    if as_json:
        emit_json(answer)
    else:
        click.echo(f"removed {answer['removed']}")


@zigbee.command("backup")
@json_option
@connection_options
@pass_ctx
def backup(ctx: Ctx, as_json: bool) -> None:
    """Back up the network (key, PAN ids, channel, devices) now; prints the file."""
    answer = call_api(ctx, lambda c: c.post(f"{BASE}/backup"))
    if as_json:
        emit_json(answer)
    else:
        click.echo(answer["path"])
