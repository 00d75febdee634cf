"""``hub ble scan|devices|add``: through the running hub's API, as ``hub call`` is, because only the
hub holds the adapter (a second scanner beside it would see the same advertisements, but could not
tell which of them the hub already has as devices)."""

from __future__ import annotations

import time

import click

from hub.client import ClientError
from hub.cliutil import Ctx, ago, call_api, connection_options, emit_json, fail, json_option, pass_ctx, table

BASE = "/api/plugins/ble"


def _values(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items() if k != "signal_strength")


def _adapter_line(answer: dict) -> None:
    if answer.get("error"):
        click.secho(f"not scanning: {answer['error']}", fg="yellow", err=True)
    elif answer.get("scanning"):
        click.echo(f"{answer['adapter']}: scanning ({answer['scanning']}), {answer['advertisements']} advertisements")


@click.group()
def ble() -> None:
    """Bluetooth LE: what the hub hears, its BLE devices, adding one."""


@ble.command("scan")
@click.option("--seconds", type=click.FloatRange(0, 3600), default=0,
              help="Keep refreshing the table for this long (the hub scans all the time; this only waits).")
@click.option("--all", "show_all", is_flag=True, help="Also addresses no parser recognises.")
@json_option
@connection_options
@pass_ctx
def scan(ctx: Ctx, seconds: float, show_all: bool, as_json: bool) -> None:
    """What the running hub has heard: sensors it can read and whether they are configured."""
    deadline = time.monotonic() + seconds
    while True:
        answer = call_api(ctx, lambda c: c.get(f"{BASE}/discovered"))
        if time.monotonic() >= deadline:
            break
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
        if not as_json:
            click.clear()
            _show_scan(answer, show_all)
    if as_json:
        emit_json(answer)
        return
    _show_scan(answer, show_all)


def _show_scan(answer: dict, show_all: bool) -> None:
    devices = [d for d in answer["devices"] if show_all or d.get("parser")]
    rows = [[d["address"], d.get("name") or "", d.get("rssi") if d.get("rssi") is not None else "",
             d.get("parser") or "", "yes" if d.get("configured") else "no", _values(d.get("values") or {}),
             ago(d.get("last_seen"))] for d in devices]
    table("BLE devices heard", ["address", "name", "rssi", "type", "configured", "values", "last seen"], rows)
    hidden = len(answer["devices"]) - len(devices)
    if hidden:
        click.echo(f"{hidden} other address{'es' if hidden != 1 else ''} heard (--all shows them)")
    _adapter_line(answer)
    new = [d for d in devices if not d.get("configured")]
    if new:
        d = new[0]
        click.echo(f"add one with: hub ble add {d['address']} --type {d['parser']} --name '...'")


@ble.command("devices")
@json_option
@connection_options
@pass_ctx
def devices(ctx: Ctx, as_json: bool) -> None:
    """The hub's BLE devices: passive sensors and connected (GATT) devices."""
    answer = call_api(ctx, lambda c: c.get(f"{BASE}/devices"))
    if as_json:
        emit_json(answer)
        return
    rows = []
    for d in answer["devices"]:
        if d["type"] in ("lbs", "gatt"):
            status = "connected" if d.get("connected") else (d.get("last_error") or "connecting")
            seen = ""
        else:
            status = "available" if d.get("available") else "unavailable"
            seen = ago(d.get("last_seen"))
        rows.append([d["address"], d["name"], d["type"] + (" (encrypted)" if d.get("encrypted") else ""),
                     status, seen, "\n".join(d["entities"])])
    table("BLE devices", ["address", "name", "type", "status", "last seen", "entities"], rows)
    _adapter_line(answer)


@ble.command("add")
@click.argument("address")
@click.option("--type", "kind", type=click.Choice(["bthome", "xiaomi", "lbs"]), required=True,
              help="bthome / xiaomi: a passive sensor; lbs: a Nordic LED Button Service device. A generic "
                   "gatt device is added with its entities in configuration.yaml or POST devices.")
@click.option("--name", help="The device's name in the hub (default: its address).")
@click.option("--bind-key", help="The encryption key of an encrypted sensor (asked for if given as '-').")
@json_option
@connection_options
@pass_ctx
def add(ctx: Ctx, address: str, kind: str, name: str | None, bind_key: str | None, as_json: bool) -> None:
    """Add the device at ADDRESS to the running hub (kept across restarts)."""
    if bind_key == "-":
        bind_key = click.prompt("bind key", hide_input=True)
    body = {"address": address, "type": kind}
    if name:
        body["name"] = name
    if bind_key:
        body["bind_key"] = bind_key
    try:
        answer = ctx.client().post(f"{BASE}/devices", body)
    except ClientError as exc:
        fail(str(exc))
    if as_json:
        emit_json(answer)
        return
    click.echo(f"added {answer['name']} ({answer['address']}, {answer['type']}): {', '.join(answer['entities'])}")
