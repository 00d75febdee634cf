"""ASH, the NCP's end: the link layer a Silicon Labs coordinator speaks on its UART (UG101).

Written from the specification, not from bellows (the host under test): frames end with a Flag
byte (0x7E), reserved bytes are escaped (0x7D, then the byte XOR 0x20), each frame carries a
CRC-CCITT (init 0xFFFF, big-endian), DATA fields are XOR-ed with the LFSR sequence of UG101 §4.3,
DATA frames are numbered modulo 8 and acknowledged (ACK) or rejected (NAK); an unacknowledged
DATA frame is sent again with its reTx bit set. RST from the host resets the link (and the stack
above it) and is answered with RSTACK.

The stack above is any object with ``reset()`` (the NCP rebooted) and ``frame(data)`` (one EZSP
frame from the host); it sends with :meth:`AshNcp.send`.
"""

from __future__ import annotations

import asyncio
import binascii
import logging

LOG = logging.getLogger("ash")

FLAG, ESCAPE, XON, XOFF, SUBSTITUTE, CANCEL = 0x7E, 0x7D, 0x11, 0x13, 0x18, 0x1A
RESERVED = {FLAG, ESCAPE, XON, XOFF, SUBSTITUTE, CANCEL}
ASH_VERSION = 0x02
RESET_SOFTWARE = 0x0B  # the reset code RSTACK reports after the host's RST
ACK_TIMEOUT = 0.8  # seconds before an unacknowledged DATA frame is sent again
MAX_RETRIES = 5


def _lfsr_sequence(length: int) -> bytes:
    out, rand = bytearray(), 0x42
    for _ in range(length):
        out.append(rand)
        rand = (rand >> 1) ^ 0xB8 if rand & 1 else rand >> 1
    return bytes(out)


RANDOM = _lfsr_sequence(256)


def randomize(data: bytes) -> bytes:
    """The same XOR both ways: DATA fields travel randomised so long runs of one byte never do."""
    return bytes(b ^ r for b, r in zip(data, RANDOM))


def crc(data: bytes) -> bytes:
    return binascii.crc_hqx(data, 0xFFFF).to_bytes(2, "big")


def stuff(frame: bytes) -> bytes:
    out = bytearray()
    for b in frame:
        if b in RESERVED:
            out += bytes([ESCAPE, b ^ 0x20])
        else:
            out.append(b)
    return bytes(out)


def unstuff(data: bytes) -> bytes | None:
    out, escaped = bytearray(), False
    for b in data:
        if escaped:
            out.append(b ^ 0x20)
            escaped = False
        elif b == ESCAPE:
            escaped = True
        else:
            out.append(b)
    return None if escaped else bytes(out)


def encode(control: int, payload: bytes = b"") -> bytes:
    body = bytes([control]) + payload
    return stuff(body + crc(body)) + bytes([FLAG])


