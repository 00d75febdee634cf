"""The driver's bus against an independent peer: libmodbus's own unit-test server (Debian's
libmodbus-dev example), built from its C source. pymodbus on both ends could agree on a mistake;
libmodbus is the reference implementation most devices' firmware resembles.

The server's map (``unit-test.h``): holding 0x160-0x17F (zero until written), input 0x108
= 10, coils from 0x130, discrete inputs from 0x1C4 (first byte 0xAC). Special addresses misbehave on
purpose: reading 2 registers gets 1 back, 0x170 answers "busy", 0x172 sleeps 0.5 s.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hil import free_port

EXAMPLES = Path("/usr/share/doc/libmodbus-dev/examples")


def need(condition: bool, what: str) -> None:
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is missing; CI must have it (.ci/run installs libmodbus-dev and gcc)")
        pytest.skip(f"{what} is missing (apt-get install libmodbus-dev gcc pkg-config)")


@pytest.fixture
def libmodbus_server(tmp_path):
    need((EXAMPLES / "unit-test-server.c").exists(), "libmodbus-dev's unit-test-server.c")
    need(shutil.which("gcc") is not None and shutil.which("pkg-config") is not None, "gcc/pkg-config")
    port = free_port()
    # Its port is fixed at 1502 in the source: a copy with a free port keeps parallel runs apart.
    source = (EXAMPLES / "unit-test-server.c").read_text().replace('"127.0.0.1", 1502', f'"127.0.0.1", {port}')
    (tmp_path / "unit-test-server.c").write_text(source)
    shutil.copy(EXAMPLES / "unit-test.h", tmp_path / "unit-test.h")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libmodbus"], capture_output=True, text=True,
                           check=True).stdout.split()
    binary = tmp_path / "unit-test-server"
    subprocess.run(["gcc", "-o", str(binary), str(tmp_path / "unit-test-server.c"), *flags], check=True,
                   capture_output=True)
    proc = subprocess.Popen([str(binary), "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield port
    proc.kill()
    proc.wait(5)


async def exercise(port: int) -> None:
    from hub_modbus.bus import BusError, DeviceException, ModbusBus
    from hub_modbus.config import TcpConnection

    bus = ModbusBus("libmodbus", TcpConnection(type="tcp", host="127.0.0.1", port=port, timeout=0.2,
                                               retries=1, retry_backoff=0.01))
    try:
        for _ in range(50):  # it listens a moment after it starts
            try:
                await bus.write_registers(17, 0x160, [0x022B, 1, 100])  # function 16
                break
            except BusError:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("libmodbus server never answered")
        assert await bus.read("holding", 17, 0x160, 3) == [0x022B, 1, 100]
        assert await bus.read("input", 17, 0x108, 1) == [10]
        assert await bus.read("discrete_input", 17, 0x1C4, 8) == [False, False, True, True, False, True, False, True]
        await bus.write_coil(17, 0x131, True)
        assert (await bus.read("coil", 17, 0x130, 3))[1] is True
        await bus.write_registers(17, 0x165, [1234])  # function 6
        assert await bus.read("holding", 17, 0x165, 1) == [1234]

        with pytest.raises(DeviceException) as busy:  # retried, then reported
            await bus.read("holding", 17, 0x170, 1)
        assert busy.value.code == 6
        with pytest.raises(DeviceException) as illegal:
            await bus.read("holding", 17, 0x300, 1)
        assert illegal.value.code == 2
        with pytest.raises(BusError, match="got 1 values"):  # asked for 2, the server sends 1
            await bus.read("holding", 17, 0x160, 2)
        with pytest.raises(BusError):  # it sleeps 0.5 s: longer than our timeout
            await bus.read("holding", 17, 0x172, 1)
        # None of that took the link down: a good request still gets a good answer.
        await asyncio.sleep(0.6)
        for _ in range(10):
            try:
                assert await bus.read("holding", 17, 0x160, 3) == [0x022B, 1, 100]
                break
            except BusError:  # the late answer of the sleeping request is dropped once
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the link did not recover")
        assert bus.stats.exceptions >= 3 and bus.stats.timeouts >= 1
    finally:
        bus.close()


def test_the_bus_against_libmodbus_unit_test_server(libmodbus_server):
    asyncio.run(exercise(libmodbus_server))
