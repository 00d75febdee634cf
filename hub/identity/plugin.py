"""The identity gate as a built-in plugin: opens identity.db, provides the ``Identity`` service
and puts the gate in the command registry's path.

It runs whether or not ``identity:`` is in the configuration (``RUNS_UNCONFIGURED``): a device
that holds its own key takes only signed commands, so the owner's commands to it need the gate.
With no chain it changes nothing for keyless devices: local commands go to the driver as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub import hookimpl

RUNS_UNCONFIGURED = True


class IdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Path | None = Field(None, description="The hub's controller key file (as `hub chain keygen` writes it); "
                             "default: the embedded chain's owner key if there is one, else "
                             "<data>/identity/controller.key, made on first use.")
    window: float = Field(30.0, gt=0, le=3600, description="Seconds a signed command's issued_at may be away "
                          "from the hub's clock, either way (the light node's window).")


@hookimpl
def hub_config_schema() -> type[IdentityConfig]:
    return IdentityConfig


def _config(hub: Any) -> IdentityConfig:
    return hub.config if isinstance(hub.config, IdentityConfig) else IdentityConfig.model_validate(hub.config or {})


@hookimpl
def hub_setup(hub: Any) -> None:
    from hub.identity.gate import Gate
    from hub.identity.service import Identity
    from hub.identity.store import IdentityStore

    config = _config(hub)
    if config.key is not None and not config.key.exists():
        raise FileNotFoundError(f"identity.key: no key file at {config.key}")
    core = hub._hub  # a built-in part: it wires itself into the command registry
    store = IdentityStore(hub.hub_data_dir)
    identity = Identity(core, store, key_path=config.key, window_s=config.window)
    hub.data["identity"] = identity
    hub.provide("identity", identity)
    core.commands.gate = Gate(identity)
    from hub.identity.ownership import follow_resets  # a key-holding device's own reset, to the chain

    hub.data["ownership"] = follow_resets(hub)


@hookimpl
def hub_shutdown(hub: Any) -> None:
    hub.data.pop("ownership", lambda: None)()
    identity = hub.data.pop("identity", None)
    if identity is not None:
        hub._hub.commands.gate = None
        identity.store.close()
