"""The light node's rules over random envelopes, counters and times, checked against a model of
the rules written out again here (bounded example counts: the suite shares 2 cores)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.crypto.keys import PrivateKey
from hub.crypto.signing import Network
from hub.crypto.statements import Bind, Command, Grant, Handover, Revoke, Signed, sign
from hub.identity.errors import Reason, Refused
from hub.identity.lightnode import JsonFlash, LightNode, MemoryFlash

NET = Network("ruff-test", b"\x11" * 32)
OTHER_NET = Network("ruff-test", b"\x22" * 32)  # same id, another genesis: a signature from it is forged
DEVICE = PrivateKey(b"\x01" * 32)
OTHER_DEVICE = PrivateKey(b"\x02" * 32)
OWNER = PrivateKey(b"\x03" * 32)
RENTER = PrivateKey(b"\x04" * 32)  # a grant for relay.turn_on only
REVOKED = PrivateKey(b"\x05" * 32)  # a grant of epoch 0, revoked by epoch 1
STRANGER = PrivateKey(b"\x06" * 32)
SIGNERS = [OWNER, RENTER, REVOKED, STRANGER]
NOW = 1_700_000_000_000
WINDOW = 30_000


def _bound_node(flash) -> LightNode:
    node = LightNode(DEVICE.public_key, NET, flash, window_ms=WINDOW)
    node.bind(sign(Bind(DEVICE.public_key, OWNER.public_key, NOW - 60_000), DEVICE, NET))
    node.grant(sign(Grant(DEVICE.public_key, OWNER.public_key, REVOKED.public_key, ["*"], 0, 0, 0, "share"), OWNER, NET))
    node.revoke(sign(Revoke(DEVICE.public_key, OWNER.public_key, 1), OWNER, NET))
    node.grant(sign(Grant(DEVICE.public_key, OWNER.public_key, RENTER.public_key, ["relay.turn_on"],
                          NOW - 10_000, NOW + 10_000, 1, "contract:ab"), OWNER, NET))
    return node


envelope = st.fixed_dictionaries({
    "chain": st.sampled_from(["ruff-test", "ruff-test", "ruff-test", "ruff-other"]),
    "device": st.sampled_from([DEVICE, DEVICE, DEVICE, OTHER_DEVICE]),
    "signer": st.integers(0, len(SIGNERS) - 1),
    "forged": st.sampled_from([False, False, False, "network", "key"]),
    "command": st.sampled_from(["turn_on", "turn_on", "turn_off"]),
    "skew": st.integers(-2 * WINDOW, 2 * WINDOW),
    "counter": st.integers(0, 6),
    "at": st.integers(-15_000, 15_000),  # the verifier's clock around NOW: the renter's grant ends at +10 s
})


def _make(e: dict) -> Signed:
    signer = SIGNERS[e["signer"]]
    cmd = Command(e["chain"], e["device"].public_key, "relay", e["command"], {}, NOW + e["at"] + e["skew"],
                  e["counter"], signer.public_key)
    if e["forged"] == "network":
        return sign(cmd, signer, OTHER_NET)
    if e["forged"] == "key":
        return sign(cmd, STRANGER if signer is not STRANGER else OWNER, NET)
    return sign(cmd, signer, NET)


def _expected(e: dict, last: dict[bytes, int]) -> Reason | None:
    """The rules, in their order, written independently of the light node."""
    signer = SIGNERS[e["signer"]]
    now = NOW + e["at"]
    if e["chain"] != NET.chain_id:
        return Reason.WRONG_CHAIN
    if e["device"] is not DEVICE:
        return Reason.WRONG_DEVICE
    if e["forged"]:
        return Reason.FORGED
    if signer in (REVOKED, STRANGER):
        return Reason.NOT_AUTHORISED
    if signer is RENTER and not (e["command"] == "turn_on" and NOW - 10_000 <= now <= NOW + 10_000):
        return Reason.NOT_GRANTED
    if abs(e["skew"]) > WINDOW:
        return Reason.STALE
    if signer.public_key in last and e["counter"] <= last[signer.public_key]:
        return Reason.REPLAYED
    return None


def _outcome(node: LightNode, signed: Signed, at: int) -> Reason | None:
    try:
        node.check(signed, NOW + at)
    except Refused as exc:
        return exc.reason
    return None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(envelope, min_size=1, max_size=12))
def test_accepted_iff_every_rule_holds_and_nothing_accepted_replays(tmp_path_factory, envelopes):
    path = tmp_path_factory.mktemp("flash") / "flash.json"
    node = _bound_node(JsonFlash(path))
    last: dict[bytes, int] = {}
    accepted: list[tuple[Signed, int]] = []
    for e in envelopes:
        signed = _make(e)
        want = _expected(e, last)
        assert _outcome(node, signed, e["at"]) == want, e
        if want is None:
            last[SIGNERS[e["signer"]].public_key] = e["counter"]
            accepted.append((signed, e["at"]))
    # A replay of anything accepted is refused: at once, and by a node reloaded from its flash (a
    # device after kill -9), whatever its clock says.
    reloaded = LightNode(DEVICE.public_key, NET, JsonFlash(path), window_ms=WINDOW)
    for signed, at in accepted:
        assert _outcome(node, signed, at) == Reason.REPLAYED
        assert _outcome(reloaded, signed, at) == Reason.REPLAYED
    assert reloaded.state() == node.state()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(-WINDOW, WINDOW))
def test_unbound_device_refuses_every_command(counter, skew):
    node = LightNode(DEVICE.public_key, NET, MemoryFlash())
    signed = sign(Command(NET.chain_id, DEVICE.public_key, "relay", "turn_on", {}, NOW + skew, counter, OWNER.public_key),
                  OWNER, NET)
    assert _outcome(node, signed, 0) == Reason.UNBOUND


def test_binding_hand_over_reset_and_their_replays(tmp_path):
    flash = JsonFlash(tmp_path / "flash.json")
    node = LightNode(DEVICE.public_key, NET, flash)
    first = sign(Bind(DEVICE.public_key, OWNER.public_key, 1000), DEVICE, NET)
    node.bind(first)
    assert (node.controller, node.seq) == (OWNER.public_key, 1)
    try:
        node.bind(first)
        raise AssertionError("a binding applied twice")
    except Refused as exc:
        assert exc.reason == Reason.ALREADY_BOUND
    forged = sign(Bind(DEVICE.public_key, STRANGER.public_key, 2000), STRANGER, NET)
    assert _refusal(node.bind, forged) == Reason.FORGED
    sale = sign(Handover(DEVICE.public_key, OWNER.public_key, RENTER.public_key, 1), OWNER, NET)
    node.handover(sale)
    assert (node.controller, node.seq) == (RENTER.public_key, 2)
    assert _refusal(node.handover, sale) == Reason.NOT_AUTHORISED  # the seller no longer controls it
    back = sign(Handover(DEVICE.public_key, RENTER.public_key, OWNER.public_key, 1), RENTER, NET)
    assert _refusal(node.handover, back) == Reason.REPLAYED  # names an old binding
    node.reset(5000)
    assert node.controller is None
    assert _refusal(node.bind, sign(Bind(DEVICE.public_key, OWNER.public_key, 4000), DEVICE, NET)) == Reason.ALREADY_BOUND
    node.bind(sign(Bind(DEVICE.public_key, STRANGER.public_key, 6000), DEVICE, NET))
    again = LightNode(DEVICE.public_key, NET, JsonFlash(tmp_path / "flash.json"))
    assert (again.controller, again.seq, again.state()["time"]) == (STRANGER.public_key, 4, 6000)
    assert (tmp_path / "flash.json").stat().st_mode & 0o777 == 0o600


def test_json_flash_keeps_the_other_sections(tmp_path):
    flash = JsonFlash(tmp_path / "flash.json")
    flash.update({"seed": "00" * 32})
    node = LightNode(DEVICE.public_key, NET, flash)
    node.bind(sign(Bind(DEVICE.public_key, OWNER.public_key, 1), DEVICE, NET))
    assert flash.read_all()["seed"] == "00" * 32
    assert flash.load()["controller"] == OWNER.public_key.hex()


def _refusal(fn, *args) -> Reason | None:
    try:
        fn(*args)
    except Refused as exc:
        return exc.reason
    return None


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["chain", "device", "entity", "command", "args", "issued_at", "counter", "signer"]),
       st.integers(1, 2**32))
def test_no_changed_field_of_an_accepted_command_is_ever_accepted(field, salt):
    node = _bound_node(MemoryFlash())
    original = Command(NET.chain_id, DEVICE.public_key, "relay", "turn_on", {"n": 1}, NOW, 10, OWNER.public_key)
    signed = sign(original, OWNER, NET)
    changed = {
        "chain": "ruff-test2", "device": OTHER_DEVICE.public_key, "entity": f"relay{salt}", "command": f"turn_{salt}",
        "args": {"n": salt + 1}, "issued_at": NOW + salt % WINDOW + 1, "counter": 10 + salt, "signer": RENTER.public_key,
    }[field]
    body = dict(original.body(), **{field: changed})
    tampered = Signed(Command.from_body(body), signed.signature)
    assert _outcome(node, tampered, 0) is not None
    assert _outcome(node, signed, 0) is None  # the original still is, once
