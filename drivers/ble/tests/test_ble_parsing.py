"""Real advertisement payloads (BTHome v2 and Xiaomi MiBeacon, built as their specifications lay
them out) through the real parser libraries, into the hub's entity specs and values."""

from ble_testing import (BIND_KEY, BTHOME_DOUBLE_PRESS, BTHOME_PRESS, BTHOME_THERMOMETER, BTHOME_UUID,
                         XIAOMI_UUID, advertisement, bthome_encrypted, mibeacon_lywsdcgq)
from hub_ble.parsing import Decoder, recognise, service_info

ADDRESS = "54:48:E6:8F:80:A5"


def info(service_data, address=ADDRESS, rssi=-60):
    return service_info(*advertisement(address, service_data, rssi=rssi))


def test_a_bthome_thermometer_becomes_sensors_with_classes_and_units():
    reading = Decoder("bthome").decode(info({BTHOME_UUID: BTHOME_THERMOMETER}))
    assert reading.values == {"temperature": 25.06, "humidity": 50.55, "battery": 97, "signal_strength": -60}
    specs = {k: (s.capability, s.device_class, s.unit) for k, s in reading.specs.items()}
    assert specs == {"temperature": ("sensor", "temperature", "°C"), "humidity": ("sensor", "humidity", "%"),
                     "battery": ("sensor", "battery", "%"), "signal_strength": ("sensor", "signal_strength", "dBm")}
    assert reading.events == []


def test_an_encrypted_bthome_device_needs_its_bind_key():
    payload = bthome_encrypted(ADDRESS, bytes.fromhex("02ca0903bf13"))
    good = Decoder("bthome", bytes.fromhex(BIND_KEY))
    assert good.decode(info({BTHOME_UUID: payload})).values == {"temperature": 25.06, "humidity": 50.55,
                                                                "signal_strength": -60}
    assert good.key_ok is True
    wrong = Decoder("bthome", bytes(16))
    assert "temperature" not in wrong.decode(info({BTHOME_UUID: payload})).values
    assert wrong.key_ok is False


def test_bthome_button_presses_are_events():
    decoder = Decoder("bthome")
    assert decoder.decode(info({BTHOME_UUID: BTHOME_PRESS})).events == [
        {"key": "button", "event_type": "press", "properties": {}}]
    assert decoder.decode(info({BTHOME_UUID: BTHOME_DOUBLE_PRESS})).events == [
        {"key": "button", "event_type": "double_press", "properties": {}}]


def test_a_xiaomi_lywsdcgq_frame_becomes_temperature_and_humidity():
    address = "58:2D:34:12:34:56"
    reading = Decoder("xiaomi").decode(info({XIAOMI_UUID: mibeacon_lywsdcgq(address, 21.5, 55.0)}, address))
    assert reading.model == "LYWSDCGQ"
    assert reading.values == {"temperature": 21.5, "humidity": 55.0, "signal_strength": -60}
    assert reading.specs["temperature"].unit == "°C" and reading.specs["humidity"].device_class == "humidity"


def test_each_format_is_recognised_and_a_stranger_is_not():
    assert recognise(info({BTHOME_UUID: BTHOME_THERMOMETER})) == "bthome"
    assert recognise(info({XIAOMI_UUID: mibeacon_lywsdcgq("58:2D:34:12:34:56", 20, 40)}, "58:2D:34:12:34:56")) == "xiaomi"
    assert recognise(info({"0000feaa-0000-1000-8000-00805f9b34fb": b"\x10\x00\x03ruff"})) is None
    # A truncated object: nothing but the signal strength is believed.
    assert Decoder("bthome").decode(info({BTHOME_UUID: b"\x40\x02"})).values == {"signal_strength": -60}
