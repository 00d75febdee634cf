"""The ``lightnode:`` section of ``configuration.yaml``: where the hub finds devices that hold their
own key. Unknown keys are errors, so ``hub config check`` names a typo with its line.

Example::

    lightnode:
      devices:
        - {host: 192.168.1.40, port: 7700, name: Kitchen plug}
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.config import Problem, cross_checked, duplicates, valid_fields
from hub.devices.model import slugify


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

    @model_validator(mode="wrap")
    @classmethod
    def _across_devices(cls, data, handler) -> "LightnodeConfig":
        return cross_checked(data, handler, _problems, cls.__name__)


def _problems(data, config: LightnodeConfig | None) -> list[Problem]:
    """Two entries for one address would open two links to one device; two devices of one name
    would get the same entity ids, told apart only by a ``_2`` suffix. Checked on every entry whose
    fields validate, so one pass of ``hub config check`` lists every mistake."""
    if not isinstance(data, dict) or not isinstance(data.get("devices"), list):
        return []
    addresses, names = [], []
    for index, raw in enumerate(data["devices"]):
        fields = valid_fields(DeviceConfig, raw, ["host", "port", "name"])
        label = f"devices[{index}]"
        if "host" in fields and "port" in fields:
            addresses.append((f"{fields['host']}:{fields['port']}", ("devices", index, "port"), label))
        if fields.get("name"):
            names.append((repr(slugify(fields["name"])), ("devices", index, "name"), label))
    return duplicates(addresses, "address") + duplicates(names, "name (as entity ids spell it)")
