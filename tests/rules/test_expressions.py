"""The expression evaluator: what it computes, what it refuses, and that it cannot be talked into
running anything else."""

from __future__ import annotations

import ast
import datetime as dt
import math
import pickle
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.core.state import State
from hub.rules import expressions, safe_ops, templates
from hub.rules.expressions import ExpressionError, allow_attributes, compile_expression
from hub.rules.templates import compile_template, compile_value

NOW = dt.datetime(2024, 3, 5, 22, 30, 15, 500)
STATES = {"sensor.room_temp": "12.5", "lock.front_door": "locked", "light.kitchen": "on"}
ATTRIBUTES = {"light.kitchen": {"brightness": 128}}

FUNCTIONS = {
    "states": lambda entity_id: STATES.get(entity_id),
    "is_state": lambda entity_id, value: STATES.get(entity_id) == value,
    "state_attr": lambda entity_id, name: ATTRIBUTES.get(entity_id, {}).get(name),
    "now": lambda: NOW,
}


def evaluate(text: str, env: dict | None = None, functions: dict | None = None):
    return compile_expression(text, FUNCTIONS if functions is None else functions).evaluate(env or {})


def error_of(text: str, env: dict | None = None, functions: dict | None = None) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        evaluate(text, env, functions)
    return info.value


# --- what it computes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 % 3", 2),
        ("2 ** 10", 1024),
        ("2 ** -1", 0.5),
        ("-x + +1", -4),
        ("'ab' + 'cd'", "abcd"),
        ("'ab' * 3", "ababab"),
        ("[1] * 3", [1, 1, 1]),
        ("1 < x < 10", True),
        ("1 < x > 10", False),
        ("x == 5 != 6", True),
        ("x is None", False),
        ("missing is None", True),
        ("x is not None", True),
        ("not x", False),
        ("3 in [1, 2, 3]", True),
        ("'a' not in 'abc'", False),
        ("'k' in {'k': 1}", True),
        ("'yes' if x > 3 else 'no'", "yes"),
        ("0 or '' or 'last'", "last"),
        ("1 and 0 and 2", 0),
        ("x and 'both'", "both"),
        ("[1, 2, 3][0]", 1),
        ("[1, 2, 3][-1]", 3),
        ("[1, 2, 3][1:]", [2, 3]),
        ("'hello'[::-1]", "olleh"),
        ("(1, 'a')", (1, "a")),
        ("{'a': x, 'b': [x]}", {"a": 5, "b": [5]}),
        ("{'a': 1}['a']", 1),
        ("d.inner.value * 2", 42),
        ("d['inner']['value']", 21),
        ("float('2.5') + int('3') + int('ff', 16)", 260.5),
        ("round(2.567, 2)", 2.57),
        ("abs(-3) + len('abc') + min(4, 2) + max([1, 9]) + sum([1, 2])", 20),
        ("str(12) + str(True)", "12True"),
        ("bool('')", False),
        ("math_nan != math_nan", True),
        ("float('nan') != float('nan')", True),
        ("'  On '.strip().lower() == 'on'", True),
        ("'abc'.upper()", "ABC"),
        ("'a,b'.split(',')", ["a", "b"]),
        ("'sensor.x'.startswith('sensor.') and 'x.y'.endswith('y')", True),
        ("'a-b'.replace('-', '_')", "a_b"),
    ],
)
def test_computes_like_python(text, expected):
    env = {"x": 5, "missing": None, "d": {"inner": {"value": 21}}, "math_nan": math.nan}
    result = evaluate(text, env)
    assert result == expected and type(result) is type(expected)


def test_multiline_in_parentheses_and_leading_whitespace():
    assert evaluate("  (1 +\n   2)\n") == 3


def test_trigger_dict_and_state_objects():
    env = {"trigger": {"to_state": {"value": 21, "attributes": {"unit": "°C"}}}}
    assert evaluate("trigger.to_state.value * 2", env) == 42
    assert evaluate("trigger.to_state.attributes.unit", env) == "°C"
    state = State("sensor.t", 21, {"unit": "°C"}, available=False)
    env = {"trigger": {"to_state": state}}
    assert evaluate("trigger.to_state.value * 2", env) == 42
    assert evaluate("trigger.to_state.state", env) == "unavailable"
    assert evaluate("trigger.to_state.attributes.unit + '!'", env) == "°C!"
    assert evaluate("trigger.to_state.attributes['unit']", env) == "°C"
    assert "no readable attribute 'as_dict'" in error_of("trigger.to_state.as_dict", env).message
    assert "unknown method 'as_dict'" in error_of("trigger.to_state.as_dict()", env).message


