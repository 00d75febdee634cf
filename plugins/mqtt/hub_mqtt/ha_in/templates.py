"""Home Assistant's value and command templates, in the subset that device firmware actually sends.

A template in a discovery config comes from whoever can publish on the broker, so it must never be
able to reach anything, nor run long or grow large. Rather than a Jinja engine (Home Assistant's full
template language is issue #22), the Jinja forms that Zigbee2MQTT, Tasmota, ESPHome and Shelly
configs use are translated into the hub's own sandboxed, bounded expressions
(:mod:`hub.rules.templates`): ``x | float`` becomes ``float(x)``, ``x is defined`` ``defined(x)``,
``true`` ``True``. Anything else is refused when the config is read, so the entity is skipped with
its template named instead of failing on every message.

Missing JSON keys are Jinja's "undefined" rather than an error, so ``value_json.x | default(0)`` and
``value_json.x is defined`` work as in Home Assistant.
"""

from __future__ import annotations

import io
import json
import math
import tokenize
from collections.abc import Iterator, Mapping
from typing import Any

from hub.rules.expressions import ExpressionError
from hub.rules.safe_ops import MAX_SEQUENCE
from hub.rules.templates import Template, _expression_end, compile_template

__all__ = ["HaTemplate", "TemplateError", "compile_ha", "parse_json", "to_text", "UNDEFINED"]


class TemplateError(ValueError):
    """A template outside the supported subset, or one that failed on a message."""


class _Undefined(Mapping):
    """Jinja's undefined: reading a key of it is undefined again; as text it is empty."""

    def __getitem__(self, key: Any) -> "_Undefined":
        return self

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return ""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _Undefined()


class _Json(Mapping):
    """A JSON object whose missing keys read as undefined (``value_json.battery`` on a message
    without it), as Jinja reads them."""

    __slots__ = ("_data",)

    def __init__(self, data: dict) -> None:
        self._data = data

    def __getitem__(self, key: Any) -> Any:
        value = self._data.get(key, UNDEFINED) if isinstance(key, str) else UNDEFINED
        return _Json(value) if type(value) is dict else value

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __str__(self) -> str:
        return str(self._data)


def _plain(value: Any) -> Any:
    if type(value) is _Json:
        return value._data
    if value is UNDEFINED:
        return None
    return value


def _no_nan(text: str) -> float:
    raise ValueError(f"{text} is not a number JSON allows")


#: Deeper than any device's JSON; a payload nested deeper is refused rather than walked.
MAX_JSON_DEPTH = 32


def parse_json(payload: bytes | str) -> Any:
    """JSON from the broker: ValueError for anything but plain, finite, reasonably nested JSON."""
    try:
        value = json.loads(payload, parse_constant=_no_nan)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if type(item) is dict:
            stack.extend((v, depth + 1) for v in item.values())
        elif type(item) is list:
            stack.extend((v, depth + 1) for v in item)
    return value


def to_text(value: Any) -> str:
    """A rendered value as Home Assistant compares it with a payload: ``True``, ``21.5``, ``ON``."""
    if value is None or value is UNDEFINED:
        return "None" if value is None else ""
    if type(value) is _Json:
        return str(value._data)
    return value if type(value) is str else str(value)


# --- the filters and tests ------------------------------------------------------------------------


def _number(kind: type, value: Any, default: Any) -> Any:
    try:
        result = kind(float(value)) if kind is int and not isinstance(value, (int, str)) else kind(value)
        if kind is float and not math.isfinite(result):
            raise ValueError("not a finite number")
        return result
    except (TypeError, ValueError, OverflowError):
        if default is not UNDEFINED:
            return default
        raise ValueError(f"{value!r} is not a number") from None


def _float(value: Any, default: Any = UNDEFINED) -> float:
    return _number(float, value, default)


def _int(value: Any, default: Any = UNDEFINED) -> int:
    if isinstance(value, str) and len(value) > 100:
        raise ValueError("number too long")
    return _number(int, value, default)


def _round(value: Any, precision: int = 0, method: str = "common") -> float:
    number = _float(value)
    if not isinstance(precision, int) or not 0 <= precision <= 15:
        raise ValueError("round's precision must be 0 to 15")
    if method == "floor":
        return math.floor(number * 10**precision) / 10**precision
    if method == "ceil":
        return math.ceil(number * 10**precision) / 10**precision
    return float(round(number, precision))


