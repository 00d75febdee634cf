"""One chip's configured lines: one line request for all of them, one edge-event reader on it.

The reader is the event loop itself: ``add_reader`` on the request's file descriptor, and
``read_edge_events`` when the kernel says there is something to read, so a board with twenty
contacts costs no thread at all. A chip that is missing (or goes away: a USB GPIO expander pulled)
leaves its entities unavailable and is opened again every ``retry`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any, Callable

from hub.context import EntityHandle, PluginContext
from hub.core.commands import CommandFailed, CommandRefused

from hub_gpio.button import PressDetector
from hub_gpio.chips import chip_path, describe_oserror
from hub_gpio.config import GpioConfig, Input, Output

log = logging.getLogger("hub.plugins.gpio")
CONSUMER = "ruffhub"


class ChipLines:
    def __init__(self, hub: PluginContext, chip: str, inputs: list[Input], outputs: list[Output],
                 handles: dict[str, EntityHandle], problem: Callable[[str, str | None], None]) -> None:
        self.hub = hub
        self.config: GpioConfig = hub.config
        self.chip = chip
        self.path = chip_path(chip, self.config.dev_dir)
        self.inputs = inputs
        self.outputs = outputs
        self.handles = handles  # by the item's key
        self.problem = problem
        self.request = None
        self.offsets: dict[str, int] = {}  # item key -> offset
        self.by_offset: dict[int, Input] = {}
        self.detectors: dict[int, PressDetector] = {}
        self.lost: asyncio.Future | None = None
        self.rising = None
        self.bad: dict[str, str] = {}  # item key -> why its line could not be found

    # --- opening -----------------------------------------------------------------------------------
    def _settings(self, gpiod, item: Input | Output, restore: dict[str, bool]):
        from gpiod.line import Bias, Direction, Edge, Value

        if isinstance(item, Output):
            on = restore.get(item.key, False) if item.initial == "restore" else item.initial == "on"
            return gpiod.LineSettings(direction=Direction.OUTPUT, active_low=item.inverted,
                                      output_value=Value.ACTIVE if on else Value.INACTIVE)
        bias = {"pull_up": Bias.PULL_UP, "pull_down": Bias.PULL_DOWN, "disabled": Bias.DISABLED,
                "as_is": Bias.AS_IS}[item.bias]
        return gpiod.LineSettings(direction=Direction.INPUT, edge_detection=Edge.BOTH, bias=bias,
                                  active_low=item.active_low, debounce_period=timedelta(seconds=item.debounce))

    def open(self) -> None:
        import gpiod

        restore = {o.key: (h.state is not None and h.state.value == "on")
                   for o in self.outputs if (h := self.handles.get(o.key)) is not None}
        self.bad = {}
        with gpiod.Chip(self.path) as chip:
            self.offsets = {}
            for item in [*self.inputs, *self.outputs]:
                try:
                    self.offsets[item.key] = chip.line_offset_from_id(item.line)
                except (FileNotFoundError, ValueError):  # a name the chip does not have, an offset past its end
                    lines = chip.get_info().num_lines
                    self.bad[item.key] = (f"line {item.line!r} ({item.name}) is not on {self.chip} "
                                          f"(offsets 0-{lines - 1}; `hub gpio lines {self.chip}` lists their names)")
            config = {self.offsets[item.key]: self._settings(gpiod, item, restore)
                      for item in [*self.inputs, *self.outputs] if item.key in self.offsets}
            self.request = chip.request_lines(config, consumer=CONSUMER) if config else None
        loop = asyncio.get_running_loop()
        self.lost = loop.create_future()
        for key in self.bad:
            self.handles[key].set_unavailable()
        if self.request is None:
            return
        self.by_offset = {self.offsets[i.key]: i for i in self.inputs if i.key in self.offsets}
        self.rising = gpiod.EdgeEvent.Type.RISING_EDGE
        for offset, item in self.by_offset.items():
            if item.kind == "button":
                self.detectors[offset] = PressDetector(
                    lambda press, item=item: self._pressed(item, press), item.timings.double, item.timings.long, loop)
        loop.add_reader(self.request.fd, self._readable)
        self._publish_all()

    def _publish_all(self) -> None:
        from gpiod.line import Value

        offsets = list(self.offsets.values())
        values = dict(zip(offsets, self.request.get_values(offsets)))
        for item in self.inputs:
            if item.key not in self.offsets:
                continue
            if item.kind == "binary_sensor":
                self.handles[item.key].set("on" if values[self.offsets[item.key]] == Value.ACTIVE else "off")
            else:  # a button's state is the time of its last press: the one recorded before, if any
                handle = self.handles[item.key]
                handle.set(handle.state.value if handle.state is not None else None)
        for item in self.outputs:
            if item.key not in self.offsets:
                continue
            self.handles[item.key].set("on" if values[self.offsets[item.key]] == Value.ACTIVE else "off")

    # --- events ------------------------------------------------------------------------------------
    def _readable(self) -> None:
        try:
            events = self.request.read_edge_events()
        except OSError as exc:
            self._lose(f"reading edge events: {exc.strerror or exc}")
            return
        for event in events:
            item = self.by_offset.get(event.line_offset)
            if item is None:
                continue
            active = event.event_type is self.rising  # the kernel reports edges after active_low
            if item.kind == "binary_sensor":
                self.handles[item.key].set("on" if active else "off")
            else:
                self.detectors[event.line_offset].edge(active, event.timestamp_ns)

    def _pressed(self, item: Input, press: str) -> None:
        handle = self.handles[item.key]
        handle.set(self.hub.now(), press=press)
        self.hub.fire("gpio_button", {"entity_id": handle.entity_id, "name": item.name, "press": press},
                      entity_id=handle.entity_id)

    def _lose(self, why: str) -> None:
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(why)

    def close(self) -> None:
        if self.request is not None:
            try:
                asyncio.get_running_loop().remove_reader(self.request.fd)
            except Exception:  # noqa: BLE001 - the fd may be gone with the chip
                pass
            try:
                self.request.release()
            except Exception:  # noqa: BLE001
                pass
            self.request = None
        for detector in self.detectors.values():
            detector.cancel()
        self.detectors.clear()

    def unavailable(self) -> None:
        for handle in self.handles.values():
            handle.set_unavailable()

    async def run(self) -> None:
        warned = None  # a missing chip is said once, not at every retry
        while True:
            try:
                self.open()
            except OSError as exc:
                self.close()
                self.unavailable()
                why = describe_oserror(exc, self.path)
                self.problem(self.chip, f"chip {self.chip}: {why}; its {len(self.handles)} lines are unavailable, "
                                        f"retrying every {self.config.retry:g} s")
                log.log(logging.DEBUG if why == warned else logging.WARNING,
                        "gpio: cannot open %s: %s; retrying every %g s", self.chip, why, self.config.retry)
                warned = why
                await asyncio.sleep(self.config.retry)
                continue
            self.problem(self.chip, "; ".join(self.bad.values()) or None)
            warned = None
            log.info("gpio: %s: %d inputs, %d outputs", self.chip, len(self.inputs), len(self.outputs))
            try:
                why = await self.lost
            finally:
                self.close()
            self.unavailable()
            self.problem(self.chip, f"chip {self.chip}: lost ({why}); retrying")
            log.warning("gpio: %s lost (%s)", self.chip, why)
            await asyncio.sleep(self.config.retry)

    # --- commands ----------------------------------------------------------------------------------
    def command(self, key: str, command: str) -> Any:
        from gpiod.line import Value

        if self.request is None or key not in self.offsets:
            raise CommandFailed(self.bad.get(key) or f"chip {self.chip} is not available")
        output = next((o for o in self.outputs if o.key == key), None)
        if output is None:
            raise CommandRefused("a GPIO input cannot be commanded; it follows its line")
        offset = self.offsets[key]
        current = self.request.get_value(offset) == Value.ACTIVE
        on = {"turn_on": True, "turn_off": False, "toggle": not current}[command]
        try:
            self.request.set_value(offset, Value.ACTIVE if on else Value.INACTIVE)
            confirmed = self.request.get_value(offset) == Value.ACTIVE
        except OSError as exc:
            self._lose(f"writing line {offset}: {exc.strerror or exc}")
            raise CommandFailed(f"chip {self.chip}: {exc.strerror or exc}") from None
        self.handles[key].set("on" if confirmed else "off")
        return {"confirmed": confirmed == on}
