"""Templates: strings with ``{{ expr }}`` parts, and nested action arguments made of them.

Two engines behind one interface. A template the hub's own evaluator (:mod:`hub.rules.expressions`)
can compile runs on it: it is Home Assistant's expression syntax minus filters and blocks, and about
ten times cheaper per render than Jinja. Anything else (``| float(0)``, ``~``, ``{% if %}``,
``{% set %}``, loops, macros) is compiled by Jinja2 in its sandbox (:mod:`hub.rules.jinja`, HA's
functions in :mod:`hub.rules.jinja_ha`). Both refuse ``_`` names and unknown functions when the
rule loads; positions in errors count from the start of the template.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from hub.rules import jinja
from hub.rules.expressions import Env, ExpressionError, Fn, _compile, _functions
from hub.rules.safe_ops import MAX_SEQUENCE

class Template:
    """A string with ``{{ expr }}`` parts, as in Home Assistant.

    A template that is one part and nothing else (surrounding whitespace aside) renders to the raw
    value, so ``"{{ brightness * 2 }}"`` passes an int to the command and not the string ``"84"``.
    """

    __slots__ = ("text", "is_static", "names", "entity_ids", "_render")

    def __init__(
        self,
        text: str,
        render: Callable[[Env], Any],
        is_static: bool,
        names: frozenset[str],
        entity_ids: frozenset[str],
    ) -> None:
        self.text = text
        self.is_static = is_static
        self.names = names
        self.entity_ids = entity_ids
        self._render = render

    def render(self, env: Env) -> Any:
        try:
            return self._render(env)
        except ExpressionError:
            raise
        except Exception as exc:
            raise ExpressionError(str(exc) or type(exc).__name__, self.text, 0) from None

    def __repr__(self) -> str:
        return f"<Template {self.text!r}>"


def _expression_end(text: str, start: int) -> int:
    """Index of the ``}}`` closing a part whose expression starts at ``start``, or -1.

    Skips strings and balanced brackets, so ``{{ {'a': {'b': 1}} }}`` and ``{{ '}}' }}`` work.
    """
    depth, i, n = 0, start, len(text)
    while i < n:
        char = text[i]
        if char in "'\"":
            quote = char * 3 if text.startswith(char * 3, i) else char
            i += len(quote)
            while i < n and not text.startswith(quote, i):
                i += 2 if text[i] == "\\" else 1
            i += len(quote)
            continue
        if char in "([{":
            depth += 1
        elif char == "}" and depth == 0 and text.startswith("}}", i):
            return i
        elif char in ")]}":
            depth -= 1
            if depth < 0:  # unbalanced: let the parser report it
                break
        i += 1
    return text.find("}}", start)


_STATEMENT = re.compile(r"\{[%#]")
#: Signs that a template was written for Jinja: its errors are then Jinja's, else the own evaluator's.
_JINJA_SYNTAX = re.compile(r"\{[%#]|\||~")


#: HA's versions of these replace Python's in templates and template conditions, whichever engine
#: compiles them, so a template means the same in both: ``float(x, 0)`` and ``int(x, 0)`` take a
#: default (Python's ``int('ff', 16)`` is HA's ``int('ff', 0, 16)``), ``bool('off')`` is False.
HA_FUNCTIONS = frozenset({
    "float", "int", "round", "bool", "iif", "min", "max", "as_timestamp", "as_datetime", "as_local",
    "today_at", "utcnow", "relative_time", "timedelta", "from_json", "to_json", "regex_match",
    "regex_search", "regex_replace",
})
_TABLES: dict[int, tuple[Any, Mapping]] = {}
_JINJA_LITERALS = frozenset({"true", "false", "none"})


def _functions_ha(functions: Mapping[str, Callable] | None) -> Mapping[str, Callable]:
    """The own evaluator's function table for templates: the engine's, with HA's where they differ."""
    cached = _TABLES.get(id(functions))
    if cached is not None and cached[0] is functions:
        return cached[1]
    base = _functions(functions)
    known = jinja.globals_for(functions if functions is not None else base)
    table = {**base, **{name: known[name] for name in HA_FUNCTIONS if name in known and known[name] is not base.get(name)}}
    if len(_TABLES) > 64:
        _TABLES.clear()
    _TABLES[id(functions)] = (functions, table)
    return table


