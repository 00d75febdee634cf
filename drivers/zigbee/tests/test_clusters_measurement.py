"""Measurement clusters, occupancy and IAS zones: scaling, units, enrollment, a quirk applied."""

import zigpy_fake as zf
from clusters_kit import paired_hub
from zigpy.zcl.clusters.general import PowerConfiguration
from zigpy.zcl.clusters.measurement import (IlluminanceMeasurement, OccupancySensing, PressureMeasurement,
                                            RelativeHumidity, TemperatureMeasurement)
from zigpy.zcl.clusters.security import IasZone


async def test_measurements_are_scaled_into_the_hubs_units_and_follow_reports(tmp_path):
    async with paired_hub(tmp_path) as z:
        entities = await z.pair(sensor := zf.climate_sensor())
        assert [(k, e.spec.device_class, e.spec.unit) for k, e in entities.items()] == [
            ("1_temperature", "temperature", "°C"), ("1_humidity", "humidity", "%"),
            ("1_pressure", "pressure", "hPa"), ("1_illuminance", "illuminance", "lx"),
            ("1_battery", "battery", "%")]
        values = {k: z.state("climate", k).value for k in entities}
        assert values == {"1_temperature": 21.5, "1_humidity": 45.2, "1_pressure": 1013,
                          "1_illuminance": 316.2, "1_battery": 85}
        assert z.state("climate", "1_temperature").attributes["unit"] == "°C"
        # ZHA's reporting: 30 s to 15 min, a temperature change of 0.5 °C, humidity 1 %.
        assert sensor.reporting[(1, TemperatureMeasurement.cluster_id)]["measured_value"] == (30, 900, 50)
        assert sensor.reporting[(1, RelativeHumidity.cluster_id)]["measured_value"] == (30, 900, 100)
        assert sensor.reporting[(1, PowerConfiguration.cluster_id)]["battery_percentage_remaining"][:2] == \
            (3600, 10800)

        sensor.set(1, TemperatureMeasurement.cluster_id, "measured_value", -1234)
        sensor.set(1, RelativeHumidity.cluster_id, "measured_value", 9999)
        sensor.set(1, PressureMeasurement.cluster_id, "measured_value", 987)
        sensor.set(1, IlluminanceMeasurement.cluster_id, "measured_value", 1)  # 10^0 = 1 lx
        sensor.set(1, PowerConfiguration.cluster_id, "battery_percentage_remaining", 41)
        await zf.settle()
        values = {k: z.state("climate", k).value for k in entities}
        assert values == {"1_temperature": -12.34, "1_humidity": 99.99, "1_pressure": 987,
                          "1_illuminance": 1.0, "1_battery": 20}

        sensor.set(1, TemperatureMeasurement.cluster_id, "measured_value", -0x8000)  # "invalid"
        await zf.settle()
        assert z.state("climate", "1_temperature").value is None


async def test_a_sensor_without_a_percentage_reports_its_battery_voltage(tmp_path):
    async with paired_hub(tmp_path) as z:
        entities = await z.pair(zf.motion())
        battery = entities["1_battery"]
        assert (battery.spec.device_class, battery.spec.unit) == ("voltage", "V")
        assert z.state("motion", "1_battery").value == 3.0


async def test_ias_zones_are_enrolled_and_their_notifications_are_the_state(tmp_path):
    async with paired_hub(tmp_path) as z:
        motion = await z.pair(m := zf.motion())
        contact = await z.pair(c := zf.contact())
        leak = await z.pair(w := zf.leak())
        assert motion["1_occupancy"].spec.device_class == "occupancy"
        assert motion["1_ias_zone"].spec.device_class == "motion"
        assert contact["1_ias_zone"].spec.device_class == "opening"
        assert leak["1_ias_zone"].spec.device_class == "moisture"
        for dev in (m, c, w):
            # The coordinator's address written, the sensor's enroll request answered: enrolled.
            assert dev.get(1, IasZone.cluster_id, "cie_addr") == zf.COORDINATOR_IEEE
            assert dev.get(1, IasZone.cluster_id, "zone_state") == 1
        assert sum(1 for r in m.received if r[2] == "enroll_response") >= 2  # unasked, and the answer

        c.cluster_command(1, IasZone.cluster_id, "status_change_notification",
                          zone_status=0x0001, extended_status=0, zone_id=0, delay=0)
        w.cluster_command(1, IasZone.cluster_id, "status_change_notification",
                          zone_status=0x0009, extended_status=0, zone_id=0, delay=0)  # wet, battery low
        m.set(1, OccupancySensing.cluster_id, "occupancy", 1)
        await zf.settle()
        assert z.state("contact", "1_ias_zone").value == "on"
        assert z.state("leak", "1_ias_zone").value == "on"
        assert z.state("leak", "1_ias_zone").attributes["battery_low"] is True
        assert z.state("motion", "1_occupancy").value == "on"

        c.cluster_command(1, IasZone.cluster_id, "status_change_notification",
                          zone_status=0x0000, extended_status=0, zone_id=0, delay=0)
        await zf.settle()
        assert z.state("contact", "1_ias_zone").value == "off"


async def test_the_aqara_motion_quirk_gives_motion_from_its_occupancy_reports(tmp_path):
    """zha-quirks' MotionAQ2 replaces the sensor's clusters: its IAS zone is local (the sensor
    has none that works), set by occupancy reports, and the quirk says not to configure it."""
    async with paired_hub(tmp_path) as z:
        entities = await z.pair(aqara := zf.aqara_motion())
        assert type(z.zdev["aqara"]).__name__ == "MotionAQ2"
        assert [(k, e.spec.device_class) for k, e in entities.items()] == [
            ("1_illuminance", "illuminance"), ("1_occupancy", "occupancy"), ("1_ias_zone", "motion"),
            ("1_battery", "battery")]
        assert aqara.reporting == {} and aqara.bound == set()  # skip_configuration
        assert not any(r[2] == "enroll_response" for r in aqara.received)

        aqara.set(1, OccupancySensing.cluster_id, "occupancy", 1, report=True)  # Xiaomi reports unasked
        aqara.set(1, IlluminanceMeasurement.cluster_id, "measured_value", 100, report=True)  # raw lux
        await zf.settle()
        assert z.state("aqara", "1_ias_zone").value == "on"
        assert z.state("aqara", "1_occupancy").value == "on"
        assert z.state("aqara", "1_illuminance").value == 100.0  # the quirk's log scale, undone


async def test_keys_do_not_depend_on_what_was_read_from_the_device():
    """A gateway that maps a device before prepare() (or a device that did not answer it) gets the
    same keys as after: only classes and defaults differ, so no entity is duplicated later."""
    from hub_zigbee.clusters import entities_for, prepare

    app = zf.FakeApp()
    for make in (zf.contact, zf.light, zf.plug, zf.thermostat, zf.climate_sensor):
        zdev = await app.join(make())
        before = entities_for(zdev)
        await prepare(zdev)
        after = entities_for(zdev)
        assert [e.spec.key for e in before] == [e.spec.key for e in after]
    assert (before[0].spec.device_class, after[0].spec.device_class) == ("temperature", "temperature")
    contact = entities_for(app.get_device(ieee=zf.contact().ieee))
    assert contact[0].spec.device_class == "opening"  # the zone type, read once, kept by zigpy