class AshNcp:
    """One ASH link over a byte transport (``write(bytes)``), NCP side, window of one frame."""

    def __init__(self, stack, write) -> None:
        self.stack = stack
        self.write = write
        self.buffer = bytearray()
        self.discarding = False
        self.rx_next = 0  # frame number the host sends next (our ackNum)
        self.tx_next = 0
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.acked = asyncio.Event()
        self.unacked: tuple[int, bytes] | None = None
        self.rejecting = False
        self.connected = False  # no DATA before the host's first RST
        self.generation = 0  # bumped on RST so an old sender task stops
        self.stats = {"frames_in": 0, "frames_out": 0, "retransmitted": 0, "naks_sent": 0,
                      "crc_errors": 0}
        self.corrupt_next = 0  # test hook: send the next N DATA frames with a broken CRC once
        self.reject_next = 0  # test hook: take the host's next N DATA frames as broken
        self.sender = asyncio.get_running_loop().create_task(self._send_loop(self.queue))

    def unplugged(self) -> None:
        """The port went away or was (re)opened: a replugged stick has lost power, rebooted, and
        waits for the host's RST; meanwhile its devices' messages go nowhere."""
        self.buffer.clear()
        self.discarding = False
        self._reboot(connected=False)

    # --- receiving ---------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        for b in data:
            if b == CANCEL:  # everything since the last Flag is void
                self.buffer.clear()
                self.discarding = False
            elif b == SUBSTITUTE:  # a UART error: drop the frame in progress
                self.discarding = True
            elif b in (XON, XOFF):
                continue
            elif b == FLAG:
                if not self.discarding and self.buffer:
                    self._frame(bytes(self.buffer))
                self.buffer.clear()
                self.discarding = False
            else:
                self.buffer.append(b)

    def _frame(self, raw: bytes) -> None:
        frame = unstuff(raw)
        if frame is None or len(frame) < 3 or crc(frame[:-2]) != frame[-2:]:
            self.stats["crc_errors"] += 1
            LOG.debug("bad frame %s", raw.hex())
            if frame and frame[0] & 0x80 == 0:
                self._nak()
            return
        control, payload = frame[0], frame[1:-2]
        if self.reject_next and control & 0x88 == 0 and self.connected:  # a first DATA send
            self.reject_next -= 1  # test hook: as if line noise had broken this DATA frame
            self.stats["crc_errors"] += 1
            self._nak()
            return
        if control == 0xC0:
            self._reset()
        elif not self.connected:
            LOG.debug("frame before RST ignored: %s", frame.hex())
        elif control & 0x80 == 0:
            self._data(control, payload)
        elif control & 0xE0 == 0x80:
            self._ack(control & 0x07)
        elif control & 0xE0 == 0xA0:
            self._ack(control & 0x07, nak=True)

    def _reset(self) -> None:
        LOG.debug("RST")
        self._reboot(connected=True)
        self.write(encode(0xC1, bytes([ASH_VERSION, RESET_SOFTWARE])))

    def _reboot(self, connected: bool) -> None:
        """The NCP starts over: link numbering, unsent frames and the stack's RAM are gone."""
        self.generation += 1
        self.rx_next = self.tx_next = 0
        self.unacked = None
        self.rejecting = False
        self.connected = connected
        self.queue.put_nowait(None)  # the old sender ends by itself (a cancel can be swallowed)
        self.queue = asyncio.Queue()
        self.acked.set()
        self.stack.reset()
        self.sender = asyncio.get_running_loop().create_task(self._send_loop(self.queue))

    def _data(self, control: int, payload: bytes) -> None:
        frm, retx, ack = (control >> 4) & 7, control & 0x08, control & 7
        self._ack(ack)
        if frm == self.rx_next:
            self.stats["frames_in"] += 1
            self.rx_next = (frm + 1) % 8
            self.rejecting = False
            self.write(encode(0x80 | self.rx_next))
            self.stack.frame(randomize(payload))
        elif retx:  # a copy of one we already have: acknowledge it again, do not act twice
            self.write(encode(0x80 | self.rx_next))
        else:
            self._nak()

    def _nak(self) -> None:
        if not self.rejecting:  # one NAK per reject condition (UG101 §3.3)
            self.stats["naks_sent"] += 1
            self.write(encode(0xA0 | self.rx_next))
            self.rejecting = True

    def _ack(self, ack_num: int, nak: bool = False) -> None:
        if self.unacked is None:
            return
        frm, _ = self.unacked
        if ack_num == (frm + 1) % 8:
            self.unacked = None
            self.acked.set()
        elif nak and ack_num == frm:
            self._transmit(retx=True)

    # --- sending -----------------------------------------------------------------------------
    def send(self, ezsp_frame: bytes) -> None:
        self.queue.put_nowait(ezsp_frame)

    def _transmit(self, retx: bool) -> None:
        frm, data = self.unacked
        if retx:
            self.stats["retransmitted"] += 1
        body = bytes([(frm << 4) | (0x08 if retx else 0) | self.rx_next]) + randomize(data)
        check = crc(body)
        if self.corrupt_next and not retx:
            self.corrupt_next -= 1
            check = bytes([check[0] ^ 0xFF, check[1]])
        self.write(stuff(body + check) + bytes([FLAG]))

    async def _send_loop(self, queue: asyncio.Queue) -> None:
        # Each link generation (between two RSTs) has its own queue and sender, so the old sender
        # never takes or retransmits frames of the next generation.
        generation = self.generation
        while True:
            data = await queue.get()
            if data is None or generation != self.generation:
                return
            self.unacked = (self.tx_next, data)
            self.tx_next = (self.tx_next + 1) % 8
            self.stats["frames_out"] += 1
            for attempt in range(MAX_RETRIES + 1):
                self.acked.clear()
                self._transmit(retx=attempt > 0)
                try:
                    await asyncio.wait_for(self.acked.wait(), ACK_TIMEOUT)
                    break
                except TimeoutError:
                    if self.unacked is None or generation != self.generation:
                        break
                    LOG.debug("no ACK for frame %d (attempt %d)", self.unacked[0], attempt + 1)
            else:
                LOG.warning("host never acknowledged frame; dropping it")
                self.unacked = None
