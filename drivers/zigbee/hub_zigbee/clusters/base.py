"""The contract between the network side of the driver (:mod:`hub_zigbee.gateway`) and the
cluster-to-capability mapping: one :class:`ZigbeeEntity` per hub entity.

Why a class per entity and not per cluster: a hub entity can need several clusters (a colour light
is On/Off + Level + Color Control on one endpoint) and a cluster can feed several entities (one
Electrical Measurement cluster gives power, voltage and current sensors). This follows ZHA's split
of cluster handlers and entities, kept small.

The gateway's side of the contract:

* it builds the entities of an interviewed device (quirks applied) with
  :func:`hub_zigbee.clusters.entities_for`, registers ``[e.spec for e in entities]`` with
  ``hub.add_device``, and calls :meth:`ZigbeeEntity.attach` with each entity's handle;
* when the device has just joined (not on a restart), it awaits :meth:`configure` of each entity
  (bind + attribute reporting), then :meth:`refresh`;
* on a restart it awaits :meth:`refresh` of mains-powered devices, and republishes the last known
  state of sleepy ones when they next speak;
* it routes ``hub_handle_command`` to :meth:`command`;
* availability is the gateway's: it marks every entity unavailable (``handle.set_unavailable()``)
  when the device is silent too long, and calls :meth:`republish` when it speaks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import zigpy.device
    import zigpy.zcl

    from hub.context import EntityHandle
    from hub.devices.capabilities import Args
    from hub.devices.model import EntitySpec


@dataclass(frozen=True)
class Reporting:
    """One attribute's reporting, configured at pairing: ZCL Configure Reporting's fields."""

    attribute: str
    min_interval: int
    max_interval: int
    reportable_change: int | float = 1


class ZigbeeEntity:
    """One hub entity backed by one or more clusters of one endpoint."""

    #: The hub entity this maps to; ``spec.key`` is unique within the device and stable across
    #: restarts (``"1_on_off"``, ``"1_temperature"``): the hub keys the entity's id and history by it.
    spec: "EntitySpec"
    #: Reporting to configure at pairing, per cluster.
    reporting: "dict[zigpy.zcl.Cluster, list[Reporting]]"
    #: True when the device cannot report these attributes: the gateway polls :meth:`refresh`.
    needs_polling: bool = False

    def __init__(self, endpoint: "zigpy.endpoint.Endpoint") -> None:
        self.endpoint = endpoint
        self.handle: "EntityHandle | None" = None
        self.reporting = {}
        self._last: tuple[Any, dict] | None = None

    # -- the gateway calls these --------------------------------------------------------------
    def attach(self, handle: "EntityHandle") -> None:
        """Start listening to the clusters' attribute updates; write state through ``handle``."""
        raise NotImplementedError

    def detach(self) -> None:
        """Stop listening (the device left or was removed)."""
        raise NotImplementedError

    async def configure(self) -> None:
        """Bind the clusters to the coordinator and configure reporting (once, at pairing)."""
        raise NotImplementedError

    async def refresh(self) -> None:
        """Read the attributes now and write the state. Raises when the device does not answer,
        which the gateway takes as a failed poll."""
        raise NotImplementedError

    async def command(self, command: str, args: "Args") -> Any:
        """Carry out a capability command. Write the new state once the device confirms it (its
        default response or a read back). A ZCL status other than SUCCESS raises
        ``hub.core.commands.CommandRefused`` naming the status; no answer raises an exception."""
        raise NotImplementedError

    def republish(self) -> None:
        """Write the last known state again (after the device was unavailable)."""
        if self.handle is not None and self._last is not None:
            value, attributes = self._last
            self.handle.set(value, **attributes)

    # -- for subclasses -----------------------------------------------------------------------
    def write(self, value: Any, **attributes: Any) -> None:
        """Write the state and remember it for :meth:`republish`."""
        self._last = (value, attributes)
        if self.handle is not None:
            self.handle.set(value, **attributes)

