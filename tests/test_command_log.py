"""What the command log of a real ``hub run`` keeps: no secrets, and a bounded row whatever was sent."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from hub.api.limits import MAX_BODY_BYTES
from hub.core.redact import REDACTED, is_secret_name, redact, scrub, secret_values
from hub.store import Store
from hub.store.codec import MAX_JSON, TRUNCATED
from tests.hubproc import HubProcess

LOCK_CODE = "4711-quince"
WRONG_CODE = "0815-medlar"
PASSWORD = "hunter2-plum"


def command_rows(data: Path) -> list[dict]:
    conn = sqlite3.connect(data / "hub.db")
    try:
        rows = conn.execute("SELECT entity_id, command, args, ok, error, length(args) FROM command_log ORDER BY id")
        return [
            {"entity_id": e, "command": c, "args": json.loads(a), "ok": bool(ok), "error": err, "args_bytes": n}
            for e, c, a, ok, err, n in rows
        ]
    finally:
        conn.close()


def everything_on_disk(data: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file())


@pytest.fixture
def hub(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text("demo:\n  lock_code: !secret front_door\n")
    (data / "secrets.yaml").write_text(f"front_door: '{LOCK_CODE}'\n")
    proc = HubProcess(data).start()
    yield proc
    proc.stop()


def test_lock_codes_right_or_wrong_never_reach_the_database_or_the_log(hub: HubProcess) -> None:
    status, _ = hub.request("POST", "/api/entities/lock.front_door/commands/unlock", {"code": WRONG_CODE})
    assert status == 422
    hub.post("/api/entities/lock.front_door/commands/unlock", {"code": LOCK_CODE})
    # Refused before any model is known: the name alone says it is a secret.
    status, _ = hub.request("POST", "/api/entities/lock.back_door/commands/unlock", {"password": PASSWORD})
    assert status == 404
    status, _ = hub.request("POST", "/api/entities/lock.front_door/commands/unlock", {"code": LOCK_CODE, "x": 1})
    assert status == 422
    assert hub.stop() == 0

    rows = command_rows(hub.data)
    assert [(r["entity_id"], r["ok"]) for r in rows] == [
        ("lock.front_door", False), ("lock.front_door", True), ("lock.back_door", False), ("lock.front_door", False),
    ]
    assert [r["args"] for r in rows] == [
        {"code": REDACTED}, {"code": REDACTED}, {"password": REDACTED}, {"code": REDACTED, "x": 1},
    ]
    disk, log = everything_on_disk(hub.data), hub.log()
    for secret in (WRONG_CODE, PASSWORD):
        assert secret.encode() not in disk and secret not in log
    # The right code is in secrets.yaml, where the user put it, and nowhere else.
    secrets_file = (hub.data / "secrets.yaml").read_bytes()
    assert disk.count(LOCK_CODE.encode()) == secrets_file.count(LOCK_CODE.encode())
    assert LOCK_CODE not in log


def test_a_huge_refused_command_is_logged_as_a_bounded_summary(hub: HubProcess) -> None:
    """Defence in depth behind the API's body limit: whatever reaches the command registry, the row
    stays a few kilobytes. The body stays under the API's limit (MAX_BODY_BYTES), so it does reach the
    registry; a larger one is refused with a 413 before it is read (tests/test_api_limits.py), and a
    client still sending it when the hub closes the connection would see a broken pipe instead."""
    big = "x" * 900_000
    body = {"effect": big, "n": list(range(10_000))}
    assert len(json.dumps(body)) < MAX_BODY_BYTES
    status, _ = hub.request("POST", "/api/entities/light.living_room/commands/turn_on", body)
    assert 400 <= status < 500
    status, _ = hub.request("POST", f"/api/entities/light.living_room/commands/{'y' * 5000}", {})
    assert status == 404
    assert hub.stop() == 0
    rows = command_rows(hub.data)
    assert [row["command"][:7] for row in rows] == ["turn_on", "y" * 7], "the refused commands are logged"
    for row in rows:
        assert row["args_bytes"] <= MAX_JSON + 100
        assert len(row["command"]) < 400 and len(row["error"] or "") <= 1100
    first = rows[0]["args"]
    assert first["effect"].endswith("(900000 characters)") and first["n"][-1] == "… (10000 items)"
    assert (hub.data / "hub.db").stat().st_size < 1_000_000


# -- the parts, without a process ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["code", "password", "api_key", "apiKey", "access_token", "PIN", "client-secret",
                                  "Authorization", "privateKey", "wifi_pass"])
def test_names_that_say_secret(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["brightness", "country_code", "hvac_mode", "position", "error_code", "option",
                                  "keyboard", "passenger", "tokens_per_minute_limit_x"])
def test_names_that_do_not(name: str) -> None:
    # "tokens" is not "token": a plural count is not a credential.
    assert not is_secret_name(name)


def test_redact_goes_deep_and_keeps_none_and_harmless_values() -> None:
    args = {"code": "1234", "nested": {"password": "pw", "list": [{"token": "t"}]}, "code_hint": None, "x": 1}
    assert redact(args) == {"code": REDACTED, "nested": {"password": REDACTED, "list": [{"token": REDACTED}]},
                            "code_hint": None, "x": 1}
    assert redact({"pattern": "abc"}, frozenset({"pattern"})) == {"pattern": REDACTED}
    assert args["code"] == "1234"  # a copy: the driver still gets the real one
    assert scrub("code 1234 refused by 12345", secret_values(args)) == "code *** refused by ***5"


def test_store_bounds_every_field_of_a_command(tmp_path: Path) -> None:
    with Store(tmp_path / "data") as store:
        store.log_command(ts=1.0, entity_id="e" * 100_000, command="c" * 100_000, args={"k": "v" * 10_000_000},
                          source="s" * 100_000, ok=False, error="boom " * 100_000, result={"big": ["r" * 1000] * 1000})
        store.log_command(ts=2.0, entity_id="lock.a", command="lock", args={f"k{i}": i for i in range(1000)},
                          source="api", ok=True)
        wide, many = store.command_log()[::-1]
    assert wide["args"]["k"].endswith("(10000000 characters)") and len(wide["args"]["k"]) < 400
    assert len(wide["entity_id"]) < 400 and len(wide["command"]) < 400 and len(wide["source"]) < 400
    assert len(wide["error"]) <= 1100
    assert len(json.dumps(wide["result"])) <= MAX_JSON + 100
    assert many["args"][TRUNCATED] is True and many["args"]["k0"] == 0 and len(many["args"]) <= 40


def test_a_plugin_quoting_its_secret_config_in_an_error_does_not_leak_it_to_the_log(tmp_path: Path) -> None:
    """The hub never logs config values itself, but a driver's exception may quote one: the log
    scrubs every ``!secret`` value, in the message and in the traceback."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "gateway.py").write_text(
        "from pydantic import BaseModel\n"
        "from hub import hookimpl\n"
        "class Config(BaseModel):\n"
        "    password: str\n"
        "@hookimpl\n"
        "def hub_config_schema():\n"
        "    return Config\n"
        "@hookimpl\n"
        "def hub_setup(hub):\n"
        "    hub.log.warning('trying admin:%s', hub.config.password)\n"
        "    raise ConnectionError(f'login admin:{hub.config.password} refused')\n"
    )
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text("gateway:\n  password: !secret gateway_password\n")
    (data / "secrets.yaml").write_text(f"gateway_password: '{PASSWORD}'\n")
    hub = HubProcess(data, plugins_dir=plugins).start()
    try:
        status = {p["name"]: p for p in hub.get("/api/plugins")}["gateway"]
    finally:
        assert hub.stop() == 0
    assert status["status"] == "failed" and "login admin:*** refused" in status["error"]
    log = hub.log()
    assert "login admin:*** refused" in log and "trying admin:***" in log
    assert PASSWORD not in log
    assert PASSWORD.encode() not in b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file() and p.name != "secrets.yaml")


def test_log_scrubbing_covers_handlers_made_later_and_tracebacks() -> None:
    """uvicorn configures its own loggers and handlers after the hub has started."""
    import io
    import logging

    from hub.core.redact import hide_secrets_in_logs

    stream = io.StringIO()
    logger = logging.getLogger("test.redact.late")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    hide_secrets_in_logs({PASSWORD})
    try:
        logger.addHandler(handler)
        try:
            raise ConnectionError(f"login admin:{PASSWORD} refused")
        except ConnectionError:
            logger.exception("gateway %s failed", PASSWORD)
    finally:
        hide_secrets_in_logs(set())
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "gateway *** failed" in text and "login admin:*** refused" in text and PASSWORD not in text
