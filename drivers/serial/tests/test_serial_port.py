"""A SerialDevice on a real pty (os.openpty), through pyserial-asyncio-fast: lines in, commands out,
acknowledgements waited for."""

import asyncio
import os
import tty

import pytest

import hub_serial
from hub.core.commands import CommandFailed
from hub.runtime import Hub


class Peer:
    """The device's end of the pty, read without blocking the event loop."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    async def read(self, timeout: float = 2.0) -> bytes:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_reader(self.fd, lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait_for(ready, timeout)
        finally:
            loop.remove_reader(self.fd)
        return os.read(self.fd, 256)

    async def answer(self, reply: bytes) -> bytes:
        request = await self.read()
        self.write(reply)
        return request


@pytest.fixture
def pty():
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    yield Peer(master), os.ttyname(slave)
    for fd in (master, slave):
        os.close(fd)


async def wait_for(condition, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


CONFIG = """
serial:
  ports:
    - name: Box
      port: {path}
      entities:
        - {{key: level, pattern: 'L=(?P<value>\\d+)'}}
        - key: pump
          capability: switch
          pattern: 'P=(?P<value>ON|OFF)'
          commands:
            turn_on: {{send: 'P ON', expect: '^OK P=(?P<value>ON|OFF)', error: '^ERR', timeout: 0.3}}
            turn_off: {{send: 'P OFF'}}
        - key: bell
          capability: button
          commands: {{press: {{send: 'BELL', expect: '^RANG', timeout: 0.2}}}}
"""


async def test_lines_commands_and_acknowledgements(tmp_path, pty):
    peer, path = pty
    (tmp_path / "configuration.yaml").write_text(CONFIG.format(path=path))
    hub = Hub(tmp_path, entrypoints=False)
    hub.plugins.register("serial", hub_serial)
    await hub.start()
    try:
        await wait_for(lambda: hub.contexts["serial"].data["devices"][0].stats.open)
        peer.write(b"L=17\nnoise\nP=OFF\n")
        await wait_for(lambda: hub.states.get("sensor.box_level").value == 17)
        assert hub.states.get("switch.box_pump").value == "off"

        responder = asyncio.create_task(peer.answer(b"OK P=ON\n"))
        result = await hub.commands.call("switch.box_pump", "turn_on")
        assert await responder == b"P ON\n" and result["answer"] == "OK P=ON"
        assert hub.states.get("switch.box_pump").value == "on"

        responder = asyncio.create_task(peer.answer(b"ERR overload\n"))
        with pytest.raises(CommandFailed, match="ERR overload"):
            await hub.commands.call("switch.box_pump", "turn_on")
        await responder

        responder = asyncio.create_task(peer.answer(b"...\n"))  # never the expected answer
        with pytest.raises(CommandFailed, match="did not answer .* may or may not have carried it out"):
            await hub.commands.call("button.box_bell", "press")
        await responder

        await hub.commands.call("switch.box_pump", "toggle")  # on -> turn_off, which expects nothing
        assert await peer.read() == b"P OFF\n"
        assert hub.states.get("switch.box_pump").value == "off"
    finally:
        await hub.stop()


STALE = """
serial:
  ports:
    - name: Stove
      port: {path}
      stale_after: 1  # long enough for the commands below to go out before another silence
      entities:
        - {{key: temperature, pattern: 'T=(?P<value>\\d+)'}}
        - key: setpoint
          capability: climate
          commands: {{set_temperature: {{send: 'SP {{temperature}}'}}}}
        - key: bell
          capability: button
          commands: {{press: {{send: 'BELL'}}}}
"""


async def test_after_a_silence_the_first_frame_brings_back_every_entity(tmp_path, pty):
    peer, path = pty
    (tmp_path / "configuration.yaml").write_text(STALE.format(path=path))
    hub = Hub(tmp_path, entrypoints=False)
    hub.plugins.register("serial", hub_serial)
    await hub.start()
    ids = ["sensor.stove_temperature", "climate.stove_setpoint", "button.stove_bell"]
    try:
        await wait_for(lambda: hub.contexts["serial"].data["devices"][0].stats.open)  # opening flushes input
        peer.write(b"T=20\n")
        await wait_for(lambda: all(hub.states.get(i).available for i in ids))
        await hub.commands.call("climate.stove_setpoint", "set_temperature", {"temperature": 21})
        assert await peer.read() == b"SP 21\n"

        await wait_for(lambda: not any(hub.states.get(i).available for i in ids))  # silent past stale_after

        peer.write(b"hello\n")  # any frame: the device is back, though no pattern matched it
        await wait_for(lambda: all(hub.states.get(i).available for i in ids))
        assert hub.states.get("sensor.stove_temperature").value == 20  # last values kept
        assert hub.states.get("climate.stove_setpoint").attributes["target_temperature"] == 21
        await hub.commands.call("climate.stove_setpoint", "set_temperature", {"temperature": 22})
        assert await peer.read() == b"SP 22\n"
        await hub.commands.call("button.stove_bell", "press")
        assert await peer.read() == b"BELL\n"
    finally:
        await hub.stop()
