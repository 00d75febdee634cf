"""``hub device keygen | bind | transfer | sell | buy | reset | share | revoke``: device keys and
ownership from the terminal. Registered on the ``hub device`` group by ``hub/identity/cli.py``.

Everything but ``keygen`` and ``buy`` talks to the running hub (it holds the controller key and the
devices); ``keygen`` works on files, ``buy`` signs with the buyer's own key and submits to the chain
(the hub's embedded chain directory, or a node with ``--rpc``), like ``hub chain send``.

A label's seed stays on this machine when it can: ``bind`` and ``reset`` sign here with the label
and send the hub only the signed statement (``GET /api/identity`` gives the network and the
controller key); a hub too old to say falls back to sending the label text.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import click

from hub.client import ClientError
from hub.cliutil import Ctx, connection_options, emit_json, fail, json_option, pass_ctx

LABELS_DIR = "identity/labels"  # under the data directory: the hub erases what it holds here once bound
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_MS = {"": 1000, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def call_api(ctx: Ctx, fn):
    """Like ``hub.cliutil.call_api``, and a device's refusal shows its reason code (``bad_setup_code:
    ...``), the word to look up in docs/identity.md."""
    try:
        return fn(ctx.client())
    except ClientError as exc:
        code = exc.body.get("error") if isinstance(exc.body, dict) else None
        generic = {None, "refused", "conflict", "invalid_request", "not_found", "unauthorized", "error"}
        fail(f"{code}: {exc}" if code not in generic else str(exc))


def _duration_ms(text: str, what: str) -> int:
    match = _DURATION.match(text)
    if not match or int(match.group(1)) <= 0:
        fail(f"{what} {text!r}: write a positive number of seconds, or 90s, 30m, 1h, 7d")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def _pubkey(text: str, what: str) -> str:
    from hub.identity.binding import BindingError, parse_public_key

    try:
        return parse_public_key(text, what).hex()
    except BindingError as exc:
        fail(exc.message)


def _read_label(source: str):
    """``--label``: the text itself, a file, a PNG, or ``-`` for standard input (pasted, or piped
    from a scanner), so the text need not sit in the shell's history."""
    import sys

    from hub.identity import labels

    try:
        if source == "-":
            return labels.parse(sys.stdin.read(4096))
        return labels.read(source)
    except labels.LabelError as exc:
        fail(f"label: {exc}")


def _device_path(device: str) -> str:
    from urllib.parse import quote

    return "/api/devices/" + quote(device, safe=":")


def _network_and_controller(client) -> tuple[Any, bytes] | None:
    """The network to sign for and the hub's controller key, or None when the hub does not say."""
    from hub.client import ClientError
    from hub.crypto.signing import Network

    try:
        info = client.get("/api/identity")
        network = Network(info["chain_id"], bytes.fromhex(info["genesis_hash"]))
        controller = bytes.fromhex(info["controller"])
    except (ClientError, KeyError, TypeError, ValueError):
        return None
    if len(controller) != 32:
        return None
    return network, controller


wait_option = click.option("--wait", is_flag=True, help="Wait until a block includes the bind_device transaction.")


def _wait_published(ctx: Ctx, result: dict, wait: bool, timeout: float = 30) -> None:
    """With ``--wait``: follow the transaction through the hub's chain view until a block has it
    (or the chain says it will not), and put what it said into ``result["chain"]``."""
    import time

    chain = result.get("chain") or {}
    if not wait or not chain.get("published"):
        return
    client = ctx.client()
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = client.get(f"/api/plugins/chain/tx/{chain['tx']}")
        except ClientError as exc:
            found = {"status": "unknown"} if exc.status == 404 else fail(str(exc))
        if found.get("verified") or found.get("status") not in (None, "pending", "unknown"):
            chain.update({k: found[k] for k in ("status", "height", "final", "reason") if k in found})
            return
        if time.monotonic() > deadline:
            fail(f"bind_device {chain['tx']} is not in a block after {timeout:.0f} s; "
                 f"`hub chain tx {chain['tx']}` shows it later")
        time.sleep(0.2)


