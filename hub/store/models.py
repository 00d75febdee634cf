"""Row types shared by the store and its callers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class StateRow:
    """One state of one entity, as the hub saw it.

    ``last_changed`` and ``last_updated`` are kept apart (as in Home Assistant) because an
    attribute-only update must not make a switch look like it was just toggled. Both are unix
    seconds so rows compare and index cheaply; ``value`` and ``attributes`` must be
    JSON-serialisable because that is how they are stored.
    """

    entity_id: str
    value: Any
    attributes: Mapping[str, Any]
    available: bool
    last_changed: float
    last_updated: float
