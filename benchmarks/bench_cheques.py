"""Cheques checked and stored by one hub, on one core (issue #17).

Target: at least 5,000 cheques/s checked and kept by one hub on one core (the Ed25519 check alone
allows about 14,000/s on this machine).

Set-up: 20 renters, each with a channel to the hub's controller and one open call, and one receipt
issued per cheque (priced, so each cheque's ``underpaid`` check is real). Every cheque is signed
beforehand by the client; each one rises over the last of its channel, so each is accepted and
written (latest per channel and per call, in market.db, WAL). Measured:

- ``verify_only_per_s``: the Ed25519 check alone (``Signed.verify``), for scale;
- ``book_batch_per_s``: :meth:`ChequeBook.accept_many` on lists of 100 JSON cheques (what the route
  hands it: parse, every check, the two upserts, one commit per list), this process pinned to one core;
- ``book_single_per_s``: the same one cheque per call (one commit each);
- ``http_batch_per_s``: ``POST /api/market/cheques`` with lists of 100 to a real ``hub run`` pinned
  to one core (embedded default; the hub's own cheque book, into which the fixture plugin
  ``tests/market/chequeplug`` notes the channels, calls and receipts), the client on the other core;
- ``http_single_per_s``: the route with one cheque per request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import tempfile
import time
from pathlib import Path

from _hubproc import free_port, start, stop, wait_healthy

from hub.chain.protocol.genesis import load_genesis
from hub.crypto.keys import PrivateKey
from hub.crypto.signing import Network
from hub.crypto.statements import Cheque, Receipt, Signed, receipt_hash, sign
from hub.market.cheques import Call, Channel, ChequeBook

FIXTURE_PLUGIN = Path(__file__).resolve().parents[1] / "tests" / "market" / "chequeplug"
RENTERS = 20
DEVICE = PrivateKey(b"\x62" * 32)


class Renters:
    """``RENTERS`` renters, each with a channel and a call; cheques signed ahead, rising per channel."""

    def __init__(self, net: Network, seed: int) -> None:
        self.net = net
        self.keys = [PrivateKey(bytes([seed, i]) * 16) for i in range(RENTERS)]
        self.channels = [bytes([seed, 1, i]) * 8 + b"\0" * 8 for i in range(RENTERS)]
        self.calls = [bytes([seed, 2, i]) * 8 + b"\0" * 8 for i in range(RENTERS)]
        self.contract = bytes([seed, 3]) * 16
        self.amounts = [0] * RENTERS
        self.receipts: list[tuple[bytes, bytes, int]] = []  # (hash, call, price)
        self.reading = 0

    def fixture(self) -> dict:
        return {
            "channels": [{"id": c.hex(), "renter": k.public_key.hex(), "deposit": 10**15}
                         for c, k in zip(self.channels, self.keys)],
            "calls": [{"id": call.hex(), "channel": c.hex(), "contract": self.contract.hex(),
                       "renter": k.public_key.hex()} for call, c, k in zip(self.calls, self.channels, self.keys)],
            "receipts": [{"hash": h.hex(), "call": call.hex(), "price": p} for h, call, p in self.receipts],
        }

    def note(self, book: ChequeBook) -> None:
        for c, k, call in zip(self.channels, self.keys, self.calls):
            book.note_channel(c, Channel(k.public_key, 10**15))
            book.note_call(call, Call(c, self.contract, k.public_key))
        for h, call, price in self.receipts:
            book.note_receipt(h, call, price)

    def cheques(self, n: int) -> list[dict]:
        out = []
        for j in range(n):
            i = j % RENTERS
            self.reading += 1
            self.amounts[i] += 3
            st = Receipt(self.net.chain_id, DEVICE.public_key, self.calls[i], "energy", self.reading, self.reading,
                         DEVICE.public_key)
            h = receipt_hash(st)
            self.receipts.append((h, self.calls[i], self.amounts[i]))
            out.append(sign(Cheque(self.net.chain_id, self.channels[i], self.contract, self.calls[i], h,
                                   self.amounts[i], self.amounts[i], self.keys[i].public_key),
                            self.keys[i], self.net).to_json())
        return out


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})


def in_process(n: int, core: int, tmp: Path) -> dict:
    _pin(core)
    net = Network("bench-cheques", bytes(range(32)))
    result = {}
    signed = [Signed.from_json(c) for c in Renters(net, 9).cheques(min(n, 5000))]
    started = time.perf_counter()
    for s in signed:
        assert s.verify(s.statement.renter, net)
    result["verify_only_per_s"] = round(len(signed) / (time.perf_counter() - started))
    for mode, size in (("batch", 100), ("single", 1)):
        renters = Renters(net, 1 if mode == "batch" else 2)
        cheques = renters.cheques(n)
        book = ChequeBook(tmp / f"{mode}.db", net)
        renters.note(book)
        started = time.perf_counter()
        for k in range(0, n, size):
            answers = book.accept_many(cheques[k:k + size])
            assert all(a["ok"] for a in answers), answers[:2]
        result[f"book_{mode}_per_s"] = round(n / (time.perf_counter() - started))
        book.close()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return result


def over_http(n: int, core: int, tmp: Path) -> dict:
    data = tmp / "hub-data"
    port = free_port()
    proc = start(data, port)
    wait_healthy(proc, port)
    stop(proc)
    net = load_genesis(data / "chain" / "genesis.json").network
    batch_renters, single_renters = Renters(net, 3), Renters(net, 4)
    batches, singles = batch_renters.cheques(n), single_renters.cheques(max(1, n // 5))
    fixture = batch_renters.fixture()
    extra = single_renters.fixture()
    for k in fixture:
        fixture[k] += extra[k]
    (data / "cheque-fixture.json").write_text(json.dumps(fixture))
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    if affinity is not None and len(affinity) > 1:
        os.sched_setaffinity(0, affinity - {core})
    proc = start(data, port, plugins_dir=FIXTURE_PLUGIN, core=core)
    result = {}
    try:
        wait_healthy(proc, port)
        deadline = time.monotonic() + 60
        while not (data / "cheque-fixture.noted").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def post(body) -> object:
            conn.request("POST", "/api/market/cheques", json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            answer = json.loads(resp.read())
            assert resp.status == 200, answer
            return answer

        started = time.perf_counter()
        for k in range(0, n, 100):
            answers = post(batches[k:k + 100])
            assert all(a["ok"] for a in answers), answers[:2]
        result["http_batch_per_s"] = round(n / (time.perf_counter() - started))
        started = time.perf_counter()
        for cheque in singles:
            assert post(cheque)["ok"]
        result["http_single_per_s"] = round(len(singles) / (time.perf_counter() - started))
    finally:
        stop(proc)
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cheques", type=int, default=10_000, help="per measurement")
    parser.add_argument("--core", type=int, default=0, help="the CPU the hub (or this process) is pinned to")
    parser.add_argument("--no-http", action="store_true", help="only the in-process measurements")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = {"benchmark": "cheques", "cheques": args.cheques, "renters": RENTERS}
        result.update(in_process(args.cheques, args.core, Path(tmp)))
        if not args.no_http:
            result.update(over_http(args.cheques, args.core, Path(tmp)))
        result["target_per_s"] = 5000
    print(json.dumps(result))


if __name__ == "__main__":
    main()
