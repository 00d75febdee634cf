"""Market payloads for chain tests (docs/chain.md "Market transactions"), built as every client
builds them: terms, a controller's review consent, a renter's cheque."""

from __future__ import annotations

from hub.chain.protocol.market import channel_id
from hub.crypto.keys import PrivateKey
from hub.crypto.statements import Cheque, ReviewConsent, sign

from tests.chain.chainkit import network_of

DEVICE_COMMANDS = ["outlet.turn_off", "outlet.turn_on"]


def prepaid(price: int = 50, window: int = 60_000, max_duration: int = 180_000) -> dict:
    return {"kind": "prepaid", "price": price, "window": window, "max_duration": max_duration}


def metered(rate: int = 10, meter: str = "", interval: int = 60_000, deposit: int = 100,
            max_duration: int = 3_600_000) -> dict:
    return {"kind": "metered", "rate": rate, "meter": meter, "interval": interval if not meter else 0,
            "deposit": deposit, "max_duration": max_duration}


def offer(device: bytes, terms: dict, commands=DEVICE_COMMANDS, endpoint: str = "") -> dict:
    return {"device": device, "commands": list(commands), "terms": terms, "endpoint": endpoint}


def consent(controller: PrivateKey, contract: bytes, call: bytes, device: bytes, where, *, chain: str | None = None) -> dict:
    net = network_of(where)
    statement = ReviewConsent(chain or net.chain_id, contract, call, device, controller.public_key)
    return sign(statement, controller, net).to_body()


def cheque(renter: PrivateKey, channel: bytes, contract: bytes, call: bytes, amount: int, where, *,
           call_amount: int | None = None, receipt: bytes = b"\x5e" * 32, chain: str | None = None) -> dict:
    net = network_of(where)
    statement = Cheque(chain or net.chain_id, channel, contract, call, receipt, amount,
                       amount if call_amount is None else call_amount, renter.public_key)
    return sign(statement, renter, net).to_body()


def returned(controller: PrivateKey, call: bytes, contract: bytes, device: bytes, used: int, where, *,
             cheque_body: dict | None = None, result: str = "") -> dict:
    return {"call": call, "used": used, "result": result,
            "consent": consent(controller, contract, call, device, where), "cheque": cheque_body}


def first_channel(renter: PrivateKey, payee: PrivateKey, opening: int = 1) -> bytes:
    return channel_id(renter.public_key, payee.public_key, opening)
