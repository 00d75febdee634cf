"""The ``mqtt:`` section of ``configuration.yaml``.

One section holds the broker connection, what the hub publishes and accepts, and the MQTT entities
a user declares by hand, the latter in Home Assistant's own ``mqtt:`` shape (``switch:``,
``sensor:`` ... lists), so a block copied from a Home Assistant configuration works here. Every
model forbids unknown keys, so a typo is an error with its file, line and key, not a silent default.

Example::

    mqtt:
      host: 192.168.1.10
      username: ruffhub
      password: !secret mqtt_password
      publish:
        include: ["*"]                   # every entity's state on the broker, and in Home Assistant
      commands:
        include: ["light.*", "switch.*"] # what may be commanded over MQTT; nothing by default
      switch:
        - name: Garden pump
          state_topic: tasmota/pump/stat/POWER
          command_topic: tasmota/pump/cmnd/POWER
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from hub_mqtt.ha_schema import (
    BinarySensorConfig,
    ButtonConfig,
    ClimateConfig,
    CoverConfig,
    LightConfig,
    LockConfig,
    NumberConfig,
    SelectConfig,
    SensorConfig,
    SwitchConfig,
)

_NODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: The Home Assistant components a user may declare under ``mqtt:`` (and that discovery adopts).
COMPONENTS = ("switch", "light", "sensor", "binary_sensor", "button", "lock", "cover", "climate",
              "number", "select")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _default_node_id() -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", socket.gethostname()).strip("_")[:64]
    return name or "ruffhub"


def _topic_ok(value: str, what: str, *, wildcards: bool = False) -> str:
    if not value or len(value.encode()) > 65535 or "\x00" in value:
        raise ValueError(f"{what} must be a non-empty MQTT topic")
    if not wildcards and ("+" in value or "#" in value):
        raise ValueError(f"{what} {value!r} may not contain the wildcards + or #")
    return value


class TLS(_Strict):
    ca: Path | None = Field(None, description="The CA certificate (PEM) the broker's certificate must chain to; "
                                              "the system's CAs when absent.")
    certificate: Path | None = Field(None, description="Client certificate (PEM), for brokers that require one.")
    key: Path | None = Field(None, description="The client certificate's private key (PEM).")
    insecure: bool = Field(False, description="Skip the check of the broker's host name. For testing only.")

    @model_validator(mode="after")
    def _pair(self) -> "TLS":
        if (self.certificate is None) != (self.key is None):
            raise ValueError("certificate and key go together: give both or neither")
        return self


class Select(_Strict):
    """Entity ids by glob (``light.*``, ``sensor.kitchen_*``); exclude wins over include."""

    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class Publish(Select):
    include: list[str] = Field(default_factory=lambda: ["*"])
    qos: Literal[0, 1] = Field(0, description="QoS of state messages. 1 makes the broker acknowledge each one.")
    discovery: bool = Field(True, description="Announce the published entities with Home Assistant MQTT discovery; "
                                              "false also withdraws what an earlier run announced.")


class Discovery(_Strict):
    """Adopting devices that announce themselves with Home Assistant discovery (Zigbee2MQTT, Tasmota,
    ESPHome, Shelly)."""

    enabled: bool = True
    ignore: list[str] = Field(default_factory=list, description="Discovery topics (globs) not to adopt.")
    max_devices: int = Field(1000, ge=0, description="A bound on adopted devices, whatever the broker sends.")


class MqttConfig(_Strict):
    # --- the broker ------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", min_length=1)
    port: int | None = Field(None, ge=1, le=65535, description="1883, or 8883 with tls.")
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = Field(None, max_length=128, description="Default: ruffhub-<node_id>.")
    protocol: Literal["5", "3.1.1", "auto"] = Field("auto", description="auto: MQTT 5, else 3.1.1.")
    keepalive: int = Field(60, ge=5, le=3600)
    tls: TLS | None = None
    reconnect_max: float = Field(30, gt=0, le=600, description="Longest wait between reconnection attempts, s.")
    queue_size: int = Field(10000, ge=10, le=1_000_000,
                            description="Messages kept while the broker is away; past it the oldest are dropped (counted).")
    # --- the hub's own topics ----------------------------------------------------------------------
    base_topic: str = Field("ruffhub", description="Every topic of this hub starts with <base_topic>/<node_id>/.")
    node_id: str = Field(default_factory=_default_node_id,
                         description="This hub's name on the broker; unique among the hubs sharing it.")
    discovery_prefix: str = "homeassistant"
    publish: Publish = Publish()
    commands: Select = Select()
    discovery: Discovery = Discovery()
    # --- entities declared by hand, in Home Assistant's mqtt: shape ------------------------------
    switch: list[SwitchConfig] = Field(default_factory=list)
    light: list[LightConfig] = Field(default_factory=list)
    sensor: list[SensorConfig] = Field(default_factory=list)
    binary_sensor: list[BinarySensorConfig] = Field(default_factory=list)
    button: list[ButtonConfig] = Field(default_factory=list)
    lock: list[LockConfig] = Field(default_factory=list)
    cover: list[CoverConfig] = Field(default_factory=list)
    climate: list[ClimateConfig] = Field(default_factory=list)
    number: list[NumberConfig] = Field(default_factory=list)
    select: list[SelectConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> "MqttConfig":
        """Two declared entities with one unique_id would be one entity in the hub: say which."""
        seen: dict[str, str] = {}
        for component in COMPONENTS:
            for index, entity in enumerate(getattr(self, component)):
                if entity.unique_id is None:
                    continue
                where = f"{component}[{index}]"
                if entity.unique_id in seen:
                    raise ValueError(f"{where}: unique_id {entity.unique_id!r} is already used by {seen[entity.unique_id]}")
                seen[entity.unique_id] = where
        return self

    @field_validator("node_id")
    @classmethod
    def _node(cls, value: str) -> str:
        if not _NODE_RE.match(value):
            raise ValueError("node_id may hold only letters, digits, _ and - (at most 64)")
        return value

    @field_validator("base_topic", "discovery_prefix")
    @classmethod
    def _topic(cls, value: str) -> str:
        return _topic_ok(value, "a topic prefix").strip("/")

    @property
    def broker_port(self) -> int:
        return self.port if self.port is not None else (8883 if self.tls is not None else 1883)

    @property
    def prefix(self) -> str:
        """``<base_topic>/<node_id>``: the start of every topic this hub owns."""
        return f"{self.base_topic}/{self.node_id}"

    @property
    def client_identifier(self) -> str:
        return self.client_id or f"ruffhub-{self.node_id}"