def test_home_assistant_style_conditions():
    assert evaluate("float(states('sensor.room_temp')) < 15") is True
    assert evaluate("is_state('lock.front_door', 'locked') and now().hour >= 22") is True
    assert evaluate("state_attr('light.kitchen', 'brightness') > 100") is True


def test_datetime_attributes_and_methods():
    env = {"t": NOW, "d": NOW.date()}
    assert evaluate("[t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond]", env) == [
        2024, 3, 5, 22, 30, 15, 500,
    ]
    assert evaluate("t.weekday() == 1 and t.isoweekday() == 2", env) is True
    assert evaluate("t.isoformat()", env) == NOW.isoformat()
    assert evaluate("t.timestamp()", env) == NOW.timestamp()
    assert evaluate("d.year + d.weekday()", env) == 2025
    assert "no readable attribute 'tzinfo'" in error_of("t.tzinfo", env).message
    assert "unknown method 'strftime'" in error_of("t.strftime('%Y')", env).message


def test_and_or_short_circuit_like_python():
    calls = []

    def record(value):
        calls.append(value)
        return value

    functions = {"record": record}
    assert evaluate("record(0) and record(1)", functions=functions) == 0
    assert evaluate("record(2) or record(3)", functions=functions) == 2
    assert evaluate("record(4) if record(0) else record(5)", functions=functions) == 5
    assert evaluate("record(1) < record(0) < record(9)", functions=functions) is False
    assert calls == [0, 2, 0, 5, 1, 0]  # never 1 after a falsy 0, 3, 4 or 9


def test_names_and_entity_ids():
    expression = compile_expression(
        "states('sensor.a') < 15 and is_state('lock.b', 'on') and state_attr(x, 'y') and trigger.to_state",
        FUNCTIONS,
    )
    assert expression.entity_ids == {"sensor.a", "lock.b"}  # x is not a literal: unknown until run
    assert expression.names == {"x", "trigger"}
    template = compile_template("{{ states('sensor.a') }} and {{ t }}", FUNCTIONS)
    assert template.entity_ids == {"sensor.a"} and template.names == {"t"}


def test_functions_are_bound_at_compile_time_and_are_not_values():
    assert evaluate("double(4)", functions={"double": lambda v: v * 2}) == 8
    assert evaluate("int('7')", functions={}) == 7  # the defaults are always there
    assert evaluate("len(s)", {"s": "abc"}, functions={}) == 3
    assert "can only be called" in error_of("max").message
    # a function smuggled in as a variable cannot be called
    assert "only named functions" in error_of("[f][0]()", {"f": print}).message
    assert "unknown function 'f'" in error_of("f()", {"f": print}).message


# --- templates -----------------------------------------------------------------------------------


def test_templates():
    env = {"t": 21.5, "n": 4}
    assert compile_template("{{ 1 + 1 }}").render({}) == 2
    assert compile_template("  {{ n * 2 }}\n").render(env) == 8  # YAML block scalars add a newline
    assert compile_template("Temp is {{ t }} °C").render(env) == "Temp is 21.5 °C"
    assert compile_template("{{ n }}{{ n }}").render(env) == "44"
    assert compile_template("{{ {'a': {'b': n}} }}").render(env) == {"a": {"b": 4}}
    assert compile_template("say {{ '}}' }}!").render(env) == "say }}!"
    static = compile_template("just text }}")
    assert static.is_static and static.render(env) == "just text }}"
    assert not compile_template("{{ n }}").is_static


