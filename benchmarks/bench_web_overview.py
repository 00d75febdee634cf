"""The dashboard's overview in Chromium against a real ``hub run`` with 1,000 entities (issue #21).

The hub runs the fast demo and ``web_plugins/bench_web_driver.py`` (1,000 sensors over ten devices,
each with a value from start-up). Chromium is Debian's, driven by Playwright, signed in with the
owner token. Three figures:

- ``load``: from navigation (``performance.now()``'s origin) to every entity's state shown on the
  overview, checked every animation frame; fresh browser context each time (no cache). Target ≤ 1 s.
- ``keep_up``: the driver writes 1,000 state changes a second, round-robin over the sensors, for
  ``--seconds`` (60); once a second the page is asked how old the newest state it shows is (now
  minus that state's ``last_updated``: hub and browser share the machine's clock). Target: the lag
  does not grow (the last ten samples' median close to the first ten's, both well under a second).
- ``transfer``: bytes over the wire (headers and bodies, Playwright's request sizes) of the first
  load's static assets (index, scripts, stylesheet, the overview's modules), and of the API answers
  apart, and the WebSocket's payloads received until every state is shown (the 1,000 states, which
  keep arriving as the demo changes). Target ≤ 250 kB for the assets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _hubproc  # noqa: E402

CHROMIUM = os.environ.get("RUFFHUB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

ALL_SHOWN = """(n) => {
  const values = document.querySelectorAll('li.entity .value');
  if (values.length < n) return false;
  for (const v of values) if (!v.textContent) return false;
  return performance.now();
}"""


def post(url: str, token: str, body: dict, timeout: float) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def open_overview(browser, url: str, token: str, count: int, sizes: dict | None = None):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(f"localStorage.setItem('ruffhub.token', {json.dumps(token)})")
    page = context.new_page()
    page.set_default_timeout(30_000)
    if sizes is not None:
        def finished(request):
            s = request.sizes()
            kind = "api" if "/api/" in request.url else "assets"
            sizes[kind] = sizes.get(kind, 0) + s["responseBodySize"] + s["responseHeadersSize"]
            sizes.setdefault("files", []).append([request.url.replace(url, ""), s["responseBodySize"]])
        page.on("requestfinished", finished)

        def frames(ws):  # the states come over the socket: counted apart (payloads, not framing)
            ws.on("framereceived", lambda payload: sizes.__setitem__("websocket", sizes.get("websocket", 0) + len(payload)))
        page.on("websocket", frames)
    page.goto(url + "/#/")
    shown_ms = page.wait_for_function(ALL_SHOWN, arg=count, polling="raf").json_value()
    if sizes is not None:
        page.remove_listener("websocket", frames)
        sizes["websocket_at_shown"] = sizes.get("websocket", 0)
    return context, page, shown_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--loads", type=int, default=5)
    opts = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        (data / "configuration.yaml").write_text(
            f"demo:\n  update_interval: 0.05\n  time_scale: 60\n  seed: 1\nbench_web_driver:\n  entities: {opts.entities}\n")
        port = _hubproc.free_port()
        proc = _hubproc.start(data, port, plugins_dir=HERE / "web_plugins")
        try:
            _hubproc.wait_healthy(proc, port)
            url = f"http://127.0.0.1:{port}"
            token = (data / "owner-token").read_text().strip()
            total = len(json.loads(urllib.request.urlopen(urllib.request.Request(
                url + "/api/states", headers={"Authorization": f"Bearer {token}"})).read()))
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                loads = []
                sizes: dict = {}
                for i in range(opts.loads):
                    context, page, ms = open_overview(browser, url, token, total, sizes if i == 0 else None)
                    loads.append(ms)
                    context.close()
                context, page, _ = open_overview(browser, url, token, total)
                result: dict = {}
                writer = threading.Thread(target=lambda: result.update(post(
                    url + "/api/plugins/bench_web_driver/run", token,
                    {"rate": opts.rate, "seconds": opts.seconds}, opts.seconds + 60)))
                writer.start()
                lags = []
                shown_before = page.evaluate("window.ruffhubShown || 0")
                while writer.is_alive():
                    time.sleep(1.0)
                    lags.append(page.evaluate("Date.now() - Date.parse(window.ruffhubNewestShown)"))
                writer.join()
                shown = page.evaluate("window.ruffhubShown || 0") - shown_before
                conn = page.locator("#conn").inner_text()
                context.close()
                browser.close()
        finally:
            _hubproc.stop(proc)
    lags = lags[:-1] if len(lags) > 1 else lags  # the last sample may come after the writes stopped
    head, tail = lags[:10], lags[-10:]
    print(json.dumps({
        "benchmark": "web_overview",
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "states": total,
        "load_ms": {"median": round(statistics.median(loads)), "max": round(max(loads)), "runs": [round(x) for x in loads]},
        "load_target_ms": 1000,
        "keep_up": {"offered_per_s": opts.rate, "seconds": opts.seconds, "writes": result.get("writes"),
                    "writer_seconds": round(result.get("seconds", 0), 1),
                    "states_shown": shown, "connection": conn,
                    "lag_ms_first10_median": round(statistics.median(head)) if head else None,
                    "lag_ms_last10_median": round(statistics.median(tail)) if tail else None,
                    "lag_ms_max": round(max(lags)) if lags else None,
                    "lag_ms_samples": [round(x) for x in lags]},
        "transfer_bytes": {"assets": sizes.get("assets"), "api": sizes.get("api"), "websocket_until_shown": sizes.get("websocket_at_shown"), "target_assets": 250_000,
                           "files": sizes.get("files")},
    }))


if __name__ == "__main__":
    main()
