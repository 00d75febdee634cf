"""Ruff Hub's GPIO driver: libgpiod v2 (Raspberry Pi 5, routers with a GPIO chip), not RPi.GPIO.

Inputs become ``binary_sensor`` entities (contacts, PIR) or ``button`` entities whose presses
(single, double, long) are ``gpio_button`` events on the bus; outputs become ``switch`` entities
(relays); PWM channels from ``/sys/class/pwm`` become dimmable ``light`` entities; DS18B20s from
``/sys/bus/w1/devices`` become temperature ``sensor`` entities. A chip, PWM chip or sensor that is
missing leaves its entities unavailable and says so in ``hub plugins``; the hub keeps running.

gpiod is imported lazily so that ``hub --help`` does not need the C library's chips.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from hub import hookimpl
from hub.context import EntityHandle, PluginContext
from hub.core.commands import CommandFailed
from hub.devices.model import Device, EntitySpec, slugify

from hub_gpio.config import GpioConfig

__version__ = "0.1.0"

log = logging.getLogger("hub.plugins.gpio")


class Problems:
    """What is wrong right now, by part (a chip, a PWM channel, a sensor): one ``hub plugins`` note."""

    def __init__(self, hub: PluginContext) -> None:
        self.hub = hub
        self.items: dict[str, str] = {}

    def __call__(self, part: str, text: str | None) -> None:
        if text is None:
            self.items.pop(part, None)
        else:
            self.items[part] = text
        self.hub.note("; ".join(self.items[k] for k in sorted(self.items)) or None)


@hookimpl
def hub_config_schema() -> type[GpioConfig]:
    return GpioConfig


def _spec(key: str, capability: str, name: str, device_class: str | None = None) -> EntitySpec:
    return EntitySpec(key=key, capability=capability, name=name, device_class=device_class, object_id=slugify(name))


@hookimpl
def hub_setup(hub: PluginContext) -> None:
    from hub_gpio.lines import ChipLines
    from hub_gpio.pwm import PwmChannel

    config: GpioConfig = hub.config
    problems = Problems(hub)
    hub.data.update(problems=problems, chips={}, routes={}, pwm={}, w1={})
    chips: dict[str, tuple[list, list]] = {}
    for item in config.inputs:
        chips.setdefault(item.chip, ([], []))[0].append(item)
    for item in config.outputs:
        chips.setdefault(item.chip, ([], []))[1].append(item)
    for chip, (inputs, outputs) in chips.items():
        specs = [_spec(i.key, i.kind, i.name, i.device_class) for i in inputs]
        specs += [_spec(o.key, "switch", o.name, o.device_class) for o in outputs]
        handles = hub.add_device(Device(id=chip, name=f"GPIO {chip}", connection=chip), specs)
        by_key = {spec.key: handles[spec.key] for spec in specs}
        lines = hub.data["chips"][chip] = ChipLines(hub, chip, inputs, outputs, by_key, problems)
        for key, handle in by_key.items():
            hub.data["routes"][handle.entity_id] = ("line", lines, key)
    for item in config.pwm:
        handles = hub.add_device(
            Device(id=f"pwmchip{item.chip}:pwm{item.channel}", name=item.name,
                   connection=f"{config.pwm_root}/pwmchip{item.chip}/pwm{item.channel}"),
            [_spec("light", "light", item.name)])
        channel = PwmChannel(config.pwm_root, item.chip, item.channel, item.frequency, item.inverted)
        hub.data["pwm"][handles["light"].entity_id] = (item, channel, handles["light"])
        hub.data["routes"][handles["light"].entity_id] = ("pwm", None, None)
    for item in config.onewire:
        handles = hub.add_device(Device(id=item.id, name=item.name, manufacturer="Maxim", model="DS18B20",
                                        connection=f"{config.w1_root}/{item.id}"),
                                 [_spec("temperature", "sensor", item.name, "temperature")])
        hub.data["w1"][item.id] = (item, handles["temperature"])


async def _pwm_open(hub: PluginContext) -> None:
    from hub_gpio.pwm import PwmError

    for entity_id, (item, channel, handle) in hub.data["pwm"].items():
        part = f"pwm:{entity_id}"
        try:
            await asyncio.to_thread(channel.open)
        except PwmError as exc:
            handle.set_unavailable()
            hub.data["problems"](part, f"PWM {item.name!r}: {exc}")
            log.warning("gpio: PWM %s unavailable: %s", item.name, exc)
            continue
        hub.data["problems"](part, None)
        handle.set("off", brightness=0)


async def _onewire(hub: PluginContext) -> None:
    from hub_gpio import w1

    config: GpioConfig = hub.config
    problems = hub.data["problems"]
    while True:
        for sensor_id, (item, handle) in hub.data["w1"].items():
            try:
                value = await asyncio.to_thread(w1.read, config.w1_root, sensor_id)
            except w1.BadReading as exc:
                if handle.state is None or handle.state.available:
                    log.warning("gpio: DS18B20 %s (%s): %s", item.name, sensor_id, exc)
                handle.set_unavailable()
                problems(f"w1:{sensor_id}", f"DS18B20 {sensor_id}: {exc}")
                continue
            problems(f"w1:{sensor_id}", None)
            handle.set(value)
        await asyncio.sleep(config.onewire_interval)


@hookimpl
async def hub_run(hub: PluginContext) -> None:
    await _pwm_open(hub)
    tasks = [asyncio.create_task(lines.run(), name=f"gpio {chip}") for chip, lines in hub.data["chips"].items()]
    if hub.data["w1"]:
        tasks.append(asyncio.create_task(_onewire(hub), name="gpio 1-wire"))
    if not tasks:
        await asyncio.Event().wait()  # PWM only: nothing to watch, the commands do the work
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        for lines in hub.data["chips"].values():
            lines.close()


@hookimpl
async def hub_handle_command(hub: PluginContext, entity: EntityHandle, command: str, args: Any) -> Any:
    kind, lines, key = hub.data["routes"][entity.entity_id]
    if kind == "line":
        return lines.command(key, command)
    return await _pwm_command(hub, entity, command, args)


async def _pwm_command(hub: PluginContext, entity: EntityHandle, command: str, args: Any) -> Any:
    from hub_gpio.pwm import PwmError

    item, channel, handle = hub.data["pwm"][entity.entity_id]
    state = handle.state
    is_on = state is not None and state.available and state.value == "on"
    if command == "toggle":
        command = "turn_off" if is_on else "turn_on"
    # Switching on without a brightness comes back at the last one, as a wall dimmer does.
    brightness = 0 if command == "turn_off" else (args.brightness if args.brightness is not None else channel.last)
    try:
        await asyncio.to_thread(channel.apply, brightness)
    except PwmError as exc:
        handle.set_unavailable()
        hub.data["problems"](f"pwm:{entity.entity_id}", f"PWM {item.name!r}: {exc}")
        raise CommandFailed(str(exc)) from None
    if brightness:
        channel.last = brightness
    handle.set("on" if brightness else "off", brightness=brightness)
    return {"brightness": brightness}


@hookimpl
def hub_register_commands(cli) -> None:
    from hub_gpio.cli import gpio

    cli.add_command(gpio)


@hookimpl
async def hub_shutdown(hub: PluginContext) -> None:
    for lines in hub.data.get("chips", {}).values():
        lines.close()