def test_template_errors_point_into_the_whole_template():
    with pytest.raises(ExpressionError) as info:
        compile_template("Temp: {{ t + }} °C")
    assert info.value.position == 12 and info.value.expression == "Temp: {{ t + }} °C"
    with pytest.raises(ExpressionError) as info:
        compile_template("°C: {{ oops('x') }}")
    assert info.value.position == 7
    with pytest.raises(ExpressionError) as info:
        compile_template("x {{ 1 / n }}").render({"n": 0})
    assert info.value.position == 7
    with pytest.raises(ExpressionError) as info:
        compile_template("a {{ n")
    assert info.value.position == 2 and "never closed" in info.value.message
    with pytest.raises(ExpressionError) as info:  # blocks are Jinja's since issue #22: its errors name the line
        compile_template("a\nb {% if x %}")
    assert info.value.position == 2 and "endif" in info.value.message and "(line 2)" in info.value.message
    with pytest.raises(ExpressionError) as info:
        compile_template("a {{ }}")
    assert "empty" in info.value.message


def test_compile_value_renders_nested_arguments_freshly():
    render = compile_value({"brightness": "{{ n * 2 }}", "msg": ["n={{ n }}", "fixed", 3], "k": None})
    first = render({"n": 4})
    assert first == {"brightness": 8, "msg": ["n=4", "fixed", 3], "k": None}
    first["msg"].append("mutated")
    assert render({"n": 5}) == {"brightness": 10, "msg": ["n=5", "fixed", 3], "k": None}


# --- what it refuses, and where ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, position, words",
    [
        ("__import__('os')", 0, "'_'"),
        ("().__class__", 3, "'_'"),
        ("x.__class__", 2, "'_'"),
        ("x._private", 2, "'_'"),
        ("_x", 0, "'_'"),
        ("(lambda: 1)()", 1, "only named functions"),
        ("[x for x in y]", 0, "comprehension"),
        ("1 + {k: 1 for k in y}", 4, "comprehension"),
        ("f'{x}'", 0, "f-string"),
        ("open('f')", 0, "unknown function 'open'"),
        ("1 + getattr(x, 'y')", 4, "unknown function 'getattr'"),
        ("eval('1')", 0, "unknown function 'eval'"),
        ("(a := 1)", 1, ":="),
        ("a := 1", 2, "syntax error"),
        ("*x", 0, "syntax error"),
        ("len(*x)", 4, "'*'"),
        ("len(**x)", 4, "'**'"),
        ("{**x}", 0, "'**'"),
        ("{1, 2}", 0, "set literal"),
        ("1 + ~x", 4, "'~'"),
        ("1 << 100", 0, "'<<'"),
        ("x @ y", 0, "'@'"),
        ("x is 1", 5, "None"),
        ("b'raw'", 0, "bytes"),
        ("...", 0, "ellipsis"),
        ("1j", 0, "complex"),
        ("'abc'.format(1)", 6, "unknown method 'format'"),
        ("'abc'.lower(x=1)", 12, "keyword"),
        ("1 +", 3, "end of expression"),
        ("(1 + 2", 0, "never closed"),
        ("1 2", 2, "syntax error"),
        ("'°°' +* 2", 6, "syntax error"),
        ("", 0, "empty"),
    ],
)
def test_compile_time_refusals(text, position, words):
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, FUNCTIONS)
    error = info.value
    assert (error.position, error.expression) == (position, text)
    assert words in error.message
    assert f"at position {position} in: " in str(error)


