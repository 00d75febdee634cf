"""The chain node's HTTP RPC (FastAPI): submit transactions, read blocks, headers, transactions with
their Merkle proofs, accounts, candidates, the schedule, device bindings, command-log anchors, and a
live stream of blocks.

``create_rpc_app(node)`` builds the app; the ``hub chain node`` process serves it with uvicorn.
Errors have one shape, the hub API's: ``{"error": code, "message": text}`` (``error`` is a
:class:`~hub.chain.protocol.errors.Reason` for a refused transaction). 404 for unknown things, 422
for bad input, 413 for an oversized body; bad input never gives a 500.

Every read that touches SQLite or the node's state runs in a worker thread holding ``node.lock``, so
the event loop never blocks on the store and a reader never sees half a commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from hub.chain.node.rpc import stream, views
from hub.chain.protocol.errors import Reason, TxRejected
from hub.crypto.address import AddressError, decode_address
from hub.crypto.encoding import DecodeError, decode
from hub.net.jsonstrict import JsonError
from hub.net.jsonstrict import loads as json_loads

log = logging.getLogger("hub.chain.rpc")

_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
          415: "unsupported_media_type", 422: "invalid_request", 429: "too_many_streams",
          501: "not_implemented", 503: "unavailable"}
_HASH = re.compile(r"[0-9a-fA-F]{64}")
_MAX_HEIGHT = 2**62
MAX_STREAMS = 64
MAX_BATCH_TXS = 5000  # transactions per POST /txs
MAX_BATCH_BYTES = 4 * 1024 * 1024  # wire bytes of one POST /txs (the JSON form may be twice this, hex)
_NO_TELEMETRY = ({"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False,
                                "auto_configure": False}}
                 if "telemetry" in inspect.signature(FastAPI).parameters else {})


class RpcError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        self.status, self.code, self.message, self.extra = status, code, message, extra
        super().__init__(message)


def _not_found(what: str) -> RpcError:
    return RpcError(404, "not_found", what)


def _parse_hash(text: str, what: str) -> bytes:
    if not _HASH.fullmatch(text):
        raise RpcError(422, "invalid_request", f"{what} is 64 hex digits")
    return bytes.fromhex(text)


def _parse_block_id(text: str) -> int | bytes:
    if text.isascii() and text.isdigit():
        if len(text) > 18:
            raise RpcError(404, "not_found", f"no block at height {text}")
        return int(text)
    if _HASH.fullmatch(text):
        return bytes.fromhex(text)
    raise RpcError(422, "invalid_request", "a block is named by its height (digits) or its hash (64 hex digits)")


def _ms() -> int:
    return time.time_ns() // 1_000_000


_TX_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "required": ["tx"],
                                    "properties": {"tx": {"type": "string", "description": "wire bytes, hex"}}}},
    "application/cbor": {"schema": {"type": "string", "format": "binary"}}}}}


_TXS_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "required": ["txs"],
                                    "properties": {"txs": {"type": "array", "maxItems": MAX_BATCH_TXS,
                                                           "items": {"type": "string", "description": "wire bytes, hex"}}}}},
    "application/cbor": {"schema": {"type": "string", "format": "binary",
                                    "description": "a CBOR array of byte strings, one per transaction"}}}}}


def create_rpc_app(node, *, now: Callable[[], int] | None = None, stream_interval: float = 0.2,
                   on_submit: Callable[[Any], Any] | None = None, admit_executor: Executor | None = None,
                   network: Any = None, admin_token: str | None = None) -> FastAPI:
    """The RPC app of ``node`` (a :class:`~hub.chain.node.node.ChainNode`).

    ``now`` gives unix ms (transaction expiry, bans, the slot clock); ``stream_interval`` is how
    often ``/stream`` looks at the head; ``on_submit(tx)`` (plain or async) is called with each
    transaction the mempool admitted through ``POST /tx``, for the p2p layer to gossip it.
    ``admit_executor`` runs the admissions (default: asyncio's thread pool). A node passes the
    thread that admits gossip, so that transactions from both wait in one queue instead of two
    threads fighting over the GIL and the node lock (in 3 interleaved runs of the 4-node benchmark:
    ~1 % less CPU per transfer, loaded block propagation p50 240-302 ms against 318-352 ms).
    ``app.state.stop_streams()`` ends every open ``/stream`` (call it before stopping uvicorn, whose
    graceful shutdown otherwise waits for them forever).
    ``network`` (the node's :class:`~hub.chain.p2p.network.Network`, if any) feeds ``/peers``,
    ``/sync`` and the peer metrics; ``admin_token`` opens the admin routes (``POST /peers``,
    ``DELETE /bans/{key}``) to clients that send it, and without it they are refused to everyone.
    """
    clock = now or _ms
    cache = views.HeaderCache()
    app = FastAPI(title="Ruff chain node RPC", version="1",
                  description="Submit transactions and read the chain of one Ruff node. Errors are "
                  '`{"error": code, "message": text}`; a refused transaction\'s code is its reason.',
                  docs_url="/docs", redoc_url=None, **_NO_TELEMETRY)
    app.state.node = node
    app.state.streams = 0
    app.state.admissions = {}  # "admitted" or a refusal reason -> count, for /metrics
    stopping = threading.Event()
    app.state.stop_streams = stopping.set  # call before stopping uvicorn: open streams end within a poll

    async def read(fn: Callable, *args: Any) -> Any:
        def locked() -> Any:
            with node.lock:
                return fn(node, *args)
        return await asyncio.to_thread(locked)

    @app.exception_handler(RpcError)
    async def rpc_error(request: Request, exc: RpcError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "message": exc.message, **exc.extra}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"error": "invalid_request", "message": detail, "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": _CODES.get(exc.status_code, "error"), "message": str(exc.detail)},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def client_left(request: Request, exc: ClientDisconnect) -> Response:
        return Response(status_code=400)  # nobody reads it; and nothing logged for a client that left

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("chain rpc: %s %s failed", request.method, request.url.path)
        return JSONResponse({"error": "internal", "message": "the node failed to answer; see its log"}, status_code=500)

    # --- transactions ------------------------------------------------------------------------------
    @app.post("/tx", openapi_extra=_TX_BODY, summary="Submit a signed transaction", responses={
        200: {"description": '`{"hash": hex, "status": "pending" | "included" | "irreversible"}`'},
        422: {"description": "refused: `error` is the reason code (bad_signature, nonce_too_low, ...)"}})
    async def submit(request: Request) -> dict:
        """The transaction's wire bytes, as `{"tx": "<hex>"}` or a raw `application/cbor` body.
        Submitting a transaction the node already has (in its mempool or a block) is not an error:
        the answer names its hash and status, so clients may resubmit safely."""
        max_tx = node.constants.MAX_TX_BYTES
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if kind in ("application/cbor", "application/octet-stream"):
            raw = await _body(request, max_tx)
        elif kind in ("application/json", ""):
            data = _json(await _body(request, 2 * max_tx + 1024))
            try:
                text = data["tx"]
                raw = bytes.fromhex(text)
            except (ValueError, KeyError, TypeError):
                raise RpcError(422, "invalid_request", 'the body is {"tx": "<the transaction\'s bytes in hex>"}') from None
        else:
            raise RpcError(415, "unsupported_media_type", "send application/json or application/cbor")
        tx, answer = (await admit([raw]))[0]
        if "error" in answer:
            status = 413 if answer["error"] == Reason.TOO_LARGE.value else 422
            raise RpcError(status, answer["error"], answer["message"])
        if tx is not None:
            await _announce([tx])
        return answer

    @app.post("/txs", openapi_extra=_TXS_BODY, summary="Submit many signed transactions in one request", responses={
        200: {"description": '`{"results": [...], "accepted": n, "refused": m}`: one result per transaction, in '
                             'order, `{"hash", "status"}` as `POST /tx` answers or `{"hash", "error", "message"}`'},
        413: {"description": f"more than {MAX_BATCH_TXS} transactions or {MAX_BATCH_BYTES} bytes"},
        422: {"description": "the body is not a list of transactions (one bad transaction is a result, not a 422)"}})
    async def submit_many(request: Request) -> Response:
        """Up to 5,000 transactions as `{"txs": ["<hex>", ...]}` or an `application/cbor` array of
        byte strings. Each is judged as `POST /tx` would judge it, in order (so one sender's
        successive nonces may be in the same request); a refused one does not stop the others.
        The answer is HTTP 200 with one result per transaction: its hash and status (`pending`,
        or `included`/`irreversible` for one the node already has), or its `error` code and
        `message`. For clients that submit at a high rate: one request, one worker-thread hop."""
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if kind in ("application/cbor", "application/octet-stream"):
            body = await _body(request, MAX_BATCH_BYTES)
            try:
                raws = decode(body)
            except DecodeError:
                raws = None
            if not isinstance(raws, list) or not all(isinstance(r, bytes) for r in raws):
                raise RpcError(422, "invalid_request", "the body is a CBOR array of byte strings, one per transaction")
        elif kind in ("application/json", ""):
            data = _json(await _body(request, 2 * MAX_BATCH_BYTES + 64 * 1024))
            try:
                texts = data["txs"]
                if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                    raise TypeError
                raws = [bytes.fromhex(t) for t in texts]
            except (ValueError, KeyError, TypeError):
                raise RpcError(422, "invalid_request", 'the body is {"txs": ["<a transaction\'s bytes in hex>", ...]}') from None
        else:
            raise RpcError(415, "unsupported_media_type", "send application/json or application/cbor")
        if len(raws) > MAX_BATCH_TXS:
            raise RpcError(413, "too_large", f"at most {MAX_BATCH_TXS} transactions per request")
        judged = await admit(raws)
        admitted = [tx for tx, _ in judged if tx is not None]
        await _announce(admitted)
        body = {"results": [answer for _, answer in judged], "accepted": sum(1 for _, a in judged if "status" in a),
                "refused": sum(1 for _, a in judged if "error" in a)}
        # Plain strings and ints only: json.dumps directly, not FastAPI's jsonable_encoder, which
        # costs ~13 µs per result (a fifth of a node's event-loop time per transfer at 2,000 tx/s).
        return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")

    async def admit(raws: list[bytes]) -> list[tuple[Any, dict]]:
        judged = await asyncio.get_running_loop().run_in_executor(admit_executor, _admit, raws, clock())
        counts = app.state.admissions
        for _, answer in judged:
            outcome = answer.get("error", "admitted" if answer.get("status") == "pending" else "known")
            counts[outcome] = counts.get(outcome, 0) + 1
        return judged

    def _admit(raws: list[bytes], now: int) -> list[tuple[Any, dict]]:
        """Each transaction into the mempool, in order (in a worker thread): (the admitted
        transaction or None, its answer). A duplicate or an already included one is answered
        with where it is, so clients may resubmit safely."""
        out: list[tuple[Any, dict]] = []
        for raw, result in zip(raws, node.submit_many(raws, now)):
            if isinstance(result, TxRejected):
                if result.reason in (Reason.DUPLICATE, Reason.NONCE_TOO_LOW):
                    with node.lock:
                        known = views.transaction(node, _tx_hash(raw))
                    if known is not None and known["status"] in ("pending", "included", "irreversible"):
                        out.append((None, {"hash": known["hash"], "status": known["status"]}))
                        continue
                out.append((None, {"hash": _tx_hash(raw).hex(), "error": result.reason.value,
                                   "message": result.detail or result.reason.value}))
                continue
            out.append((result, {"hash": result.hash.hex(), "status": "pending"}))
        return out

    async def _announce(txs: list[Any]) -> None:
        if on_submit is None:
            return
        for tx in txs:
            try:
                result = on_submit(tx)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("chain rpc: on_submit failed for %s", tx.hash.hex())

    @app.get("/tx/{tx_hash}", summary="A transaction with its Merkle inclusion proof")
    async def get_tx(tx_hash: str) -> dict:
        """Decoded fields and raw hex; when in a block, its height, index and the RFC 6962 audit
        path to the block header's `tx_root` (verify with `hub.crypto.merkle.verify_inclusion`
        over the raw bytes). A transaction still in the mempool has `status: pending`; one this
        node refused or dropped from its mempool (and still remembers) has `status: refused` or
        `dropped` with its `reason` code and a `message` saying why."""
        found = await read(views.transaction, _parse_hash(tx_hash, "a transaction hash"))
        if found is None:
            raise _not_found(f"no transaction {tx_hash} in the chain or the mempool")
        return found

    # --- blocks ------------------------------------------------------------------------------------
    @app.get("/head", summary="The head and the last irreversible block")
    async def head() -> dict:
        return await read(views.head)

    @app.get("/blocks/{block_id}", summary="A block by height (canonical) or hash (any branch)")
    async def get_block(block_id: str) -> dict:
        found = await read(views.block, _parse_block_id(block_id))
        if found is None:
            raise _not_found(f"no block {block_id}")
        return found

    @app.get("/blocks/{block_id}/raw", summary="A block's CBOR bytes", response_class=Response,
             responses={200: {"content": {"application/cbor": {}}}})
    async def get_block_raw(block_id: str) -> Response:
        found = await read(views.find_block, _parse_block_id(block_id))
        if found is None:
            raise _not_found(f"no block {block_id}")
        return Response(await asyncio.to_thread(found.encode), media_type="application/cbor")

    @app.get("/headers", summary="Canonical headers for light clients")
    async def get_headers(start: int = Query(1, alias="from", ge=1, le=_MAX_HEIGHT),
                          count: int = Query(100, ge=1, le=views.MAX_HEADERS)) -> dict:
        """Up to `count` canonical headers from height `from`; each has `raw`, the signed header's
        CBOR in hex, whose SHA-256 is the block hash and whose signature a client checks itself."""
        return await read(views.headers, cache, start, count)

    # --- accounts and producers --------------------------------------------------------------------
    @app.get("/accounts/{address}", summary="Balance, nonce, candidacy and vote of an address")
    async def get_account(address: str) -> dict:
        try:
            raw = decode_address(address)
        except AddressError as exc:
            raise RpcError(422, "invalid_request", f"address: {exc}") from None
        return await read(views.account, raw, clock())

    @app.get("/candidates", summary="Candidates with their vote weights and standing")
    async def get_candidates() -> dict:
        return await read(views.candidates, clock())

    @app.get("/schedule", summary="This round's producer order with produced/missed counts and bans")
    async def get_schedule() -> dict:
        return await read(views.schedule, clock())

    # --- the stream --------------------------------------------------------------------------------
    @app.get("/stream", summary="New blocks and finality as server-sent events",
             response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
    async def get_stream(request: Request) -> StreamingResponse:
        """`event: block` (header JSON of each new canonical block, `reorg: true` when a branch
        replaced blocks already sent) and `event: final` (`{"height", "hash"}` of the newest last
        irreversible block)."""
        if stopping.is_set():
            raise RpcError(503, "stopping", "the node is shutting down")
        # Checked and taken with no await between, so requests arriving together cannot all pass
        # the check before any of them counts (300 at once used to open 300); given back when the
        # response ends, however it ends.
        if app.state.streams >= MAX_STREAMS:
            raise RpcError(429, "too_many_streams", f"this node serves at most {MAX_STREAMS} streams")
        app.state.streams += 1

        def release() -> None:
            app.state.streams -= 1

        return _CountedStream(stream.events(node, request.is_disconnected, stream_interval, stopping), release,
                              media_type="text/event-stream",
                              headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    from hub.chain.node.rpc.light_routes import add_light_routes  # GET /blocks/{height}/changes
    from hub.chain.node.rpc.ops_routes import add_ops_routes  # peers, mempool, sync, version, metrics, admin
    add_light_routes(app, node)
    add_ops_routes(app, node, read=read, clock=clock, network=network, admin_token=admin_token,
                   max_streams=MAX_STREAMS)
    from hub.chain.node.rpc.genesis_route import add_genesis_route  # GET /genesis, for hub chain ... --rpc
    add_genesis_route(app, node)
    from hub.chain.node.rpc.device_routes import add_device_routes  # GET /devices/{key}, /anchors/{address}
    add_device_routes(app, read, RpcError)
    from hub.chain.node.rpc.market_routes import add_market_routes  # GET /contracts, /calls, /channels, /reviews
    add_market_routes(app, read, RpcError)
    return app


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused with a 413 as soon as it is known to exceed ``limit`` (declared or read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RpcError(413, "too_large", f"the body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RpcError(413, "too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: bytes) -> Any:
    """Strict JSON, bounded depth: a body nested 15,000 deep was a RecursionError and a 500."""
    try:
        return json_loads(body)
    except JsonError as exc:
        raise RpcError(422, "invalid_request", f"the body is not acceptable JSON: {exc}") from None


class _CountedStream(StreamingResponse):
    """A stream that holds one of the node's stream slots until its response ends, even when the
    client left before the body began (a generator never started never runs its ``finally``)."""

    def __init__(self, content: Any, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


def _tx_hash(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


__all__ = ["create_rpc_app", "MAX_STREAMS", "MAX_BATCH_TXS", "MAX_BATCH_BYTES"]
