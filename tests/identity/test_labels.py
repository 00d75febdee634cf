"""Device labels: what is printed reads back as the same key, in every form a user may hand over
(pasted text, a text file, a PNG of the QR code, a terminal QR), and a bad label is named."""

from __future__ import annotations

import stat

import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.crypto.keys import PrivateKey
from hub.identity import labels
from hub.identity.labels import LabelError


def test_seed_label_round_trips_as_text_and_carries_the_key():
    label, text = labels.make()
    assert text.startswith("ruff-device:1:sk:")
    back = labels.parse(text)
    assert back == label
    assert back.key().public_key == label.public_key
    assert not back.strong


def test_strong_label_carries_no_private_key():
    label, text = labels.make(strong=True)
    assert label.seed is not None  # the manufacturer writes it into the device ...
    assert label.seed.hex() not in text  # ... but the printed label never carries it
    back = labels.parse(text)
    assert back.seed is None and back.public_key == label.public_key and back.setup_code == label.setup_code
    with pytest.raises(LabelError, match="no private key"):
        back.key()


def test_given_seed_gives_that_key():
    seed = bytes(range(32))
    label, _ = labels.make(seed)
    assert label.public_key == PrivateKey(seed).public_key


def test_setup_code_typed_by_hand_is_normalised():
    label, _ = labels.make(strong=True)
    code = label.setup_code
    typed = "-".join([code[:5].lower(), code[5:]]).replace("1", "l").replace("0", "o")
    back = labels.parse(f"ruff-device:1:pk:{label.public_key.hex()}:{typed}")
    assert back.setup_code == code


def test_png_round_trip(tmp_path):
    for strong in (False, True):
        label, text = labels.make(strong=strong)
        path = labels.write_png(text, tmp_path / f"label-{strong}.png")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert labels.read(path).text() == text
        assert labels.read(str(path)).public_key == label.public_key


def test_text_file_and_pasted_text(tmp_path):
    label, text = labels.make()
    path = labels.write_private(tmp_path / "label.txt", text + "\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert labels.read(path) == label
    assert labels.read("  " + text + "\n") == label


def test_write_private_never_overwrites(tmp_path):
    path = labels.write_private(tmp_path / "k", "one")
    with pytest.raises(FileExistsError):
        labels.write_private(path, "two")
    assert path.read_text() == "one"


def test_terminal_qr_scans_back():
    """The terminal rendering is a real QR code: turn its half blocks back into pixels and scan."""
    _, text = labels.make(strong=True)
    painted = labels.terminal(text)
    assert painted.startswith("\x1b[97;40m")  # white on black: not inverted on a light terminal theme
    drawn = labels.terminal(text, ansi=False).splitlines()
    assert [line.removeprefix("\x1b[97;40m").removesuffix("\x1b[0m") for line in painted.splitlines()] == drawn
    # Light: the top or bottom half of a cell is printed (the border is light).
    top = {"█": 1, "▀": 1, "▄": 0, " ": 0}
    bottom = {"█": 1, "▀": 0, "▄": 1, " ": 0}
    scale = 6
    rows = []
    for line in drawn:
        for half in (top, bottom):
            row = bytes(255 * half[ch] for ch in line for _ in range(scale))
            rows.extend([row] * scale)
    width = len(rows[0])
    assert all(len(r) == width for r in rows)
    image = memoryview(b"".join(rows)).cast("B", (len(rows), width))
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [b.text for b in found] == [text]


@pytest.mark.parametrize(("text", "named"), [
    ("hello", "not a device label"),
    ("ruff-device:2:sk:00", "version '2'"),
    ("ruff-device:1:xx:00", "kind 'xx'"),
    ("ruff-device:1:sk:zz", "private key: not hex"),
    ("ruff-device:1:sk:" + "00" * 31, "private key: 32 bytes"),
    ("ruff-device:1:sk:" + "00" * 32 + ":extra", "sk:<seed hex>"),
    ("ruff-device:1:pk:" + "00" * 32, "pk:<public key hex>:<setup code>"),
    ("ruff-device:1:pk:" + "00" * 32 + ":ABC", "setup code: 10 characters"),
    ("ruff-device:1:pk:" + "00" * 32 + ":ABCDEFGHJU", "'U' is not a Crockford"),
    ("ruff-device:1:pk:" + "0g" * 32 + ":ABCDEFGHJK", "public key: not hex"),
])
def test_bad_label_is_named(text, named):
    with pytest.raises(LabelError, match=named.replace("(", r"\(").replace(")", r"\)")):
        labels.parse(text)


def test_bad_label_never_echoes_a_seed():
    seed_hex = "ab" * 31 + "a"  # odd length: not hex
    with pytest.raises(LabelError) as info:
        labels.parse(f"ruff-device:1:sk:{seed_hex}")
    assert seed_hex not in str(info.value)
    label, _ = labels.make()
    assert label.seed.hex() not in repr(label)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(LabelError, match="neither label text"):
        labels.read(tmp_path / "missing.png")
    blank = tmp_path / "blank.png"
    import png

    with open(blank, "wb") as fh:
        png.Writer(40, 40, greyscale=True).write(fh, [[255] * 40] * 40)
    with pytest.raises(LabelError, match="blank.png: no QR code found"):
        labels.read(blank)
    broken = tmp_path / "broken.png"
    broken.write_bytes(labels.PNG_MAGIC + b"\x00" * 30)
    with pytest.raises(LabelError, match="broken.png: not a readable PNG"):
        labels.read(broken)
    other = tmp_path / "other.png"
    labels.write_png("https://example.invalid/", other)
    with pytest.raises(LabelError, match="other.png: not a device label"):
        labels.read(other)
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(LabelError, match="neither a PNG nor a text file"):
        labels.read(binary)


def test_code_mac_binds_controller_and_nonce():
    label, _ = labels.make(strong=True)
    controller, nonce = b"c" * 32, b"n" * 32
    mac = labels.code_mac(label.setup_code, controller, nonce)
    assert labels.check_code_mac(label.setup_code, controller, nonce, mac)
    assert not labels.check_code_mac(label.setup_code, b"d" * 32, nonce, mac)
    assert not labels.check_code_mac(label.setup_code, controller, b"m" * 32, mac)
    assert not labels.check_code_mac(labels.new_setup_code(), controller, nonce, mac)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=120))
