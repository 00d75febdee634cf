"""Owner-only token management over the API, against a real ``hub run``: the owner token (made at
first start, in ``<data>/owner-token``) lists, creates and revokes tokens; any other token is
refused with a 403 that says why; a token is shown once and never listed."""

from __future__ import annotations

import pytest

from tests.hubproc import DEMO, HubProcess, run_cli


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    data = tmp_path_factory.mktemp("tokens") / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(DEMO)
    proc = HubProcess(data).start()
    yield proc
    proc.stop()


def test_the_owner_creates_a_token_that_works_lists_it_without_its_secret_and_revokes_it(hub):
    status, made = hub.request("POST", "/api/tokens", {"name": "kitchen-tablet"})
    assert status == 201, made
    assert made["name"] == "kitchen-tablet" and len(made["token"]) > 20
    status, _ = hub.request("GET", "/api/states", token=made["token"])
    assert status == 200
    listed = hub.get("/api/tokens")
    assert {"owner", "kitchen-tablet"} <= {t["name"] for t in listed}
    assert made["token"] not in str(listed) and all("token" not in t for t in listed)
    status, _ = hub.request("DELETE", "/api/tokens/kitchen-tablet")
    assert status == 200
    status, _ = hub.request("GET", "/api/states", token=made["token"])
    assert status == 401


def test_a_token_that_is_not_the_owners_is_refused_with_a_403_in_words(hub):
    user = run_cli(hub.data, "token", "create", "phone").stdout.strip()
    for method, path, body in (("GET", "/api/tokens", None), ("POST", "/api/tokens", {"name": "mine"}),
                               ("DELETE", "/api/tokens/owner", None)):
        status, answer = hub.request(method, path, body, token=user)
        assert status == 403, (method, path, answer)
        assert "owner token" in answer["message"]
    assert "mine" not in {t["name"] for t in hub.get("/api/tokens")}
    status, _ = hub.request("GET", "/api/tokens", auth=False)
    assert status == 401


@pytest.mark.parametrize("name, status, words", [
    ("has space", 422, "invalid token name"),
    ("owner", 422, "owner token's name"),
    ("", 422, "invalid token name"),
])
def test_a_bad_name_is_a_422_naming_the_field(hub, name, status, words):
    got, answer = hub.request("POST", "/api/tokens", {"name": name})
    assert got == status and words in answer["message"] and "name" in answer["message"]


def test_a_duplicate_name_is_a_409_and_the_owner_token_cannot_be_revoked_from_the_api(hub):
    assert hub.request("POST", "/api/tokens", {"name": "twice"})[0] == 201
    status, answer = hub.request("POST", "/api/tokens", {"name": "twice"})
    assert status == 409 and "already exists" in answer["message"]
    status, answer = hub.request("DELETE", "/api/tokens/owner")
    assert status == 422 and "hub token revoke owner" in answer["message"]
    assert hub.request("DELETE", "/api/tokens/nobody")[0] == 404
    assert hub.request("POST", "/api/tokens", {"name": 5})[0] == 422
