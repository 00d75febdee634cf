"""Home Assistant's component name to the class that adopts an entity of it."""

from __future__ import annotations

from hub_mqtt.ha_in.controls import Climate, Cover, Lock, Number, Select
from hub_mqtt.ha_in.entities import Adopted, BinarySensor, Button, Sensor, Switch
from hub_mqtt.ha_in.lights import Light

CLASSES: dict[str, type[Adopted]] = {cls.component: cls for cls in
                                     (Switch, Light, Sensor, BinarySensor, Button, Lock, Cover, Climate, Number, Select)}
