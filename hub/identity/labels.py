"""Device labels: what a manufacturer prints on a device, as text and as a QR code.

Two kinds, one text form each (the QR code carries exactly the text):

- ``ruff-device:1:sk:<seed hex>``: the whitepaper's label. It carries the device's private key, so
  whoever reads it first can bind the device; the hub erases its copy once the binding is made.
- ``ruff-device:1:pk:<public key hex>:<setup code>``: the strong label, for a device that holds its
  own key. It carries only the public key and a one-time setup code (10 characters of Crockford
  base32, 50 bits); the device proves it holds the key by signing a ``BindProof`` for the
  controller's nonce, and only after checking a MAC made with the setup code
  (:func:`code_mac`), so a passer-by who saw the public key alone cannot bind it.

Reading accepts the text pasted, a text file, or a PNG of the QR code (decoded with zxing-cpp from
pixels that pypng, pure Python, unpacks: no numpy or Pillow on a Pi). Every error names what is
wrong, and never repeats a seed.
"""

from __future__ import annotations

import hmac
import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from hub.crypto.keys import PUBLIC_KEY_SIZE, SEED_SIZE, PrivateKey

PREFIX = "ruff-device"
VERSION = "1"
SETUP_CODE_LENGTH = 10
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Crockford's decoding: case-insensitive, I and L read as 1, O as 0, hyphens and spaces ignored,
# so a code copied by hand from a printed label still matches.
_ALIASES = {"I": "1", "L": "1", "O": "0"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_FILE_BYTES = 4 * 1024 * 1024  # a label PNG is a few kilobytes; refuse anything that could be a bomb
MAX_PIXELS = 4096 * 4096


class LabelError(ValueError):
    """A label that cannot be read; the message names what is wrong (never the seed)."""


@dataclass(frozen=True)
class Label:
    """A device's label. ``seed`` is set for a whitepaper label (and, for a strong one, only where
    it was just made: the manufacturer writes it into the device); ``setup_code`` is set for a
    strong label, in canonical form (upper case, no separators), the form :func:`code_mac` takes."""

    public_key: bytes
    seed: bytes | None
    setup_code: str | None

    @property
    def strong(self) -> bool:
        return self.setup_code is not None

    def key(self) -> PrivateKey:
        if self.seed is None:
            raise LabelError("this label carries no private key (a strong label: the device signs for itself)")
        return PrivateKey(self.seed)

    def text(self) -> str:
        """The printed form: the setup code for a strong label, else the seed."""
        if self.setup_code is not None:
            return f"{PREFIX}:{VERSION}:pk:{self.public_key.hex()}:{self.setup_code}"
        if self.seed is None:
            raise LabelError("a label needs a seed or a setup code")
        return f"{PREFIX}:{VERSION}:sk:{self.seed.hex()}"

    def __repr__(self) -> str:  # never show the seed (tracebacks and logs print reprs)
        kind = "strong" if self.strong else "seed"
        return f"Label({kind}, public_key={self.public_key.hex()[:16]}...)"


def make(seed: bytes | None = None, strong: bool = False) -> tuple[Label, str]:
    """A new label (a fresh key unless ``seed`` is given) and its printed text."""
    key = PrivateKey(seed) if seed is not None else PrivateKey.generate()
    code = new_setup_code() if strong else None
    label = Label(key.public_key, key.seed, code)
    return label, label.text()


def new_setup_code() -> str:
    return "".join(secrets.choice(CROCKFORD) for _ in range(SETUP_CODE_LENGTH))


def normalise_setup_code(code: str) -> str:
    """The canonical form of a setup code as a person may type it; raises :class:`LabelError`."""
    if not isinstance(code, str):
        raise LabelError("setup code: text expected")
    out = []
    for ch in code.upper():
        if ch in "- ":
            continue
        ch = _ALIASES.get(ch, ch)
        if ch not in CROCKFORD:
            raise LabelError(f"setup code: {ch!r} is not a Crockford base32 character")
        out.append(ch)
    if len(out) != SETUP_CODE_LENGTH:
        raise LabelError(f"setup code: {SETUP_CODE_LENGTH} characters expected, got {len(out)}")
    return "".join(out)


def code_mac(setup_code: str, controller: bytes, nonce: bytes) -> bytes:
    """Strong binding: what the controller sends with its nonce, and what the device recomputes
    from the code it keeps before it signs a ``BindProof``."""
    return hmac.new(setup_code.encode(), controller + nonce, "sha256").digest()


def check_code_mac(setup_code: str, controller: bytes, nonce: bytes, mac: bytes) -> bool:
    return isinstance(mac, bytes) and hmac.compare_digest(code_mac(setup_code, controller, nonce), mac)


def parse(text: str) -> Label:
    """A label from its text form; raises :class:`LabelError` naming the part that is wrong."""
    if not isinstance(text, str):
        raise LabelError("a label is text")
    text = text.strip()
    parts = text.split(":")
    if len(parts) < 2 or parts[0] != PREFIX:
        raise LabelError(f"not a device label: it must start with {PREFIX}:{VERSION}:")
    if parts[1] != VERSION:
        raise LabelError(f"label version {parts[1]!r} is not supported (this hub reads version {VERSION})")
    kind = parts[2] if len(parts) > 2 else ""
    if kind == "sk":
        if len(parts) != 4:
            raise LabelError(f"a private-key label is {PREFIX}:{VERSION}:sk:<seed hex>")
        seed = _hex(parts[3], SEED_SIZE, "private key")
        return Label(PrivateKey(seed).public_key, seed, None)
    if kind == "pk":
        if len(parts) != 5:
            raise LabelError(f"a strong label is {PREFIX}:{VERSION}:pk:<public key hex>:<setup code>")
        public_key = _hex(parts[3], PUBLIC_KEY_SIZE, "public key")
        return Label(public_key, None, normalise_setup_code(parts[4]))
    raise LabelError(f"label kind {kind!r} is not sk (private key) or pk (public key and setup code)")


def _hex(value: str, size: int, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise LabelError(f"{what}: not hex") from None  # no echo: the value may be a seed
    if len(raw) != size:
        raise LabelError(f"{what}: {size} bytes ({size * 2} hex digits) expected, got {len(raw)}")
    return raw


def read(source: str | os.PathLike[str]) -> Label:
    """A label from pasted text, a text file, or a PNG of its QR code."""
    if isinstance(source, str) and source.strip().startswith(f"{PREFIX}:"):
        return parse(source)
    path = Path(source)
    try:
        size = path.stat().st_size
    except OSError:
        raise LabelError(f"{source}: neither label text ({PREFIX}:...) nor a readable file") from None
    if size > MAX_FILE_BYTES:
        raise LabelError(f"{path}: {size} bytes is too large for a label")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LabelError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if raw.startswith(PNG_MAGIC):
        text = _decode_png(raw, path)
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise LabelError(f"{path}: neither a PNG nor a text file") from None
    try:
        return parse(text)
    except LabelError as exc:
        raise LabelError(f"{path}: {exc}") from None


def _decode_png(raw: bytes, path: Path) -> str:
    import png
    import zxingcpp

    try:
        reader = png.Reader(bytes=raw)
        width, height, _, info = reader.read()  # the header only: size is checked before decoding
        if width * height > MAX_PIXELS:
            raise LabelError(f"{path}: {width}x{height} pixels is too large for a label")
        grey = _grey_pixels(raw, png)
    except LabelError:
        raise
    except (png.Error, ValueError, EOFError) as exc:
        raise LabelError(f"{path}: not a readable PNG: {exc}") from None
    image = memoryview(bytes(grey)).cast("B", (height, width))
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    if not found:
        raise LabelError(f"{path}: no QR code found in the image")
    texts = {b.text for b in found}
    if len(texts) > 1:
        raise LabelError(f"{path}: {len(texts)} different QR codes in the image; crop it to the label's")
    return texts.pop()


def _grey_pixels(raw: bytes, png) -> bytearray:
    """One byte of luminance per pixel. Opaque 8-bit-or-less images (what a label generator or a
    screenshot gives) go row by row through bytes operations; only images with transparency or 16
    bits per channel take the per-pixel path (a pure-Python loop: seconds for a photo on a Pi)."""
    width, height, rows, info = png.Reader(bytes=raw).asDirect()
    planes, depth = info["planes"], info["bitdepth"]
    grey = bytearray()
    if not info["alpha"] and depth <= 8:
        if info["greyscale"]:
            top = (1 << depth) - 1
            table = bytes(min(255, v * 255 // top) for v in range(256))
            for row in rows:
                grey += bytes(row).translate(table)
        else:  # RGB: green carries most of the luminance, and a QR code is black on white
            for row in rows:
                grey += bytes(row)[1::planes]
        return grey
    for row in png.Reader(bytes=raw).asRGBA8()[2]:
        r, g, b, a = row[0::4], row[1::4], row[2::4], row[3::4]
        # Luminance, composited onto white: a transparent background reads as paper.
        grey.extend((x * 299 + y * 587 + z * 114) // 1000 * w // 255 + 255 - w for x, y, z, w in zip(r, g, b, a))
    return grey


def _qr(text: str):
    import segno

    # M: a label survives some scuffing; the text is short enough that the code stays small.
    return segno.make_qr(text, error="m", boost_error=False)


def write_png(text: str, path: str | os.PathLike[str], scale: int = 8) -> Path:
    """The label's QR code as a PNG, created 0600 (a whitepaper label is a private key)."""
    buf = io.BytesIO()
    _qr(text).save(buf, kind="png", scale=scale, border=4)
    return write_private(path, buf.getvalue())


def terminal(text: str, ansi: bool = True) -> str:
    """The QR code drawn with Unicode half blocks. The blocks are the light modules, so on a light
    terminal theme the code would come out inverted (which many phone scanners do not read): with
    ``ansi``, every line is painted bright white on black, dark on light whatever the theme (click
    strips the colours when the output is not a terminal)."""
    out = io.StringIO()
    _qr(text).terminal(out=out, compact=True, border=2)
    lines = out.getvalue().splitlines()
    if not ansi:
        return "".join(line + "\n" for line in lines)
    return "".join(f"\x1b[97;40m{line}\x1b[0m\n" for line in lines)


def write_private(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Create ``path`` 0600 with ``data``; an existing file is never overwritten (it may be the only
    copy of a device's key)."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return path


__all__ = ["Label", "LabelError", "code_mac", "check_code_mac", "make", "parse", "read", "write_png", "terminal",
           "write_private", "normalise_setup_code"]
