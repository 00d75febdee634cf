"""``hub device ...`` and ``hub devices``: the owner's and a signer's side of the identity gate.

``hub device call`` signs locally with a key file and posts to the hub's signed-commands route,
which takes no token: a renter or a second admin has only a key. Keys and anchor add their
subcommands to the :data:`device` group (``hub/identity/cli_binding.py``, ``cli_log.py``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from hub.client import ClientError, HubClient
from hub.cliutil import Ctx, call_api, connection_options, emit_json, fail, json_option, pass_ctx, table


@click.group()
def device() -> None:
    """Device identity: signed commands (and keys, binding, the command log)."""


def parse_pairs(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``key=value``: the value as JSON when it is JSON (``128``, ``true``, ``[255,0,0]``), else text.
    No schema lookup: a signer may have no token to read the hub's capabilities."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"argument {pair!r}: expected key=value")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def next_counter(key_path: Path, given: int | None) -> int:
    """A counter above every one sent with this key: ``--counter``, else the larger of the last one
    (a file beside the key) plus one and the time in microseconds, so the hub, which signs with the
    same scheme, and this command never collide. Written (fsync'd) before the command is sent."""
    path = key_path.with_name(key_path.name + ".counter")
    try:
        last = int(path.read_text().strip())
    except (OSError, ValueError):
        last = -1
    counter = given if given is not None else max(last + 1, int(time.time() * 1_000_000))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{max(counter, last)}\n")
        fh.flush()
        os.fsync(fh.fileno())
    return counter


@device.command("call")
@click.argument("device_id")
@click.argument("entity")
@click.argument("command")
@click.argument("args", nargs=-1)
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Your key file (as `hub chain keygen` writes it): the controller's, a shared admin's or a renter's.")
@click.option("--counter", type=click.IntRange(0, 2**64 - 1), help="The command's counter (default: rising, from a file beside the key).")
@json_option
@connection_options
@pass_ctx
def call(ctx: Ctx, device_id: str, entity: str, command: str, args: tuple[str, ...], key_path: Path,
         counter: int | None, as_json: bool) -> None:
    """Sign COMMAND for ENTITY (its key on the device: `outlet`) of DEVICE_ID and send it, e.g.
    `hub device call demo:smart_plug outlet turn_on --key me.key --url http://hub:8123`.

    No token is needed: the signature is the credential. Each ARG is key=value (JSON or text)."""
    from hub.chain.node.files import KeyFileError, read_key
    from hub.crypto.signing import Network
    from hub.crypto.statements import Command, StatementError, sign

    try:
        key = read_key(key_path)
    except KeyFileError as exc:
        fail(str(exc))
    client: HubClient = ctx.client()
    info = call_api(ctx, lambda c: c.request("GET", "/api/identity", query={"device": device_id}, auth=False))
    if not info["signed_control"]:
        fail(f"the hub at {client.url} has no chain: signed control is off there")
    network = Network(info["chain_id"], bytes.fromhex(info["genesis_hash"]))
    try:
        statement = Command(network.chain_id, bytes.fromhex(info["device"]["public_key"]), entity, command,
                            parse_pairs(args), int(time.time() * 1000), next_counter(key_path, counter), key.public_key)
        statement = Command.from_body(statement.body())  # the same checks the hub makes, before sending
    except StatementError as exc:
        fail(str(exc))
    signed = sign(statement, key, network)
    try:
        answer = client.request("POST", f"/api/devices/{device_id}/signed-commands", signed.to_json(), auth=False)
    except ClientError as exc:
        answer = exc.body or {"ok": False, "reason": "error", "message": str(exc)}
    if as_json:
        emit_json(answer)
    elif answer.get("ok"):
        click.echo(f"{device_id} {entity} {command}: ok" +
                   (f"; result: {json.dumps(answer['result'])}" if answer.get("result") is not None else ""))
    if not answer.get("ok"):
        if not as_json:
            fail(f"refused ({answer.get('reason')}): {answer.get('message')}")
        sys.exit(1)


def _short(hexed: str | None, mine: str | None) -> str:
    if not hexed:
        return "-"
    return "this hub" if hexed == mine else hexed[:16] + "…"


@click.command("devices")
@json_option
@connection_options
@pass_ctx
def devices(ctx: Ctx, as_json: bool) -> None:
    """Devices with their identity: key, who controls them, grants."""
    rows = call_api(ctx, lambda c: c.get("/api/devices"))
    mine = call_api(ctx, lambda c: c.request("GET", "/api/identity", auth=False)).get("controller")
    if as_json:
        emit_json(rows)
        return
    out = []
    for d in sorted(rows, key=lambda d: d["id"]):
        ident = d.get("identity") or {}
        grants = [g for g in ident.get("grants", []) if g.get("epoch", 0) >= ident.get("epoch", 0)]
        out.append([d["id"], d.get("model"), _short(ident.get("public_key"), None),
                    ("yes" if ident.get("holds_key") else "no") if ident else "-",
                    _short(ident.get("controller"), mine) if ident else "-",
                    ", ".join(f"{g['grantee'][:8]}…: {','.join(g['commands'])}" for g in grants) or "-"])
    table("Devices", ["device", "model", "key", "holds key", "controller", "grants"], out)


from hub.identity.cli_log import log as _log  # noqa: E402 - registered after the group exists

device.add_command(_log)

# keygen, bind, transfer, sell, buy, reset, share, revoke (hub/identity/cli_binding.py)
from hub.identity.cli_binding import register as _register_ownership  # noqa: E402

_register_ownership(device)
