"""Colour conversions between the hub's light attributes and ZCL Color Control.

The hub speaks Home Assistant's ``rgb_color`` and ``color_temp_kelvin``; ZCL speaks CIE 1931 xy
(scaled to 0-65535) and mireds. The RGB <-> xy formulas are Home Assistant's (sRGB companding,
Wide RGB D65 primaries), so a colour set here shows the same in both.
"""

from __future__ import annotations

ZCL_XY_SCALE = 65535


def rgb_to_xy(rgb: tuple[int, int, int]) -> tuple[float, float]:
    def linear(channel: int) -> float:
        c = channel / 255
        return ((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92

    r, g, b = (linear(c) for c in rgb)
    x = r * 0.664511 + g * 0.154324 + b * 0.162028
    y = r * 0.283881 + g * 0.668433 + b * 0.047685
    z = r * 0.000088 + g * 0.072310 + b * 0.986039
    total = x + y + z
    if total == 0:
        return 0.0, 0.0
    return x / total, y / total


def xy_to_rgb(x: float, y: float) -> tuple[int, int, int]:
    """The colour at full brightness (brightness is its own attribute)."""
    y = y or 1e-11
    big_y = 1.0
    big_x = big_y / y * x
    big_z = big_y / y * (1 - x - y)
    rgb = [
        big_x * 1.656492 - big_y * 0.354851 - big_z * 0.255038,
        -big_x * 0.707196 + big_y * 1.655397 + big_z * 0.036152,
        big_x * 0.051713 - big_y * 0.121364 + big_z * 1.011530,
    ]
    rgb = [12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055 for c in (max(c, 0.0) for c in rgb)]
    peak = max(rgb)
    if peak > 1:
        rgb = [c / peak for c in rgb]
    r, g, b = (round(c * 255) for c in rgb)
    return r, g, b


def to_zcl_xy(x: float) -> int:
    return max(0, min(ZCL_XY_SCALE - 1, round(x * ZCL_XY_SCALE)))


def from_zcl_xy(value: int) -> float:
    return value / ZCL_XY_SCALE


def kelvin_to_mireds(kelvin: int) -> int:
    return round(1_000_000 / kelvin)


def mireds_to_kelvin(mireds: int) -> int:
    return round(1_000_000 / mireds) if mireds else 0
