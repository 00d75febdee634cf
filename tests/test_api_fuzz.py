"""Bad input is a 4xx with a JSON body, never a 500: random paths, methods, bodies and arguments
thrown at the real app (in process, with the demo-like plugin from the isolation tests)."""

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.api.app import create_app
from hub.runtime import Hub
from tests.test_plugin_isolation import Good

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
# Printable characters only: a client library refuses control characters in a URL before it is sent.
segments = st.text(
    alphabet=st.characters(whitelist_categories=("L", "N", "P", "S"), blacklist_characters="/?#%\\"),
    min_size=1, max_size=20,
)


@pytest.fixture
def client(tmp_path):
    (tmp_path / "configuration.yaml").write_text("hub: {commit_interval: 0.05}\n")
    hub = Hub(tmp_path, entrypoints=False)
    hub.plugins.register("good", Good())
    with TestClient(create_app(hub)) as c:
        c.portal.call(hub.start)  # on the loop the app's requests run on
        c.headers["Authorization"] = f"Bearer {hub.store.create_token('fuzz')}"
        yield c
        c.portal.call(hub.stop)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entity=st.sampled_from(["switch.relay_out", "light.nowhere"]) | segments,
    command=st.sampled_from(["turn_on", "toggle", "explode"]) | segments,
    body=json_values,
)
def test_commands_never_500(client, entity, command, body):
    r = client.post(f"/api/entities/{entity}/commands/{command}", content=json.dumps(body),
                    headers={"Content-Type": "application/json"})
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.json()["error"] and r.json()["message"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.sampled_from(["/api/states/", "/api/entities/", "/api/devices/", "/api/history/", "/api/events/"]),
    tail=segments,
    query=st.dictionaries(st.sampled_from(["start", "end", "limit"]), st.text(max_size=12), max_size=3),
    raw=st.binary(max_size=64),
)
def test_any_route_never_500(client, method, path, tail, query, raw):
    r = client.request(method, path + tail, params=query, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code < 500, r.text
