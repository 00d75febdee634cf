"""Home Assistant discovery's abbreviations (``stat_t`` for ``state_topic`` ...) and its ``~`` base
topic, from https://www.home-assistant.io/integrations/mqtt/#supported-abbreviations-in-mqtt-discovery-messages
(the entity options of the components this hub adopts; the options of other components, and of
features it does not act on (tilt, presets, fans), are left out: a config using them is read without
them, as an unknown key is)."""

from __future__ import annotations

from typing import Any

ABBREVIATIONS = {
    "act_t": "action_topic", "act_tpl": "action_template", "atype": "automation_type",
    "avty": "availability", "avty_mode": "availability_mode", "avty_t": "availability_topic",
    "avty_tpl": "availability_template", "bri_cmd_t": "brightness_command_topic",
    "bri_cmd_tpl": "brightness_command_template", "bri_scl": "brightness_scale",
    "bri_stat_t": "brightness_state_topic", "bri_tpl": "brightness_template",
    "bri_val_tpl": "brightness_value_template", "clr_temp_cmd_tpl": "color_temp_command_template",
    "clr_temp_cmd_t": "color_temp_command_topic", "clr_temp_k": "color_temp_kelvin",
    "clr_temp_stat_t": "color_temp_state_topic", "clr_temp_tpl": "color_temp_template",
    "clr_temp_val_tpl": "color_temp_value_template", "clrm": "color_mode", "cmd_off_tpl": "command_off_template",
    "cmd_on_tpl": "command_on_template", "cmd_t": "command_topic", "cmd_tpl": "command_template",
    "cmps": "components", "cmp": "components", "flsh_tlng": "flash_time_long", "flsh_tsht": "flash_time_short",
    "lrst_val_tpl": "last_reset_value_template", "fx_cmd_t": "effect_command_topic",
    "fx_stat_t": "effect_state_topic", "cod_form": "code_format", "curr_temp_t": "current_temperature_topic",
    "curr_temp_tpl": "current_temperature_template", "dev": "device", "dev_cla": "device_class",
    "def_ent_id": "default_entity_id", "en": "enabled_by_default", "ent_cat": "entity_category",
    "ent_pic": "entity_picture", "e": "encoding", "exp_aft": "expire_after", "fx_list": "effect_list",
    "frc_upd": "force_update", "ic": "icon", "init": "initial", "json_attr": "json_attributes",
    "json_attr_t": "json_attributes_topic", "json_attr_tpl": "json_attributes_template",
    "max_mirs": "max_mireds", "min_mirs": "min_mireds", "max_k": "max_kelvin", "min_k": "min_kelvin",
    "max_temp": "max_temp", "min_temp": "min_temp", "mode_cmd_tpl": "mode_command_template",
    "mode_cmd_t": "mode_command_topic", "mode_stat_t": "mode_state_topic", "mode_stat_tpl": "mode_state_template",
    "modes": "modes", "name": "name", "obj_id": "object_id", "off_dly": "off_delay",
    "on_cmd_type": "on_command_type", "ops": "options", "opt": "optimistic", "o": "origin", "p": "platform",
    "pl_avail": "payload_available", "pl_cls": "payload_close", "pl_lock": "payload_lock",
    "pl_not_avail": "payload_not_available", "pl_off": "payload_off", "pl_on": "payload_on",
    "pl_open": "payload_open", "pl_prs": "payload_press", "pl_rst": "payload_reset", "pl_stop": "payload_stop",
    "pl_unlk": "payload_unlock", "pos_clsd": "position_closed", "pos_open": "position_open",
    "pos_t": "position_topic", "pos_tpl": "position_template", "pow_cmd_t": "power_command_topic",
    "pow_cmd_tpl": "power_command_template", "qos": "qos", "ret": "retain", "rgb_cmd_tpl": "rgb_command_template",
    "rgb_cmd_t": "rgb_command_topic", "rgb_stat_t": "rgb_state_topic", "rgb_val_tpl": "rgb_value_template",
    "schema": "schema", "set_pos_t": "set_position_topic", "set_pos_tpl": "set_position_template",
    "stat_cla": "state_class", "stat_clsd": "state_closed", "stat_closing": "state_closing",
    "stat_jam": "state_jammed", "stat_locked": "state_locked", "stat_locking": "state_locking",
    "stat_off": "state_off", "stat_on": "state_on", "stat_open": "state_open", "stat_opening": "state_opening",
    "stat_stopped": "state_stopped", "stat_t": "state_topic", "stat_tpl": "state_template",
    "stat_unlocked": "state_unlocked", "stat_unlocking": "state_unlocking", "stat_val_tpl": "state_value_template",
    "step": "step", "sup_clrm": "supported_color_modes", "sug_dsp_prc": "suggested_display_precision",
    "temp_cmd_t": "temperature_command_topic", "temp_cmd_tpl": "temperature_command_template",
    "temp_stat_t": "temperature_state_topic", "temp_stat_tpl": "temperature_state_template",
    "temp_unit": "temperature_unit", "temp_step": "temp_step", "uniq_id": "unique_id",
    "unit_of_meas": "unit_of_measurement", "val_tpl": "value_template",
}

DEVICE_ABBREVIATIONS = {
    "cns": "connections", "ids": "identifiers", "name": "name", "mf": "manufacturer", "mdl": "model",
    "mdl_id": "model_id", "hw": "hw_version", "sw": "sw_version", "sa": "suggested_area",
    "sn": "serial_number", "via_device": "via_device", "cu": "configuration_url",
}

ORIGIN_ABBREVIATIONS = {"name": "name", "sw": "sw_version", "url": "support_url"}

AVAILABILITY_ABBREVIATIONS = {"t": "topic", "pl_avail": "payload_available", "pl_not_avail": "payload_not_available",
                              "val_tpl": "value_template"}


def _rename(data: dict, table: dict[str, str]) -> dict:
    return {table.get(key, key): value for key, value in data.items()}


def expand(config: dict) -> dict:
    """The config with every abbreviation written out and ``~`` replaced by the base topic."""
    out = _rename(config, ABBREVIATIONS)
    if isinstance(out.get("device"), dict):
        out["device"] = _rename(out["device"], DEVICE_ABBREVIATIONS)
    if isinstance(out.get("origin"), dict):
        out["origin"] = _rename(out["origin"], ORIGIN_ABBREVIATIONS)
    if isinstance(out.get("availability"), list):
        out["availability"] = [_rename(a, AVAILABILITY_ABBREVIATIONS) if isinstance(a, dict) else a
                               for a in out["availability"]]
    base = out.pop("~", None)
    if isinstance(base, str):
        def tilde(value: Any) -> Any:
            if isinstance(value, str):
                if value.startswith("~"):
                    return base + value[1:]
                if value.endswith("~"):
                    return value[:-1] + base
            return value

        for key in list(out):
            if key.endswith("_topic"):
                out[key] = tilde(out[key])
        if isinstance(out.get("availability"), list):
            for item in out["availability"]:
                if isinstance(item, dict) and "topic" in item:
                    item["topic"] = tilde(item["topic"])
    return out
