"""The ``lightnode:`` section of ``configuration.yaml``: where the hub finds devices that hold their
own key. Unknown keys are errors, so ``hub config check`` names a typo with its line.

Example::

    lightnode:
      devices:
        - {host: 192.168.1.40, port: 7700, name: Kitchen plug}
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DeviceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)
    name: str | None = Field(default=None, min_length=1, max_length=128,
                             description="Defaults to the device's model and the start of its public key.")


class LightnodeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    devices: list[DeviceConfig] = Field(default_factory=list)
    timeout: float = Field(5.0, gt=0, le=60, description="Seconds to connect, and to wait for an answer.")
    ping_interval: float = Field(5.0, gt=0, le=300,
                                 description="Seconds between pings; three missed in a row drop the link.")
    reconnect_max: float = Field(30.0, gt=0, le=600, description="Longest wait between attempts to reconnect.")

    @model_validator(mode="after")
    def _one_link_per_address(self) -> "LightnodeConfig":
        seen: set[tuple[str, int]] = set()
        for i, device in enumerate(self.devices):
            address = (device.host, device.port)
            if address in seen:
                raise ValueError(f"devices[{i}]: {device.host}:{device.port} is listed twice")
            seen.add(address)
        return self
