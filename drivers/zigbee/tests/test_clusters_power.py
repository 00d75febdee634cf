"""Electrical Measurement and Metering: multipliers and divisors, the meter the market bills, and
polling for what a device cannot report."""

import zigpy_fake as zf
from clusters_kit import paired_hub
from zigpy.zcl.clusters.homeautomation import ElectricalMeasurement
from zigpy.zcl.clusters.smartenergy import Metering


async def test_power_voltage_current_and_energy_with_the_devices_divisors(tmp_path):
    async with paired_hub(tmp_path) as z:
        entities = await z.pair(plug := zf.plug())
        assert [(k, e.spec.capability, e.spec.device_class, e.spec.unit) for k, e in entities.items()] == [
            ("1_on_off", "switch", "outlet", None), ("1_power", "sensor", "power", "W"),
            ("1_voltage", "sensor", "voltage", "V"), ("1_current", "sensor", "current", "A"),
            ("1_energy", "meter", "energy", "kWh")]
        assert plug.reporting[(1, ElectricalMeasurement.cluster_id)]["active_power"][:2] == (5, 900)
        assert plug.reporting[(1, Metering.cluster_id)]["current_summ_delivered"][:2] == (30, 900)

        plug.set(1, ElectricalMeasurement.cluster_id, "active_power", 1234)  # divisor 10
        plug.set(1, ElectricalMeasurement.cluster_id, "rms_current", 5372)  # divisor 1000
        plug.set(1, Metering.cluster_id, "current_summ_delivered", 15250)  # divisor 1000: Wh
        await zf.settle()
        assert z.state("plug", "1_power").value == 123.4
        assert z.state("plug", "1_voltage").value == 230.1
        assert z.state("plug", "1_current").value == 5.372
        energy = z.state("plug", "1_energy")
        assert energy.value == 15.25 and energy.attributes["unit"] == "kWh"
        assert energy.attributes["device_class"] == "energy"


async def test_a_meter_in_cubic_metres_of_water_counts_litres(tmp_path):
    async with paired_hub(tmp_path) as z:
        meter = zf.VirtualDevice("water", 0x1100, manufacturer="ruffsim", model="SIM-WATER-1", endpoints={
            1: zf.Endpoint(zf.HA, 0x0501, {0x0702: {"current_summ_delivered": 1234, "unit_of_measure": 0x01,
                                                    "metering_device_type": 2, "multiplier": 1,
                                                    "divisor": 1000}})})
        entities = await z.pair(meter)
        assert entities["1_water"].spec.unit == "L"
        assert z.state("water", "1_water").value == 1234.0


async def test_a_device_that_cannot_report_is_polled_and_a_poll_reads_the_value(tmp_path):
    async with paired_hub(tmp_path) as z:
        plug = zf.plug()
        plug.cannot_report.add((ElectricalMeasurement.cluster_id, "active_power"))
        entities = await z.pair(plug)
        assert entities["1_power"].needs_polling
        assert not entities["1_energy"].needs_polling and not entities["1_on_off"].needs_polling
        plug.set(1, ElectricalMeasurement.cluster_id, "active_power", 600)  # no report
        await zf.settle()
        assert z.state("plug", "1_power").value == 0.0
        await entities["1_power"].refresh()  # the gateway's poll
        assert z.state("plug", "1_power").value == 60.0


async def test_a_cluster_that_cannot_be_bound_is_polled(tmp_path):
    import zigpy.zdo.types as zdo_t

    async with paired_hub(tmp_path) as z:
        plug = zf.plug()
        plug.refuse[(Metering.cluster_id, "bind")] = zdo_t.Status.NOT_SUPPORTED
        entities = await z.pair(plug)
        assert entities["1_energy"].needs_polling and not entities["1_power"].needs_polling



async def test_no_energy_is_shown_before_the_divisor_is_known(tmp_path):
    """A plug may report right after reporting is configured, before its divisor was read: raw Wh
    shown as kWh would be a thousandfold jump in what the market bills."""
    async with paired_hub(tmp_path) as z:
        entities = await z.pair(plug := zf.plug(), read=False)
        plug.set(1, Metering.cluster_id, "current_summ_delivered", 15250)  # reported
        plug.set(1, ElectricalMeasurement.cluster_id, "active_power", 1234)
        await zf.settle()
        for key in ("1_energy", "1_power"):
            assert z.state("plug", key).value is None and not z.state("plug", key).available  # never written
        await entities["1_energy"].refresh()
        await entities["1_power"].refresh()
        assert z.state("plug", "1_energy").value == 15.25 and z.state("plug", "1_power").value == 123.4