def test_parse_never_raises_anything_but_label_error(text):
    try:
        labels.parse(text)
    except LabelError:
        pass


@pytest.mark.parametrize("mode", ["grey1", "grey8", "grey16", "rgb", "rgba-transparent", "palette"])
def test_png_of_any_common_kind_reads_back(tmp_path, mode):
    """A label photographed, screenshotted or re-saved comes in another PNG flavour than segno's."""
    import png
    import segno

    _, text = labels.make(strong=True)
    matrix = [list(r) for r in segno.make_qr(text, error="m").matrix]
    scale, border = 4, 4
    size = (len(matrix) + 2 * border) * scale

    def dark(x: int, y: int) -> bool:
        mx, my = x // scale - border, y // scale - border
        return 0 <= mx < len(matrix) and 0 <= my < len(matrix) and bool(matrix[my][mx])

    path = tmp_path / f"{mode}.png"
    pixels = [[dark(x, y) for x in range(size)] for y in range(size)]
    with open(path, "wb") as fh:
        if mode == "grey1":
            png.Writer(size, size, greyscale=True, bitdepth=1).write(fh, [[0 if d else 1 for d in r] for r in pixels])
        elif mode == "grey8":
            png.Writer(size, size, greyscale=True).write(fh, [[0 if d else 255 for d in r] for r in pixels])
        elif mode == "grey16":
            png.Writer(size, size, greyscale=True, bitdepth=16).write(fh, [[0 if d else 65535 for d in r] for r in pixels])
        elif mode == "rgb":
            png.Writer(size, size, greyscale=False).write(
                fh, [[c for d in r for c in ((20, 20, 60) if d else (250, 245, 230))] for r in pixels])
        elif mode == "rgba-transparent":  # dark modules on a transparent background (which reads as paper)
            png.Writer(size, size, greyscale=False, alpha=True).write(
                fh, [[c for d in r for c in ((0, 0, 0, 255) if d else (0, 0, 0, 0))] for r in pixels])
        else:
            png.Writer(size, size, palette=[(0, 0, 0), (255, 255, 255)], bitdepth=1).write(
                fh, [[0 if d else 1 for d in r] for r in pixels])
    assert labels.read(path).text() == text


def test_too_large_image_is_refused_before_decoding(tmp_path):
    import png

    path = tmp_path / "huge.png"
    width = 5000
    with open(path, "wb") as fh:  # compresses to little: the size check must read the header only
        png.Writer(width, 3400, greyscale=True, bitdepth=1).write(fh, ([0] * width for _ in range(3400)))
    with pytest.raises(LabelError, match="5000x3400 pixels is too large"):
        labels.read(path)
