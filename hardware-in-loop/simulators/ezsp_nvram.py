"""The emulated EZSP stick's non-volatile memory: what survives a reset, a power cut and an
emulator restart (the network, its keys and frame counter, an IEEE address written by a host
restoring a backup, and which devices have joined), kept in one JSON file.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import bellows.types as t

if TYPE_CHECKING:
    from zigbee_devices import Network

DEFAULT_EUI64 = "00:0b:57:ff:fe:5a:0e:01"  # a Silicon Labs OUI, as a ZBDongle-E has


class Nvram:
    """The stick's non-volatile part, one JSON file (0600: it holds the network key)."""

    def __init__(self, path: Path | None, eui64: str = DEFAULT_EUI64) -> None:
        self.path = path
        self.eui64 = eui64  # the factory address
        self.restored_eui64: str | None = None  # one written by a host restoring a backup
        self.network: dict | None = None
        self.nwk_frame_counter = 0
        self.link_keys: dict[str, str] = {}
        self.devices: dict[str, dict] = {}  # joined devices as saved, restored into the Network
        self.air: Network | None = None  # the devices: a new network or leaving one drops them
        self._pending: asyncio.TimerHandle | None = None
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            self.restored_eui64 = data.get("restored_eui64")
            self.network = data.get("network")
            self.nwk_frame_counter = data.get("nwk_frame_counter", 0)
            self.link_keys = data.get("link_keys", {})
            self.devices = data.get("devices", {})

    def save(self) -> None:
        if self.path is None:
            return
        self._pending = None
        devices = self.air.state() if self.air is not None else self.devices
        data = {"restored_eui64": self.restored_eui64, "network": self.network,
                "link_keys": self.link_keys, "nwk_frame_counter": self.nwk_frame_counter,
                "devices": devices}
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, self.path)

    def schedule(self) -> None:
        """Saves shortly after a change (a burst of joins is one write)."""
        if self.path is not None and self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(0.2, self.save)

    def _drop_devices(self) -> None:
        for device in self.air.devices.values() if self.air is not None else ():
            device.joined = False
            device.reporting.clear()
            device.bindings.clear()

    def form(self, parameters: t.EmberNetworkParameters,
             security: t.EmberInitialSecurityState) -> None:
        hashed = t.EmberInitialSecurityBitmask.TRUST_CENTER_USES_HASHED_LINK_KEY in security.bitmask
        self.network = {
            "pan_id": int(parameters.panId),
            "extended_pan_id": bytes(parameters.extendedPanId.serialize()).hex(),
            "channel": int(parameters.radioChannel),
            "tx_power": int(parameters.radioTxPower),
            "nwk_manager_id": int(parameters.nwkManagerId),
            "nwk_update_id": 0,  # EmberZNet ignores the requested one on formNetwork
            "channels": int(parameters.channels),
            "network_key": bytes(security.networkKey).hex(),
            "key_seq": int(security.networkKeySequenceNumber),
            "tc_link_key": bytes(security.preconfiguredKey).hex(),
            "hashed_tclk": hashed,
        }
        self._drop_devices()
        self.save()

    def leave(self) -> None:
        self.network = None
        self._drop_devices()
        self.link_keys.clear()
        self.save()

    def parameters(self) -> t.EmberNetworkParameters:
        n = self.network
        return t.EmberNetworkParameters(
            extendedPanId=t.ExtendedPanId.deserialize(bytes.fromhex(n["extended_pan_id"]))[0],
            panId=n["pan_id"], radioTxPower=n["tx_power"], radioChannel=n["channel"],
            joinMethod=t.EmberJoinMethod.USE_MAC_ASSOCIATION, nwkManagerId=n["nwk_manager_id"],
            nwkUpdateId=n["nwk_update_id"], channels=t.Channels(n["channels"]))