def compile_template(text: str, functions: Mapping[str, Callable] | None = None, *, jinja: bool = True) -> Template:
    """Compile a template; error positions are offsets into the whole ``text``.

    ``jinja=False``: the own evaluator only, with the caller's functions as they are (the MQTT
    plugin translates discovery templates into its syntax and wants that subset's errors).
    """
    if not isinstance(text, str):
        raise ExpressionError(f"template must be a string, not {type(text).__name__}", repr(text), 0)
    if not jinja:
        statement = _STATEMENT.search(text)
        if statement:
            raise ExpressionError("'{%' and '{#' blocks are not supported", text, statement.start())
        return _compile_own(text, _functions(functions))
    table = _functions_ha(functions)
    if _STATEMENT.search(text):
        return compile_jinja(text, table)
    try:
        template = _compile_own(text, table)
        if not template.names & _JINJA_LITERALS:
            return template
        raise ExpressionError("Jinja's literals", text, 0)  # ``true``/``none``: Jinja's reading
    except ExpressionError as own:
        try:
            return compile_jinja(text, table)
        except ExpressionError as other:
            raise (other if _JINJA_SYNTAX.search(text) else own) from None


def _compile_own(text: str, table: Mapping[str, Callable]) -> Template:
    parts: list[str | tuple[Fn, int]] = []  # literal text, or (expression, where its "{{" is)
    names: set[str] = set()
    entity_ids: set[str] = set()
    index = 0
    while True:
        opening = text.find("{{", index)
        literal = text[index:] if opening < 0 else text[index:opening]
        if literal:
            parts.append(literal)
        if opening < 0:
            break
        closing = _expression_end(text, opening + 2)
        if closing < 0:
            raise ExpressionError("'{{' is never closed", text, opening)
        fn, compiler = _compile(text[opening + 2 : closing], table, text, opening + 2)
        parts.append((fn, opening))
        names |= compiler.names
        entity_ids |= compiler.entity_ids
        index = closing + 2

    expressions = [part for part in parts if type(part) is tuple]
    if not expressions:
        render: Callable[[Env], Any] = lambda env: text
    elif len(expressions) == 1 and all(part.isspace() for part in parts if type(part) is str):
        render = expressions[0][0]
    else:

        def render(env: Env) -> str:
            out = []
            length = 0
            for part in parts:
                if type(part) is str:
                    out.append(part)
                    length += len(part)
                    continue
                fn, position = part
                value = fn(env)
                try:
                    out.append(value if type(value) is str else str(value))
                except Exception as exc:  # e.g. an int too long to print
                    raise ExpressionError(str(exc) or type(exc).__name__, text, position) from None
                length += len(out[-1])
                if length > MAX_SEQUENCE:  # each part is bounded, their sum must be too
                    message = f"the text would be too long (over {MAX_SEQUENCE} characters)"
                    raise ExpressionError(message, text, position)
            return "".join(out)

    return Template(text, render, not expressions, frozenset(names), frozenset(entity_ids))


def compile_jinja(text: str, functions: Mapping[str, Callable]) -> Template:
    """Compile ``text`` with Jinja in the hub's sandbox; errors carry the offending line's offset."""
    if len(text) > jinja.MAX_SOURCE:
        message = f"template is too long ({len(text)} characters; the limit is {jinja.MAX_SOURCE})"
        raise ExpressionError(message, text, jinja.MAX_SOURCE)
    env = jinja.environment()
    known = jinja.globals_for(functions)
    key = (text, id(known))
    cached = _JINJA_CACHE.get(key)
    if cached is not None and cached[0] is known:  # a reload recompiles nothing it has seen
        return cached[1]
    template = _compile_jinja(text, known, env)
    if len(_JINJA_CACHE) >= _JINJA_CACHE_SIZE:
        _JINJA_CACHE.pop(next(iter(_JINJA_CACHE)))
    _JINJA_CACHE[key] = (known, template)
    return template


#: Compiled Jinja templates by (text, globals): compiling one costs milliseconds (Jinja generates
#: Python source and compiles it), rendering microseconds, and a reload sees the same texts again.
_JINJA_CACHE: dict[tuple[str, int], tuple[dict, Template]] = {}
_JINJA_CACHE_SIZE = 5000


