"""The embedded chain: a built-in plugin that runs a one-producer chain inside ``hub run``.

With it, the identity and market features have a chain with no set-up: on first start it writes
``<data>/chain/genesis.json`` with a fresh producer key and an ``owner`` key holding the initial
supply, then produces a block in each of its slots. ``chain:`` in ``configuration.yaml`` enables it
(the embedded default configuration has it); ``genesis:`` points it at another genesis file, and a
key in ``<data>/chain/keys/`` that the genesis names as a producer makes it produce.

Start-up cost matters (``hub run`` should answer within ~1.5 s): this module imports nothing heavy;
the node, libsodium and SQLite are loaded in ``hub_setup``, off the event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub import hookimpl


class ChainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    produce: bool = Field(True, description="Produce blocks in this node's slots when it holds a producer key.")
    genesis: Path | None = Field(None, description="Genesis file (default: <data>/chain/genesis.json, created on first start).")


@hookimpl
def hub_config_schema() -> type[ChainConfig]:
    return ChainConfig


def _chain_dir(hub: Any) -> Path:
    # The chain lives beside the hub's own database (<data>/chain), not under <data>/plugins/: the
    # CLI finds it there with nothing but --data. PluginContext has no public accessor for the data
    # root yet, hence the private attribute.
    return hub.hub_data_dir / "chain"


def _open(chain_dir: Path, config: ChainConfig, now_ms: int):
    import shutil

    from hub.chain.node.files import GENESIS_FILE, ensure_embedded, find_producer_key
    from hub.chain.node.node import ChainNode
    from hub.chain.protocol.genesis import load_genesis

    chain_dir.mkdir(parents=True, exist_ok=True)
    if config.genesis is not None:
        genesis = load_genesis(config.genesis)
        if not (chain_dir / GENESIS_FILE).exists():
            shutil.copyfile(config.genesis, chain_dir / GENESIS_FILE)
    else:
        genesis = ensure_embedded(chain_dir, now_ms)
    key = find_producer_key(chain_dir, genesis) if config.produce else None
    return ChainNode(chain_dir, genesis, key)


@hookimpl
async def hub_setup(hub: Any) -> None:
    config = hub.config if isinstance(hub.config, ChainConfig) else ChainConfig.model_validate(hub.config or {})
    node = await asyncio.to_thread(_open, _chain_dir(hub), config, int(hub.now() * 1000))
    hub.data["node"] = node
    role = "producing" if node.key is not None else "following (no producer key in keys/)"
    hub.log.info("chain %s: head %d, %s; `hub chain --help` for the CLI", node.genesis.chain_id, node.head.height, role)


@hookimpl
async def hub_run(hub: Any) -> None:
    from hub.chain.node.producer import run_producer

    await run_producer(hub.data["node"], clock=lambda: int(hub.now() * 1000))


@hookimpl
def hub_api_routes(hub: Any) -> Any:
    from hub.chain.api import router

    return router(hub.data["node"])


@hookimpl
def hub_shutdown(hub: Any) -> None:
    node = hub.data.pop("node", None)
    if node is not None:
        node.close()
