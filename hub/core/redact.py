"""Secrets out of everything that is kept or shown: command log, bus events, log lines.

A command's arguments go on the bus, into the command log and from there to the API, the CLI and any
event subscriber; a lock code among them would be readable by anyone who can read the log, and kept
for ten days. So the arguments are redacted once, before the event is published, by two rules:

* a field the capability's model marks secret (``json_schema_extra={"secret": True}``, see
  :data:`hub.devices.capabilities.SECRET`) is always redacted, right or wrong, valid or not;
* a key whose name says secret (``password``, ``token``, ``api_key``, ``pin``, ``code`` ...) is
  redacted too, at any depth, because a command refused before its model is known (an unknown
  entity, a misspelt command) has no model to ask.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pydantic import BaseModel

REDACTED = "***"

#: Whole words of a snake_case, kebab-case or camelCase key that name a secret.
_SECRET_WORDS = frozenset(
    {"password", "passwd", "pass", "passphrase", "pwd", "secret", "token", "apikey", "key", "pin", "code",
     "otp", "credential", "credentials", "auth", "authorization", "cookie", "session", "private"}
)
#: Words that, before "code" or "key", make it not a secret (a country code is not a lock code).
_HARMLESS_BEFORE = frozenset({"country", "language", "lang", "zip", "postal", "area", "status", "error", "color",
                              "colour", "unit", "currency", "region", "hvac", "product", "model", "exit",
                              "sort", "primary", "foreign", "device"})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret_name(name: object) -> bool:
    if not isinstance(name, str):
        return False
    words = [w.lower() for w in _WORD.findall(name)]
    for i, word in enumerate(words):
        if word in _SECRET_WORDS:
            if word in ("code", "key") and i > 0 and words[i - 1] in _HARMLESS_BEFORE:
                continue
            return True
    return "apikey" in "".join(words)


def secret_fields(model: type[BaseModel] | None) -> frozenset[str]:
    """Names (and aliases) of the fields ``model`` marks secret."""
    if model is None:
        return frozenset()
    names = set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("secret"):
            names.add(name)
            if info.alias:
                names.add(info.alias)
    return frozenset(names)


def redact(value: Any, secret: frozenset[str] = frozenset()) -> Any:
    """A copy of ``value`` with every secret (see the module docstring) replaced by ``"***"``; a
    secret that is None or absent stays as it is, so the log still says whether a code was given."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if v is not None and (k in secret or is_secret_name(k)) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def secret_values(value: Any, secret: frozenset[str] = frozenset()) -> list[str]:
    """The texts :func:`redact` would hide, longest first, so :func:`scrub` can find them elsewhere."""
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for k, item in v.items():
                if item is not None and (k in secret or is_secret_name(k)) and not isinstance(item, (dict, list)):
                    found.append(str(item))
                else:
                    walk(item)
        elif isinstance(v, (list, tuple)):
            for item in v:
                walk(item)

    walk(value)
    return sorted({t for t in found if t}, key=len, reverse=True)


def scrub(text: str | None, values: list[str]) -> str | None:
    """``text`` with every one of ``values`` replaced by ``"***"``: a driver's error message may quote
    the code it was given ("code 1234 refused") and the message is logged and stored too."""
    if not text:
        return text
    for value in values:
        text = text.replace(value, REDACTED)
    return text


_log_secrets: list[str] = []
_base_factory = None


def also_hide_in_logs(texts: set[str]) -> None:
    """Add secrets a plugin learns at run time (a Zigbee network key read from the stick) to the
    ones :func:`hide_secrets_in_logs` scrubs."""
    hide_secrets_in_logs(set(_log_secrets) | {t for t in texts if t})


def _scrubbing_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every log record, from any logger to any handler (uvicorn's own included, which it sets up
    after the hub has started), is made here: the one place where nothing can slip past."""
    record = _base_factory(*args, **kwargs)
    if _log_secrets:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: logging reports it at emit time, as it would have
            return record
        clean = scrub(message, _log_secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info), _log_secrets)
    return record


def hide_secrets_in_logs(texts: frozenset[str] | set[str]) -> None:
    """Replace ``texts`` (the configuration's ``!secret`` values) with ``***`` in every log record
    from now on, messages and tracebacks alike; a later call replaces the set.

    The hub keeps secrets out of its log calls on purpose, but a plugin's exception can still quote
    one ("cannot log in as admin:hunter2"), and a traceback is logged whole.
    """
    global _base_factory
    _log_secrets[:] = sorted((t for t in texts if t), key=len, reverse=True)
    if _base_factory is None:
        _base_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_scrubbing_factory)
