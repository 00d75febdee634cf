"""Fixtures of the MQTT plugin's tests; helpers are in mqtt_testing.py."""

from __future__ import annotations

import pytest

from mqtt_testing import Client, Mosquitto


@pytest.fixture
def mosquitto(tmp_path):
    broker = Mosquitto(tmp_path / "broker").start()
    yield broker
    broker.kill()


@pytest.fixture
def mqtt_client(mosquitto):
    clients = []

    def make(**kw) -> Client:
        client = Client(mosquitto.port, **kw)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
