#!/usr/bin/env python3
"""A serial sensor with a relay, on one end of a pty pair (or a real port).

    python serial_sim.py --port /tmp/ttyDEV [--period 0.5] [--framing line|length]

Every period it prints ``T=<°C> H=<%>`` (temperature and humidity drifting like a room's) and
``RELAY=ON|OFF``. It answers commands, one per line:

    RELAY ON | RELAY OFF   ->  OK RELAY=ON | OK RELAY=OFF
    SP <number>            ->  OK SP=<number>        (a set-point, 5-35)
    SP <out of range>      ->  ERR range
    anything else          ->  ERR unknown command

With ``--framing length`` each message is a 1-byte length followed by the text, no terminator.
Prints ``ready`` on stdout once the port is open; exits when the port goes away (socat ended), as a
device does when its adapter is pulled.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import serial


class Device:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.temperature = 21.0
        self.humidity = 45.0
        self.relay = False
        self.setpoint = 20.0

    def readings(self) -> list[str]:
        self.temperature += self.rng.gauss(0, 0.05) + (self.setpoint - self.temperature) * 0.01
        self.humidity = min(max(self.humidity + self.rng.gauss(0, 0.2), 20), 80)
        return [f"T={self.temperature:.2f} H={self.humidity:.1f}", f"RELAY={'ON' if self.relay else 'OFF'}",
                f"SP={self.setpoint:g}"]

    def answer(self, command: str) -> str:
        words = command.strip().split()
        if words[:1] == ["RELAY"] and len(words) == 2 and words[1] in ("ON", "OFF"):
            self.relay = words[1] == "ON"
            return f"OK RELAY={words[1]}"
        if words[:1] == ["SP"] and len(words) == 2:
            try:
                value = float(words[1])
            except ValueError:
                return "ERR number"
            if not 5 <= value <= 35:
                return "ERR range"
            self.setpoint = value
            return f"OK SP={value:g}"
        return "ERR unknown command"


class Framing:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.buffer = b""

    def encode(self, text: str) -> bytes:
        data = text.encode("ascii")
        return bytes([len(data)]) + data if self.kind == "length" else data + b"\n"

    def feed(self, data: bytes) -> list[str]:
        self.buffer += data
        out = []
        while True:
            if self.kind == "length":
                if not self.buffer or len(self.buffer) < 1 + self.buffer[0]:
                    return out
                n = self.buffer[0]
                out.append(self.buffer[1:1 + n].decode("ascii", "replace"))
                self.buffer = self.buffer[1 + n:]
            else:
                line, sep, rest = self.buffer.partition(b"\n")
                if not sep:
                    return out
                out.append(line.decode("ascii", "replace").strip("\r"))
                self.buffer = rest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", required=True)
    parser.add_argument("--baudrate", type=int, default=9600)
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--framing", choices=["line", "length"], default="line")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    port = serial.Serial(args.port, args.baudrate, timeout=0.02)
    device, framing = Device(args.seed), Framing(args.framing)
    print("ready", flush=True)
    next_report = 0.0
    try:
        while True:
            now = time.monotonic()
            if now >= next_report:
                for line in device.readings():
                    port.write(framing.encode(line))
                next_report = now + args.period
            data = port.read(256)
            for command in framing.feed(data):
                port.write(framing.encode(device.answer(command)))
    except (serial.SerialException, OSError) as exc:
        print(f"port gone: {exc}", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