@pytest.mark.parametrize(
    "text, position, words",
    [
        ("'on' < 5", 5, "not supported between instances of 'str' and 'int'"),
        ("1 < 2 < 'a'", 6, "'<' not supported"),
        ("x + 1 / 0", 6, "division by zero"),
        ("x // (y - y)", 2, "by zero"),
        ("2 ** 10**10", 2, "exponent"),
        ("10 ** 999 ** 2", 3, "exponent"),
        ("99999 ** 1000", 6, "too large"),
        ("'a' * 10**9", 4, "too long"),
        ("10**6 * [0]", 6, "too long"),
        ("[[[1] * 50] * 50] * 50", 18, "too long"),  # weighs what it repeats
        ("[1] * 10**4 + [[0] * 10**4] * 2", 28, "too long"),
        ("('ab' * 5000).replace('a', 'xyz')", 14, "too long"),
        ("'%*d' % (10**9, 1)", 6, "formatting"),
        ("d['nope']", 1, "key 'nope' not found"),
        ("d.nope", 2, "key 'nope' not found"),
        ("none.attr", 5, "of None"),
        ("none.lower()", 5, "None has no method 'lower'"),
        ("x.real", 2, "int has no readable attribute 'real'"),
        ("x.lower()", 2, "int has no method 'lower'"),
        ("[1][5]", 3, "index out of range"),
        ("int('x')", 0, "invalid literal"),
        ("int(digits)", 0, "too long"),
        ("str(10 ** 1000 * 10 ** 1000 * 10 ** 1000 * 10 ** 1000 * 10 ** 1000)", 0, "digits"),
        ("round(5, -10**9)", 0, "ndigits"),
        ("sum([[1]], [])", 0, "start"),
        ("undefined_name + 1", 0, "unknown name 'undefined_name'"),
        ("{[1]: 2}", 0, "unhashable"),
        ("'abc'.startswith(1)", 6, "startswith"),
        ("10.0 ** 400", 5, "out of range"),
    ],
)
def test_run_time_errors_name_the_failing_spot(text, position, words):
    env = {"x": 5, "y": 3, "d": {}, "none": None, "digits": "9" * 100_000}
    error = error_of(text, env)
    assert (error.position, error.expression) == (position, text), error
    assert words in error.message


def test_error_limits_on_size():
    assert "too long" in error_of("1" * 3000).message
    assert "too complex" in error_of("[" + ", ".join(["1"] * 300) + "]").message
    assert "too deeply" in error_of("-" * 100 + "1").message


def test_error_survives_pickling():
    error = error_of("1 / 0")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.expression, copy.position) == (error.message, error.expression, 2)


def test_private_members_cannot_be_whitelisted():
    with pytest.raises(ValueError):
        allow_attributes(dt.timedelta, ("__class__",))


@pytest.mark.parametrize("module", [expressions, safe_ops, templates], ids=lambda m: m.__name__)
def test_module_never_calls_eval_exec_or_compile(module):
    tree = ast.parse(Path(module.__file__).read_text())
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not called & {"eval", "exec", "compile", "__import__", "setattr", "vars", "globals"}


# --- properties ----------------------------------------------------------------------------------

# Fragments that combine into text that is often valid and often reaches for internals.
TOKENS = [
    "x", "s", "d", "y", "trigger", "None", "0", "1", "9", "2.5", "'a'", "'%s'",
    ".a", ".lower", ".value", ".to_state", ".__class__", ".__globals__", "._x", ".mro", ".keys",
    ".real", ".startswith", ".upper", ".year",
    "(", ")", "()", "[", "]", "[0]", "['a']", "{", "}", ",", ":",
    " + ", " - ", " * ", " ** ", " / ", " % ", " < ", " == ", " is ", " in ", " and ", " or ",
    " not ", " if ", " else ", "lambda", " for ", "=", ":=", "*", "**", " ",
    "str", "len", "int", "float", "min", "round", "getattr", "type", "__import__",
    # whole probes, so short texts already reach into the environment's values
    "x.a", "x.lower()", "s.lower()", "s.split()", "d.keys()", "d.a.real", "y[0].a", "y[1].upper()",
    "trigger.to_state.value.a", "d.value.lower()", "d.value.year",
]
token_soup = st.lists(st.sampled_from(TOKENS), max_size=14).map("".join)
any_text = st.one_of(st.text(max_size=60), token_soup)

TOUCHED: list[str] = []


class Sentinel:
    """Records every attribute looked up on it: an evaluator that may reach into arbitrary objects
    (``getattr``, or even ``isinstance``, which asks for ``__class__``) would touch it."""

    __slots__ = ()

    def __getattribute__(self, name):
        TOUCHED.append(name)
        return object.__getattribute__(self, name)


class SentinelStr(str):
    """A str look-alike: ``isinstance(v, str)`` would let ``.lower()`` be looked up on it."""

    def __getattribute__(self, name):
        TOUCHED.append(name)
        return str.__getattribute__(self, name)


class SentinelDict(dict):
    """A dict look-alike: reading ``d.keys`` as an attribute rather than a key would show here."""

    def __getattribute__(self, name):
        TOUCHED.append(name)
        return dict.__getattribute__(self, name)


