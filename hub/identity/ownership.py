"""What a key-holding device does to its ownership by itself, followed by the hub.

A factory reset happens on the device (its button), not through the hub, yet the chain must learn
of it, or it keeps naming the old controller. The device signs a ``Reset`` with its own key and its
driver fires the custom event ``device_reset`` (``lightnode_reset`` from ``drivers/lightnode``) with
``{"device_id", "statement"}``; this part checks the statement (signed by that device's key, for
this chain), brings the hub's mirror of the device along and publishes it in a ``bind_device``
transaction, as ``hub device reset`` does for a keyless device. A statement that does not check is
logged and dropped: an event is not evidence. The identity plugin starts it (:func:`follow_resets`)
with the gate: it has nothing to configure and nothing to do without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RESET_EVENTS = ("device_reset", "lightnode_reset")


def follow_resets(hub: Any) -> Callable[[], None]:
    """Subscribe to the reset events on ``hub``'s bus (a ``PluginContext``); returns the unsubscribe."""

    async def on_reset(event: Any) -> None:
        from hub.crypto.statements import Signed, StatementError
        from hub.identity.binding import Binder, BindingError
        from hub.identity.errors import Refused

        identity = hub.service("identity")
        payload = getattr(event, "payload", None) or {}
        device_id = payload.get("device_id")
        if identity is None or identity.network is None or not isinstance(device_id, str):
            return
        try:
            signed = Signed.from_json(payload.get("statement"))
        except StatementError as exc:
            hub.log.warning("%s: a reset event with a malformed statement (%s), ignored", device_id, exc)
            return
        binder = Binder(identity, lambda: hub.service("chain"), lambda: int(hub.now() * 1000))
        try:
            outcome = await binder.reset(device_id, signed)
        except (Refused, BindingError) as exc:
            hub.log.warning("%s: the device's reset was not taken: %s", device_id, exc)
            return
        chain = outcome.chain
        hub.log.info("%s: factory reset on the device; chain: %s", device_id,
                     f"bind_device {chain['tx'][:16]}... {chain.get('status', '')}" if chain.get("published")
                     else chain.get("reason"))

    unsubscribes = [hub.bus.subscribe(name, on_reset) for name in RESET_EVENTS]

    def stop() -> None:
        for unsubscribe in unsubscribes:
            unsubscribe()

    return stop