def _text(value: Any) -> str:
    text = to_text(value)
    if len(text) > MAX_SEQUENCE * 30:
        raise ValueError("text too long")
    return text


def _default(value: Any, default: Any = "", boolean: bool = False) -> Any:
    if value is UNDEFINED or (boolean and not value):
        return default
    return value


def _is_defined(value: Any) -> Any:
    if value is UNDEFINED:
        raise ValueError("a value the template requires is not defined")
    return value


def _tojson(value: Any) -> str:
    text = json.dumps(value, default=_plain, ensure_ascii=False)
    if len(text) > 256 * 1024:
        raise ValueError("JSON too long")
    return text


def _bool(value: Any, default: Any = UNDEFINED) -> bool:
    text = to_text(value).strip().lower()
    if text in ("true", "on", "yes", "1", "enable"):
        return True
    if text in ("false", "off", "no", "0", "disable", "none"):
        return False
    if default is not UNDEFINED:
        return default
    raise ValueError(f"{value!r} is not a boolean")


FUNCTIONS = {
    "float": _float,
    "int": _int,
    "round": _round,
    "lower": lambda value: _text(value).lower(),
    "upper": lambda value: _text(value).upper(),
    "trim": lambda value: _text(value).strip(),
    "string": _text,
    "bool": _bool,
    "abs": lambda value: abs(_float(value)),
    "default": _default,
    "d": _default,
    "is_defined": _is_defined,
    "defined": lambda value: value is not UNDEFINED,
    "tojson": _tojson,
    "to_json": _tojson,
}


# --- translating Jinja into the hub's expressions --------------------------------------------------

_CLOSE = {"(": ")", "[": "]", "{": "}"}
_CONSTANTS = {"true": "True", "false": "False", "none": "None"}
_WORDS = {"and", "or", "not", "if", "else", "in", "is"}
_SKIP = {tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT}


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    try:
        return [t for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type not in _SKIP]
    except (tokenize.TokenError, SyntaxError, IndentationError) as exc:
        raise TemplateError(f"cannot read {text.strip()!r}: {exc}") from None


#: Bounds checked before any parsing: the hub's expressions have their own (length, parts, depth),
#: but the translation must not recurse or tokenize without limit first.
MAX_TEMPLATE = 4000
MAX_NESTING = 60


def _sequence(tokens: list[tokenize.TokenInfo], i: int, closer: str | None, depth: int = 0) -> tuple[str, int]:
    """Translate tokens up to ``closer``; a filter applies to the primary right before its ``|``,
    as in Jinja (``-x | abs`` is ``-(abs(x))``)."""
    if depth > MAX_NESTING:
        raise TemplateError(f"nested deeper than {MAX_NESTING} brackets")
    pieces: list[str] = []
    after_atom = False
    while i < len(tokens):
        token = tokens[i]
        kind, text = token.type, token.string
        if kind == tokenize.OP and text in ")]}":
            if text != closer:
                raise TemplateError(f"unbalanced {text!r}")
            return " ".join(pieces), i + 1
        if kind == tokenize.OP and text in _CLOSE:
            inner, i = _sequence(tokens, i + 1, _CLOSE[text], depth + 1)
            piece = text + inner + _CLOSE[text]
            if after_atom:
                pieces[-1] += piece  # a call or a subscript of the primary before
            else:
                pieces.append(piece)
            after_atom = True
            continue
        if kind == tokenize.OP and text == "." and after_atom:
            if i + 1 >= len(tokens) or tokens[i + 1].type != tokenize.NAME:
                raise TemplateError("'.' must be followed by a name")
            pieces[-1] += "." + tokens[i + 1].string
            i += 2
            continue
        if kind == tokenize.OP and text == "|":
            if not after_atom or i + 1 >= len(tokens) or tokens[i + 1].type != tokenize.NAME:
                raise TemplateError("'|' must stand between a value and a filter name")
            operand, name = pieces.pop(), tokens[i + 1].string
            if name not in FUNCTIONS or name == "defined":
                raise TemplateError(f"the filter {name!r} is not supported")
            i += 2
            args = ""
            if i < len(tokens) and tokens[i].string == "(":
                inner, i = _sequence(tokens, i + 1, ")", depth + 1)
                args = f", {inner}" if inner.strip() else ""
            pieces.append(f"{name}({operand}{args})")
            after_atom = True
            continue
        if kind == tokenize.NAME and text == "is":
            j = i + 1
            negated = j < len(tokens) and tokens[j].string == "not"
            j += negated
            if j < len(tokens) and tokens[j].string in ("defined", "undefined") and after_atom:
                negated ^= tokens[j].string == "undefined"
                pieces.append(f"{'not ' if negated else ''}defined({pieces.pop()})")
                i = j + 1
                after_atom = True
                continue
        if kind == tokenize.NAME and text in _WORDS:
            pieces.append(text)
            after_atom = False
        elif kind in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING):
            pieces.append(_CONSTANTS.get(text, text) if kind == tokenize.NAME else text)
            after_atom = True
        else:
            pieces.append(text)
            after_atom = False
        i += 1
    if closer is not None:
        raise TemplateError(f"{closer!r} is missing")
    return " ".join(pieces), i