def sentinel_env():
    return {
        "x": Sentinel(),
        "s": SentinelStr("a"),
        "d": SentinelDict(a=Sentinel(), value=SentinelStr("v")),
        "y": [Sentinel(), SentinelStr("b")],
        "trigger": {"to_state": SentinelDict(value=Sentinel())},
    }


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_text)
def test_compile_and_evaluate_raise_only_expression_errors(text):
    try:
        expression = compile_expression(text, FUNCTIONS)
    except ExpressionError as error:
        assert 0 <= error.position <= len(text)
        assert error.expression == text and str(error)
        return
    env = {"x": 3, "s": "abc", "d": {"a": [1, 2]}, "y": None, "trigger": {"to_state": {"value": "on"}}}
    try:
        expression.evaluate(env)
    except ExpressionError as error:
        assert 0 <= error.position <= len(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_template_errors_stay_inside_the_template(before, inner):
    text = f"{before}{{{{ {inner} }}}}"
    try:
        compile_template(text, FUNCTIONS).render({"x": 1})
    except ExpressionError as error:
        assert 0 <= error.position <= len(text)


@settings(max_examples=400, deadline=None)
@given(token_soup)
def test_evaluation_never_reaches_into_foreign_objects(text):
    env = sentinel_env()
    TOUCHED.clear()
    try:
        compile_expression(text, FUNCTIONS).evaluate(env)
    except ExpressionError:
        pass
    assert TOUCHED == [], f"{text!r} looked up {TOUCHED}"


def test_sentinel_would_notice_a_leak(monkeypatch):
    """The property above can fail: widen the whitelist and the same expressions trip it."""
    env = sentinel_env()
    TOUCHED.clear()
    monkeypatch.setitem(expressions._ATTRIBUTES, Sentinel, frozenset({"a"}))
    monkeypatch.setitem(expressions._METHODS, SentinelStr, frozenset({"lower"}))
    with pytest.raises(ExpressionError):
        evaluate("x.a", env)
    assert evaluate("s.lower()", env) == "a"
    assert "a" in TOUCHED and "lower" in TOUCHED


def arithmetic(depth: int) -> st.SearchStrategy[str]:
    """Source text of arithmetic, comparisons and logic over small numbers. Depth is bounded and
    powers have small literal exponents, so Python itself can always compute the reference."""
    leaf = st.one_of(st.integers(0, 20).map(str), st.sampled_from(["2.5", "0.5", "True", "None"]))
    if depth == 0:
        return leaf
    sub = arithmetic(depth - 1)
    binary_op = st.sampled_from(
        ["+", "-", "*", "/", "//", "%", "<", "<=", ">", ">=", "==", "!=", "and", "or", "in", "not in"]
    )
    compare_op = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])

    def binary(parts):
        left, op, right, wrap = parts
        text = f"{left} {op} {right}"
        return f"({text})" if wrap else text  # unwrapped text exercises precedence

    return st.one_of(
        leaf,
        st.tuples(sub, binary_op, sub, st.booleans()).map(binary),
        st.tuples(sub, st.integers(-3, 3)).map(lambda p: f"({p[0]}) ** {p[1]}"),
        sub.map(lambda a: f"-{a}"),
        sub.map(lambda a: f"(not {a})"),
        st.tuples(sub, sub, sub).map(lambda p: f"({p[0]} if {p[1]} else {p[2]})"),
        st.tuples(sub, compare_op, sub, compare_op, sub).map(lambda p: "({} {} {} {} {})".format(*p)),
    )


def same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


@settings(max_examples=500, deadline=None)
@given(arithmetic(4))
def test_agrees_with_python_on_arithmetic(text):
    # eval is safe here, in the test only: the strategy builds the text from numbers and operators.
    try:
        expected, failed = eval(text, {"__builtins__": {}}, {}), None
    except Exception as exc:  # ZeroDivisionError, TypeError, OverflowError, SyntaxError...
        expected, failed = None, exc
    try:
        result = compile_expression(text).evaluate({})
    except ExpressionError as error:
        assert failed is not None, f"{text!r}: {error}; Python gives {expected!r}"
        assert 0 <= error.position <= len(text)
        return
    assert failed is None, f"{text!r} gave {result!r}; Python raises {failed!r}"
    assert same(result, expected), f"{text!r}: {result!r} != {expected!r}"
