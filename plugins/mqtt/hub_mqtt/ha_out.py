"""(Being built: Home Assistant discovery configs for the exposed entities.)"""

from __future__ import annotations

from typing import Any


def setup(hub: Any, link: Any) -> None:
    """Subscribe to what this part needs on the hub's bus and on the broker."""


def translate(entry: Any, state: Any, field: str | None, payload: bytes) -> tuple[str, dict] | None:
    """A Home Assistant command payload (``ON``, a JSON light command, ``{"position": 40}`` ...) on
    ``<prefix>/set/<entity_id>[/<field>]`` as the hub's ``(command, args)``; None when it is not one."""
    return None
