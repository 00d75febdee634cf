"""The command log, anchored: batches of its leaves published as ``command_log`` transactions.

Every command the hub logs has an RFC 6962 leaf at a contiguous index from the moment its row is
committed (``hub/store/anchors.py``, ``hub/store/logleaf.py``). This built-in plugin (``anchor``)
cuts the leaves into batches of at most ``batch_size`` and publishes each batch's Merkle root
through the chain service (``ChainAccess``) whenever the chain is reachable, strictly in order, one
batch at a time (the chain admits a batch only at its keeper's next index, checked against the head
state, so a second one cannot wait in the mempool behind the first).

Nothing twice, nothing lost, across ``kill -9`` at any point:

* a batch's place on chain (``chain_first``, the ``first`` of its payload) is fixed and committed
  before its first submission, so however often it is re-submitted it can only ever land there,
  and the chain refuses a second batch at one place (its ``first`` rule);
* before (re-)submitting, the chain's ``anchor`` entry at that place is read: a submission whose
  answer was lost to a crash is found there and recorded, not sent again;
* a batch is marked ``final`` only once its block is irreversible and its entry is read back.

Configuration (section ``anchor:``, optional; the plugin always runs and idles without a chain):
``interval`` (seconds, 60) cuts a batch once its oldest command is that old, ``batch_size``
(16,384: a million commands in 62 transactions, a proof of at most 14 hashes), ``poll`` (seconds
between looks at the chain, 2). It runs with no section at all (``RUNS_UNCONFIGURED``, as the
identity gate) and declares its schema, so ``hub config check`` names a bad key with its file and line.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub import hookimpl

log = logging.getLogger("hub.anchor")

#: How long after its submission a transaction may still land (ChainAccess sets valid_until to now + 1 h);
#: a batch moves to another keeper only after that, so it cannot land under both.
TX_LIFETIME = 3600.0 + 300.0


class AnchorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval: float = Field(60.0, gt=0, description="Seconds: a batch is cut once its oldest command is this old.")
    batch_size: int = Field(16_384, ge=1, le=65_536, description="Commands per batch (per transaction) at most.")
    poll: float = Field(2.0, gt=0, le=600, description="Seconds between looks at the chain.")


_VERIFIED_BY = {
    "RemoteAccess": "the anchor entry's state proof and the block's transactions were checked against headers the "
                    "hub's light client verified",
    "EmbeddedAccess": "the anchor entry and the block were read from the hub's own full node",
}


def place_key(keeper: bytes, chain_first: int) -> bytes:
    """The key of a batch's entry in the chain's ``anchor`` namespace."""
    return keeper + chain_first.to_bytes(8, "big")


class Anchorer:
    """Moves batches from the log to the chain; :meth:`step` is one pass, safe to call at any time."""

    def __init__(self, store: Any, chain: Any, key: Any, now: Any, config: AnchorConfig | None = None) -> None:
        from hub.store.anchors import LogAnchors

        self.anchors = LogAnchors(store)
        self._chain = chain if callable(chain) else (lambda: chain)  # the service may come and go
        self._key = key if callable(key) else (lambda: key)
        self._now = now
        self.config = config or AnchorConfig()
        self.last_error: str | None = None

    # --- one pass ----------------------------------------------------------------------------------
    async def step(self) -> str:
        """Publish what is due; returns a word on what it did or waits for (tests, logs)."""
        chain = self._chain()
        if chain is None:
            return "no chain"
        if not chain.available():
            return "offline"
        key = self._key()
        if key is None:
            return "no key"
        from hub.chain.access import ChainUnavailable  # here, not at import: the hub starts without the chain's code
        from hub.crypto.address import address_of

        keeper = address_of(key.public_key)
        try:
            for batch in await asyncio.to_thread(self.anchors.open_batches, 64):
                if not await self._advance(chain, key, keeper, batch):
                    return "waiting"
            first, count, oldest = await asyncio.to_thread(self.anchors.unbatched)
            due = count >= self.config.batch_size or (count and self._now() * 1000 - oldest >= self.config.interval * 1000)
            if not due:
                return "idle" if not count else "gathering"
            batch = await asyncio.to_thread(self.anchors.seal, self.config.batch_size)
            await self._advance(chain, key, keeper, batch)
            return "sealed"
        except ChainUnavailable as exc:
            self._error(f"chain unreachable: {exc}")
            return "offline"

    async def _advance(self, chain: Any, key: Any, keeper: bytes, batch: Any) -> bool:
        """Move one batch on; True once it is in a block (the next one may then follow)."""
        from hub.chain.access import TxRefused

        update = self.anchors.update
        if batch.height is not None:
            return await self._confirm(chain, batch)
        if batch.tx is not None:
            status = await chain.status(batch.tx)
            state = status.get("status")
            if state in ("included", "final"):
                await asyncio.to_thread(update, batch.first, height=status["height"])
                batch.height = status["height"]
                return await self._confirm(chain, batch)
            if state == "pending":
                return False
            if state == "refused":
                self._error(f"batch {batch.first}: the chain refused its anchor: {status.get('reason')}")
        if batch.keeper is not None and batch.keeper != keeper:
            entry = await chain.state("anchor", place_key(batch.keeper, batch.chain_first))
            if entry is not None and bytes(entry[0]) == batch.root and entry[1] == batch.count:
                await asyncio.to_thread(update, batch.first, height=entry[4])  # it landed under the old key
                batch.height = entry[4]
                return await self._confirm(chain, batch)
            if batch.tx is not None and self._now() - (batch.submitted_at or 0) < TX_LIFETIME:
                return False  # its transaction under the old key may still land: wait until it cannot
            log.warning("batch %d moves to keeper %s (the hub's key changed)", batch.first, keeper.hex())
            batch.keeper = batch.chain_first = None
        if batch.chain_first is None:
            prev = await asyncio.to_thread(self.anchors.last_placed, batch.first)
            if prev is not None and prev.keeper == keeper:
                place = prev.chain_first + prev.count
            else:
                place = await self._next_place(chain, keeper)
            await asyncio.to_thread(update, batch.first, keeper=keeper, chain_first=place, tx=None)
            batch.keeper, batch.chain_first = keeper, place
        entry = await chain.state("anchor", place_key(keeper, batch.chain_first))
        if entry is not None:
            if bytes(entry[0]) == batch.root and entry[1] == batch.count:
                # Ours: a submission whose answer was lost (kill -9 after submit) or a status we missed.
                await asyncio.to_thread(update, batch.first, height=entry[4])
                batch.height = entry[4]
                return await self._confirm(chain, batch)
            place = await self._next_place(chain, keeper)
            log.error("batch %d: place %d of %s on chain holds another log's batch (is this key used by another "
                      "hub?); moving it to %d", batch.first, batch.chain_first, keeper.hex(), place)
            await asyncio.to_thread(update, batch.first, chain_first=place, tx=None)
            batch.chain_first = place
        else:
            following = await self._next_place(chain, keeper)
            if following < batch.chain_first:
                return False  # an earlier batch is not in the head state (yet, or any more): it goes first
            if following > batch.chain_first:
                await asyncio.to_thread(update, batch.first, chain_first=following, tx=None)
                batch.chain_first = following
        payload = {"root": batch.root, "first": batch.chain_first, "count": batch.count,
                   "first_time": batch.first_time, "last_time": batch.last_time}
        try:
            tx = await chain.submit(key, "command_log", payload)
        except TxRefused as exc:
            self._error(f"batch {batch.first}: the chain refused its anchor ({exc}); retrying")
            return False
        await asyncio.to_thread(update, batch.first, tx=tx, submitted_at=self._now())
        log.info("batch %d (%d commands) submitted at place %d: tx %s", batch.first, batch.count, batch.chain_first,
                 tx.hex()[:16])
        return False

    async def _confirm(self, chain: Any, batch: Any) -> bool:
        """An included batch: final once its block is irreversible and its entry reads back; if the
        entry is gone (a reorganisation took the block), it is published again."""
        _head, final = chain.head()
        entry = await chain.state("anchor", place_key(batch.keeper, batch.chain_first))
        if entry is None or bytes(entry[0]) != batch.root:
            log.warning("batch %d: its anchor is no longer in the chain (reorganised?); publishing it again", batch.first)
            await asyncio.to_thread(self.anchors.update, batch.first, height=None, tx=None)
            return False
        if entry[4] != batch.height:
            await asyncio.to_thread(self.anchors.update, batch.first, height=entry[4])
            batch.height = entry[4]
        if batch.height <= final and not batch.final:
            await asyncio.to_thread(self.anchors.update, batch.first, final=True)
            batch.final = True
            log.info("batch %d (%d commands) anchored, final at height %d", batch.first, batch.count, batch.height)
        return True

    async def _next_place(self, chain: Any, keeper: bytes) -> int:
        clog = await chain.state("clog", keeper)
        return int(clog[0]) if clog else 0

    def _error(self, message: str) -> None:
        if message != self.last_error:
            log.warning("%s", message)
        self.last_error = message

    # --- proofs ------------------------------------------------------------------------------------
    async def proof(self, log_id: int) -> dict[str, Any] | None:
        """A command with its leaf, inclusion proof, batch root, anchor and every check's result."""
        from hub.crypto import merkle
        from hub.store.logleaf import leaf

        entry = await asyncio.to_thread(self.anchors.entry, log_id)
        if entry is None:
            return None
        row, index, stored, batch = entry["row"], entry["index"], entry["hash"], entry["batch"]
        data = leaf(*row)
        names = ("id", "ts", "entity_id", "command", "args", "source", "ok", "error", "result")
        out: dict[str, Any] = {
            "command": dict(zip(names, row)) | {"ok": bool(row[6])},
            "leaf": data.hex(), "index": index, "status": "logged", "verified": False,
            "checks": {"leaf": stored is not None and merkle.leaf_hash(data) == stored},
        }
        if batch is None:
            return out
        path = await asyncio.to_thread(self.anchors.path, batch, index)
        out.update(batch=batch.as_dict(), index_in_batch=index - batch.first, proof=[h.hex() for h in path],
                   status="final" if batch.final else "anchored" if batch.height is not None
                   else "submitted" if batch.tx is not None else "batched")
        out["checks"]["merkle"] = merkle.verify_inclusion(data, index - batch.first, batch.count, path, batch.root)
        if batch.height is None:
            return out
        chain = self._chain()
        if chain is None or not chain.available():
            out["checks"]["anchor"] = None
            out["chain_error"] = "the chain cannot be reached now: the anchor is not checked"
            return out
        from hub.chain.access import ChainUnavailable

        try:
            await self._check_anchor(chain, batch, out)
        except ChainUnavailable as exc:
            out["checks"]["anchor"] = None
            out["chain_error"] = f"the chain cannot be reached now ({exc}): the anchor is not checked"
        out["verified"] = all(out["checks"].values())
        return out

    async def _check_anchor(self, chain: Any, batch: Any, out: dict[str, Any]) -> None:
        from hub.crypto.address import address_of

        anchor = await chain.state("anchor", place_key(batch.keeper, batch.chain_first))
        out["anchor"] = None if anchor is None else {
            "root": bytes(anchor[0]).hex(), "count": anchor[1], "first_time": anchor[2], "last_time": anchor[3],
            "height": anchor[4]}
        out["checks"]["anchor"] = anchor is not None and bytes(anchor[0]) == batch.root and anchor[1] == batch.count
        out["verification"] = _VERIFIED_BY.get(type(chain).__name__, "read through the hub's chain service")
        if anchor is not None:
            blocks = await chain.blocks_since(anchor[4] - 1, 1)
            block = blocks[0] if blocks and blocks[0].height == anchor[4] else None
            tx = next((t for t in (block.txs if block else []) if t.type == "command_log"
                       and address_of(t.sender) == batch.keeper and bytes(t.payload.get("root", b"")) == batch.root), None)
            out["block"] = None if block is None else {"height": block.height, "hash": block.hash.hex(),
                                                       "timestamp": block.timestamp, "final": block.final}
            out["tx"] = tx.hash.hex() if tx is not None else None
            out["checks"]["block"] = tx is not None


