"""``hub device log [DEVICE]`` and ``hub device log verify ID``: the anchored command log.

``verify`` asks the running hub for the command's proof and its anchor, then redoes the Merkle step
here, from the command's fields alone: the leaf rebuilt from the row, the path hashed up to the
batch's root. The anchor's check (its entry in the chain's state, read through the hub's chain
service: a state proof against a header the light client verified, or the hub's own node) is the
hub's, and shown as such.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from hub.cliutil import Ctx, call_api, connection_options, emit_json, fail, json_option, pass_ctx, table

_DEVICE = "hub.device_log.device"


class _LogGroup(click.Group):
    """``log`` takes an optional DEVICE before its subcommands: ``hub device log plug``, ``hub device
    log verify 12``. A first word that is not a subcommand is the device."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        taking_values = {name for param in self.params if isinstance(param, click.Option) and not param.is_flag
                         for name in param.opts}
        i = 0
        while i < len(args):
            if args[i] in taking_values:
                i += 2
            elif args[i].startswith("-"):
                i += 1
            else:
                if args[i] not in self.commands:
                    ctx.meta[_DEVICE] = args.pop(i)
                break
        return super().parse_args(ctx, args)


@click.group("log", cls=_LogGroup, invoke_without_command=True, subcommand_metavar="[DEVICE | verify ID]")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Entries to show.")
@json_option
@connection_options
@click.pass_context
def log(click_ctx: click.Context, limit: int, as_json: bool) -> None:
    """Recent commands [of DEVICE], each with its anchor status: logged, batched, submitted, anchored, final."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx: Ctx = click_ctx.find_object(Ctx)
    device = click_ctx.meta.get(_DEVICE)
    rows = call_api(ctx, lambda c: c.get("/api/commands", device=device, limit=limit))
    if as_json:
        emit_json(rows)
        return
    table(f"command log{' of ' + device if device else ''}", ["id", "time", "entity", "command", "source", "ok", "leaf",
                                                              "anchor"],
          [[r["id"], time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ts"])), r["entity_id"], r["command"],
            r["source"], "yes" if r["ok"] else f"no: {r['error'] or ''}"[:60], r["leaf"],
            r["status"] + (f" @{r['height']}" if r["height"] is not None else "")] for r in rows])


def local_check(found: dict[str, Any]) -> bool | None:
    """The Merkle step redone here: the leaf from the command's fields, the path up to the root."""
    from hub.crypto import merkle
    from hub.store.logleaf import leaf

    batch = found.get("batch")
    if batch is None:
        return None
    c = found["command"]
    data = leaf(c["id"], c["ts"], c["entity_id"], c["command"], c["args"], c["source"], c["ok"], c["error"], c["result"])
    return merkle.verify_inclusion(data, found["index_in_batch"], batch["count"],
                                   [bytes.fromhex(h) for h in found["proof"]], bytes.fromhex(batch["root"]))


def _mark(ok: bool | None) -> str:
    return {True: click.style("ok", fg="green"), False: click.style("FAILED", fg="red"), None: "not checked"}[ok]


@log.command("verify")
@click.argument("command_id", type=click.IntRange(1))
@json_option
@connection_options
@pass_ctx
def verify(ctx: Ctx, command_id: int, as_json: bool) -> None:
    """Print command ID's inclusion proof and check it up to its anchor on chain."""
    found = call_api(ctx, lambda c: c.get(f"/api/commands/{command_id}/proof"))
    here = local_check(found)
    if as_json:
        emit_json({**found, "checked_here": here})
        sys.exit(0 if found["verified"] and here else 1)
    c = found["command"]
    click.echo(f"command {c['id']}: {c['entity_id']} {c['command']} {c['args']} from {c['source']} at "
               f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(c['ts']))}: "
               f"{'ok' if c['ok'] else 'refused: ' + (c['error'] or '')}")
    click.echo(f"leaf {found['index']}: {found['leaf']}")
    click.echo(f"  leaf matches the stored row: {_mark(found['checks']['leaf'])}")
    batch = found.get("batch")
    if batch is None:
        click.echo("not in a batch yet: it is anchored with the next one (see `hub device log`)")
        sys.exit(1)
    click.echo(f"batch of leaves {batch['first']}..{batch['first'] + batch['count'] - 1} "
               f"(place {batch['chain_first']} on chain), root {batch['root']}")
    click.echo(f"inclusion proof, leaf {found['index_in_batch']} of {batch['count']} ({len(found['proof'])} hashes):")
    for h in found["proof"]:
        click.echo(f"  {h}")
    click.echo(f"  leaf -> root, checked by the hub: {_mark(found['checks']['merkle'])}; checked here: {_mark(here)}")
    if batch["height"] is None:
        click.echo(f"anchor: {found['status']}, not in a block yet")
        sys.exit(1)
    if found.get("chain_error"):
        click.echo(f"anchor: in block {batch['height']}; {found['chain_error']}")
        sys.exit(1)
    block, anchor = found.get("block") or {}, found.get("anchor")
    click.echo(f"anchor transaction {found.get('tx') or batch['tx']} in block {block.get('height')} "
               f"{block.get('hash', '')} ({'final' if block.get('final') else 'not final yet'})")
    click.echo(f"  chain's anchor entry: {anchor}")
    click.echo(f"  root and count match the chain's anchor entry: {_mark(found['checks'].get('anchor'))}")
    click.echo(f"  the block holds the anchor transaction: {_mark(found['checks'].get('block'))}")
    click.echo(f"  ({found.get('verification')})")
    if found["verified"] and here:
        click.secho("verified", fg="green", bold=True)
    else:
        fail("NOT verified")
