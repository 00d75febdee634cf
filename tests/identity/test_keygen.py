"""``hub device keygen`` on its own (no hub): the files a manufacturer needs, private, never
overwritten, and a strong label that carries no private key."""

from __future__ import annotations

import json
import stat

from click.testing import CliRunner

from hub.chain.node.files import read_key
from hub.cliutil import Ctx
from hub.identity import labels
from hub.identity.cli_binding import LABELS_DIR, keygen


def _run(data, *args):
    return CliRunner().invoke(keygen, list(args), obj=Ctx(data, None, None), catch_exceptions=False)


def test_keygen_writes_private_files_that_agree(tmp_path):
    data = tmp_path / "data"
    result = _run(data, "--name", "plug1", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    folder = data / LABELS_DIR
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in (folder / "plug1.key", folder / "plug1-label.png", folder / "plug1-label.txt"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    key = read_key(folder / "plug1.key")
    assert key.public_key.hex() == out["public_key"]
    assert labels.read(folder / "plug1-label.png").seed == key.seed
    assert labels.read(folder / "plug1-label.txt").seed == key.seed
    assert key.seed.hex() not in result.output  # --json names files, not the secret


def test_keygen_draws_the_qr_and_never_overwrites(tmp_path):
    out = tmp_path / "labels"
    first = _run(tmp_path, "--out", str(out), "--name", "x")
    assert first.exit_code == 0 and "▀" in first.output and "public key" in first.output
    before = (out / "x.key").read_bytes()
    again = _run(tmp_path, "--out", str(out), "--name", "x")
    assert again.exit_code == 1 and "never overwritten" in again.output
    assert (out / "x.key").read_bytes() == before


def test_strong_label_has_the_public_key_and_setup_code_only(tmp_path):
    result = _run(tmp_path, "--strong", "--out", str(tmp_path), "--name", "s", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    label = labels.read(tmp_path / "s-label.png")
    seed = read_key(tmp_path / "s.key").seed
    assert label.seed is None and label.setup_code == out["setup_code"]
    assert seed.hex() not in (tmp_path / "s-label.txt").read_text()


def test_strong_label_for_a_keyless_device_is_refused(tmp_path):
    result = _run(tmp_path, "--strong", "--device", "demo:plug")
    assert result.exit_code == 1 and "keyless" in result.output
    assert not (tmp_path / LABELS_DIR).exists()
