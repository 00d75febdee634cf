"""A small HTTP client for the CLI, on the standard library: the CLI must start fast on a Pi and
needs nothing more than JSON over loopback.

It finds the running hub the way a user would expect: ``--url``/``HUB_URL``, else the address the hub
wrote to ``<data>/run.json`` when it started, else the default port. The token comes from
``--token``/``HUB_TOKEN``, else the owner token file the hub made on first start.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8123"


class ClientError(Exception):
    def __init__(self, message: str, status: int | None = None, body: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or {}


class HubClient:
    def __init__(self, data_dir: Path, url: str | None = None, token: str | None = None, timeout: float = 30) -> None:
        self.data_dir = Path(data_dir)
        self.url = (url or os.environ.get("HUB_URL") or self._run_file_url() or DEFAULT_URL).rstrip("/")
        self._token = token or os.environ.get("HUB_TOKEN")
        self.timeout = timeout

    def _run_file_url(self) -> str | None:
        try:
            return json.loads((self.data_dir / "run.json").read_text())["url"]
        except (OSError, ValueError, KeyError):
            return None

    @property
    def token(self) -> str:
        if self._token:
            return self._token
        path = self.data_dir / "owner-token"
        try:
            return path.read_text().strip()
        except OSError:
            raise ClientError(
                f"no API token: pass --token or set HUB_TOKEN (`hub token create NAME` makes one; "
                f"the hub also writes {path} on first start)"
            ) from None

    def request(self, method: str, path: str, body: Any = None, query: dict | None = None, auth: bool = True) -> Any:
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read() or b"{}")
            except ValueError:
                payload = {}
            message = payload.get("message") or exc.reason
            raise ClientError(f"{message} (HTTP {exc.code})", exc.code, payload) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ClientError(f"cannot reach the hub at {self.url}: {reason}. Is `hub run` running?") from None

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body=body)
