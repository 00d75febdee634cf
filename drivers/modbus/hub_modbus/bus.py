"""One connection (a TCP link or one RS-485 line) and the rules every request on it obeys.

This is the zigpy "radio" layer: it knows nothing of entities. It guarantees what the wire needs:
one transaction at a time (a serial line, and the RTU line behind a TCP gateway, are shared by every
device on it), the silent gap RTU requires between frames, retries with back-off for timeouts and
busy devices (of reads: a write is sent once, see :class:`WriteUncertain`), and reopening a link
that went away (a USB adapter unplugged, a PLC rebooted) without ever blocking the callers for
longer than one timeout. Failures come out as the small exception types below, so the device layer
can tell "nobody answered" from "the device said no".
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerType

from hub_modbus.config import RtuConnection, RtuOverTcpConnection, TcpConnection

log = logging.getLogger("hub.plugins.modbus")

#: Exception codes that mean "ask again later", not "this request is wrong" (MODBUS Application
#: Protocol V1.1b3, section 7): acknowledge (5) and device busy (6).
RETRYABLE = frozenset({5, 6})
#: Of those, the ones after which a write may be sent again: "busy" means the device did not take it.
#: "Acknowledge" means it took it and is still carrying it out, so sending it again would repeat it.
RETRYABLE_WRITE = frozenset({6})
EXCEPTION_NAMES = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "device failure",
    5: "acknowledge", 6: "device busy", 8: "memory parity error", 10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


class BusError(Exception):
    """Nobody answered: a timeout, a closed link, a garbled frame."""


class WriteUncertain(BusError):
    """A write went out and no answer came back: the device may or may not have carried it out.

    Never retried, unlike a read: a write is not idempotent in general (a pulse, a counter reset, a
    relay board's toggle function), and repeating one the device did carry out is worse than
    reporting that we do not know."""


class DeviceException(Exception):
    """The device answered with a Modbus exception response."""

    def __init__(self, code: int, what: str) -> None:
        self.code = code
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(f"{what}: {name} (exception {code})")

    @property
    def means_absent(self) -> bool:
        """A gateway saying its target did not answer is, for us, the device not answering."""
        return self.code in (10, 11)


@dataclass
class BusStats:
    requests: int = 0  # frames sent, retries included
    timeouts: int = 0
    exceptions: int = 0
    tx_bytes: int = 0
    rx_bytes: int = 0
    reconnects: int = 0


_READ = {"coil": "read_coils", "discrete_input": "read_discrete_inputs",
         "input": "read_input_registers", "holding": "read_holding_registers"}


class ModbusBus:
    def __init__(self, name: str, config: TcpConnection | RtuOverTcpConnection | RtuConnection) -> None:
        self.name = name
        self.config = config
        self.stats = BusStats()
        self._lock = asyncio.Lock()
        self._client = self._make_client()
        self._last_frame_end = 0.0
        self._rx_frame = 0
        self._next_connect = 0.0
        self._connect_delay = 0.0
        self.gap = config.gap if isinstance(config, RtuConnection) else 0.0

    def describe(self) -> str:
        c = self.config
        if isinstance(c, RtuConnection):
            return f"{c.port} {c.baudrate} {c.bytesize}{c.parity}{c.stopbits}"
        scheme = "rtu+tcp" if isinstance(c, RtuOverTcpConnection) else "tcp"
        return f"{scheme}://{c.host}:{c.port}"

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self.stats.tx_bytes += len(data)
        else:
            # pymodbus hands over the whole unparsed buffer each time a piece arrives, so within one
            # transaction the last length seen is the answer's length.
            self._rx_frame = len(data)
        return data

    def _make_client(self):
        c = self.config
        # pymodbus's own retries and background reconnects are off: this class owns both, so that
        # the counts of failures it reports are the real ones and a dead link costs one timeout.
        common = dict(timeout=c.timeout, retries=0, reconnect_delay=0, trace_packet=self._trace)
        if isinstance(c, RtuConnection):
            return AsyncModbusSerialClient(
                c.port, framer=FramerType.RTU, baudrate=c.baudrate, bytesize=c.bytesize, parity=c.parity,
                stopbits=c.stopbits, **common,
            )
        framer = FramerType.RTU if isinstance(c, RtuOverTcpConnection) else FramerType.SOCKET
        return AsyncModbusTcpClient(c.host, port=c.port, framer=framer, **common)

    @property
    def connected(self) -> bool:
        return bool(self._client.connected)

    async def _ensure_connected(self) -> None:
        if self._client.connected:
            return
        now = time.monotonic()
        if now < self._next_connect:
            raise BusError(f"{self.describe()} is not open (next attempt in {self._next_connect - now:.1f} s)")
        self.stats.reconnects += 1
        self._client.close()
        try:
            ok = await self._client.connect()
        except Exception as exc:  # noqa: BLE001 - pyserial and asyncio raise a zoo of types here
            ok, reason = False, exc
        else:
            reason = "no answer"
        if not ok:
            # Back off from 0.25 s doubling to reconnect_max: an unplugged adapter is checked often
            # at first (it is usually replugged at once) and rarely once it has stayed away.
            self._connect_delay = min(max(self._connect_delay * 2, 0.25), self.config.reconnect_max)
            self._next_connect = time.monotonic() + self._connect_delay
            raise BusError(f"cannot open {self.describe()}: {reason}")
        self._connect_delay = 0.0
        log.info("modbus: %s open", self.describe())

    async def _quiet_line(self) -> None:
        if self.gap:
            wait = self._last_frame_end + self.gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    def _reset(self) -> None:
        """Drop the link after a request whose answer we stopped waiting for: a late answer left on
        it would otherwise be read as the answer to the next request. The next request reconnects."""
        self._client.close()

    async def _transact(self, method: str, what: str, *args, write: bool = False, **kwargs):
        c = self.config
        retryable = RETRYABLE_WRITE if write else RETRYABLE
        async with self._lock:
            last: Exception | None = None
            for attempt in range(c.retries + 1):
                if attempt:
                    await asyncio.sleep(c.retry_backoff * 2 ** (attempt - 1))
                await self._ensure_connected()  # raises before anything is sent: safe for writes too
                await self._quiet_line()
                self.stats.requests += 1
                try:
                    response = await getattr(self._client, method)(*args, **kwargs)
                except asyncio.CancelledError:  # the hub's command timeout (504) gave up on us
                    self._reset()
                    raise
                except (ModbusException, asyncio.TimeoutError, OSError) as exc:
                    self.stats.timeouts += 1
                    reason = "link lost" if isinstance(exc, ConnectionException) else (str(exc) or "no answer")
                    if write:
                        self._reset()
                        raise WriteUncertain(
                            f"{what}: {reason}; the device may or may not have carried it out "
                            "(not sent again: check its state before repeating the command)"
                        ) from None
                    last = BusError(f"{what}: {reason}")
                    continue
                finally:
                    self._last_frame_end = time.monotonic()
                    self.stats.rx_bytes += self._rx_frame
                    self._rx_frame = 0
                if response.isError():
                    self.stats.exceptions += 1
                    last = DeviceException(getattr(response, "exception_code", 0), what)
                    if last.code in retryable:
                        continue
                    raise last
                return response
            assert last is not None
            raise last

    async def read(self, register: str, device_id: int, address: int, count: int) -> list[int] | list[bool]:
        what = f"read {count} {register} at {address} from id {device_id}"
        response = await self._transact(_READ[register], what, address, count=count, device_id=device_id)
        values = response.bits[:count] if register in ("coil", "discrete_input") else response.registers
        if len(values) != count:  # a stale answer to an earlier request on a serial line
            raise BusError(f"{what}: got {len(values)} values")
        return list(values)

    async def write_coil(self, device_id: int, address: int, value: bool) -> None:
        await self._transact("write_coil", f"write coil {address} on id {device_id}", address, value,
                             device_id=device_id, write=True)

    async def write_registers(self, device_id: int, address: int, words: list[int]) -> None:
        what = f"write {len(words)} holding at {address} on id {device_id}"
        if len(words) == 1:  # function 6: the one every device supports
            await self._transact("write_register", what, address, words[0], device_id=device_id, write=True)
        else:
            await self._transact("write_registers", what, address, words, device_id=device_id, write=True)

    def close(self) -> None:
        self._client.close()
