"""(Being built: the ``mqtt`` trigger and the ``mqtt.publish`` action.)"""

from __future__ import annotations

from typing import Any


def register_triggers(hub: Any, register: Any) -> None:
    pass


def register_actions(hub: Any, register: Any) -> None:
    pass
