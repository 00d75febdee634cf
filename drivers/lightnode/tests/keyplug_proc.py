"""The keyplug simulator as a real process, and a plain blocking client of its protocol: what the
tests use to play a hub (or an attacker) against the device itself."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from hub.crypto import keys
from hub.crypto.encoding import decode
from hub.crypto.signing import Network
from hub.crypto.statements import Command, Signed, sign

from hub_lightnode import protocol
from hub.net.ports import free_port  # below the ephemeral range: no close-then-bind race

REPO = Path(__file__).resolve().parents[3]
KEYPLUG = REPO / "hardware-in-loop" / "simulators" / "keyplug.py"
NETWORK = Network("ruff-test", bytes(range(32)))


class KeyPlug:
    """``keyplug.py`` in its own process; ``lines`` is everything it printed."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.folder = folder
        self.flash = folder / "flash.json"
        self.labels = folder / "labels"
        self.port = free_port()
        self.args = list(args)
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []

    def start(self, timeout: float = 15) -> "KeyPlug":
        self.port = self.port or free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(KEYPLUG), "--flash", str(self.flash), "--port", str(self.port),
             "--label-out", str(self.labels), *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()

        def pump(proc: subprocess.Popen = self.proc) -> None:
            for line in proc.stdout:
                self.lines.append(line.rstrip("\n"))
                if line.strip() == "ready":
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            raise RuntimeError("keyplug did not get ready:\n" + "\n".join(self.lines))
        return self

    @property
    def public_key(self) -> bytes:
        return bytes.fromhex(next(line.split()[1] for line in self.lines if line.startswith("device ")))

    def label(self) -> str:
        return next(self.labels.glob("*-label.txt")).read_text().strip()

    def device_key(self) -> keys.PrivateKey:
        """The seed printed on a whitepaper label: what a binder reads off the plug."""
        return keys.PrivateKey(bytes.fromhex(self.label().split(":")[3]))

    def setup_code(self) -> str:
        return self.label().split(":")[4]

    def press_reset(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Client:
    """A blocking connection to the device: reads its hello, then asks and collects pushes."""

    def __init__(self, port: int, timeout: float = 5) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.pushed: list[dict] = []
        self._ids = 0
        self.hello = self.read()

    def read(self) -> dict:
        header = self._exactly(protocol.HEADER.size)
        (size,) = protocol.HEADER.unpack(header)
        return protocol.check(decode(self._exactly(size)))

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the device closed the connection")
            data += chunk
        return data

    def send(self, message: dict) -> None:
        self.sock.sendall(protocol.pack(message))

    def ask(self, message: dict, network: Network = NETWORK) -> dict:
        self._ids += 1
        if message["t"] in ("deliver", "prove", "receipt"):
            message = {**message, "chain": network.chain_id, "genesis": network.genesis_hash}
        self.send({**message, "id": self._ids})
        while True:
            answer = self.read()
            if answer["t"] == "answer" and answer["id"] == self._ids:
                return answer
            self.pushed.append(answer)

    def deliver(self, signed: Signed, network: Network = NETWORK) -> dict:
        return self.ask({"t": "deliver", "signed": signed.to_body()}, network)

    def wait_push(self, predicate, timeout: float = 5) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.pushed:
                if predicate(message):
                    self.pushed.remove(message)
                    return message
            self.pushed.append(self.read())
        raise AssertionError(f"no such push within {timeout} s: {self.pushed}")

    def close(self) -> None:
        self.sock.close()


def command(device: bytes, signer: keys.PrivateKey, name: str, counter: int, *, entity: str = "relay",
            issued_at: int | None = None, network: Network = NETWORK, args: dict[str, Any] | None = None) -> Signed:
    issued = int(time.time() * 1000) if issued_at is None else issued_at
    return sign(Command(network.chain_id, device, entity, name, args or {}, issued, counter, signer.public_key),
                signer, network)