# --- the plugin ------------------------------------------------------------------------------------
#: Anchoring runs on its defaults: a user's own configuration.yaml without `anchor:` must not stop it.
RUNS_UNCONFIGURED = True


@hookimpl
def hub_config_schema() -> type[AnchorConfig]:
    return AnchorConfig


def _config(hub: Any) -> AnchorConfig:
    if isinstance(hub.config, AnchorConfig):
        return hub.config
    try:
        return AnchorConfig.model_validate(hub.config or {})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"anchor.{where}: {first['msg']}") from None


def _key_for(hub: Any):
    """The hub's own key: the identity service's controller key; without that service, the embedded
    chain's funded owner key."""
    cached: dict[str, Any] = {}

    def key() -> Any:
        identity = hub.service("identity")
        if identity is not None:
            return identity.controller_key
        if "owner" not in cached:
            from hub.chain.node.files import KeyFileError, read_key

            path = hub.hub_data_dir / "chain" / "keys" / "owner.key"
            try:
                cached["owner"] = read_key(path) if path.exists() else None
            except KeyFileError as exc:
                log.error("%s", exc)
                cached["owner"] = None
        return cached["owner"]

    return key


@hookimpl
def hub_setup(hub: Any) -> None:
    anchorer = Anchorer(hub.store, lambda: hub.service("chain"), _key_for(hub), hub.now, _config(hub))
    hub.data["anchorer"] = anchorer
    hub.provide("anchor", anchorer)


@hookimpl
async def hub_run(hub: Any) -> None:
    anchorer: Anchorer = hub.data["anchorer"]
    while True:
        try:
            await anchorer.step()
        except Exception:  # noqa: BLE001 - logged; the next pass tries again
            log.exception("anchoring pass failed")
        await hub.scheduler.sleep(anchorer.config.poll)
