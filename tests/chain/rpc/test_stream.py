"""``/stream`` over a real uvicorn server: a new block and its finality arrive as events, and a
client that goes away leaves nothing running."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import uvicorn

from hub.chain.node.rpc import create_rpc_app

from tests.chain.rpc.conftest import NOW


class Server:
    def __init__(self, app) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.sock = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 5
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(5)
        self.sock.close()


def read_events(lines, want: int, deadline: float) -> list[tuple[str, dict]]:
    events, kind = [], None
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            events.append((kind, json.loads(line[6:])))
            if len(events) >= want:
                break
        assert time.monotonic() < deadline, f"only {events} before the deadline"
    return events


def test_stream_sends_new_blocks_and_finality_and_cleans_up(chain):
    app = create_rpc_app(chain.node, now=lambda: NOW, stream_interval=0.05)
    with Server(app) as server, httpx.Client(base_url=server.url, timeout=5) as http:
        assert http.get("/head").json()["height"] == 4
        with http.stream("GET", "/stream") as resp:
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            lines = resp.iter_lines()
            assert next(lines).startswith(":")  # the opening comment: the stream is live
            while app.state.streams != 1:
                time.sleep(0.01)
            block = chain.produce()
            events = read_events(lines, 2, time.monotonic() + 5)
        assert events[0][0] == "block" and events[0][1]["height"] == 5 and events[0][1]["hash"] == block.hash.hex()
        assert events[0][1]["reorg"] is False
        assert events[1] == ("final", {"height": 4, "hash": chain.node.store.canonical_hash(4).hex()})
        deadline = time.monotonic() + 3
        while app.state.streams:  # the client left: its generator ended
            assert time.monotonic() < deadline, "the stream outlived its client"
            time.sleep(0.05)


def test_stop_streams_lets_uvicorn_shut_down(chain):
    app = create_rpc_app(chain.node, now=lambda: NOW, stream_interval=0.05)
    server = Server(app).__enter__()
    opened = threading.Event()

    def reader():
        try:
            with httpx.stream("GET", server.url + "/stream", timeout=10) as resp:
                opened.set()
                for _ in resp.iter_lines():
                    pass
        except httpx.HTTPError:
            pass

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert opened.wait(5)
    while app.state.streams != 1:
        time.sleep(0.01)
    app.state.stop_streams()
    started = time.monotonic()
    server.__exit__(None, None, None)
    assert not server.thread.is_alive() and time.monotonic() - started < 3
    t.join(3)
    assert not t.is_alive() and app.state.streams == 0
