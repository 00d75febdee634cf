"""Test plugin: offers the embedded chain's network as the "chain" service when nothing else does.

Until the chain plugin provides its ``ChainAccess`` (h16-chainlink), the identity gate finds no
network; this tiny adapter reads it from the genesis file the embedded chain wrote, which is all
the gate asks of the chain service (``.network``)."""

from __future__ import annotations

from hub import hookimpl


class _Network:
    def __init__(self, network) -> None:
        self.network = network


@hookimpl
def hub_setup(hub) -> None:
    from hub.chain.protocol.genesis import load_genesis

    if hub.service("chain") is None:
        hub.provide("chain", _Network(load_genesis(hub.hub_data_dir / "chain" / "genesis.json").network))