def translate(text: str) -> str:
    """The Jinja template ``text`` in the hub's template syntax; TemplateError outside the subset."""
    if len(text) > MAX_TEMPLATE:
        raise TemplateError(f"{len(text)} characters long; the limit is {MAX_TEMPLATE}")
    out: list[str] = []
    index = 0
    strip_next = False
    while True:
        opening = text.find("{{", index)
        literal = text[index:] if opening < 0 else text[index:opening]
        if strip_next:
            literal = literal.lstrip()
        if "{%" in literal or "{#" in literal:
            raise TemplateError("'{%' statements and '{#' comments are not supported")
        if opening < 0:
            out.append(literal)
            return "".join(out)
        start = opening + 2
        if text.startswith("-", start):
            literal = literal.rstrip()
            start += 1
        out.append(literal)
        closing = _expression_end(text, start)
        if closing < 0:
            raise TemplateError("'{{' is never closed")
        body = text[start:closing]
        strip_next = body.endswith("-")
        if strip_next:
            body = body[:-1]
        expression, _ = _sequence(_tokens(body), 0, None)
        out.append("{{ " + expression + " }}")
        index = closing + 2


class HaTemplate:
    """A compiled template; ``render(payload)`` gives its value for one message."""

    __slots__ = ("text", "_template")

    def __init__(self, text: str, template: Template) -> None:
        self.text = text
        self._template = template

    def render(self, value: Any, value_json: Any = UNDEFINED, **variables: Any) -> Any:
        env = {"value": value, "value_json": _Json(value_json) if type(value_json) is dict else value_json,
               **variables}
        try:
            return self._template.render(env)
        except ExpressionError as exc:
            raise TemplateError(exc.message) from None

    def render_payload(self, payload: bytes) -> Any:
        """Render for a message: ``value`` is its text, ``value_json`` its JSON when it is JSON."""
        text, value_json = _decoded(payload)
        return self.render(text, value_json)


#: The last message decoded: every entity of a Zigbee2MQTT device reads the same message (one bytes
#: object handed to each), so it is parsed once, not once per entity.
_last_decoded: list[Any] = [None, None, None]


def _decoded(payload: bytes) -> tuple[str, Any]:
    if _last_decoded[0] is payload:
        return _last_decoded[1], _last_decoded[2]
    text = payload.decode("utf-8", errors="replace")
    try:
        value_json = parse_json(text)
    except (ValueError, RecursionError):
        value_json = UNDEFINED
    _last_decoded[:] = [payload, text, value_json]
    return text, value_json

    def __repr__(self) -> str:
        return f"<HaTemplate {self.text!r}>"


def compile_ha(text: str) -> HaTemplate:
    """Compile a Home Assistant template; TemplateError (naming the template) outside the subset."""
    shown = text if len(text) <= 200 else text[:200] + "..."
    try:
        return HaTemplate(text, compile_template(translate(text), FUNCTIONS, jinja=False))
    except TemplateError as exc:
        raise TemplateError(f"template {shown!r} is not supported: {exc}") from None
    except ExpressionError as exc:
        raise TemplateError(f"template {shown!r} is not supported: {exc.message}") from None
