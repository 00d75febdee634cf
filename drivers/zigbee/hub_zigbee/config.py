"""The ``zigbee:`` section of ``configuration.yaml``.

Every model forbids unknown keys, so ``hub config check`` names a typo with its file, line and key
instead of silently running on a default (a misspelt ``port`` would otherwise open the wrong stick).

Example::

    zigbee:
      radio_type: znp            # znp (TI: ZBDongle-P, CC2652) | ezsp (Silicon Labs: ZBDongle-E, SkyConnect)
      port: /dev/serial/by-id/usb-ITead_Sonoff_Zigbee_3.0_USB_Dongle_Plus-if00-port0
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Availability(_Strict):
    mains: float = Field(7200, gt=0, description="Seconds of silence (and a failed poll) before a mains "
                                                 "device is unavailable.")
    battery: float = Field(21600, gt=0, description="Seconds of silence before a battery device is unavailable.")
    check_interval: float = Field(60, gt=0, description="How often silence is checked, in seconds.")


class ZigbeeConfig(_Strict):
    radio_type: Literal["znp", "ezsp"] = Field(description="znp: Texas Instruments sticks; ezsp: Silicon Labs.")
    port: str = Field(min_length=1, description="A serial port path, /dev/serial/by-id/..., or socket://host:port.")
    baudrate: int = Field(115200, gt=0)
    flow_control: Literal["hardware", "software"] | None = None
    channel: int = Field(15, ge=11, le=26, description="Used only when a new network is formed.")
    availability: Availability = Availability()
    poll_interval: float = Field(60, gt=0, description="Seconds between reads of attributes a device cannot report.")
    reconnect_max: float = Field(30, gt=0, le=600, description="Longest wait between attempts to reopen the radio.")
    backup_period: int = Field(60 * 24, ge=1, description="Minutes between network backups.")
