"""Sunrise and sunset, for ``condition: sun`` ("lights on motion after sunset").

NOAA's solar position algorithm, accurate to about a minute between the polar circles, which is
what a rule about dusk needs; no dependency, no network (rules run offline).
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

_ZENITH = 90.833  # the sun's upper limb on the horizon, refraction included


def _event(day: date, latitude: float, longitude: float, rising: bool) -> datetime | None:
    n = day.timetuple().tm_yday
    gamma = 2 * math.pi / 365 * (n - 1)
    eqtime = 229.18 * (0.000075 + 0.001868 * math.cos(gamma) - 0.032077 * math.sin(gamma)
                       - 0.014615 * math.cos(2 * gamma) - 0.040849 * math.sin(2 * gamma))
    decl = (0.006918 - 0.399912 * math.cos(gamma) + 0.070257 * math.sin(gamma) - 0.006758 * math.cos(2 * gamma)
            + 0.000907 * math.sin(2 * gamma) - 0.002697 * math.cos(3 * gamma) + 0.00148 * math.sin(3 * gamma))
    lat = math.radians(latitude)
    cos_ha = math.cos(math.radians(_ZENITH)) / (math.cos(lat) * math.cos(decl)) - math.tan(lat) * math.tan(decl)
    if not -1 <= cos_ha <= 1:
        return None  # polar day or night: the sun does not cross the horizon today
    ha = math.degrees(math.acos(cos_ha))
    minutes = 720 - 4 * (longitude + (ha if rising else -ha)) - eqtime
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(minutes=minutes)


def sunrise(day: date, latitude: float, longitude: float) -> datetime | None:
    return _event(day, latitude, longitude, rising=True)


def sunset(day: date, latitude: float, longitude: float) -> datetime | None:
    return _event(day, latitude, longitude, rising=False)
