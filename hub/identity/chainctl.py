"""Chain-state control: commands that reach this hub's devices through the chain, run once.

When no direct path to the hub exists, a device's controller (or a grantee) submits a
``control_command`` transaction carrying the same signed envelope it would send the hub directly.
This built-in plugin follows the chain (:mod:`hub.chain.access`, the embedded node or a remote
one through the light client), picks the ``control_command`` transactions for devices this hub
hosts, runs each through the identity gate (``Identity.signed_call``: the same signature, grant,
counter and window rules as a direct signed command) and reports the outcome with a
``state_change`` transaction signed with the hub's controller key.

Why each choice:

- **Final blocks only.** A command in a block that a reorganisation drops must not have run; a
  final block is never reverted, so nothing is undone. The cost is latency: a few blocks.
- **Exactly once, across restarts and kill -9.** The transaction hash is committed as "taken"
  (identity.db) before the command runs and its outcome after; a command found taken with no
  outcome at start-up may or may not have run, so it is reported failed ("interrupted") and never
  run again. The cursor (the last final block handled) moves only after a block's transactions
  were all taken, and a transaction already taken is skipped, so a crash in between repeats none.
- **The window is judged against the block's timestamp**, not the hub's clock: a command is
  accepted if it was issued within the window of the block that carries it, so a hub catching up
  after an outage still runs the commands that were timely when they reached the chain (the
  counter still refuses a replay of one that also came directly).
- **Bindings follow the chain.** For a keyless device (the hub is its light node) a hand-over or
  sale in a final block moves the local record to the new controller: the chain is authoritative
  for on-chain transfers (a sale's payment is checked there alone). Device-signed bindings, resets
  and the controller's revocations are applied through the light node's own rules. A device that
  holds its key learns of transfers from its controller, not from a chain it cannot verify.
- **Where the hub started.** The first time it follows a chain it starts at that chain's final
  block: commands older than the hub's interest in that chain are not run.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

from hub import hookimpl
from hub.chain.first_cursor import start_height

log = logging.getLogger("hub.identity.chainctl")

BATCH = 100  # blocks per look at the chain
MAX_BACKOFF = 30.0  # seconds between looks while the chain is unreachable, at most
MAX_VALUE_BYTES = 200  # a state value reported larger than this is reported as null
#: Refusals of a report that say nothing about the report itself (the hub's key has no funds yet, the
#: mempool is full, a nonce race): it is submitted again on a later look, not given up.
RETRY_REASONS = frozenset({"insufficient_balance", "mempool_full", "nonce_too_low", "nonce_too_high",
                           "replacement_fee_too_low", "duplicate", "fee_too_low"})


class ChainControl:
    def __init__(self, chain: Any, identity: Any, store: Any, *, now: Callable[[], float],
                 entity_value: Callable[[str, str], Any] = lambda device_id, key: None) -> None:
        self.chain = chain
        self.identity = identity
        self.store = store
        self.now = now
        self.entity_value = entity_value
        block_s = chain.constants.BLOCK_INTERVAL / 1000
        self.interval = min(max(block_s / 2, 0.05), 2.0)
        self.down: str | None = None  # why the chain cannot be reached, while it cannot
        self._waiting: dict[bytes, str] = {}  # reports held back, and why (logged once per reason)

    # --- the loop ------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Follow and report until cancelled. The chain being unreachable is logged once per
        outage and retried with back-off; it never ends the loop."""
        from hub.chain.access import ChainUnavailable

        self.recover()
        delay = self.interval
        while True:
            try:
                more = await self.step()
            except ChainUnavailable as exc:
                if self.down is None:
                    log.warning("chain control: the chain cannot be reached (%s); commands and reports wait "
                                "(logged once per outage)", exc)
                self.down = str(exc)
                delay = min(max(delay * 2, self.interval), MAX_BACKOFF)
                more = False
            else:
                if self.down is not None:
                    log.info("chain control: the chain answers again; catching up")
                    self.down = None
                delay = self.interval
            if not more:
                await asyncio.sleep(delay)

    def recover(self) -> list[bytes]:
        """At start-up: commands taken whose outcome never came are failed ("interrupted")."""
        found = self.store.interrupted(self.now())
        for tx_hash in found:
            log.warning("chain control: command %s was interrupted by the hub's stop; reported failed, not run again",
                        tx_hash.hex()[:16])
        return found

    async def step(self) -> bool:
        """One look: handle the final blocks not handled yet, then report outcomes. True when more
        blocks may be waiting (a full batch came)."""
        more = await self.follow()
        await self.report()
        return more

    def status(self) -> dict[str, Any]:
        """What ``GET /api/plugins/chainctl/status`` shows: how far the hub followed, and why not further."""
        head, final = self.chain.head()
        return {"chain_id": self.chain.network.chain_id, "cursor": self.store.cursor(self.chain.network.genesis_hash),
                "head": head, "final": final, "available": self.chain.available(), "down": self.down,
                "unreported": len(self.store.unreported())}

    # --- following ----------------------------------------------------------------------------------
    async def follow(self) -> bool:
        genesis = self.chain.network.genesis_hash
        cursor = self.store.cursor(genesis)
        if cursor is None:
            now_ms = int(self.now() * 1000)
            since = self.store.follow_start(genesis, now_ms)  # recorded before the chain answers
            if not self.chain.available():
                return False
            final = self.chain.head()[1]
            # Not the final block of this first look: a command final between the hub's start and
            # now (the node was unreachable, the light client syncing) would be skipped for good.
            cursor = start_height(final, since, now_ms, self.chain.constants.BLOCK_INTERVAL)
            self.store.set_cursor(genesis, cursor, None)
            log.info("chain control: following chain %s from block %d (final %d)", self.chain.network.chain_id,
                     cursor, final)
        elif not self.chain.available():
            return False
        final = self.chain.head()[1]
        if final <= cursor:
            return False
        blocks = await self.chain.blocks_since(cursor, min(BATCH, final - cursor))  # final ones only
        for block in blocks:
            if not block.final:
                return False
            if block.height != cursor + 1:
                log.warning("chain control: blocks %d to %d can no longer be verified (the light client keeps "
                            "headers for a window below its head); commands in them are not run",
                            cursor + 1, block.height - 1)
            for tx in block.txs:
                if tx.type == "control_command":
                    await self._command(tx, block)
                elif tx.type == "bind_device":
                    self._binding(tx)
            self.store.set_cursor(genesis, block.height, block.hash)
            cursor = block.height
        return final - cursor > 0 and len(blocks) >= BATCH

    async def _command(self, tx: Any, block: Any) -> None:
        from hub.core.commands import CommandError
        from hub.identity.errors import Refused

        try:
            model = tx.model()
        except Exception as exc:  # noqa: BLE001 - a final block holds only valid ones; a bug is logged, not fatal
            log.error("chain control: control_command %s in block %d does not parse: %s", tx.hash.hex()[:16],
                      block.height, exc)
            return
        signed = model.command
        st = signed.statement
        device_id = self.identity.device_for_key(st.device)
        if device_id is None:
            return  # another hub's device
        if not self.store.take(tx.hash, device_id, block.height, self.now()):
            return  # taken before: never twice
        source = f"chain:{tx.hash.hex()[:16]}"
        outcome = {"ok": False, "reason": "", "message": "", "entity": st.entity, "value": None}
        try:
            await self.identity.signed_call(signed, source=source, grant=model.grant, now_ms=block.timestamp)
        except Refused as exc:
            outcome.update(reason=exc.reason.value, message=exc.message)
        except CommandError as exc:
            outcome.update(reason=exc.code, message=str(exc))
        except asyncio.CancelledError:
            raise  # the hub stops: the row stays taken without outcome, reported "interrupted" next start
        except Exception as exc:  # noqa: BLE001 - a driver's failure is this command's outcome
            outcome.update(reason="failed", message=f"{type(exc).__name__}: {exc}")
        else:
            outcome.update(ok=True, value=_small(self.entity_value(device_id, st.entity)))
        self.store.done(tx.hash, outcome, self.now())
        if outcome["ok"]:
            log.info("chain control: ran %s.%s on %s for control_command %s (block %d)", st.entity, st.command,
                     device_id, tx.hash.hex()[:16], block.height)
        else:
            log.warning("chain control: control_command %s for %s refused: %s: %s", tx.hash.hex()[:16], device_id,
                        outcome["reason"], outcome["message"])

    def _binding(self, tx: Any) -> None:
        """Keep a keyless device's local record in step with a binding change in a final block."""
        from hub.crypto.statements import Bind, BindProof, Handover, Reset, Revoke, Sale
        from hub.identity.errors import Refused

        try:
            signed = tx.model().statement
        except Exception:  # noqa: BLE001 - see _command
            return
        st = signed.statement
        device_id = self.identity.device_for_key(st.device)
        if device_id is None or self.identity.holds_key(device_id):
            return
        node = self.identity.lightnode(device_id)
        try:
            if isinstance(st, (Handover, Sale)):
                new = st.to if isinstance(st, Handover) else tx.sender
                if node.controller != new:
                    node.transfer(new)
                    log.info("chain control: %s changed hands on chain (%s in %s); its controller is now %s…",
                             device_id, st.DOMAIN, tx.hash.hex()[:16], new.hex()[:16])
            elif isinstance(st, (Bind, BindProof)):
                node.bind(signed)
                log.info("chain control: %s bound to %s… by a binding published on chain", device_id,
                         st.controller.hex()[:16])
            elif isinstance(st, Reset):
                if (node.state()["time"] or 0) < st.time:
                    node.reset(st.time)
                    log.info("chain control: %s was reset on chain", device_id)
            elif isinstance(st, Revoke):
                self.identity.revoke(device_id, signed)
        except Refused as exc:
            # Already known here (the hub published it itself), or superseded locally: nothing to do.
            log.debug("chain control: %s from %s not applied to %s: %s", st.DOMAIN, tx.hash.hex()[:16], device_id, exc)

    # --- reporting ----------------------------------------------------------------------------------
    async def report(self) -> None:
        """A ``state_change`` for each outcome not yet reported; resubmitted if the chain lost it."""
        from hub.chain.access import TxRefused

        for taken in self.store.unreported():
            if taken.report_tx is not None:
                status = (await self.chain.status(taken.report_tx))["status"]
                if status == "final":
                    self.store.set_report(taken.tx_hash, taken.report_tx, "final")
                    continue
                if status in ("pending", "included"):
                    continue
                # refused, dropped, unknown (a node's mempool does not survive its restart): again
            record = self.identity.record(taken.device_id)
            if record is None:
                self.store.set_report(taken.tx_hash, None, "skipped: the device has no identity any more")
                continue
            device = bytes.fromhex(record.public_key)
            key = self.identity.controller_key
            binding = await self.chain.state("dev", device)
            if not binding or binding[0] != key.public_key:
                self.store.set_report(taken.tx_hash, None, "skipped: the hub's key is not the device's controller "
                                      "on chain, so it cannot report the outcome")
                log.warning("chain control: the outcome of %s is not reported: the hub's key %s… is not %s's "
                            "controller on chain", taken.tx_hash.hex()[:16], key.public_key.hex()[:16], taken.device_id)
                continue
            o = taken.outcome or {}
            payload = {"device": device, "command": taken.tx_hash, "ok": bool(o.get("ok")),
                       "reason": str(o.get("reason", ""))[:64], "entity": str(o.get("entity", ""))[:64],
                       "value": o.get("value")}
            try:
                report_tx = await self.chain.submit(key, "state_change", payload)
            except TxRefused as exc:
                if exc.reason == "already_reported":
                    self.store.set_report(taken.tx_hash, taken.report_tx, "final")
                    continue
                if exc.reason in RETRY_REASONS:  # the key's account, not the report: try again later
                    if self._waiting.get(taken.tx_hash) != exc.reason:
                        log.warning("chain control: the report of %s waits: %s", taken.tx_hash.hex()[:16], exc)
                        self._waiting[taken.tx_hash] = exc.reason
                    continue
                self._waiting.pop(taken.tx_hash, None)
                self.store.set_report(taken.tx_hash, None, f"refused: {exc.reason}: {exc.message}")
                log.warning("chain control: the report of %s was refused: %s", taken.tx_hash.hex()[:16], exc)
                continue
            self._waiting.pop(taken.tx_hash, None)
            self.store.set_report(taken.tx_hash, report_tx, None)


