"""When a Zigbee device counts as gone, and polling of what a device cannot report.

Zigbee has no keep-alive: a device is known to be there only when a frame from it arrives. A mains
device (a router) reports at least every few minutes once reporting is configured, so silence longer
than ``availability.mains`` is suspicious, and a read that fails confirms it. A battery device sleeps
and may say nothing for hours: it is unavailable only after ``availability.battery`` of silence, and
is never polled (it would not hear). Any frame brings a device back (``Gateway.handle_message``),
and an unavailable mains device is asked again every ``poll_interval``, so a plug that was off the
mains for a while is back within a poll, not only with its next report (up to 15 minutes later).
"""

from __future__ import annotations

import asyncio
import logging

from hub_zigbee.config import ZigbeeConfig
from hub_zigbee.gateway import Gateway, Member

log = logging.getLogger("hub.plugins.zigbee")


async def check_once(gateway: Gateway, config: ZigbeeConfig) -> None:
    now = gateway.hub.now()
    for member in list(gateway.members.values()):
        if member.left:
            # Gone until it announces itself again (Gateway.handle_message): a late answer to a
            # request made before it left (zigpy counts it as heard) must not bring it back. A CI
            # run saw exactly that, 39 ms after the leave.
            continue
        # zigpy also hears a device outside the frames the gateway sees (a rejoin's announce).
        heard = member.zdev.last_seen
        if heard is not None and heard > member.last_seen:
            member.last_seen = heard
            if not member.available:
                gateway.set_available(member, True)
        if not member.available:
            continue
        silent = now - member.last_seen
        if member.mains:
            if silent > config.availability.mains and not await _answers(gateway, member):
                gateway.set_available(member, False)
        elif silent > config.availability.battery:
            gateway.set_available(member, False)


async def _answers(gateway: Gateway, member: Member) -> bool:
    """A read of the device's entities; any answer updates ``last_seen`` through the gateway."""
    seen = member.last_seen
    ok = await gateway._refresh(member)  # noqa: SLF001 - the gateway's own poll
    return ok or member.last_seen > seen


async def poll_once(gateway: Gateway) -> None:
    for member in list(gateway.members.values()):
        if not member.mains or member.left:
            continue
        if not member.available:
            if await _answers(gateway, member):
                gateway.set_available(member, True)
            continue
        for entity in member.entities:
            if entity.needs_polling:
                try:
                    await entity.refresh()
                except Exception as exc:  # noqa: BLE001 - availability judges silence, not one read
                    log.debug("zigbee: polling %s of %s failed: %s", entity.spec.key, member.ieee, exc)


async def run(gateway: Gateway, config: ZigbeeConfig) -> None:
    """Both loops, for as long as the radio is connected (cancelled with it)."""
    await asyncio.gather(_every(config.availability.check_interval, check_once, gateway, config),
                         _every(config.poll_interval, poll_once, gateway))


async def _every(seconds: float, fn, *args) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await fn(*args)
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("zigbee: %s failed", fn.__name__)
