"""Remote mode: the hub follows a chain run by full nodes as a light client (``chain: {rpc:, genesis:}``).

The hub opens no :class:`~hub.chain.node.node.ChainNode` and keeps no block bodies. A
:class:`~hub.chain.light.LightClient`, anchored in the genesis file the user gave (never one the node
sends), pulls signed headers from one node's RPC (``GET /headers?from=&count=``) and the schedule
proof of each round's last block (``GET /blocks/{height}/changes``), checks every header against the
producer schedule, and tracks the head and the last irreversible ("final") header. Transactions the
node reports are checked against the headers held (Merkle inclusion), and so are balances: an
account is shown only with a state proof that leads to the ``state_root`` of a header the light client
verified; any other answer is refused (:class:`StateRefused`, a 502 on the hub's API), never shown
labelled unverified (docs/light-client.md, "State proofs").

The loop is :func:`hub.chain.light.sync_once` with the hub's policy around it: poll every half block
interval (at most 2 s); when the node cannot be reached, log one WARNING per outage and retry with
back-off (doubling, capped at :data:`MAX_BACKOFF`); when a header is refused, log the reason (once per
distinct refusal) and keep what was held. Nothing here ends the hub.

HTTP is ``urllib.request`` in a worker thread (httpx is only a test dependency). Imported only when
``chain.rpc`` is set, from the plugin's set-up, so ``hub run``'s start-up does not pay for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from hub.chain.deadline import within
from hub.chain.light import LightClient, LightClientError, Reason, sync_once

MAX_BACKOFF = 10.0  # seconds between attempts while the node is unreachable (or refused a header), at most
TIMEOUT = 5.0  # per HTTP request
BATCH = 200  # headers per request (the node's MAX_HEADERS)


class NodeUnreachable(Exception):
    """No answer from the node: refused connection, timeout, DNS, or a 5xx."""


class NodeAnswered(Exception):
    """The node answered with an HTTP error (a 4xx): ``status``, its ``message`` and its ``code``
    (the RPC's ``error``, e.g. a refused transaction's reason), when it sent one."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        self.status, self.message, self.code = status, message, code
        super().__init__(f"HTTP {status}: {message}")


class StateRefused(NodeAnswered):
    """The node's state proof does not check against the light client's headers: its answer is not
    shown. A 502 on the hub's API (the node, not the request, is at fault)."""

    def __init__(self, message: str) -> None:
        super().__init__(502, message)


