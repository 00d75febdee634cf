"""(Being built: see plugins/mqtt/hub_mqtt/__init__.py for this part's job.)"""

from __future__ import annotations

from typing import Any


def setup(hub: Any, link: Any) -> None:
    """Subscribe to what this part needs on the hub's bus and on the broker."""
