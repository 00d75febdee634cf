"""The ``hub`` command.

Human tables by default, ``--json`` for scripts. Commands that act on devices talk to the running hub
over its API (the hub owns the drivers); ``hub token`` and ``hub config check`` work on the files
directly, so they also work while the hub is stopped.
"""

from __future__ import annotations

import faulthandler
import fnmatch
import json
import logging
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from hub import __version__
from hub.client import ClientError
from hub.cliutil import (
    DEFAULT_DATA,
    Ctx,
    call_api,
    connection_options,
    emit_json,
    fail,
    json_option,
    pass_ctx,
    table,
)

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hub")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_DATA, envvar="HUB_DATA",
              show_default=True, help="Data directory: database, tokens, configuration.yaml.")
@click.option("--url", envvar="HUB_URL", help="API of a running hub (default: from <data>/run.json, else http://127.0.0.1:8123).")
@click.option("--token", envvar="HUB_TOKEN", help="API token (default: <data>/owner-token).")
@click.pass_context
def main(click_ctx: click.Context, data: Path, url: str | None, token: str | None) -> None:
    """Ruff Hub: devices, local rules and the Ruff chain on your own hardware."""
    click_ctx.obj = Ctx(data, url, token)


# --- hub run -------------------------------------------------------------------------------------


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Configuration file (default: <data>/configuration.yaml; none = embedded default).")
@click.option("--host", help="Address to serve the API on (default 127.0.0.1; 0.0.0.0 for the LAN).")
@click.option("--port", type=click.IntRange(1, 65535), help="API port (default 8123).")
@click.option("--plugins-dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Also load every *.py in this directory as a plugin.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Overrides hub.log_level.")
@connection_options
@pass_ctx
def run(ctx: Ctx, config_path, host, port, plugins_dir, log_level) -> None:
    """Run the hub: drivers, devices, API."""
    from hub.api.server import serve
    from hub.runtime import ConfigRefused, Hub, run_until_stopped
    from hub.store.files import UMASK

    if config_path is not None and not config_path.exists():
        fail(f"configuration file {config_path} does not exist")
    logging.basicConfig(
        level=(log_level or "info").upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    log = logging.getLogger("hub")
    # `kill -USR1 <pid>` writes every thread's stack to the log: for a hub that will not stop (a
    # plugin's thread that never returns keeps the process from exiting), without a debugger.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # Everything the hub, its plugins and the embedded chain create is for the hub's user alone.
    os.umask(UMASK)
    hub = Hub(ctx.data, config_path=config_path, plugins_dir=plugins_dir)
    log.info("Ruff Hub %s; data directory %s", __version__, hub.data_dir)
    if hub.config_path.exists():
        log.info("configuration: %s", hub.config_path)
    else:
        log.info("no configuration at %s: running the embedded default (virtual demo devices)", hub.config_path)
    try:
        run_until_stopped(serve(hub, host, port))
    except ConfigRefused as exc:
        for issue in exc.issues:
            click.secho(str(issue), fg="red", err=True)
        fail("the configuration's hub section is invalid; `hub config check` lists every problem")
    except OSError as exc:
        fail(f"cannot serve the API: {exc}")
    except KeyboardInterrupt:
        pass


# --- hub config check ----------------------------------------------------------------------------


@main.group()
def config() -> None:
    """Check the configuration."""


@config.command("check")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--plugins-dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@json_option
@connection_options
@pass_ctx
def config_check(ctx: Ctx, config_path, plugins_dir, as_json) -> None:
    """Validate configuration.yaml against the core and every installed plugin; exit 1 on problems."""
    from hub.runtime import Hub

    logging.basicConfig(level="CRITICAL")
    hub = Hub(ctx.data, config_path=config_path, plugins_dir=plugins_dir)
    if config_path is not None and not config_path.exists():
        fail(f"configuration file {config_path} does not exist")
    loaded = hub.load_configuration()
    issues = list(loaded.issues)
    load_errors = [(n, i.error) for n, i in hub.plugins.info.items() if i.error]
    if as_json:
        emit_json({
            "file": str(loaded.path) if loaded.path else None,
            "ok": not issues,
            "issues": [vars(i) for i in issues],
            "plugin_errors": [{"plugin": n, "error": e} for n, e in load_errors],
        })
    else:
        where = loaded.path or f"{hub.config_path} (absent: the embedded default)"
        for issue in issues:
            click.secho(str(issue), fg="red")
        for name, error in load_errors:
            click.secho(f"plugin {name}: {error}", fg="yellow")
        if not issues:
            click.secho(f"{where}: configuration OK", fg="green")
        else:
            click.echo(f"{len(issues)} problem{'s' if len(issues) != 1 else ''} in {where}")
    sys.exit(1 if issues else 0)


# --- hub plugins ---------------------------------------------------------------------------------


@main.command()
@json_option
@connection_options
@pass_ctx
def plugins(ctx: Ctx, as_json: bool) -> None:
    """Installed plugins: status, errors, hooks. Live from the running hub if there is one."""
    live = True
    try:
        rows = ctx.client().get("/api/plugins")
    except ClientError as exc:
        if exc.status is not None:
            fail(str(exc))
        from hub.plugins import PluginHost

        logging.basicConfig(level="CRITICAL")
        host = PluginHost()
        host.load()
        rows = [i.as_dict() for i in host.info.values()]
        live = False
    if as_json:
        emit_json(rows)
        return
    title = "Plugins (running hub)" if live else "Plugins installed (the hub is not running)"
    # A stall leaves the plugin running: its note says when it last blocked the loop, and where.
    table(title, ["name", "status", "source", "hooks", "restarts", "stalls", "error / note"],
          [[r["name"], r["status"], r["source"], ", ".join(h.removeprefix("hub_") for h in r["hooks"]),
            r["restarts"], r.get("stalls", 0), "\n".join(filter(None, [r["error"], r.get("note")]))] for r in rows])


# --- devices, states, call, history ---------------------------------------------------------------


@main.command()
@json_option
@connection_options
@pass_ctx
def devices(ctx: Ctx, as_json: bool) -> None:
    """Devices and their entities."""
    rows = call_api(ctx, lambda c: c.get("/api/devices"))
    if as_json:
        emit_json(rows)
        return
    table("Devices", ["id", "name", "manufacturer", "model", "entities"],
          [[d["id"], d["name"], d["manufacturer"], d["model"], "\n".join(d["entities"])] for d in rows])


def _fmt_value(state: dict) -> str:
    if not state["available"]:
        return "unavailable" + (f" (last {state['value']})" if state["value"] is not None else "")
    value, unit = state["value"], state["attributes"].get("unit")
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f"{value} {unit}" if unit and numeric else str(value)


@main.command()
@click.argument("pattern", required=False)
@json_option
@connection_options
@pass_ctx
def states(ctx: Ctx, pattern: str | None, as_json: bool) -> None:
    """Current states; PATTERN filters entity ids (glob, e.g. 'sensor.*')."""
    rows = call_api(ctx, lambda c: c.get("/api/states"))
    if pattern:
        rows = [s for s in rows if fnmatch.fnmatch(s["entity_id"], pattern)]
    rows.sort(key=lambda s: s["entity_id"])
    if as_json:
        emit_json(rows)
        return
    skip = {"unit", "friendly_name", "device_class"}
    table("States", ["entity", "state", "attributes", "last changed"],
          [[s["entity_id"], _fmt_value(s),
            ", ".join(f"{k}={v}" for k, v in s["attributes"].items()
                      if k not in skip and v is not None and not isinstance(v, (list, dict))),
            (s["last_changed"] or "")[:19].replace("T", " ")] for s in rows])


def command_args(client, entity_id: str, command: str, pairs: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` arguments read by the command's schema, which the hub publishes: the same text
    is a string for a lock's ``code`` and a number for a light's ``brightness``."""
    from hub.cliargs import ArgumentError, convert_args

    if not pairs:
        return {}
    entity = client.get(f"/api/entities/{entity_id}")
    capability = client.get("/api/capabilities").get(entity["capability"], {})
    spec = capability.get("commands", {}).get(command)
    if spec is None:
        valid = ", ".join(sorted(capability.get("commands", {}))) or "none"
        fail(f"{entity_id} is a {entity['capability']}, which has no command {command!r}; valid: {valid}")
    try:
        return convert_args(pairs, spec["args"], f"{entity['capability']}.{command}")
    except ArgumentError as exc:
        fail(str(exc))


@main.command()
@click.argument("entity_id")
@click.argument("command")
@click.argument("args", nargs=-1)
@json_option
@connection_options
@pass_ctx
def call(ctx: Ctx, entity_id: str, command: str, args: tuple[str, ...], as_json: bool) -> None:
    """Call COMMAND on ENTITY_ID, e.g. `hub call light.living_room turn_on brightness=128`.

    Each ARG is key=value, read as its field's type: text for a string (code=0123 stays '0123'), a
    number, true/false/on/off, or JSON for a list (rgb_color=[255,0,0])."""
    client = ctx.client()
    try:
        body = command_args(client, entity_id, command, args)
        answer = client.post(f"/api/entities/{entity_id}/commands/{command}", body)
    except ClientError as exc:
        if as_json and exc.body:
            emit_json(exc.body)
            sys.exit(1)
        for err in exc.body.get("errors", []):
            click.secho(f"  {err.get('field')}: {err.get('message')}", fg="red", err=True)
        fail(str(exc))
    if as_json:
        emit_json(answer)
        return
    state = answer.get("state")
    click.echo(f"{entity_id} {command}: ok" + (f"; now {_fmt_value(state)}" if state else ""))
    if answer.get("result") is not None:
        click.echo(f"result: {json.dumps(answer['result'])}")


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def parse_since(value: str) -> str:
    """``90s``, ``15m``, ``2h``, ``7d`` are relative to now; anything else is passed on (ISO 8601
    or unix seconds) for the API to judge."""
    m = _DURATION.match(value.strip())
    if m:
        seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
        return str(time.time() - seconds)
    return value


@main.command()
@click.argument("entity_id")
@click.option("--since", default="24h", show_default=True, help="Start: 15m, 2h, 7d, ISO 8601 or unix seconds.")
@click.option("--until", "until", help="End (default now).")
@click.option("--limit", default=10000, show_default=True, type=click.IntRange(1, 100000))
@json_option
@connection_options
@pass_ctx
def history(ctx: Ctx, entity_id: str, since: str, until: str | None, limit: int, as_json: bool) -> None:
    """Recorded states of ENTITY_ID."""
    answer = call_api(ctx, lambda c: c.get(f"/api/history/{entity_id}", start=parse_since(since),
                                           end=parse_since(until) if until else None, limit=limit))
    if as_json:
        emit_json(answer)
        return
    table(f"History of {entity_id}", ["time", "state"],
          [[(s["last_updated"] or "")[:23].replace("T", " "), _fmt_value(s)] for s in answer["states"]])


# --- tokens --------------------------------------------------------------------------------------


@main.group()
def token() -> None:
    """Long-lived API tokens (only their hashes are stored)."""


def _store(ctx: Ctx):
    from hub.store import Store

    return Store(ctx.data)


@token.command("create")
@click.argument("name")
@connection_options
@pass_ctx
def token_create(ctx: Ctx, name: str) -> None:
    """Create a token and print it once: copy it now, it cannot be shown again."""
    from hub.store import TokenError

    store = _store(ctx)
    try:
        click.echo(store.create_token(name))
    except TokenError as exc:
        fail(str(exc))
    finally:
        store.close()
    click.echo(f"token {name!r} created; send it as 'Authorization: Bearer <token>'", err=True)


@token.command("list")
@json_option
@connection_options
@pass_ctx
def token_list(ctx: Ctx, as_json: bool) -> None:
    """Token names and when they were created and last used."""
    from hub.core.state import iso

    store = _store(ctx)
    rows = store.list_tokens()
    store.close()
    if as_json:
        emit_json(rows)
        return
    table("Tokens", ["name", "created", "last used"],
          [[r["name"], (iso(r["created_at"]) or "")[:19], (iso(r.get("last_used")) or "never")[:19]] for r in rows])


@token.command("revoke")
@click.argument("name")
@connection_options
@pass_ctx
def token_revoke(ctx: Ctx, name: str) -> None:
    """Revoke a token: requests with it are refused from now on."""
    store = _store(ctx)
    removed = store.revoke_token(name)
    store.close()
    if not removed:
        fail(f"no token named {name!r}")
    click.echo(f"token {name!r} revoked")


def _core_commands() -> None:
    """Parts of the hub with command groups of their own; their modules import little at load."""
    from hub.chain.cli import chain
    from hub.identity.cli import device, devices
    from hub.market.cli import market
    from hub.rules.cli import rules
    from hub.rules.scenes_cli import scenes
    from hub.rules.scripts_cli import scripts

    main.add_command(rules)
    main.add_command(scenes)
    main.add_command(scripts)
    main.add_command(chain)
    main.add_command(device)
    main.add_command(devices)
    main.add_command(market)


def _plugin_commands() -> None:
    """Let installed plugins add their subcommands (``hub modbus scan``). A plugin that fails here
    is skipped: a broken driver must not take the whole command line with it."""
    from hub.plugins import PluginHost

    host = PluginHost()
    host.load()
    for name in host.loaded():
        try:
            host.call_one_sync(name, "hub_register_commands", cli=main)
        except KeyboardInterrupt:
            raise  # at the command line, most likely the user's Ctrl-C
        except BaseException as exc:  # noqa: BLE001 - sys.exit() in a plugin must not end every command
            click.secho(f"plugin {name}: could not add its commands: {type(exc).__name__}: {exc}", fg="yellow", err=True)


_core_commands()
_plugin_commands()

if __name__ == "__main__":
    main()