class RemoteChain:
    """One node's chain as the hub's light client sees it. Use from the event loop only (the light
    client is not thread-safe; HTTP runs in worker threads)."""

    def __init__(self, url: str, genesis: Any, *, log: logging.Logger | None = None,
                 now: Callable[[], float] | None = None, interval: float | None = None) -> None:
        import time

        self.url = url.rstrip("/")
        self.genesis = genesis
        self.light = LightClient(genesis)
        self.log = log or logging.getLogger("hub.chain.remote")
        self.now = now or time.time
        block_s = self.light.constants.BLOCK_INTERVAL / 1000
        self.interval = interval if interval is not None else min(max(block_s / 2, 0.1), 2.0)
        self.connected: bool | None = None  # did the last fetch succeed (None: not tried yet)
        self.last_ok: float | None = None  # when the node last answered (hub clock, unix s)
        self.last_error: str | None = None  # why the last fetch failed (None once it answers again)
        self.down_since: float | None = None
        self.node_head: int | None = None  # the head height the node last reported
        self.refused: str | None = None  # the last header refusal, until a sync gets through cleanly
        self._last_refusal: str | None = None
        self._genesis_checked = False
        self.retry_in = self.interval  # seconds until the next poll (grows while the node fails)

    # --- HTTP --------------------------------------------------------------------------------------
    def _fetch(self, path: str, body: bytes | None = None) -> tuple[bytes, str]:
        """GET ``path`` from the node, or POST ``body`` (JSON) to it (blocking): (body, content type)."""
        headers = {"Accept": "application/json, application/cbor"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
                return resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            answer = exc.read()
            code = None
            try:
                found = json.loads(answer)
                message = found["message"]
                code = found.get("error") if isinstance(found.get("error"), str) else None
            except (ValueError, KeyError, TypeError, AttributeError):
                message = answer[:200].decode(errors="replace") or exc.reason
            if exc.code >= 500:
                raise NodeUnreachable(f"the node answered HTTP {exc.code}: {message}") from None
            raise NodeAnswered(exc.code, str(message), code) from None
        except (urllib.error.URLError, OSError) as exc:  # refused, timeout, reset, DNS
            reason = getattr(exc, "reason", exc)
            raise NodeUnreachable(f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__) from None

    async def get_json(self, path: str) -> Any:
        body, _ = await asyncio.to_thread(self._fetch, path)
        try:
            return json.loads(body)
        except ValueError:
            raise NodeUnreachable(f"the node's answer to {path} is not JSON") from None

    async def post_json(self, path: str, data: Any) -> Any:
        """POST ``data`` as JSON (``POST /tx``): the node's JSON answer."""
        body, _ = await asyncio.to_thread(self._fetch, path, json.dumps(data).encode())
        try:
            return json.loads(body)
        except ValueError:
            raise NodeUnreachable(f"the node's answer to POST {path} is not JSON") from None

    async def get_bytes(self, path: str) -> bytes:
        body, _ = await asyncio.to_thread(self._fetch, path)
        return body

    # --- what the light client pulls -----------------------------------------------------------------
    async def fetch_headers(self, start: int, count: int) -> list[str]:
        data = await self.get_json(f"/headers?from={start}&count={min(count, BATCH)}")
        try:
            self.node_head = int(data["head"])
            return [h["raw"] for h in data["headers"]]
        except (KeyError, TypeError, ValueError):
            raise NodeUnreachable("the node's /headers answer has no head or headers") from None

    async def fetch_changes(self, height: int) -> bytes:
        try:
            return await self.get_bytes(f"/blocks/{height}/changes")
        except NodeAnswered as exc:  # a node that reorganised meanwhile, or one without the route
            raise NodeAnswered(exc.status, f"no schedule proof for the round end at height {height} "
                               f"(GET /blocks/{height}/changes: {exc.message})") from None

    async def sync(self) -> int:
        """Pull what the node has now; returns how many headers were new. Raises what the node or
        the light client raised (headers accepted before it stay)."""
        if not self._genesis_checked:  # a clearer refusal than wrong_chain at height 1
            head = await self.get_json("/head")
            theirs = head.get("genesis_hash") if isinstance(head, dict) else None
            if theirs is not None and theirs != self.genesis.hash.hex():
                raise LightClientError(Reason.WRONG_CHAIN, f"the node runs the chain of genesis {theirs} "
                                       f"({head.get('chain_id')}); chain.genesis is {self.genesis.hash.hex()} "
                                       f"({self.genesis.chain_id})")
            self._genesis_checked = True
        return await sync_once(self.light, self.fetch_headers, batch=BATCH, fetch_changes=self.fetch_changes)

    # --- following -----------------------------------------------------------------------------------
    async def follow(self, stop: asyncio.Event | None = None) -> None:
        """Sync, wait, repeat until ``stop`` (or cancellation). Never raises for the node's sake."""
        delay = self.retry_in = self.interval
        while stop is None or not stop.is_set():
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except LightClientError as exc:
                self._answered()
                self._refused(exc)
                delay = min(max(delay * 2, self.interval), MAX_BACKOFF)
            except Exception as exc:  # noqa: BLE001 - the node's failure must never end the hub's loop
                self._unreachable(exc)
                delay = min(max(delay * 2, self.interval), MAX_BACKOFF)
            else:
                self._answered()
                if self.refused is not None:
                    self.log.info("chain: headers from %s are accepted again; head %d", self.url, self.light.head.height)
                self.refused = self._last_refusal = None
                delay = self.interval
            self.retry_in = delay
            if stop is None:
                await asyncio.sleep(delay)
            else:
                try:
                    await within(stop.wait(), delay)
                except asyncio.TimeoutError:
                    pass

    def _answered(self) -> None:
        now = self.now()
        if self.connected is False:
            down = now - self.down_since if self.down_since is not None else 0.0
            self.log.info("chain: the node at %s answers again after %.1f s; light head %d, final %d",
                          self.url, down, self.light.head.height, self.light.final.height)
        elif self.connected is None:
            self.log.info("chain: following %s as a light client; light head %d, final %d (node head %s)",
                          self.url, self.light.head.height, self.light.final.height, self.node_head)
        self.connected, self.last_ok, self.last_error, self.down_since = True, now, None, None

    def _unreachable(self, exc: BaseException) -> None:
        text = str(exc) if isinstance(exc, (NodeUnreachable, NodeAnswered)) else f"{type(exc).__name__}: {exc}"
        if self.connected is not False:  # the first failure of this outage: say it once
            self.log.warning("chain: cannot follow the node at %s: %s; the hub keeps running on light head %d "
                             "(final %d) and retries with back-off up to %g s (logged once per outage)",
                             self.url, text, self.light.head.height, self.light.final.height, MAX_BACKOFF)
            self.down_since = self.now()
        else:
            self.log.debug("chain: %s still unreachable: %s", self.url, text)
        self.connected, self.last_error = False, text

    def _refused(self, exc: LightClientError) -> None:
        text = str(exc)
        self.refused = text
        if text != self._last_refusal:
            self.log.warning("chain: refused a header from %s (%s): %s; staying on light head %d, final %d",
                             self.url, exc.reason.value, text, self.light.head.height, self.light.final.height)
            self._last_refusal = text
        else:
            self.log.debug("chain: %s sent the refused header again: %s", self.url, text)

    # --- what the hub's API shows --------------------------------------------------------------------
    def head(self) -> dict:
        h, f = self.light.head, self.light.final
        return {"mode": "light", "rpc": self.url, "chain_id": self.genesis.chain_id,
                "genesis_hash": self.genesis.hash.hex(), "height": h.height, "hash": h.hash.hex(),
                "slot": h.slot, "timestamp": h.timestamp, "state_hash": h.state_hash.hex(),
                "state_root": h.state_root.hex(), "final": {"height": f.height, "hash": f.hash.hex()}, "lib": f.height,
                "connected": bool(self.connected), "last_ok": self.last_ok, "last_error": self.last_error,
                "retry_in": self.retry_in, "node_head": self.node_head, "refused": self.refused}

    async def transaction(self, tx_hash: bytes) -> dict | None:
        """The node's answer for a transaction, with ``verified`` (its inclusion proof checked
        against the light client's header at its height), ``final`` (verified, at or below the
        final header) and ``verification`` (why, in words). None if the node does not know it."""
        try:
            found = await self.get_json(f"/tx/{tx_hash.hex()}")
        except NodeAnswered as exc:
            if exc.status == 404:
                return None
            raise
        verified, why = self._check(tx_hash, found)
        height = found.get("height") if isinstance(found, dict) else None
        final = verified and isinstance(height, int) and height <= self.light.final.height
        return {**found, "verified": verified, "final": final, "verification": why}

    def _check(self, tx_hash: bytes, found: Any) -> tuple[bool, str]:
        if not isinstance(found, dict) or not isinstance(found.get("raw"), str):
            return False, "the node's answer has no transaction bytes"
        try:
            raw = bytes.fromhex(found["raw"])
        except ValueError:
            return False, "the node's transaction bytes are not hex"
        if hashlib.sha256(raw).digest() != tx_hash:
            return False, "the node answered bytes that are not this transaction"
        height, proof = found.get("height"), found.get("proof")
        if not isinstance(height, int) or not isinstance(proof, dict):
            return False, f"not in a block yet (the node says {found.get('status', 'nothing')!r})"
        try:
            ok = self.light.verify_inclusion(raw, height, proof)
        except LightClientError as exc:
            return False, (f"the light client holds no header at height {height} (light head "
                           f"{self.light.head.height}): {exc.detail}")
        header = self.light.header_at(height)
        if not ok:
            return False, f"the inclusion proof does not match the light client's header at height {height}"
        return True, f"inclusion proof checked against the signed header {header.hash.hex()} at height {height}"

    async def account(self, address: str) -> dict:
        """The account's balance and nonce, proven: the node's ``GET /accounts/{address}/proof`` is
        checked against the ``state_root`` of the header the light client holds for the block the
        proof names (after one sync if the node is ahead). Raises :class:`StateRefused` when the
        proof does not check or names a block the client cannot verify; what the node claimed is
        then not returned at all."""
        from hub.crypto.address import decode_address

        found = await self.get_json(f"/accounts/{urllib.parse.quote(address, safe='')}/proof")
        try:
            block_hash = bytes.fromhex(found["hash"])
            proof = found["proof"]
        except (KeyError, TypeError, ValueError):
            raise StateRefused(f"the node's account answer for {address} has no block hash or proof") from None
        if self.light.get(block_hash) is None:  # the node is ahead of the light client: catch up once
            try:
                await self.sync()
            except (LightClientError, NodeAnswered, NodeUnreachable) as exc:
                self.log.debug("chain: sync before an account proof failed: %s", exc)
        try:
            header, present, value = self.light.verify_state("acct", decode_address(address), proof,
                                                             block_hash=block_hash)
        except LightClientError as exc:
            self.log.warning("chain: refused the state the node at %s reports for %s: %s", self.url, address, exc)
            raise StateRefused(f"the node's balance for {address} is not shown: {exc.detail} "
                               f"({exc.reason.value})") from None
        if self.light.header_at(header.height) != header:
            raise StateRefused(f"the node's balance for {address} is not shown: it is proven at block "
                               f"{header.hash.hex()[:16]}, which is not on the light client's head chain")
        balance, nonce = value if present else (0, 0)
        return {"address": address, "balance": balance, "nonce": nonce, "verified": True,
                "height": header.height, "hash": header.hash.hex(), "state_root": header.state_root.hex(),
                "final": header.height <= self.light.final.height, "source": self.url,
                "verification": f"state proof checked against the signed header {header.hash.hex()} at height "
                                f"{header.height}"}


def open_remote(url: str, genesis_file: Any, *, log: logging.Logger | None = None,
                now: Callable[[], float] | None = None) -> RemoteChain:
    """A :class:`RemoteChain` for ``url``, trusting the genesis in ``genesis_file`` (blocking: reads
    the file). Raises ``ValueError`` naming ``chain.genesis`` when the file is unusable."""
    from hub.chain.protocol.genesis import load_genesis

    try:
        genesis = load_genesis(genesis_file)
    except Exception as exc:  # noqa: BLE001 - any unreadable genesis is a configuration problem
        raise ValueError(f"chain.genesis: cannot use {genesis_file} as the light client's trust anchor: {exc}") from None
    return RemoteChain(url, genesis, log=log, now=now)


__all__ = ["RemoteChain", "NodeUnreachable", "NodeAnswered", "StateRefused", "open_remote", "MAX_BACKOFF"]
