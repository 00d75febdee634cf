"""``hub chain peers``: a running node's peers, and the operator's two levers on them (connect to a
peer, lift a ban), through its RPC. Changing peers needs the node's admin token, the file
``DATA/rpc-admin.token`` that ``hub chain node`` writes at its first start (mode 0600): read where
the node runs, or copied by its operator."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import click

from hub.chain.cli_support import _emit, _fail, _table

rpc_required = click.option("--rpc", "rpc_url", metavar="URL", required=True,
                            help="The node's RPC, e.g. http://127.0.0.1:9800.")
token_option = click.option("--admin-token", "token_file", required=True, metavar="FILE",
                            type=click.Path(exists=True, dir_okay=False, path_type=Path),
                            help="The node's DATA/rpc-admin.token.")


def _node(rpc_url: str):
    from hub.chain.cli_rpc import RpcNode

    return RpcNode(rpc_url, Path("."))


def _token(path: Path) -> str:
    token = path.read_text().strip()
    if not token:
        _fail(f"{path} is empty: it should hold the node's admin token (DATA/rpc-admin.token)")
    return token


@click.group(invoke_without_command=True)
@rpc_required
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def peers(ctx: click.Context, rpc_url: str, as_json: bool) -> None:
    """A node's connected peers, the addresses it dials and its bans (`add` and `unban` change them)."""
    ctx.obj = rpc_url
    if ctx.invoked_subcommand is not None:
        return
    info = _node(rpc_url).request("/peers")
    if as_json:
        _emit(info)
        return
    _table(f"{info['count']} peers ({info['inbound']} in, {info['outbound']} out)",
           ["node key", "address", "direction", "height", "score", "kept because"],
           [[(p.get("node_key") or "")[:16], p["address"], p["direction"], p.get("height"), p.get("score"),
             p.get("kept_because") or ""] for p in info["peers"]])
    for address in info.get("dialling", []):
        click.echo(f"dialling {address} (not connected)")
    for ban in info["bans"]:
        click.echo(f"banned {ban['key']} for {ban['seconds_left']:g} s more")


@peers.command("add")
@click.argument("address", metavar="HOST:PORT")
@token_option
@click.pass_obj
def add(rpc_url: str, address: str, token_file: Path) -> None:
    """Connect to a peer from now on, as if it were in the node's --peers."""
    answer = _node(rpc_url).request("/peers", {"address": address}, token=_token(token_file))
    click.echo(f"{answer['address']}: {answer['status']}")


@peers.command("unban")
@click.argument("key", metavar="NODE_KEY|HOST:PORT")
@token_option
@click.pass_obj
def unban(rpc_url: str, key: str, token_file: Path) -> None:
    """Lift the ban on a peer's node key (64 hex digits) or on an address the node dials."""
    answer = _node(rpc_url).request(f"/bans/{urllib.parse.quote(key, safe='')}", method="DELETE",
                                    token=_token(token_file))
    click.echo(f"ban lifted: {answer['lifted']}")
