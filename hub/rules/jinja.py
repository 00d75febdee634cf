"""Home Assistant's templates: Jinja2 in its immutable sandbox, with the hub's bounds on top.

Jinja's sandbox stops attribute walks to Python's internals, but not resource bombs: ``'a' ~ 'a'``
doubling in a loop, ``'x' | center(10**9)`` or nested loops over ``range(10**5)`` would each stall
the hub's only event loop. So, on top of :class:`ImmutableSandboxedEnvironment`:

* attributes: a name starting with ``_`` is refused when the template loads, and at run time only
  the members :mod:`hub.rules.safe_ops` lists (plus a few read-only ones below) can be read;
* operators ``+ * ** %`` and ``~`` go through size guards (``~`` by a code generator override);
* every ``for`` loop iterates through a guard counting iterations against a per-render budget;
  calls count too, and their nesting depth (a macro calling itself) is bounded;
* only a reviewed list of Jinja's filters is kept, and the rendered text is capped.

A bomb raises :class:`TemplateBomb`; the template turns it into an ExpressionError for that run.
"""

from __future__ import annotations

import contextvars
from datetime import date, datetime, time, timedelta
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.runtime import StrictUndefined

from hub.rules import safe_ops
from hub.rules.safe_ops import MAX_SEQUENCE, _add, _check_size, _mod, _mul, _pow

#: Per render: loop iterations, calls, call nesting, rendered characters.
MAX_ITERATIONS = 100_000
MAX_CALLS = 100_000
MAX_CALL_DEPTH = 40
MAX_OUTPUT = 65_536
#: Template source, like the own evaluator's expression limit but for whole blocks.
MAX_SOURCE = 20_000


class TemplateBomb(Exception):
    """A template went past one of the bounds above."""


class _Budget:
    __slots__ = ("iterations", "calls", "depth")

    def __init__(self) -> None:
        self.iterations = 0
        self.calls = 0
        self.depth = 0


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("hub_jinja_budget", default=None)


def start_budget() -> contextvars.Token:
    return _budget.set(_Budget())


def end_budget(token: contextvars.Token) -> None:
    _budget.reset(token)


def _current() -> _Budget:
    budget = _budget.get()
    if budget is None:  # rendered outside render(): still bounded, by a budget of its own
        budget = _Budget()
        _budget.set(budget)
    return budget


_TOO_MUCH = f"the template did too much work (over {MAX_ITERATIONS} loop iterations and items filtered)"


def charge(steps: int) -> None:
    """Count ``steps`` against the render's budget: loops, ranges made and items filtered share it,
    so ``range(10**5) | list`` inside a loop of 10**5 is refused, not ten billion steps."""
    budget = _current()
    budget.iterations += steps
    if budget.iterations > MAX_ITERATIONS:
        raise TemplateBomb(_TOO_MUCH)


def loop_guard(iterable: Iterable[Any]) -> Iterable[Any]:
    """What every ``{% for %}`` iterates: counts each item against the render's budget."""
    budget = _current()
    for item in iterable:
        budget.iterations += 1  # noqa: SIM113 - the budget is shared across loops
        if budget.iterations > MAX_ITERATIONS:
            raise TemplateBomb(_TOO_MUCH)
        yield item


def bounded_range(*args: int) -> range:
    """Jinja's sandboxed ``range`` (at most 100,000 items), charged by its length."""
    items = safe_range(*args)
    charge(len(items) + 1)
    return items


def charged_filter(fn: Any) -> Any:
    """Wrap a filter so each call is charged the size of what it works on."""
    pass_arg = getattr(fn, "jinja_pass_arg", None)
    skip = 0 if pass_arg is None else 1

    def filtered(*args: Any, **kwargs: Any) -> Any:
        value = args[skip] if len(args) > skip else None
        try:
            size = len(value) if isinstance(value, (str, list, tuple, dict, range)) else 1
        except TypeError:
            size = 1
        charge(size + 1)
        return fn(*args, **kwargs)

    if pass_arg is not None:
        filtered.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    filtered.__name__ = getattr(fn, "__name__", "filter")
    return filtered


#: The filter every ``{% for %}`` iterable is wrapped in when the template loads (see guard_loops).
LOOP_FILTER = "hub_loop_guard"


def guard_loops(tree: nodes.Template) -> None:
    """Wrap each loop's iterable in :func:`loop_guard`, so nested loops share one budget."""
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, LOOP_FILTER, [], [], None, None, lineno=loop.lineno)


def _concat(values: Iterable[Any]) -> str:
    """``a ~ b``: refuses to build text past the sequence limit."""
    parts = [value if type(value) is str else str(value) for value in values]
    _check_size(sum(map(len, parts)))
    return "".join(parts)


_BINOPS = {"+": _add, "*": _mul, "**": _pow, "%": _mod}