def _show(result: dict, as_json: bool, headline: str) -> None:
    if as_json:
        emit_json(result)
        return
    click.echo(headline)
    if result.get("controller"):
        click.echo(f"controller: {result['controller']}")
    chain = result.get("chain") or {}
    if chain.get("published"):
        where = f" in block {chain['height']}" if isinstance(chain.get("height"), int) else ""
        click.echo(f"chain: bind_device {chain['tx']} {chain.get('status', 'submitted')}{where}")
    else:
        click.echo(f"chain: not published ({chain.get('reason', 'unknown')})")


def _erase(path: Path) -> None:
    """Overwrite, then unlink. On flash storage the overwrite may land elsewhere; the file is gone
    from the hub's directory all the same, and the terminal says so."""
    try:
        size = path.stat().st_size
        with open(path, "r+b") as fh:
            fh.write(b"\0" * size)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError:
        pass
    path.unlink(missing_ok=True)


def _erase_held_copies(data: Path, source: str, public_key: bytes) -> list[Path]:
    """The label's seed wherever the hub held it: files under the data directory that carry this
    device's key (``hub device keygen`` writes them to ``<data>/identity/labels``)."""
    from hub.identity import labels

    candidates: set[Path] = set()
    held = data / LABELS_DIR
    if held.is_dir():
        candidates.update(p for p in held.iterdir() if p.is_file())
    path = Path(source)
    if len(source) < 4096 and path.is_file():
        candidates.add(path)
    root = data.resolve()
    erased = []
    for p in sorted(candidates):
        resolved = p.resolve()
        if root not in resolved.parents:
            continue
        if not _carries_seed_of(p, public_key, labels):
            continue
        _erase(p)
        erased.append(p)
    return erased


def _carries_seed_of(path: Path, public_key: bytes, labels) -> bool:
    if path.suffix == ".key":
        from hub.chain.node.files import KeyFileError, read_key

        try:
            return read_key(path).public_key == public_key
        except KeyFileError:
            return False
    try:
        label = labels.read(path)
    except labels.LabelError:
        return False
    return label.seed is not None and label.public_key == public_key


# --- keygen -----------------------------------------------------------------------------------------

