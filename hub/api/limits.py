"""The hub API's own limit; the connection, head and body guards it shares with the chain node's
RPC are in :mod:`hub.net.httpguard`."""

from hub.net.httpguard import MAX_CONNECTIONS, MAX_HEAD_BYTES, uvicorn_limits

#: A request body; FastAPI answers 413 from the Content-Length header, before reading the body.
MAX_BODY_BYTES = 1024 * 1024
#: A script's field values (``POST /api/scripts/<id>``): a few values, kept in the run's trace.
MAX_SCRIPT_BODY_BYTES = 64 * 1024
#: How long ``POST /api/scripts/<id>?wait=true`` waits for the run to end before answering that it
#: is still running: under the CLI's 30 s client timeout, and no request held open for an hour by
#: a script with a long ``delay``.
MAX_SCRIPT_WAIT = 25.0

__all__ = ["MAX_BODY_BYTES", "MAX_SCRIPT_BODY_BYTES", "MAX_SCRIPT_WAIT", "MAX_CONNECTIONS", "MAX_HEAD_BYTES", "uvicorn_limits"]
