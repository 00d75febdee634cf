"""``hub chain node``: one full node of a multi-process chain (issue #6).

Imported by ``hub/chain/cli.py`` on every ``hub`` run, so nothing heavy is imported at module level:
the node, networking and uvicorn load only when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from hub.chain.p2p import limits  # numbers only: cheap to import on every ``hub`` run


@click.command("node")
@click.option("--genesis", "genesis_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The chain's genesis file (copied into --data).")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="This node's directory: chain.db, genesis.json, node.key.")
@click.option("--producer-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Producer key file: produce in this key's slots once elected.")
@click.option("--listen", default="127.0.0.1:9700", show_default=True, metavar="HOST:PORT", help="Peer-to-peer address.")
@click.option("--peers", default="", metavar="HOST:PORT,...", help="Peers to dial and keep connected.")
@click.option("--max-inbound", default=limits.MAX_INBOUND, show_default=True, type=click.IntRange(1, 10_000),
              help="Peers that dialled us; when full, the least useful stranger makes room for a new peer.")
@click.option("--max-outbound", default=limits.MAX_OUTBOUND, show_default=True, type=click.IntRange(1, 10_000),
              help="Addresses dialled (--peers, and peers added at run time).")
@click.option("--max-per-address", default=limits.MAX_PER_ADDRESS, show_default=True, type=click.IntRange(1, 10_000),
              help="Inbound peers from one IP address that have not yet proved useful.")
@click.option("--rpc", metavar="HOST:PORT", help="Serve the HTTP RPC here (when the RPC module is installed).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
def node(genesis_file: Path, data_dir: Path, producer_key: Path | None, listen: str, peers: str, max_inbound: int,
         max_outbound: int, max_per_address: int, rpc: str | None, log_level: str) -> None:
    """Run a full chain node: sync, gossip, and produce in this key's slots."""
    import asyncio
    import logging

    from hub.chain.p2p.network import parse_address
    from hub.chain.p2p.service import NodeOptions, NodeSetupError, serve

    peer_list = [p.strip() for p in peers.split(",") if p.strip()]
    for address in [listen, *peer_list, *([rpc] if rpc else [])]:
        try:
            parse_address(address)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    if len(set(peer_list)) > max_outbound:
        raise click.BadParameter(f"{len(set(peer_list))} peers given, but --max-outbound is {max_outbound}",
                                 param_hint="--peers")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    opts = NodeOptions(genesis=genesis_file, data=data_dir, listen=listen, peers=peer_list,
                       producer_key=producer_key, rpc=rpc, max_inbound=max_inbound, max_outbound=max_outbound,
                       max_per_address=max_per_address)
    try:
        asyncio.run(serve(opts))
    except NodeSetupError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        raise SystemExit(1) from None
