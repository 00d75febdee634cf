"""The embedded chain: a built-in plugin that runs a one-producer chain inside ``hub run``.

With it, the identity and market features have a chain with no set-up: on first start it writes
``<data>/chain/genesis.json`` with a fresh producer key and an ``owner`` key holding the initial
supply, then produces a block in each of its slots. ``chain:`` in ``configuration.yaml`` enables it
(the embedded default configuration has it); ``genesis:`` points it at another genesis file, and a
key in ``<data>/chain/keys/`` that the genesis names as a producer makes it produce.

``rpc:`` (a full node's RPC URL) switches to remote mode instead: no node in the hub, a light client
of that node's chain (:mod:`hub.chain.remote`), anchored in the ``genesis:`` file, which is then
required (the trust anchor comes from the user, never from the node). This module only dispatches, and offers either mode to the hub's other parts as the service
``"chain"`` (:mod:`hub.chain.access`).

Start-up cost matters (``hub run`` should answer within ~1.5 s): this module imports nothing heavy;
the node, libsodium and SQLite are loaded in ``hub_setup``, off the event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from hub import hookimpl


class ChainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rpc: str | None = Field(None, description="RPC URL of a full node (`hub chain node --rpc`): follow its chain as a "
                            "light client instead of running a node in the hub; needs `genesis`.")
    produce: bool = Field(True, description="Produce blocks in this node's slots when it holds a producer key "
                          "(embedded mode only).")
    genesis: Path | None = Field(None, validate_default=True, description="Genesis file (default: "
                                 "<data>/chain/genesis.json, created on first start). Required with `rpc`: the "
                                 "light client's trust anchor.")

    @field_validator("rpc")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http:// or https:// URL of a full node's RPC, e.g. http://127.0.0.1:9800")
        return value.strip().rstrip("/")

    @field_validator("genesis")
    @classmethod
    def _genesis_with_rpc(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None and info.data.get("rpc"):
            raise ValueError("required with chain.rpc: the chain's genesis file (as `hub chain genesis` wrote it); "
                             "it is the light client's trust anchor, so the hub never takes it from the node")
        return value


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


def _open_remote(config: ChainConfig, log: Any, now: Any):
    from hub.chain.remote import open_remote  # the light client's modules load here, off the event loop

    return open_remote(config.rpc, config.genesis, log=log, now=now)


def _config(hub: Any) -> ChainConfig:
    return hub.config if isinstance(hub.config, ChainConfig) else ChainConfig.model_validate(hub.config or {})


def _access(chain: Any, hub: Any) -> Any:
    """The ``ChainAccess`` the hub's other parts find as the service "chain" (identity, anchoring,
    chain-state control), on the hub's clock."""
    from hub.chain.access import EmbeddedAccess, RemoteAccess

    clock = lambda: int(hub.now() * 1000)  # noqa: E731
    return RemoteAccess(chain, clock) if "remote" in hub.data else EmbeddedAccess(chain, clock)


@hookimpl
async def hub_setup(hub: Any) -> None:
    config = _config(hub)
    if config.rpc is not None:
        remote = await asyncio.to_thread(_open_remote, config, hub.log, hub.now)
        hub.data["remote"] = remote
        hub.provide("chain", _access(remote, hub))
        hub.log.info("chain %s: light client of %s (genesis %s, trusted from %s); keeps no blocks",
                     remote.genesis.chain_id, remote.url, remote.genesis.hash.hex()[:16], config.genesis)
        return
    node = await asyncio.to_thread(_open, _chain_dir(hub), config, int(hub.now() * 1000))
    hub.data["node"] = node
    hub.provide("chain", _access(node, hub))
    role = "producing" if node.key is not None else "following (no producer key in keys/)"
    hub.log.info("chain %s: head %d, %s; `hub chain --help` for the CLI", node.genesis.chain_id, node.head.height, role)


@hookimpl
async def hub_run(hub: Any) -> None:
    if "remote" in hub.data:
        await hub.data["remote"].follow()
        return
    from hub.chain.node.producer import run_producer

    await run_producer(hub.data["node"], clock=lambda: int(hub.now() * 1000))


@hookimpl
def hub_api_routes(hub: Any) -> Any:
    from hub.chain.api import remote_router, router

    return remote_router(hub.data["remote"]) if "remote" in hub.data else router(hub.data["node"])


@hookimpl
def hub_shutdown(hub: Any) -> None:
    hub.data.pop("remote", None)  # nothing to close: no store, HTTP requests are one-shot
    node = hub.data.pop("node", None)
    if node is not None:
        node.close()
