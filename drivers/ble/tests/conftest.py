"""Fixtures of the BLE driver's tests; helpers are in ble_testing.py."""

from __future__ import annotations

import pytest

import ble_testing  # noqa: F401 - puts the repository and hardware-in-loop/ on sys.path


@pytest.fixture
def hub_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    return data
