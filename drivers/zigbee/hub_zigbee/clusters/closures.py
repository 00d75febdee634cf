"""Door Lock -> ``lock``; Window Covering -> ``cover``."""

from __future__ import annotations

from typing import Any

from zigpy.zcl.clusters.closures import DoorLock, WindowCovering

from hub.core.commands import CommandRefused
from hub_zigbee.clusters.entity import ClusterEntity
from hub_zigbee.clusters.reporting import IMMEDIATE, report

LOCK_STATES = {0: "jammed", 1: "locked", 2: "unlocked"}  # 0 is "not fully locked"; 0xFF undefined


def closure_entities(endpoint: Any) -> list[ClusterEntity]:
    entities: list[ClusterEntity] = []
    if (cluster := endpoint.in_clusters.get(DoorLock.cluster_id)) is not None:
        entities.append(Lock(endpoint, cluster))
    if (cluster := endpoint.in_clusters.get(WindowCovering.cluster_id)) is not None:
        entities.append(Cover(endpoint, cluster))
    return entities


class Lock(ClusterEntity):
    capability, what = "lock", "lock"

    def __init__(self, endpoint: Any, cluster: Any) -> None:
        super().__init__(endpoint)
        self.cluster = cluster
        self.watch(cluster, report("lock_state", IMMEDIATE))

    def compute(self) -> tuple[Any, dict] | None:
        state = self.cluster.get("lock_state")
        return None if state is None else (LOCK_STATES.get(int(state)), {})

    async def command(self, command: str, args: Any) -> Any:
        if command == "open":
            raise CommandRefused("a Zigbee door lock cannot unlatch (open); use unlock")
        zcl, state = {"lock": ("lock_door", 1), "unlock": ("unlock_door", 2)}[command]
        # The code goes to the lock as the ZCL PIN and nowhere else: not logged, not kept.
        kwargs = {"pin_code": args.code} if args.code else {}
        await self.call(self.cluster, zcl, command, **kwargs)
        self.confirmed(self.cluster, {"lock_state": state})


# Window Covering's window_covering_type -> the cover's device class.
COVER_CLASSES = {0: "shutter", 4: "curtain", 5: "blind", 6: "shutter", 7: "blind", 8: "blind"}


class Cover(ClusterEntity):
    """ZCL counts lift as percent *closed* (0 = open); the hub's position is percent open."""

    capability, what = "cover", "cover"

    def __init__(self, endpoint: Any, cluster: Any) -> None:
        kind = cluster.get("window_covering_type")
        super().__init__(endpoint, device_class=None if kind is None else COVER_CLASSES.get(int(kind)))
        self.cluster = cluster
        self.moving: str | None = None  # "opening" / "closing" until the position stops changing
        self.target: int | None = None
        self.watch(cluster, report("current_position_lift_percentage", IMMEDIATE), static=("window_covering_type",))

    def position(self) -> int | None:
        lift = self.cluster.get("current_position_lift_percentage")
        return None if lift is None or lift > 100 else 100 - int(lift)

    def compute(self) -> tuple[Any, dict] | None:
        position = self.position()
        if position is None:
            return None
        if self.moving is not None and position == self.target:
            self.moving = None
        state = self.moving or ("closed" if position == 0 else "open")
        return state, {"position": position}

    async def command(self, command: str, args: Any) -> Any:
        if command == "stop":
            await self.call(self.cluster, "stop", "stop")
            self.moving = None
            await self.cluster.read_attributes(["current_position_lift_percentage"])
            self.publish()
            return
        target = {"open": 100, "close": 0}.get(command)
        if command == "set_position":
            target = args.position
            await self.call(self.cluster, "go_to_lift_percentage", "go to position",
                            percentage_lift_value=100 - target)
        elif command == "open":
            await self.call(self.cluster, "up_open", "open")
        elif command == "close":
            await self.call(self.cluster, "down_close", "close")
        else:
            raise CommandRefused(f"a Zigbee cover has no command {command!r}")
        current = self.position()
        if current != target:
            self.moving = "opening" if current is None or target > current else "closing"
            self.target = target
        self.publish()