def _small(value: Any) -> Any:
    """A state value fit for a ``state_change`` (plain, finite, small), else None."""
    from hub.crypto.encoding import encode

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is not None and not isinstance(value, (bool, int, float, str)):
        return None
    try:
        return value if len(encode(value)) <= MAX_VALUE_BYTES else None
    except Exception:  # noqa: BLE001 - an unencodable value is not reported
        return None


# --- the plugin ---------------------------------------------------------------------------------------

@hookimpl
def hub_setup(hub: Any) -> None:
    chain, identity = hub.service("chain"), hub.service("identity")
    if chain is None or identity is None:
        hub.log.info("chain control is off: %s", "no chain configured" if chain is None else "no identity gate")
        return
    from hub.identity.chainctl_store import ChainctlStore

    core = hub._hub  # a built-in part: it reads entity states by device, which plugins do not

    def entity_value(device_id: str, key: str) -> Any:
        entry = next((e for e in core.entities.for_device(device_id) if e.key == key), None)
        state = core.states.get(entry.entity_id) if entry is not None else None
        return state.value if state is not None else None

    store = ChainctlStore(identity.store.path)
    hub.data["store"] = store
    hub.data["control"] = ChainControl(chain, identity, store, now=hub.now, entity_value=entity_value)


@hookimpl
async def hub_run(hub: Any) -> None:
    control = hub.data.get("control")
    if control is not None:
        await control.run()


@hookimpl
def hub_api_routes(hub: Any) -> Any:
    from hub.identity.chainctl_api import router

    store = hub.data.get("store")
    return router(store, hub.data["control"]) if store is not None else None


@hookimpl
def hub_shutdown(hub: Any) -> None:
    hub.data.pop("control", None)
    store = hub.data.pop("store", None)
    if store is not None:
        store.close()