class _HubCodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Any) -> None:
        self.write("environment.hub_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


#: Read-only members beyond safe_ops' lists, as HA's templates use them.
_EXTRA_METHODS: dict[type, frozenset[str]] = {
    str: frozenset({"title", "capitalize", "isdigit", "isnumeric", "isalpha", "lstrip", "rstrip", "count", "find", "splitlines"}),
    dict: frozenset({"items", "keys", "values", "get"}),
    datetime: frozenset({"strftime", "date", "time", "astimezone", "replace", "tzinfo", "isoformat", "timestamp", "weekday", "isoweekday"}),
    date: frozenset({"strftime"}),
    time: frozenset({"hour", "minute", "second", "microsecond", "strftime", "isoformat"}),
    timedelta: frozenset({"days", "seconds", "microseconds", "total_seconds"}),
}


class HubSandbox(ImmutableSandboxedEnvironment):
    """The one environment every template compiles in (globals are per template)."""

    code_generator_class = _HubCodeGenerator
    intercepted_binops = frozenset(_BINOPS)

    def __init__(self) -> None:
        # optimized=False: Jinja's constant folding costs more at load than it saves per render here.
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, optimized=False)
        self.hub_concat = _concat
        for name in ("lipsum", "cycler", "joiner", "dict"):
            self.globals.pop(name, None)
        self.filters = {name: fn for name, fn in self.filters.items() if name in _SAFE_FILTERS}
        self.globals["range"] = bounded_range
        self.filters[LOOP_FILTER] = loop_guard

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        op = _BINOPS.get(operator)
        if op is None:
            return super().call_binop(context, operator, left, right)
        return op(left, right)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_") or not super().is_safe_attribute(obj, attr, value):
            return False
        kind = type(obj)
        if kind in _EXPOSED:
            return True
        if (kind.__module__, kind.__name__) in (("jinja2.utils", "Namespace"), ("jinja2.runtime", "LoopContext")):
            return True
        if attr in safe_ops._ATTRIBUTES.get(kind, ()) or attr in safe_ops._METHODS.get(kind, ()):
            return True
        if isinstance(obj, Mapping) and attr in _EXTRA_METHODS[dict]:
            return True
        return attr in _EXTRA_METHODS.get(kind, ())

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = _current()
        budget.calls += 1
        if budget.calls > MAX_CALLS:
            raise TemplateBomb(f"the template made too many calls (over {MAX_CALLS})")
        if budget.depth >= MAX_CALL_DEPTH:
            raise TemplateBomb(f"calls are nested too deeply (over {MAX_CALL_DEPTH} levels; a macro calling itself?)")
        owner = getattr(__obj, "__self__", None)
        if type(owner) is str:
            safe_ops._string_method_guard(owner, getattr(__obj, "__name__", ""), args)
        budget.depth += 1
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        if type(result) is str and len(result) > MAX_SEQUENCE:
            _check_size(len(result))
        return result


#: Types whose public attributes are all safe to read (the HA helpers' own view objects).
_EXPOSED: set[type] = set()


def expose(cls: type) -> type:
    """Class decorator: templates may read every public attribute of ``cls``."""
    _EXPOSED.add(cls)
    return cls


#: Jinja's filters kept: those whose cost is bounded by their input (which is bounded). Dropped:
#: center, indent, wordwrap, format (unbounded widths; ``%`` is guarded), batch and slice (their
#: counts pad), urlize, xmlattr, pprint, random, filesizeformat is harmless but kept out of scope.
_SAFE_FILTERS = frozenset({
    "abs", "attr", "capitalize", "count", "default", "d", "dictsort", "escape", "e", "first",
    "groupby", "join", "last", "length", "list", "lower", "map", "max", "min", "reject",
    "rejectattr", "replace", "reverse", "select", "selectattr", "sort", "string", "striptags",
    "sum", "title", "trim", "truncate", "unique", "upper", "wordcount", "items", "tojson", "urlencode",
})


# --- compiling -----------------------------------------------------------------------------------

_ENVIRONMENT: HubSandbox | None = None


def environment() -> HubSandbox:
    """The shared sandbox, with HA's filters and tests (made on first use: import stays cheap)."""
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        from hub.rules import jinja_ha

        env = HubSandbox()
        env.filters.update(jinja_ha.FILTERS)
        env.filters.update(_guarded_filters(env.filters))
        env.filters = {
            name: fn if name == LOOP_FILTER else charged_filter(fn) for name, fn in env.filters.items()
        }
        env.tests.update(jinja_ha.TESTS)
        _ENVIRONMENT = env
    return _ENVIRONMENT


_GLOBALS: dict[int, tuple[Mapping, dict]] = {}