@click.command()
@click.option("--strong", is_flag=True, help="A label with the public key and a one-time setup code, for a device "
                                             "that keeps its key (the private key never goes on the label).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help=f"Directory for the files (default <data>/{LABELS_DIR}).")
@click.option("--name", help="File name stem (default: the device id, else device-<key>).")
@click.option("--device", help="Also make this the key of that keyless hub device (e.g. demo:plug).")
@click.option("--no-qr", is_flag=True, help="Do not draw the QR code in the terminal.")
@json_option
@connection_options
@pass_ctx
def keygen(ctx: Ctx, strong: bool, out: Path | None, name: str | None, device: str | None, no_qr: bool,
           as_json: bool) -> None:
    """Make a device key pair and its label: NAME.key (the seed), NAME-label.png and NAME-label.txt,
    all 0600. The label is what goes on the device; the terminal shows its QR code."""
    from hub.chain.node.files import write_key
    from hub.identity import labels
    from hub.store.files import private_dir

    if strong and device:
        fail("--strong is for a device that keeps its own key; a keyless hub device (--device) is bound with the "
             "label's private key, so leave out --strong")
    if device:  # before any file is written: a key nobody can give the device is worse than none
        current = call_api(ctx, lambda c: c.get(_device_path(device)))
        bound = (current.get("identity") or {}).get("controller")
        if bound:
            fail(f"{device} is bound (controller {bound[:16]}...): a new key would forget that binding; "
                 f"reset it first (`hub device reset {device} --label ...`)")
    label, text = labels.make(strong=strong)
    stem = name or (re.sub(r"[^A-Za-z0-9_.-]+", "_", device) if device else f"device-{label.public_key.hex()[:8]}")
    folder = out if out is not None else ctx.data / LABELS_DIR
    try:
        private_dir(folder)
    except OSError as exc:
        fail(f"cannot create {folder}: {exc.strerror or exc}")
    files = {"key": folder / f"{stem}.key", "png": folder / f"{stem}-label.png", "txt": folder / f"{stem}-label.txt"}
    taken = [str(p) for p in files.values() if p.exists()]
    if taken:
        fail(f"{', '.join(taken)} exist(s); a key file is never overwritten: choose another --name or --out")
    write_key(files["key"], label.key())
    labels.write_png(text, files["png"])
    labels.write_private(files["txt"], text + "\n")
    identity = None
    if device:
        identity = call_api(ctx, lambda c: c.request("POST", _device_path(device) + "/identity",
                                                     {"public_key": label.public_key.hex()}))
    result = {"public_key": label.public_key.hex(), "strong": strong, "files": {k: str(v) for k, v in files.items()},
              "device": device, "setup_code": label.setup_code}
    if as_json:
        emit_json(result)
        return
    if not no_qr:
        click.echo(labels.terminal(text))
    click.echo(f"public key {label.public_key.hex()}")
    if strong:
        click.echo(f"setup code {label.setup_code} (on the label; write it and {files['key'].name} into the device)")
    for kind, path in files.items():
        click.echo(f"{kind:>4}: {path}")
    if identity is not None:
        click.echo(f"{device}: its key now; bind it with `hub device bind {device} --label {files['png']}` "
                   "(the hub then erases its copies of the private key: print the label first)")
    elif not strong:
        click.echo("the label carries the private key: print it for the device, keep it like a key")


# --- bind ---------------------------------------------------------------------------------------------

@click.command()
@click.argument("device")
@click.option("--label", "source", required=True, metavar="FILE|PNG|TEXT|-",
              help="The device's label: its text, a text file, a PNG of its QR code, or - to read it from stdin.")
@wait_option
@json_option
@connection_options
@pass_ctx
def bind(ctx: Ctx, device: str, source: str, wait: bool, as_json: bool) -> None:
    """Bind DEVICE to this hub's controller key with its label, then publish the binding on chain.

    A private-key label is signed here and its copies in the hub's data directory are erased; a
    strong label (public key and setup code) makes the device prove it holds its key."""
    from hub.identity import binding

    label = _read_label(source)

    def go(c):
        if label.strong:
            return c.request("POST", _device_path(device) + "/bind", {"label": label.text()})
        known = _network_and_controller(c)
        if known is None:
            return c.request("POST", _device_path(device) + "/bind", {"label": label.text()})
        network, controller = known
        signed = binding.sign_bind(label, controller, _now_ms(), network)
        return c.request("POST", _device_path(device) + "/bind", {"signed": signed.to_json()})

    result = call_api(ctx, go)
    erased = [] if label.strong else _erase_held_copies(ctx.data, source, label.public_key)
    _wait_published(ctx, result, wait)
    result["erased"] = [str(p) for p in erased]
    _show(result, as_json, f"{device}: bound ({'strong: the device proved its key' if label.strong else 'label'})")
    if as_json:
        return
    for p in erased:
        click.echo(f"erased {p} (the hub no longer holds the device's private key)")
    if not label.strong and not erased:
        click.echo("the label still carries the device's private key: keep it safe (it resets the device) "
                   "or destroy it")


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


# --- transfer, sell, buy ------------------------------------------------------------------------------

@click.command()
@click.argument("device")
@click.option("--to", "to", required=True, metavar="PUBKEY", help="The new controller's public key (64 hex digits).")
@wait_option
@json_option
@connection_options
@pass_ctx
def transfer(ctx: Ctx, device: str, to: str, wait: bool, as_json: bool) -> None:
    """Hand DEVICE over to another controller key (signed by this hub's key), and publish it."""
    to = _pubkey(to, "--to")
    result = call_api(ctx, lambda c: c.request("POST", _device_path(device) + "/transfer", {"to": to}))
    _wait_published(ctx, result, wait)
    _show(result, as_json, f"{device}: handed over to {to}")


@click.command()
@click.argument("device")
@click.option("--price", required=True, metavar="RUFF", help="Price in RUFF (decimals allowed: 12.5).")
@click.option("--buyer", metavar="PUBKEY", help="Only this key may buy (default: anyone).")
@click.option("--expires", default="1h", show_default=True, help="How long the offer is open: 90s, 30m, 1h, 7d.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the offer to this file.")
@connection_options
@pass_ctx
def sell(ctx: Ctx, device: str, price: str, buyer: str | None, expires: str, out: Path | None) -> None:
    """Offer DEVICE for sale: prints the signed offer (JSON). The buyer's `hub device buy OFFER` pays
    and takes control in one transaction, or neither happens."""
    from hub.chain.cli_support import _units

    body = {"price": _units(price), "expires_in": max(1, _duration_ms(expires, "--expires") // 1000),
            "buyer": _pubkey(buyer, "--buyer") if buyer else None}
    result = call_api(ctx, lambda c: c.request("POST", _device_path(device) + "/sale", body))
    offer = json.dumps(result["offer"], indent=2)
    if out is not None:
        try:
            out.write_text(offer + "\n")
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror or exc}")
        click.echo(f"offer written to {out}", err=True)
    click.echo(offer)


class _Payload(dict):
    """What ``hub chain``'s submit takes: something with ``model_dump``."""

    def model_dump(self) -> dict:
        return dict(self)


@click.command()
@click.argument("offer")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The buyer's key file (default <data>/chain/keys/owner.key).")
@click.option("--rpc", "rpc_url", metavar="URL", help="Submit to this node's RPC instead of the hub's chain directory.")
@click.option("--chain-dir", type=click.Path(file_okay=False, path_type=Path), help="Chain directory (default <data>/chain).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until a block includes it.")
@json_option
@connection_options
@pass_ctx
def buy(ctx: Ctx, offer: str, key_path: Path | None, rpc_url: str | None, chain_dir: Path | None, wait: bool,
        as_json: bool) -> None:
    """Accept an OFFER (a file or its JSON): one bind_device transaction pays the price to the seller
    and makes the buyer's key the controller, in the same block, or does neither."""
    from hub.chain.cli_support import _Chain
    from hub.chain.format import ruff
    from hub.crypto.address import address_of
    from hub.crypto.statements import Sale, Signed, StatementError
    from hub.identity.binding import chain_payload

    text = offer
    if not offer.lstrip().startswith("{"):
        try:
            text = Path(offer).read_text()
        except OSError as exc:
            fail(f"offer {offer}: cannot read: {exc.strerror or exc}")
    try:
        signed = Signed.from_json(json.loads(text))
    except (ValueError, StatementError) as exc:
        fail(f"offer: not a signed offer: {exc}")
    if not isinstance(signed.statement, Sale):
        fail(f"offer: a {signed.statement.DOMAIN} statement, not a sale")
    sale = signed.statement
    folder = chain_dir or ctx.data / "chain"
    if rpc_url is None:
        source = _Chain(folder)
    else:
        from hub.chain.cli_rpc import RpcNode

        source = RpcNode(rpc_url, folder)
    key = source.key(key_path)
    if sale.buyer and sale.buyer != key.public_key:
        fail(f"the offer is for buyer {sale.buyer.hex()[:16]}..., not this key ({key.public_key.hex()[:16]}...)")
    if not signed.verify(sale.seller, source.genesis.network):
        fail("the offer's signature does not verify for its seller on this chain (another chain's offer?)")
    if sale.expires <= _now_ms():
        fail("the offer has expired")
    balance = source.account(address_of(key.public_key))[0]
    if balance < sale.price:
        fail(f"the price is {ruff(sale.price)} and the buyer's account holds {ruff(balance)}")
    if not as_json:
        click.echo(f"buying device {sale.device.hex()[:16]}... for {ruff(sale.price)} from {sale.seller.hex()[:16]}...")
    source.submit(key, "bind_device", _Payload(chain_payload(signed)), None, wait, as_json)


# --- reset ----------------------------------------------------------------------------------------------

@click.command()
@click.argument("device")
@click.option("--label", "source", metavar="FILE|PNG|TEXT",
              help="A keyless device's label (its private key is its reset button).")
@click.option("--signed", "signed_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A key-holding device's own signed reset (JSON), as its button made it.")
@wait_option
@json_option
@connection_options
@pass_ctx
def reset(ctx: Ctx, device: str, source: str | None, signed_path: Path | None, wait: bool, as_json: bool) -> None:
    """Factory-reset DEVICE: no controller, no grants; published on chain. A key-holding device is
    reset with its own button; its driver passes the device's signed reset to the hub."""
    from hub.identity import binding

    if (source is None) == (signed_path is None):
        fail("give --label (a keyless device: its label is the reset key) or --signed (a key-holding device's reset)")

    def go(c):
        if signed_path is not None:
            try:
                body = {"signed": json.loads(signed_path.read_text())}
            except (OSError, ValueError) as exc:
                fail(f"--signed {signed_path}: {exc}")
            return c.request("POST", _device_path(device) + "/reset", body)
        label = _read_label(source)
        if label.seed is None:
            fail("a strong label has no private key: a key-holding device is reset with its own button")
        known = _network_and_controller(c)
        if known is None:
            return c.request("POST", _device_path(device) + "/reset", {"label": label.text()})
        signed = binding.sign_reset(label, _now_ms(), known[0])
        return c.request("POST", _device_path(device) + "/reset", {"signed": signed.to_json()})

    result = call_api(ctx, go)
    _wait_published(ctx, result, wait)
    _show(result, as_json, f"{device}: reset (no controller)")


# --- share, revoke --------------------------------------------------------------------------------------

@click.command()
@click.argument("device")
@click.option("--to", "to", required=True, metavar="PUBKEY", help="The key to share with (64 hex digits).")
@click.option("--commands", metavar="ENTITY.COMMAND,...", help="Only these (relay.turn_on,relay.turn_off); default all.")
@click.option("--for", "duration", metavar="DURATION", help="Until when: 30m, 12h, 7d (default: until revoked).")
@json_option
@connection_options
@pass_ctx
def share(ctx: Ctx, device: str, to: str, commands: str | None, duration: str | None, as_json: bool) -> None:
    """Share DEVICE with a second key (an admin, or a guest for some commands); `revoke` ends it."""
    body = {"to": _pubkey(to, "--to"),
            "commands": [c.strip() for c in commands.split(",") if c.strip()] if commands else None,
            "until": _now_ms() + _duration_ms(duration, "--for") if duration else 0}
    result = call_api(ctx, lambda c: c.request("POST", _device_path(device) + "/shares", body))
    if as_json:
        emit_json(result)
        return
    st = result["statement"]["body"]
    click.echo(f"{device}: shared with {body['to']} for {', '.join(st['commands'])} (epoch {st['epoch']})")


@click.command()
@click.argument("device")
@click.option("--grantee", metavar="PUBKEY", help="Revoke only this key's grants (the others are granted again).")
@wait_option
@json_option
@connection_options
@pass_ctx
def revoke(ctx: Ctx, device: str, grantee: str | None, wait: bool, as_json: bool) -> None:
    """Revoke DEVICE's grants: its epoch rises, so the device refuses them even while offline."""
    body = {"grantee": _pubkey(grantee, "--grantee") if grantee else None}
    result = call_api(ctx, lambda c: c.request("POST", _device_path(device) + "/revoke", body))
    _wait_published(ctx, result, wait)
    epoch = result["statement"]["body"]["epoch"]
    _show(result, as_json, f"{device}: grants {'of ' + body['grantee'][:16] + '... ' if grantee else ''}"
                           f"revoked (epoch {epoch})")


COMMANDS = (keygen, bind, transfer, sell, buy, reset, share, revoke)


def register(group: click.Group) -> None:
    """Add these commands to ``hub device``."""
    for command in COMMANDS:
        group.add_command(command)


__all__ = ["register", "COMMANDS"]
