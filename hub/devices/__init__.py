"""The unified device model: one vocabulary for every driver.

A driver describes what it found as a :class:`Device` with :class:`EntitySpec` entries; each entity
has exactly one capability (``switch``, ``light``, ``sensor`` ...). The capability fixes the shape of
the entity's state and the commands it accepts, as pydantic models, so the API, the rule engine, the
MQTT bridge and the chain all validate a command the same way before any driver sees it.
"""

from hub.devices.capabilities import (
    CAPABILITIES,
    Capability,
    CommandSpec,
    get_capability,
)
from hub.devices.model import Device, EntitySpec

__all__ = ["CAPABILITIES", "Capability", "CommandSpec", "Device", "EntitySpec", "get_capability"]
