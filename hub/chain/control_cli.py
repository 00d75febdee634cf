"""``hub chain control``: send a device a signed command through the chain.

For a controller (or a grantee) with no direct path to the device's hub: the command envelope is
signed here, exactly as ``hub device call`` signs it, and carried by a ``control_command``
transaction (signed with the same key, which pays the fee) to the hub's embedded chain directory or,
with ``--rpc``, to any node of the chain. The hub that hosts the device runs it once it is in a
final block and reports the outcome with a ``state_change`` (docs/chainctl.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from hub.chain.cli import _source, chain_dir_option, fee_option, json_option, key_option, rpc_option, wait_option
from hub.chain.cli_support import _fail


@click.command("control")
@click.argument("device_key")
@click.argument("entity")
@click.argument("command")
@click.argument("args", nargs=-1)
@click.option("--grant", "grant_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A grant of the device's controller to your key (its signed JSON), when you are not the controller.")
@click.option("--counter", type=click.IntRange(0, 2**64 - 1),
              help="The command's counter (default: rising, from a file beside the key, as `hub device call`).")
@key_option
@fee_option
@wait_option
@chain_dir_option
@rpc_option
@json_option
def control(device_key: str, entity: str, command: str, args: tuple[str, ...], grant_path: Path | None,
            counter: int | None, key_path, fee, wait, chain_dir, rpc_url, as_json) -> None:
    """Sign COMMAND for ENTITY (its key on the device: `outlet`) of the device whose public key is
    DEVICE_KEY (64 hex digits) and submit it as a control_command, e.g.
    `hub chain control 3f…a1 outlet turn_on --key me.key --rpc http://node:9800 --wait`.

    Each ARG is key=value (JSON or text). The chain admits it only from the device's controller on
    chain or with a grant of it (--grant); the device's hub runs it once and reports the outcome."""
    import time

    from hub.chain.protocol.payloads import ControlCommand
    from hub.crypto.statements import Command, Signed, StatementError, sign
    from hub.identity.cli import next_counter, parse_pairs

    try:
        device = bytes.fromhex(device_key)
    except ValueError:
        device = b""
    if len(device) != 32:
        _fail("DEVICE_KEY: the device's public key is 64 hex digits (`hub devices` shows it)")
    c = _source(chain_dir, rpc_url)
    key = c.key(key_path)
    network = c.genesis.network
    grant = None
    if grant_path is not None:
        try:
            grant = Signed.from_json(json.loads(grant_path.read_text()))
        except (ValueError, StatementError) as exc:
            _fail(f"--grant {grant_path}: not a signed grant ({exc})")
        if grant.statement.DOMAIN != "grant":
            _fail(f"--grant {grant_path}: a signed {grant.statement.DOMAIN}, not a grant")
    counter_file = key_path if key_path is not None else c.dir / "keys" / "owner.key"
    try:
        statement = Command.from_body(Command(network.chain_id, device, entity, command, parse_pairs(args),
                                              int(time.time() * 1000), next_counter(counter_file, counter),
                                              key.public_key).body())
    except StatementError as exc:
        _fail(str(exc))
    store = getattr(c, "store", None)  # the chain directory: say now what the node would refuse later
    if store is not None:
        record = store.state_value("dev", device)
        if not record or not record[0]:
            _fail(f"unbound: device {device_key[:16]}… has no controller on this chain (as of block "
                  f"{store.head().height}); bind it first")
        if record[0] != key.public_key and grant is None:
            _fail(f"not_controller: your key {key.public_key.hex()[:16]}… is not the device's controller on chain "
                  f"({bytes(record[0]).hex()[:16]}…); a grantee gives its grant with --grant")
    signed = sign(statement, key, network)
    try:
        payload = ControlCommand.model_validate({"command": signed.to_body(),
                                                 "grant": grant.to_body() if grant is not None else None})
    except ValueError as exc:
        _fail(f"control_command: {exc}")
    c.submit(key, "control_command", payload, fee, wait, as_json)


__all__ = ["control"]