def _compile_jinja(text: str, known: dict, env: Any) -> Template:
    from jinja2 import TemplateError, UndefinedError, nodes
    from jinja2.runtime import Undefined

    try:
        tree = env.parse(text)
    except TemplateError as exc:
        lineno = getattr(exc, "lineno", None)
        raise ExpressionError(f"syntax error: {exc.message} (line {lineno})", text, jinja.line_offset(text, lineno)) from None
    analysis, problem, lineno = jinja.analyse(tree, known)
    if problem:
        raise ExpressionError(f"{problem} (line {lineno})", text, jinja.line_offset(text, lineno))
    jinja.guard_loops(tree)
    expression = jinja.single_expression(tree)
    if expression is not None:  # one ``{{ expr }}``: render to its value, not its text
        tree = nodes.Template([nodes.Assign(nodes.Name("hub_result", "store"), expression)], lineno=1)
    try:
        template = env.from_string(tree, globals=known)
    except TemplateError as exc:  # e.g. an unknown filter
        lineno = getattr(exc, "lineno", None)
        raise ExpressionError(f"{exc.message} (line {lineno})", text, jinja.line_offset(text, lineno)) from None

    def failure(exc: BaseException) -> ExpressionError:
        lineno = jinja.template_lineno(template, exc)
        if isinstance(exc, jinja.TemplateBomb | UndefinedError | ExpressionError):
            message = str(getattr(exc, "message", None) or exc)
        else:
            message = str(exc) or type(exc).__name__
        return ExpressionError(f"{message} (line {lineno or 1})", text, jinja.line_offset(text, lineno))

    root = template.root_render_func
    # Jinja's new_context merges a ChainMap of globals per render; merge once, copy a plain dict.
    merged = dict(template.globals)
    context_class, environment, name, blocks, template_globals = (
        env.context_class, env, template.name, template.blocks, template.globals
    )

    def new_context(variables: Env) -> Any:
        parent = {**merged, **variables} if variables else dict(merged)
        return context_class(environment, parent, name, blocks, globals=template_globals)

    limit = jinja.MAX_OUTPUT

    def render(variables: Env) -> Any:
        token = jinja.start_budget()
        try:
            context = new_context(variables)
            if expression is not None:
                for _ in root(context):
                    pass
                value = context.vars.get("hub_result")
                if isinstance(value, Undefined):
                    value._fail_with_undefined_error()
                return value
            out, length = [], 0
            for piece in root(context):
                length += len(piece)
                if length > limit:
                    raise jinja.TemplateBomb(f"the rendered text is too long (over {limit} characters)")
                out.append(piece)
            return "".join(out)
        except RecursionError:
            raise ExpressionError("the template is nested too deeply", text, 0) from None
        except Exception as exc:  # noqa: BLE001 - every failure of a user's template is that rule's error
            raise failure(exc) from None
        finally:
            jinja.end_budget(token)

    return Template(text, render, False, frozenset(analysis.names), frozenset(analysis.entity_ids))


class JinjaCondition:
    """A condition written for Jinja, with :class:`~hub.rules.expressions.Expression`'s interface."""

    __slots__ = ("text", "names", "entity_ids", "_template")

    def __init__(self, text: str, template: Template) -> None:
        self.text = text
        self.names = template.names
        self.entity_ids = template.entity_ids
        self._template = template

    def evaluate(self, env: Env) -> bool:
        return result_as_boolean(self._template.render(env))


def result_as_boolean(value: Any) -> bool:
    """HA's reading of a rendered condition: ``true``/``yes``/``on``/``enable`` or a non-zero number."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "yes", "on", "enable"):
            return True
        try:
            return float(text) != 0
        except ValueError:
            return False
    return bool(value)


def compile_condition(text: str, functions: Mapping[str, Callable] | None = None) -> Any:
    """A condition's expression (``{{ }}`` already stripped): the own evaluator's, else Jinja's.

    Returns an object with ``evaluate(env)``, ``entity_ids`` and ``names``.
    """
    from hub.rules.expressions import compile_expression

    stripped = text.strip()
    if stripped.startswith("{{") and stripped.endswith("}}") and "{{" not in stripped[2:-2] and "}}" not in stripped[2:-2]:
        text = stripped[2:-2]  # ``value_template: "{{ ... }}"``: one expression
    table = _functions_ha(functions)
    if not _STATEMENT.search(text) and "{{" not in text:
        try:
            return compile_expression(text, table)
        except ExpressionError as own:
            try:
                return JinjaCondition(text, compile_jinja("{{" + text + "}}", table))
            except ExpressionError as other:
                raise (other if _JINJA_SYNTAX.search(text) else own) from None
    return JinjaCondition(text, compile_jinja(text, table))


def compile_value(value: Any, functions: Mapping[str, Callable] | None = None) -> Callable[[Env], Any]:
    """Compile every string in nested dicts and lists (an action's arguments) as a template.

    Returns ``render(env)``, which builds fresh containers on each call, so a handler that mutates
    its arguments cannot change what the next run receives. Dict keys are taken literally.
    """
    if isinstance(value, str):
        template = compile_template(value, functions)
        if template.is_static:
            return lambda env: value
        return template.render
    if isinstance(value, Mapping):
        items = [(key, compile_value(item, functions)) for key, item in value.items()]
        return lambda env: {key: render(env) for key, render in items}
    if isinstance(value, (list, tuple)):
        renders = [compile_value(item, functions) for item in value]
        kind = type(value) if type(value) in (list, tuple) else list
        return lambda env: kind([render(env) for render in renders])
    return lambda env: value
