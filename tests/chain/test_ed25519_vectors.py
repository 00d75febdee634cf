"""The chain's Ed25519 validity rule, pinned case by case (see hub/crypto/keys.py for the rule).

If any verdict here changes (a new PyNaCl or libsodium, another library), nodes running the old
and the new version would disagree on blocks: that is a fork, so the change must be deliberate.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hub.crypto.keys import verify

VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors"
WYCHEPROOF = VECTORS / "wycheproof_ed25519_test.json"
SPECCHECK = VECTORS / "ed25519_speccheck_cases.json"
# Our rule on the 12 ed25519-speccheck cases, in file order: only case 3 is valid. Cases 0-2 have a
# small-order key or R, 4-5 verify only with the cofactored equation, 6-7 have S >= L, 8-9 a
# non-canonical R and 10-11 a non-canonical public key.
SPECCHECK_VERDICTS = "xxxVxxxxxxxx"


def _load(path: Path):
    if not path.exists():
        message = f"test vectors missing: {path} (the repo expects ../shared/vectors beside it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return json.loads(path.read_text())


def _wycheproof_cases():
    if not WYCHEPROOF.exists():
        return [pytest.param(None, id="vectors-missing")]
    data = json.loads(WYCHEPROOF.read_text())
    cases = []
    for group in data["testGroups"]:
        for t in group["tests"]:
            cases.append(pytest.param((group["publicKey"]["pk"], t), id=f"tc{t['tcId']}"))
    return cases


@pytest.mark.parametrize("case", _wycheproof_cases())
def test_wycheproof_case(case):
    data = _load(WYCHEPROOF)
    assert data["numberOfTests"] == 151
    pk, t = case
    expected = t["result"] == "valid"  # the rule agrees with every Wycheproof verdict
    got = verify(bytes.fromhex(pk), bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"]))
    assert got is expected, f"tcId {t['tcId']} ({t['comment']}, flags {t['flags']}): expected {t['result']}"


def test_wycheproof_has_every_case():
    data = _load(WYCHEPROOF)
    ids = [t["tcId"] for g in data["testGroups"] for t in g["tests"]]
    assert sorted(ids) == list(range(1, 152))
    assert {t["result"] for g in data["testGroups"] for t in g["tests"]} == {"valid", "invalid"}


@pytest.mark.parametrize("index", range(12), ids=[f"speccheck{i}" for i in range(12)])
def test_speccheck_case(index):
    cases = _load(SPECCHECK)
    assert len(cases) == len(SPECCHECK_VERDICTS)
    c = cases[index]
    got = verify(bytes.fromhex(c["pub_key"]), bytes.fromhex(c["message"]), bytes.fromhex(c["signature"]))
    assert got is (SPECCHECK_VERDICTS[index] == "V"), f"speccheck case {index}"


def test_lengths_and_types_are_refused_not_raised():
    pk = bytes(32)
    assert verify(pk, b"m", bytes(63)) is False
    assert verify(pk, b"m", bytes(65)) is False
    assert verify(bytes(31), b"m", bytes(64)) is False
    assert verify("00" * 32, b"m", bytes(64)) is False  # type: ignore[arg-type]
