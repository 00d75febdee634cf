"""The market's small parts: terms and prices, market.db, its configuration."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from hub.market.store import MIGRATIONS, MarketSchemaError, MarketStore
from hub.market.terms import Terms, TermsError
from tests.hubproc import run_cli

PREPAID = {"kind": "prepaid", "price": 50, "window": 600_000, "max_duration": 3_600_000}
ENERGY = {"kind": "metered", "rate": 300_000, "meter": "energy", "deposit": 1_000_000, "max_duration": 7_200_000}
TIME = {"kind": "metered", "rate": 1, "interval": 600_000, "max_duration": 3_600_000}


def test_prepaid_charges_started_windows_capped_by_the_windows_paid_and_the_deposit():
    terms = Terms.from_payload(PREPAID)
    assert terms.windows(120) == 2  # deposit // price
    assert terms.windows(10_000) == 6  # max_duration // window
    assert terms.prepaid_used(0, 2, 120) == 50  # a call that got access used its first window
    assert terms.prepaid_used(600_001, 2, 120) == 100  # a started window is a used window
    assert terms.prepaid_used(10 * 600_000, 2, 120) == 100  # never more than paid
    assert terms.duration(120) == 1_200_000


def test_metered_cost_rounds_down_in_the_renters_favour():
    energy, time = Terms.from_payload(ENERGY), Terms.from_payload(TIME)
    assert energy.cost(1_000) == 300_000  # 1 kWh = 1,000 Wh
    assert energy.cost(1) == 300  # 1 Wh
    assert Terms.from_payload({**ENERGY, "rate": 7}).cost(999) == 6
    assert time.cost(599_999) == 0 and time.cost(600_000) == 1  # one token every 10 minutes
    assert energy.duration(0) == 7_200_000


@pytest.mark.parametrize("terms, field", [
    ({"kind": "rent"}, "terms.kind"),
    ({**PREPAID, "price": 0}, "terms.price"),
    ({**PREPAID, "price": -1}, "terms.price"),
    ({**PREPAID, "price": 1.5}, "terms.price"),
    ({**PREPAID, "max_duration": 1}, "terms.max_duration"),
    ({**PREPAID, "rate": 3}, "terms.rate"),
    ({**ENERGY, "interval": 5}, "terms.interval"),
    ({**TIME, "interval": 0}, "terms.interval"),
    ({**ENERGY, "max_duration": 0}, "terms.max_duration"),
    ({**ENERGY, "colour": "red"}, "unknown field"),
])
def test_bad_terms_name_the_field(terms, field):
    with pytest.raises(TermsError, match=field):
        Terms.from_payload(terms)


def test_market_db_is_private_wal_and_refuses_a_newer_schema(tmp_path):
    store = MarketStore(tmp_path)
    store.close()
    path = tmp_path / "market" / "market.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(MarketSchemaError, match="newer"):
        MarketStore(tmp_path)


def test_a_payment_is_booked_once_and_paid_so_far_only_rises(tmp_path):
    store = MarketStore(tmp_path)
    try:
        args = (b"t" * 32, b"c" * 32, "return", 1_000, 7, "demo:smart_plug", b"k" * 32, 200)
        assert store.add_payment(*args) is True
        assert store.add_payment(*args) is False  # the same block seen again after a restart
        assert [p["amount"] for p in store.payments(device_id="demo:smart_plug")] == [200]
        assert store.payments(since=1_001) == []
        store.set_channel_paid(b"h" * 32, b"r" * 32, 500)
        store.set_channel_paid(b"h" * 32, b"r" * 32, 300)
        assert store.channel_paid(b"h" * 32) == 500
    finally:
        store.close()


def test_config_check_names_a_bad_market_key_with_its_line(tmp_path):
    (tmp_path / "configuration.yaml").write_text("market:\n  poll: 0.5\n  recipt_interval: 3\n")
    done = run_cli(tmp_path, "config", "check")
    assert done.returncode == 1
    assert "configuration.yaml:3:3: market.recipt_interval" in done.stdout + done.stderr
