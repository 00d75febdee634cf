"""Random paths, queries and bodies never make the RPC answer with a 5xx."""

from __future__ import annotations

import string
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROUTES = ["/tx", "/head", "/blocks/", "/headers", "/tx/", "/accounts/", "/candidates", "/schedule", "/blocks/1/", "",
          "/mempool", "/peers", "/sync", "/version", "/metrics", "/bans/", "/devices/", "/anchors/"]
segment = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "-_.~%", max_size=80),
    st.text(max_size=20).map(lambda s: s.replace("/", "").replace("?", "").replace("#", "")),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.binary(min_size=32, max_size=32).map(bytes.hex),
    st.sampled_from(["ruff1", "ruff1qqqq", "0", "raw", "..", "%00", "ff" * 33]),
)
query = st.dictionaries(st.sampled_from(["from", "count", "x", "offset", "limit"]),
                        st.one_of(st.integers(-(2**70), 2**70).map(str), st.text(max_size=10)), max_size=3)
body = st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode),
                 st.builds(lambda v: ('{"tx": %s}' % v).encode(), st.sampled_from(['"00"', "1", "null", '"a1"', "[]", '"zz"'])))
ctype = st.sampled_from(["application/json", "application/cbor", "application/octet-stream", "text/plain", "",
                         "application/json; charset=utf-8"])

_settings = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@_settings
@given(route=st.sampled_from(ROUTES), seg=segment, q=query)
def test_random_gets_are_never_a_server_error(client, route, seg, q):
    resp = client.get(route + quote(seg, safe="%~"), params=q)
    assert resp.status_code < 500, (route + seg, q, resp.text)
    if resp.status_code >= 400:
        assert set(resp.json()) >= {"error", "message"}


@_settings
@given(route=st.sampled_from(["/tx", "/txs", "/tx/", "/head", "/blocks/1", "/peers"]), data=body, kind=ctype)
def test_random_posts_are_never_a_server_error(client, route, data, kind):
    resp = client.post(route, content=data, headers={"content-type": kind} if kind else {})
    assert resp.status_code < 500, (route, data, kind, resp.text)
    assert resp.status_code >= 400 or route in ("/tx", "/txs")
    if resp.status_code >= 400:
        assert set(resp.json()) >= {"error", "message"}