def globals_for(functions: Mapping[str, Any]) -> dict:
    """HA's globals for one function table, made once per table (one per hub, a few in tests)."""
    cached = _GLOBALS.get(id(functions))
    if cached is not None and cached[0] is functions:
        return cached[1]
    from hub.rules import jinja_ha

    table = jinja_ha.ha_globals(functions)
    table["range"] = environment().globals["range"]
    table["namespace"] = environment().globals["namespace"]
    if len(_GLOBALS) > 64:
        _GLOBALS.clear()
    _GLOBALS[id(functions)] = (functions, table)
    return table


#: Functions whose first argument (or filters whose input) is an entity id: literal ids tell the
#: engine which entities a template reads, and are checked when the rule loads.
ENTITY_CALLS = frozenset({"states", "state_attr", "is_state", "is_state_attr", "has_value", "expand"})


def line_offset(text: str, lineno: int | None) -> int:
    """Character offset of line ``lineno`` (1-based) in ``text``."""
    if not lineno or lineno <= 1:
        return 0
    offset = 0
    for _ in range(lineno - 1):
        found = text.find("\n", offset)
        if found < 0:
            return offset
        offset = found + 1
    return offset


class Analysis:
    """What a parsed template reads, and the first thing in it that must not load."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.entity_ids: set[str] = set()


def analyse(tree: nodes.Template, known: Mapping[str, Any]) -> tuple[Analysis, str | None, int | None]:
    """Names, entity ids, and an error (message, line) for ``_`` names or unknown functions."""
    found = Analysis()
    local: set[str] = set()
    for node in tree.find_all((nodes.Name, nodes.Macro, nodes.Import, nodes.FromImport)):
        if isinstance(node, nodes.Name) and node.ctx in ("store", "param"):
            local.add(node.name)
        elif isinstance(node, nodes.Macro):
            local.add(node.name)
    local |= {"loop", "self", "varargs", "kwargs", "caller", "super"}
    for node in tree.find_all((nodes.Name, nodes.Getattr)):
        name = node.name if isinstance(node, nodes.Name) else node.attr
        if name.startswith("_"):
            return found, f"names starting with '_' are not allowed: {name!r}", node.lineno
    for node in tree.find_all(nodes.Call):
        func = node.node
        if isinstance(func, nodes.Name):
            if func.name not in known and func.name not in local:
                return found, f"unknown function {func.name!r}", node.lineno
            first = node.args[0] if node.args else None
            if func.name in ENTITY_CALLS and isinstance(first, nodes.Const) and type(first.value) is str:
                found.entity_ids.add(first.value)
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        if node.name in ENTITY_CALLS and isinstance(node.node, nodes.Const) and type(node.node.value) is str:
            found.entity_ids.add(node.node.value)
    for node in tree.find_all(nodes.Getattr):
        inner = node.node
        if (
            isinstance(inner, nodes.Getattr)
            and isinstance(inner.node, nodes.Name)
            and inner.node.name == "states"
            and "states" not in local
        ):
            found.entity_ids.add(f"{inner.attr}.{node.attr}")
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in known and node.name not in local:
            found.names.add(node.name)
    return found, None, None


def single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression of a template that is one ``{{ expr }}`` and whitespace, else None."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts = [
        part for part in tree.body[0].nodes
        if not (isinstance(part, nodes.TemplateData) and part.data.isspace())
    ]
    if len(parts) != 1 or isinstance(parts[0], nodes.TemplateData):
        return None
    return parts[0]


def template_lineno(template: Any, exc: BaseException) -> int | None:
    """The template line a run-time error came from, read off the traceback."""
    tb = exc.__traceback__
    lineno = None
    while tb is not None:
        if tb.tb_frame.f_globals.get("__jinja_template__") is not None:
            try:
                lineno = template.get_corresponding_lineno(tb.tb_lineno)
            except Exception:  # noqa: BLE001 - a line number is a courtesy
                pass
        tb = tb.tb_next
    return lineno


def _guarded_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """``join``, ``replace`` and ``sum``: Jinja's, after checking what they would build."""
    join, replace, total = filters["join"], filters["replace"], filters["sum"]

    def guarded_join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
        items = list(value)
        charge(len(items))
        if attribute is None:
            size = sum(len(item) if type(item) is str else 20 for item in items)
            _check_size(size + len(str(d)) * max(len(items) - 1, 0))
        result = join(eval_ctx, items, d, attribute)
        _check_size(len(result))
        return result

    def guarded_replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> Any:
        if type(s) is str and type(old) is str and type(new) is str:
            safe_ops._string_method_guard(s, "replace", (old, new))
            if old == "":
                _check_size(len(s) + (len(s) + 1) * len(new))
        return replace(eval_ctx, s, old, new, count)

    def guarded_sum(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        if type(start) not in (int, float, bool):
            raise TypeError("sum's start must be a number")  # summing lists is quadratic
        return total(environment, iterable, attribute, start)

    for guarded, original in ((guarded_join, join), (guarded_replace, replace), (guarded_sum, total)):
        guarded.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    return {"join": guarded_join, "replace": guarded_replace, "sum": guarded_sum}
