"""Home Assistant's templates (issue #22): Jinja2 in the sandbox, HA's functions, the bounds.

Examples are HA's own, from its template function pages (https://www.home-assistant.io/template-functions/
float, .../states, .../state_attr, .../is_state_attr, .../default, .../attr), run against the test
home of conftest.py on its simulated clock (2026-01-01 10:00 UTC).
"""

from datetime import datetime, timedelta, timezone

import pytest

from hub.core.events import CustomEvent
from hub.rules.context import RuleContext
from hub.rules.expressions import ExpressionError
from hub.rules.templates import compile_template


@pytest.fixture
async def render(rh):
    await rh.start()
    functions = RuleContext.for_hub(rh.hub).functions

    def render(text, **variables):
        return compile_template(text, functions).render(variables)

    render.functions = functions
    return render


def go(rh, **data):
    rh.hub.bus.publish(CustomEvent(rh.hub.now(), "go", data))


# --- HA's documented examples and every function ---------------------------------------------------


async def test_ha_documented_examples(render, rh):
    rh.home.set("lamp", "on", color_mode="color_temp", brightness=128)
    assert render('{{ float("21.5") }}') == 21.5  # template-functions/float
    assert render('{{ my_variable | default("fallback") }}') == "fallback"  # .../default
    assert render('{{ states.sensor.temp | attr("state") }}') == 20.0  # .../attr (the hub keeps numbers)
    assert render('{{ is_state_attr("light.lamp", "color_mode", "color_temp") }}') is True  # .../is_state_attr
    assert render('{{ state_attr("light.lamp", "brightness") }}') == 128  # .../state_attr
    assert render("{{ states('sensor.temp') | float(0) + 1.5 }}") == 21.5
    assert render("The temperature is {{ states('sensor.temp') | round(1) }} °C") == "The temperature is 20.0 °C"
    assert render("{{ now().strftime('%H:%M') }}") == "10:00"


async def test_state_functions(render, rh):
    assert render("{{ states('switch.ac') }}") == "on"
    assert render("{{ states.switch.ac.state }}") == "on"
    assert render("{{ states.light.lamp.attributes | length >= 0 }}") is True
    assert render("{{ is_state('switch.ac', 'on') and not is_state('switch.fan', 'on') }}") is True
    assert render("{{ is_state('switch.fan', ['on', 'off']) }}") is True
    assert render("{{ 'switch.ac' is is_state('on') }}") is True
    assert render("{{ has_value('sensor.temp') }}") is True
    assert render("{{ expand('switch.fan', 'switch.ac') | map(attribute='entity_id') | list }}") == ["switch.ac", "switch.fan"]
    assert render("{{ expand(['switch.ac']) | map(attribute='state') | join(',') }}") == "on"


async def test_time_functions_follow_the_hubs_clock(render, rh):
    assert render("{{ now().hour }}") == 10
    assert render("{{ utcnow().isoformat() }}") == "2026-01-01T10:00:00+00:00"
    assert render("{{ today_at('07:30') < now() }}") is True
    assert render("{{ (now() - timedelta(hours=3)) | relative_time }}") == "3 hours"
    assert render("{{ relative_time(now() - timedelta(minutes=1)) }}") == "1 minute"
    assert render("{{ as_timestamp('2026-01-01T10:00:00+00:00') }}") == rh.hub.now()
    assert render("{{ as_timestamp(now()) }}") == rh.hub.now()
    assert render("{{ as_datetime('2026-01-01T09:00:00+00:00') < now() }}") is True
    assert render("{{ as_datetime(0).year }}") == 1970
    assert render("{{ (as_datetime('2026-01-01T09:00:00+00:00') | as_local).hour }}") == 9
    assert render("{{ as_timestamp('garbage', 0) }}") == 0
    await rh.clock.advance(3600)
    assert render("{{ now().hour }}") == 11


