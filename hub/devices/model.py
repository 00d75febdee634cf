"""What a driver declares about the things it found."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.devices.capabilities import CAPABILITIES

_SLUG_RE = re.compile(r"[^a-z0-9_]+")


def slugify(text: str) -> str:
    """Entity ids are built from names, as in Home Assistant: lower case, ``_`` for the rest."""
    slug = _SLUG_RE.sub("_", text.lower()).strip("_")
    return slug or "unnamed"


class Device(BaseModel):
    """One physical thing. Its ``id`` must be stable across restarts (a serial, a MAC, an address):
    the registry keys history and settings by it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=128)
    manufacturer: str | None = None
    model: str | None = None
    sw_version: str | None = None
    connection: str | None = Field(
        default=None, description="How the hub reaches it: 'tcp://10.0.0.5:502 id 3', '/dev/ttyUSB0'."
    )
    public_key: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$",
        description="The device's Ed25519 public key (hex), for a device that holds its own key.",
    )
    holds_key: bool = Field(
        default=False,
        description="The device verifies signed commands itself (the whitepaper's light node); the identity "
        "gate delivers them to it instead of calling hub_handle_command.",
    )

    @model_validator(mode="after")
    def _key_holder_names_its_key(self) -> "Device":
        if self.holds_key and self.public_key is None:
            raise ValueError("a device that holds its key (holds_key) must declare its public_key")
        return self


class EntitySpec(BaseModel):
    """One capability of a device. ``key`` is unique within the device; together with the device id it
    forms the entity's unique id, so the entity keeps its ``entity_id`` (and history) across restarts
    even if the driver renames it."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=64)
    capability: str
    name: str | None = Field(default=None, description="Defaults to the device name plus the key.")
    device_class: str | None = None
    unit: str | None = None
    object_id: str | None = Field(
        default=None, description="Suggested entity id suffix; derived from the name if absent."
    )
    options: dict = Field(default_factory=dict, description="Capability options, e.g. min/max temperature.")

    @field_validator("capability")
    @classmethod
    def _known_capability(cls, value: str) -> str:
        if value not in CAPABILITIES:
            raise ValueError(f"unknown capability {value!r}; known: {', '.join(sorted(CAPABILITIES))}")
        return value

    @model_validator(mode="after")
    def _check_class_and_unit(self) -> "EntitySpec":
        cap = CAPABILITIES[self.capability]
        if self.device_class is not None and cap.device_classes and self.device_class not in cap.device_classes:
            raise ValueError(
                f"device_class {self.device_class!r} is not valid for {self.capability}; "
                f"valid: {', '.join(sorted(cap.device_classes))}"
            )
        if self.unit is None and self.device_class is not None:
            self.unit = cap.default_units.get(self.device_class)
        if cap.options_model is not None:
            # Checked here, when the driver adds the entity, so a number with min above max or a
            # select without options fails its driver at once, not the first command at run time.
            try:
                checked = cap.options_model.model_validate(self.options)
            except ValidationError as exc:
                detail = "; ".join(
                    f"options{''.join('.' + str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                    for e in exc.errors(include_url=False)
                )
                raise ValueError(f"{self.capability} {self.key!r}: {detail}") from None
            self.options = checked.model_dump(exclude_none=True)  # a light that does not say: no attribute
        return self
