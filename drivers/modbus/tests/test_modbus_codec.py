"""Register words <-> values, for every byte and word order a device maker has chosen."""

import math
import struct

import pytest
from hypothesis import given, strategies as st

from hub_modbus import codec

# 0x12345678 as the four orders name it on device data sheets.
ORDERS = {("big", "big"): [0x1234, 0x5678],      # ABCD
          ("big", "little"): [0x5678, 0x1234],   # CDAB
          ("little", "big"): [0x3412, 0x7856],   # BADC
          ("little", "little"): [0x7856, 0x3412]}  # DCBA


@pytest.mark.parametrize("orders,words", ORDERS.items())
def test_uint32_in_every_order(orders, words):
    byte_order, word_order = orders
    assert codec.decode(words, "uint32", byte_order=byte_order, word_order=word_order) == 0x12345678
    assert codec.encode(0x12345678, "uint32", byte_order=byte_order, word_order=word_order) == words


def test_float32_as_an_eastron_meter_sends_it():
    hi, lo = struct.unpack(">HH", struct.pack(">f", 230.5))
    assert codec.decode([hi, lo], "float32") == 230.5
    assert codec.decode([lo, hi], "float32", word_order="little") == 230.5


def test_signed_types_and_64_bit():
    assert codec.decode([0xFFFF], "int16") == -1
    assert codec.decode([0xFFFF], "uint16") == 65535
    assert codec.decode([0xFFFF, 0xFFFE], "int32") == -2
    assert codec.decode([0, 0, 0, 7], "uint64") == 7
    assert codec.decode(codec.encode(-1.25e10, "float64"), "float64") == -1.25e10


def test_bits_and_strings():
    assert codec.decode([0b1010], "bit", bit=1) is True
    assert codec.decode([0b1010], "bit", bit=2) is False
    assert codec.decode(codec.encode("SDM120", "string", count=4), "string") == "SDM120"
    assert codec.decode([0x4142, 0x2020], "string") == "AB"  # space padding is not text
    with pytest.raises(ValueError):
        codec.encode("too long for two", "string", count=2)


def test_values_that_do_not_fit_are_refused_not_wrapped():
    with pytest.raises(ValueError):
        codec.encode(70000, "uint16")
    with pytest.raises(ValueError):
        codec.encode(-1, "uint16")
    with pytest.raises(ValueError):
        codec.encode(math.nan, "int16")
    assert codec.encode(21.6, "int16") == [22]


def test_scaling_keeps_integers_whole():
    assert codec.scaled(215, 0.1, 0, 1) == 21.5
    assert codec.scaled(42, 1, 0, None) == 42 and isinstance(codec.scaled(42, 1, 0, None), int)
    assert codec.scaled(10, 2, -5, None) == 15
    assert codec.unscaled(21.5, 0.1, 0) == pytest.approx(215)


@given(st.integers(-(2**31), 2**31 - 1), st.sampled_from(list(ORDERS)))
def test_int32_round_trips(value, orders):
    words = codec.encode(value, "int32", byte_order=orders[0], word_order=orders[1])
    assert all(0 <= w <= 0xFFFF for w in words)
    assert codec.decode(words, "int32", byte_order=orders[0], word_order=orders[1]) == value