async def test_numbers_booleans_and_missing_values(render):
    assert render("{{ 'abc' | float(0) }}") == 0
    assert render("{{ '12' | int }}") == 12 and render("{{ '12.7' | int }}") == 12
    assert render("{{ int('x', 3) }}") == 3
    assert render("{{ 3.14159 | round(2) }}") == 3.14
    assert render("{{ 2.5 | round(0, 'floor') }}") == 2
    assert render("{{ round('x', 1, default=-1) }}") == -1
    assert render("{{ 'on' | bool }}") is True and render("{{ bool('nope', false) }}") is False
    assert render("{{ iif(is_state('switch.ac', 'on'), 'cool', 'warm') }}") == "cool"
    assert render("{{ iif(none, 'a', 'b', 'n') }}") == "n"
    assert render("{{ min(3, 1, 2) }} {{ max([3, 1, 2]) }} {{ [4, 5] | max }}") == "1 3 5"
    assert render("{{ '{\"a\": [1, 2]}' | from_json }}") == {"a": [1, 2]}
    assert render("{{ {'b': 1} | to_json }}") == '{"b": 1}'
    assert render("{{ 'sensor.kitchen_temp' | regex_match('sensor\\\\.kitchen_') }}") is True
    assert render("{{ '%.1f' % 21.456 }} {{ '%02d:%02d' % (7, 5) }}") == "21.5 07:05"
    for text, name in (("{{ 'abc' | float }}", "float"), ("{{ int('x') }}", "int"), ("{{ 'x' | round }}", "round"),
                       ("{{ 'maybe' | bool }}", "bool")):
        with pytest.raises(ExpressionError) as info:
            render(text)
        assert f"{name} got invalid input" in info.value.message and info.value.expression == text


async def test_blocks_variables_and_raw_values(render):
    text = "{% set t = states('sensor.temp') | float %}{% if t > 25 %}hot{% elif t > 15 %}mild{% else %}cold{% endif %}"
    assert render(text) == "mild"
    assert render("{{ trigger.to_state.state | int + 1 }}", trigger={"to_state": {"state": "41"}}) == 42
    assert render("{{ this.entity_id ~ '!' }}", this={"entity_id": "automation.x"}) == "automation.x!"
    assert render("{% for s in ['a', 'b'] %}{{ s }}{{ ',' if not loop.last }}{% endfor %}") == "a,b"
    assert render("  {{ [1, 2] | list }}  ") == [1, 2]  # one expression keeps its type
    ns = "{% set ns = namespace(n=0) %}{% for i in range(5) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"
    assert render(ns) == "10"
    assert render("{% macro twice(x) %}{{ x * 2 }}{% endmacro %}{{ twice(21) }}") == "42"


async def test_old_syntax_still_compiles_with_the_own_evaluator(render):
    assert render("{{ states('sensor.temp') * 2 }}") == 40.0
    assert render("{{ 'on' if is_state('switch.ac', 'on') else 'off' }}") == "on"
    assert render("{{ {'a': 1}['a'] }}") == 1


# --- the sandbox ---------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ x | attr('__class__') }}",
    "{{ states | attr('_get') }}",
    "{{ now() | attr('__reduce_ex__') }}",
    "{{ ''.format }}",
    "{{ states._value }}",
    "{% set f = ''.join %}{{ f.__self__ }}",
    "{{ [].append(1) }}",
    "{{ {}.update({'a': 1}) }}",
]


@pytest.mark.parametrize("text", ESCAPES)
async def test_no_way_out_of_the_sandbox(render, text):
    with pytest.raises(ExpressionError):
        render(text, x="s")


BOMBS = [
    ("{{ range(10**9) | list | length }}", "range"),
    ("{% for i in range(10**9) %}{% endfor %}", "range"),
    ("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", "too much work"),
    ("{% for i in range(200) %}{{ range(60000) | list | length }}{% endfor %}", "too much work"),
    ("{% set s = 'a' * 9000 %}{% for i in range(20) %}{{ s | list | length }}{% endfor %}", "too much work"),
    ("{% set s = 'a' * 9000 %}{% for i in range(20) %}{% set _ = s | list %}{% endfor %}", "'_'"),
    ("{{ 'a' * 10**9 }}", "too long"),
    ("{{ 'a' * 5000 ~ 'a' * 5000 ~ 'a' }}", "too long"),
    ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "too long"),
    ("{{ '%*d' % (10**9, 1) }}", "width"),
    ("{{ '%s' % ('a' * 9000) ~ '%s' % ('a' * 9000) }}", "too long"),
    ("{{ 'ab'.replace('a', 'a' * 9999) * 2 }}", "too long"),
    ("{{ 2 ** 10**9 }}", "exponent"),
    ("{{ range(2000) | join('x' * 9999) }}", "too long"),
    ("{{ ('a' * 9999) | replace('a', 'a' * 9999) }}", "too long"),
    ("{{ ('a' * 2000) | regex_replace('a', 'b' * 9999) }}", "too long"),
    ("{{ ([[1] * 5000] * 2) | sum(start=[]) }}", "start"),
    ("{{ 'x' | center(10**9) }}", "center"),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nested too deeply"),
    ("{% for i in range(9000) %}{{ 'abcdefghij' }}{% endfor %}", "rendered text is too long"),
    ("{{ 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!' | regex_match('(a+)+$') }}", "regular expression"),
]


