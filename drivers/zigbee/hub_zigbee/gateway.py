"""zigpy's network as hub devices: join, interview, leave, removal, commands.

The gateway is zigpy's application listener. zigpy interviews a device that joins and applies its
quirk before ``device_initialized``; only then are the clusters final, so only then are the hub's
entities built (``hub_zigbee.clusters.entities_for``). Devices zigpy already knows (its database)
are added at start without re-pairing. A device's availability is owned here and in
:mod:`hub_zigbee.availability`: every frame from a device counts as a sign of life.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hub.devices.model import Device

from hub_zigbee.polled import PolledStore

if TYPE_CHECKING:
    import zigpy.application
    import zigpy.device

    from hub.context import EntityHandle, PluginContext

    from hub_zigbee.clusters.base import ZigbeeEntity

log = logging.getLogger("hub.plugins.zigbee")

LEAVE_TIMEOUT = 10.0
#: A read that takes longer is a failed poll: a mains device answers in well under a second.
READ_TIMEOUT = 5.0
#: ZDO Device_annce: a device (re)joining announces itself with it.
ZDO_DEVICE_ANNOUNCE = 0x0013


class RadioDown(Exception):
    """The stick is not connected (unplugged, or still starting)."""


class UnknownDevice(KeyError):
    pass


class NoAnswer(Exception):
    """The device did not confirm that it left: it may be asleep, out of range or gone."""


def ieee_text(ieee: Any) -> str:
    return str(ieee).lower()


def hub_device_id(ieee: str) -> str:
    """What ``add_device`` is given: the bare IEEE address. The hub's registry prefixes the plugin's
    name, so ``hub devices`` shows ``zigbee:<ieee>`` (a prefix here would make it ``zigbee:zigbee:``)."""
    return ieee


@dataclass
class Member:
    """One device of the network as the hub has it."""

    zdev: "zigpy.device.Device"
    entities: list["ZigbeeEntity"]
    last_seen: float
    available: bool = True
    by_key: dict[str, "ZigbeeEntity"] = field(default_factory=dict)
    #: The device said it leaves: only its announce (a rejoin) brings it back, not a frame it sent
    #: before leaving that zigpy-znp hands over after the leave (it handles AF frames in tasks).
    left: bool = False

    @property
    def ieee(self) -> str:
        return ieee_text(self.zdev.ieee)

    @property
    def mains(self) -> bool:
        desc = self.zdev.node_desc
        return bool(desc is not None and desc.is_mains_powered)


class Gateway:
    def __init__(self, hub: "PluginContext", entities_for: Callable[[Any], list["ZigbeeEntity"]] | None = None) -> None:
        self.hub = hub
        self.app: "zigpy.application.ControllerApplication | None" = None
        self.members: dict[str, Member] = {}
        self.by_entity: dict[str, "ZigbeeEntity"] = {}
        self.permit_until = 0.0
        self.lost: asyncio.Future | None = None
        self._fresh: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._entities_for = entities_for
        self._polled: PolledStore | None = None

    # -- connection --------------------------------------------------------------------------
    def expect(self) -> asyncio.Future:
        """A future set when the radio is lost; made before the radio starts, so a loss during the
        start is not missed."""
        self.lost = asyncio.get_running_loop().create_future()
        return self.lost

    def bind(self, app: "zigpy.application.ControllerApplication") -> None:
        """Take over a freshly started application: every initialized device it knows joins the hub
        as it is (no re-pairing). Mains devices are read now. A sleepy device cannot be read: if
        zigpy heard it within ``availability.battery`` its last state is shown again (as ZHA does),
        else it stays unavailable until it speaks."""
        self.app = app
        coordinator = app.state.node_info.ieee
        battery = self.hub.config.availability.battery
        for zdev in list(app.devices.values()):
            if zdev.ieee == coordinator or zdev.nwk == 0x0000 or not zdev.is_initialized:
                continue
            member = self._add(zdev)
            if member is None:
                continue
            if member.mains:
                self._spawn(self._refresh(member), f"refresh {member.ieee}")
            elif zdev.last_seen is not None and time.time() - zdev.last_seen < battery:
                member.last_seen = self.hub.now() - (time.time() - zdev.last_seen)
                self._revive(member)
            else:
                member.available = False

    def unbind(self) -> None:
        """The radio went away: every entity unavailable, every entity object let go (the next
        application brings new zigpy device objects)."""
        for member in self.members.values():
            for entity in member.entities:
                if entity.handle is not None:
                    entity.handle.set_unavailable()
            self._detach(member)
        self.members.clear()
        self.by_entity.clear()
        self.app = None
        self.permit_until = 0.0
        for task in self._tasks:
            task.cancel()

    def require_app(self) -> "zigpy.application.ControllerApplication":
        if self.app is None:
            raise RadioDown("the Zigbee radio is not connected")
        return self.app

    # -- zigpy's listener events -----------------------------------------------------------
    def connection_lost(self, exc: Exception | None) -> None:
        log.warning("zigbee: lost the radio: %s", exc or "closed")
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(exc)

    def device_joined(self, zdev: "zigpy.device.Device") -> None:
        log.info("zigbee: device %s (0x%04x) joined; interviewing", ieee_text(zdev.ieee), zdev.nwk)
        self._fresh.add(ieee_text(zdev.ieee))

    def device_initialized(self, zdev: "zigpy.device.Device") -> None:
        """Interview done, quirk applied (``zdev`` is the quirk's object when one matched)."""
        ieee = ieee_text(zdev.ieee)
        fresh = ieee in self._fresh or ieee not in self.members
        self._fresh.discard(ieee)
        if fresh:
            self._spawn(self._join(zdev), f"join {ieee}")
        else:
            self._replace(zdev)

    async def _join(self, zdev: "zigpy.device.Device") -> None:
        """A device new to the network: read what its entities depend on, add it, then configure
        its reporting and read it once, so it shows a state at once."""
        ieee = ieee_text(zdev.ieee)
        prepare = self._mapping()[1]
        if prepare is not None:
            await prepare(zdev)
        if self.app is None or self.app.devices.get(zdev.ieee) is not zdev:
            return  # removed, re-interviewed or the radio lost meanwhile
        member = self._replace(zdev)
        if member is None:
            return
        self.hub.fire("zigbee_device_joined", {"ieee": ieee, "device_id": self.registry_id(ieee)})
        await self._configure(member)

    def _replace(self, zdev: "zigpy.device.Device") -> "Member | None":
        old = self.members.pop(ieee_text(zdev.ieee), None)
        if old is not None:
            self._forget_entities(old)
        return self._add(zdev)

    def _mapping(self):
        if self._entities_for is not None:
            return self._entities_for, None
        from hub_zigbee.clusters import entities_for, prepare

        return entities_for, prepare

    def device_init_failure(self, zdev: "zigpy.device.Device") -> None:
        log.warning("zigbee: the interview of %s failed; it is retried when the device speaks again",
                    ieee_text(zdev.ieee))

    def device_left(self, zdev: "zigpy.device.Device") -> None:
        ieee = ieee_text(zdev.ieee)
        log.info("zigbee: device %s left the network", ieee)
        member = self.members.get(ieee)
        if member is not None:
            member.left = True
            self.set_available(member, False)
        self.hub.fire("zigbee_device_left", {"ieee": ieee, "device_id": self.registry_id(ieee)})

    def device_removed(self, zdev: "zigpy.device.Device") -> None:
        ieee = ieee_text(zdev.ieee)
        self._fresh.discard(ieee)
        member = self.members.pop(ieee, None)
        if member is not None:
            self._forget_entities(member)
        self.polled.forget(ieee)
        try:
            self.hub.remove_device(hub_device_id(ieee))
        except KeyError:
            pass  # never reached the hub (removed mid-interview)
        log.info("zigbee: device %s removed", ieee)
        self.hub.fire("zigbee_device_removed", {"ieee": ieee, "device_id": self.registry_id(ieee)})

    def handle_message(self, zdev: "zigpy.device.Device", profile: int, cluster: int, src_ep: int,
                       dst_ep: int, message: bytes) -> None:
        member = self.members.get(ieee_text(zdev.ieee))
        if member is None:
            return
        if member.left:
            if profile != 0 or cluster != ZDO_DEVICE_ANNOUNCE:
                return
            member.left = False
        member.last_seen = self.hub.now()
        if not member.available:
            self.set_available(member, True)

    # -- availability ------------------------------------------------------------------------
    def set_available(self, member: Member, available: bool) -> None:
        if member.available == available:
            return
        member.available = available
        if available:
            self._revive(member)
        else:
            for entity in member.entities:
                if entity.handle is not None:
                    entity.handle.set_unavailable()
        log.info("zigbee: %s is %s", member.ieee, "available again" if available else "unavailable")

    @staticmethod
    def _revive(member: Member) -> None:
        """Show each entity's last known state again."""
        for entity in member.entities:
            handle = entity.handle
            if handle is None:
                continue
            if getattr(entity, "_last", None) is not None:
                entity.republish()
            elif handle.state is not None and handle.state.value is not None:
                # Known only from before a restart (the state the hub restored).
                handle.set(handle.state.value)

    # -- operations ------------------------------------------------------------------------------
    async def permit(self, duration: int) -> float:
        app = self.require_app()
        await app.permit(duration)
        self.permit_until = self.hub.now() + duration if duration else 0.0
        log.info("zigbee: permit join %s", f"open for {duration} s" if duration else "closed")
        return self.permit_until

    async def remove(self, ieee: str, force: bool = False) -> None:
        """Ask the device to leave, then forget it in zigpy and the hub. Without ``force``, a
        device that does not confirm is kept (raise :class:`NoAnswer`): it might still be there."""
        import zigpy.types as t

        app = self.require_app()
        eui = t.EUI64.convert(ieee)
        zdev = app.devices.get(eui)
        if zdev is None:
            raise UnknownDevice(ieee)
        if not force:
            try:
                async with asyncio.timeout(LEAVE_TIMEOUT):
                    rsp = await zdev.zdo.leave()
            except Exception as exc:  # noqa: BLE001 - a timeout or a delivery failure alike
                raise NoAnswer(f"{ieee} did not confirm the leave request ({type(exc).__name__}); "
                               f"remove it with force") from None
            status = rsp[0] if isinstance(rsp, (list, tuple)) and rsp else None
            if status is not None and int(status) != 0:
                raise NoAnswer(f"{ieee} refused the leave request ({status!r}); remove it with force")
        await app.remove(eui)  # fires device_removed; zigpy's database forgets it
        # zigpy drops it from its table only after its own (second) leave request times out.
        app.devices.pop(eui, None)

    def describe(self) -> list[dict[str, Any]]:
        from zigpy.quirks import CustomDevice

        app = self.app
        rows = []
        for zdev in (app.devices.values() if app is not None else []):
            if zdev.nwk == 0x0000:
                continue
            ieee = ieee_text(zdev.ieee)
            member = self.members.get(ieee)
            desc = zdev.node_desc
            quirk = f"{type(zdev).__module__}.{type(zdev).__name__}" if isinstance(zdev, CustomDevice) else None
            rows.append({
                "ieee": ieee,
                "nwk": f"0x{zdev.nwk:04x}",
                "device_id": self.registry_id(ieee) if member is not None else None,
                "name": self._name(zdev),
                "manufacturer": zdev.manufacturer,
                "model": zdev.model,
                "quirk": quirk,
                "power_source": None if desc is None else ("mains" if desc.is_mains_powered else "battery"),
                "lqi": zdev.lqi,
                "rssi": zdev.rssi,
                "last_seen": member.last_seen if member is not None else zdev.last_seen,
                "available": member.available if member is not None else False,
                "interviewed": zdev.is_initialized,
                "entities": [e.handle.entity_id for e in member.entities if e.handle is not None]
                if member is not None else [],
            })
        return rows

    async def command(self, entity: "EntityHandle", command: str, args: Any) -> Any:
        target = self.by_entity.get(entity.entity_id)
        if target is None:
            raise RadioDown(f"{entity.entity_id}: the Zigbee radio is not connected")
        return await target.command(command, args)

    def registry_id(self, ieee: str) -> str:
        return f"{self.hub.name}:{hub_device_id(ieee)}"

    @property
    def polled(self) -> PolledStore:
        """Made on first use, so the gateway can be built before the plugin's data directory."""
        if self._polled is None:
            self._polled = PolledStore(self.hub.data_dir / "polled.json")
        return self._polled

    # -- inside ----------------------------------------------------------------------------------
    def _add(self, zdev: "zigpy.device.Device") -> Member | None:
        entities_for = self._mapping()[0]
        ieee = ieee_text(zdev.ieee)
        try:
            entities = list(entities_for(zdev, self._name(zdev)))
        except Exception:  # noqa: BLE001 - one odd device must not stop the network
            log.exception("zigbee: cannot map the clusters of %s (%s %s)", ieee, zdev.manufacturer, zdev.model)
            return None
        port = self.app.config["device"]["path"] if self.app is not None else "?"
        handles = self.hub.add_device(
            Device(id=hub_device_id(ieee), name=self._name(zdev), manufacturer=zdev.manufacturer,
                   model=zdev.model, connection=f"zigbee 0x{zdev.nwk:04x} via {port}"),
            [e.spec for e in entities],
        )
        member = Member(zdev, entities, self.hub.now())
        self.polled.apply(ieee, entities)
        for entity in entities:
            handle = handles[entity.spec.key]
            entity.attach(handle)
            member.by_key[entity.spec.key] = entity
            self.by_entity[handle.entity_id] = entity
        self.members[ieee] = member
        log.info("zigbee: %s %s (%s) added with %d entities", zdev.manufacturer, zdev.model, ieee, len(entities))
        return member

    def _detach(self, member: Member) -> None:
        for entity in member.entities:
            try:
                entity.detach()
            except Exception:  # noqa: BLE001
                log.exception("zigbee: detaching %s", entity.spec.key)

    def _forget_entities(self, member: Member) -> None:
        for entity in member.entities:
            if entity.handle is not None:
                self.by_entity.pop(entity.handle.entity_id, None)
        self._detach(member)  # detaching lets go of the handles

    @staticmethod
    def _name(zdev: "zigpy.device.Device") -> str:
        parts = [p for p in (zdev.manufacturer, zdev.model) if p]
        return " ".join(parts) if parts else f"Zigbee {ieee_text(zdev.ieee)}"

    async def _configure(self, member: Member) -> None:
        """Once, at pairing: bind + reporting, then a first read so the entities show a state."""
        for entity in member.entities:
            try:
                await entity.configure()
            except Exception as exc:  # noqa: BLE001
                log.warning("zigbee: configuring %s of %s failed: %s", entity.spec.key, member.ieee, exc)
        self.polled.record(member.ieee, member.entities)
        await self._refresh(member)

    async def _refresh(self, member: Member) -> bool:
        ok = True
        for entity in member.entities:
            try:
                async with asyncio.timeout(READ_TIMEOUT):
                    await entity.refresh()
            except Exception as exc:  # noqa: BLE001 - TimeoutError included
                ok = False
                log.debug("zigbee: reading %s of %s failed: %s", entity.spec.key, member.ieee, exc)
        return ok

    def _spawn(self, coro, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"zigbee {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
