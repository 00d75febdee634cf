"""Serving the hub: start it, serve the API with uvicorn, stop it cleanly on SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket

import uvicorn

from hub.api.app import create_app
from hub.api.limits import uvicorn_limits
from hub.net.httpguard import connection_cap
from hub.net import lograte
from hub.runtime import Hub

log = logging.getLogger("hub")


class _Server(uvicorn.Server):
    """uvicorn re-raises the signal that stopped it once it is done, which for SIGTERM kills the
    process before the hub's own shutdown (last recorder commit, plugins' tear-down) runs; the hub
    handles the signals itself instead."""

    def capture_signals(self):  # uvicorn >= 0.29
        return contextlib.nullcontext()

    def install_signal_handlers(self) -> None:  # older uvicorn
        pass


def _bind(host: str, port: int) -> socket.socket:
    """Bind before uvicorn does: uvicorn answers a busy port with sys.exit from inside its task,
    which leaves a traceback instead of a message."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP said explicitly: asyncio disables Nagle's algorithm only on sockets whose proto
    # says TCP, and accepted sockets inherit the 0 of socket(family, SOCK_STREAM). With Nagle on,
    # uvicorn's two writes per response (head, body) met the client's delayed ACK: 44 ms per
    # request on a kept-alive connection instead of 0.1-1 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def serve(hub: Hub, host: str | None = None, port: int | None = None) -> None:
    await hub.start()
    host = host or hub.core.host
    port = port if port is not None else hub.core.port
    try:
        sock = _bind(host, port)
    except OSError as exc:
        await hub.stop()
        raise OSError(exc.errno, f"{host}:{port}: {exc.strerror} (another hub? choose one with --port)") from None
    token_file = hub.ensure_owner_token()
    app = create_app(hub)
    server = _Server(
        uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off",
            **uvicorn_limits(max_connections=connection_cap()),
        )
    )
    lograte.install()  # after uvicorn's logging set-up: a flood of clients must not fill the disk with log lines
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown_host}:{port}"
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    try:
        # run.json names the address before /api/health can answer: a client that saw the hub up finds
        # it there (written after, a loaded machine showed the one without the other). Connections
        # made meanwhile wait in the listening socket's backlog until uvicorn accepts them.
        sock.listen(server.config.backlog)
        hub.write_run_file(url)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if serving.done():
            serving.result()  # re-raise why it could not start (port in use ...)
            raise SystemExit(f"could not serve on {host}:{port}")
        running = [n for n, i in hub.plugins.info.items() if i.status == "running"]
        problems = [f"{n} ({i.status})" for n, i in hub.plugins.info.items() if i.status in ("import_failed", "failed", "config_error", "restarting")]
        # The start-up heap (libraries, plugins, the restored registry and states) lives as long as
        # the hub: out of the cyclic collector's reach, its generation-2 passes stop scanning it.
        # They cost 38-112 ms each with it, the whole tail of the MQTT states' and the signed
        # commands' latencies (docs/benchmarks.md); what the hub allocates from here on is collected
        # as before. Here, in `hub run`, not in Hub.start: a test process starting hub after hub
        # would make every earlier test's garbage permanent.
        gc.freeze()
        log.info("dashboard on %s/  API on %s/api  (interactive docs: %s/docs)", url, url, url)
        log.info("plugins running: %s%s", ", ".join(running) or "none", f"; problems: {', '.join(problems)} (see `hub plugins`)" if problems else "")
        log.info("%d devices, %d entities; `hub states` lists them", len(hub.devices), len(hub.entities))
        if token_file is not None:
            log.info("API token: in %s (send it as 'Authorization: Bearer <token>'); more with `hub token create NAME`", token_file)
        else:
            log.info("API tokens: `hub token create NAME` prints a new one; send it as 'Authorization: Bearer <token>'")
        await serving
    finally:
        hub.remove_run_file()
        await hub.stop()
        log.info("stopped")