@pytest.mark.parametrize(("text", "words"), BOMBS)
async def test_resource_bombs_are_refused_with_a_clear_message(render, text, words):
    with pytest.raises(ExpressionError) as info:
        render(text)
    assert words.lower() in str(info.value).lower()


# --- in rules ------------------------------------------------------------------------------------


async def test_jinja_conditions_and_arguments_in_rules_and_a_bomb_fails_only_its_run(rh):
    rh.write("""
        - id: warm
          trigger: [{trigger: event, event_type: go}]
          condition:
            - condition: template
              value_template: "{{ states('sensor.temp') | float(0) > 15 }}"
            - "{{ trigger.event.data.level | int(0) >= 2 }}"
          action:
            - log: >-
                {% if is_state('switch.ac', 'on') %}ac on{% else %}ac off{% endif %},
                level {{ trigger.event.data.level | int }}
            - call: light.turn_on
              entity_id: light.lamp
              args: {brightness: "{{ (trigger.event.data.level | float * 10) | round | int }}"}
        - id: bomb
          trigger: [{trigger: event, event_type: go}]
          action:
            - log: "{% for i in range(10**5) %}{% for j in range(10**5) %}{% endfor %}{% endfor %}"
    """)
    await rh.start()
    go(rh, level="3")
    await rh.clock.settle()
    [warm] = rh.traces("warm")
    assert warm["outcome"] == "finished", warm
    assert warm["steps"][0]["result"]["message"] == "ac on, level 3"
    assert rh.calls("turn_on", "light.lamp") == [("light.lamp", "turn_on", {"brightness": 30})]
    [bomb] = rh.traces("bomb")
    assert bomb["outcome"] == "error" and "too much work" in bomb["error"]
    go(rh, level="1")
    await rh.clock.settle()
    assert rh.traces("warm")[-1]["outcome"] == "condition_failed"


async def test_load_time_errors_name_the_line(rh):
    path = rh.write("""
        - id: unknown_entity
          trigger: [{trigger: event, event_type: go}]
          condition: "{{ states('sensor.nope') | float(0) > 1 }}"
          action: [{log: x}]
        - id: unknown_entity_in_block
          trigger: [{trigger: event, event_type: go}]
          action:
            - log: "{% if states.switch.nope.state == 'on' %}x{% endif %}{{ 1 }}"
        - id: unknown_filter
          trigger: [{trigger: event, event_type: go}]
          action:
            - log: "{{ 1 | frobnicate }}"
        - id: private
          trigger: [{trigger: event, event_type: go}]
          action:
            - log: "{% set x = 1 %}{{ x.__class__ }}"
        - id: unknown_function
          trigger: [{trigger: event, event_type: go}]
          action:
            - log: "{% set x = 1 %}{{ nope(x) }}"
        - id: fine
          trigger: [{trigger: event, event_type: go}]
          action:
            - log: "{{ states('sensor.temp') | float(0) }}"
    """)
    await rh.start()
    issues = {str(i.key).split(".")[0]: i for i in rh.engine.issues}
    lines = path.read_text().splitlines()
    assert set(issues) == {"unknown_entity", "unknown_entity_in_block", "unknown_filter", "private", "unknown_function"}
    assert "unknown entity 'sensor.nope'" in issues["unknown_entity"].message
    assert "sensor.nope" in lines[issues["unknown_entity"].line - 1]
    assert "unknown entity 'switch.nope'" in issues["unknown_entity_in_block"].message
    assert "frobnicate" in issues["unknown_filter"].message
    assert "'_'" in issues["private"].message
    assert "unknown function 'nope'" in issues["unknown_function"].message
    assert "fine" in rh.engine.rules


def test_compiling_twice_reuses_the_template():
    functions = {"states": lambda entity_id: 1}
    text = "{{ states('sensor.x') | float(0) }}"
    first = compile_template(text, functions)
    assert compile_template(text, functions) is first and first.entity_ids == {"sensor.x"}


def test_datetime_helpers_do_not_need_a_hub():
    from hub.rules import jinja_ha

    assert jinja_ha.as_datetime("2026-01-01 10:00:00+00:00") == datetime(2026, 1, 1, 10, tzinfo=timezone.utc)
    assert jinja_ha.as_timestamp(datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=5)) == 5.0


async def test_a_template_of_blocks_alone_renders_in_a_rule(rh):
    rh.write("""
        - id: blocks
          trigger: [{trigger: event, event_type: go}]
          action:
            - log: "{% if is_state('switch.ac', 'on') %}cooling{% else %}idle{% endif %}"
    """)
    await rh.start()
    go(rh)
    await rh.clock.settle()
    [trace] = rh.traces("blocks")
    assert trace["outcome"] == "finished" and trace["steps"][0]["result"]["message"] == "cooling"
