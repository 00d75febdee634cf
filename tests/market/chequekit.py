"""A payee's cheque book with one channel and one call noted, and a renter signing cheques."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hub.crypto.keys import PrivateKey
from hub.crypto.signing import Network
from hub.crypto.statements import Cheque, Receipt, Signed, receipt_hash, sign
from hub.market.cheques import Call, Channel, ChequeBook

NETWORK = Network("ruff-test", bytes(range(32)))


@dataclass
class Rental:
    book: ChequeBook
    renter: PrivateKey
    device: PrivateKey
    channel: bytes
    contract: bytes
    call: bytes
    network: Network = NETWORK

    def receipt(self, reading: int, price: int, call: bytes | None = None) -> bytes:
        """A receipt the hub issued (signed by the device), noted with the price of its usage."""
        call = call or self.call
        st = Receipt(chain=self.network.chain_id, device=self.device.public_key, call=call, entity="energy",
                     reading=reading, time=reading, signer=self.device.public_key)
        h = receipt_hash(st)
        self.book.note_receipt(h, call, price)
        return h

    def cheque(self, amount: int, call_amount: int | None = None, *, receipt: bytes | None = None,
               key: PrivateKey | None = None, network: Network | None = None, **fields) -> Signed:
        body = dict(chain=(network or self.network).chain_id, channel=self.channel, contract=self.contract,
                    call=self.call, receipt=receipt if receipt is not None else self.receipt(amount, 0),
                    amount=amount, call_amount=amount if call_amount is None else call_amount,
                    renter=self.renter.public_key)
        body.update(fields)
        return sign(Cheque(**body), key or self.renter, network or self.network)


def rental(path: Path, deposit: int = 1000) -> Rental:
    book = ChequeBook(path, NETWORK)
    renter, device = PrivateKey.generate(), PrivateKey.generate()
    channel, contract, call = os.urandom(32), os.urandom(32), os.urandom(32)
    book.note_channel(channel, Channel(renter.public_key, deposit))
    book.note_call(call, Call(channel, contract, renter.public_key))
    return Rental(book, renter, device, channel, contract, call)
