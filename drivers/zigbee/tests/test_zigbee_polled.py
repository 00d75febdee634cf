"""A device that refused to report is still polled after the hub restarts: the refusal is learnt
only at pairing, which a restart does not repeat."""

from __future__ import annotations

import stat
from types import SimpleNamespace

from hub_zigbee.polled import PolledStore

PLUG = "00:12:4b:00:00:00:00:01"


def entity(key: str, polled: bool = False) -> SimpleNamespace:
    return SimpleNamespace(spec=SimpleNamespace(key=key), needs_polling=polled)


def test_what_pairing_found_unreportable_is_polled_again_after_a_restart(tmp_path):
    path = tmp_path / "polled.json"
    PolledStore(path).record(PLUG, [entity("1_on_off"), entity("1_power", polled=True)])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    after_restart = [entity("1_on_off"), entity("1_power")]  # fresh objects, as a restart makes
    PolledStore(path).apply(PLUG, after_restart)
    assert [e.needs_polling for e in after_restart] == [False, True]


def test_a_removed_device_is_forgotten_and_a_damaged_file_only_loses_the_hint(tmp_path):
    path = tmp_path / "polled.json"
    store = PolledStore(path)
    store.record(PLUG, [entity("1_power", polled=True)])
    store.forget(PLUG)
    fresh = [entity("1_power")]
    PolledStore(path).apply(PLUG, fresh)
    assert not fresh[0].needs_polling

    path.write_text("{not json")
    PolledStore(path).apply(PLUG, fresh)  # a warning, not a hub that cannot start
    assert not fresh[0].needs_polling
