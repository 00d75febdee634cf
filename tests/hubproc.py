"""Run ``hub run`` as a real process for integration tests: a free port, its own data directory,
and helpers to talk to it the way a user's program would (HTTP with a bearer token)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from hub.net.ports import free_port as _free_port

REPO = Path(__file__).resolve().parents[1]
#: The demo home, stepping fast and reproducibly: what most API tests run against.
DEMO = "demo:\n  update_interval: 0.05\n  time_scale: 60\n  seed: 1\n"


def free_port() -> int:
    """Below the ephemeral range: see hub.net.ports."""
    return _free_port()


def hub_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hub.cli", *args]


def run_cli(data: Path, *args: str, timeout: float = 30, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        hub_command("--data", str(data), *args),
        capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


class HubProcess:
    def __init__(self, data: Path, *, plugins_dir: Path | None = None, extra_env: dict | None = None) -> None:
        self.data = data
        self.plugins_dir = plugins_dir
        self.port = self._picked = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = data.parent / f"{data.name}-hub.log"

    def start(self, timeout: float = 20.0) -> "HubProcess":
        # free_port() closes the port it found before the hub binds it; on a busy machine (mosquitto,
        # Chromium and other hubs starting in parallel workers) another process can take it
        # meanwhile. A port this object picked itself is picked again; one a test chose is not.
        picked = self.port == self._picked
        for attempt in range(3):
            try:
                return self._start(timeout)
            except RuntimeError as exc:
                if not (picked and "Address already in use" in str(exc) and attempt < 2):
                    raise
                self._log.close()
                self.port = self._picked = free_port()
                self.url = f"http://127.0.0.1:{self.port}"
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> "HubProcess":
        args = hub_command("run", "--data", str(self.data), "--port", str(self.port))
        if self.plugins_dir:
            args += ["--plugins-dir", str(self.plugins_dir)]
        start_of_log = len(self.log())  # this attempt's lines only (a retry appends to the same file)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **self.extra_env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}:\n{self.log()[start_of_log:]}")
            try:
                if self.request("GET", "/api/health", auth=False)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"hub did not answer /api/health within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def token(self) -> str:
        return (self.data / "owner-token").read_text().strip()

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None, auth: bool = True,
                raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {token or self.token}")
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def get(self, path: str, **kw) -> Any:
        status, body = self.request("GET", path, **kw)
        assert status == 200, (status, body)
        return body

    def post(self, path: str, body: Any = None) -> Any:
        status, answer = self.request("POST", path, body)
        assert status == 200, (status, answer)
        return answer

    def wait_for(self, predicate, timeout: float = 10.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"{what} not reached within {timeout} s\n{self.log()[-3000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            # Where it hangs: `hub run` writes every thread's stack to its log on SIGUSR1.
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(1)
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"hub run did not exit within 15 s of SIGTERM; its threads:\n{self.log()[-6000:]}") from None
