"""What the market's command line reads and shows: RUFF amounts converted exactly (never a float),
durations, terms as create_contract wants them and as a renter reads them, review warnings, and
the refusals a mistyped option gets, before anything reaches a hub or a chain."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from hub.cli import main
from hub.market.units import (InputError, describe_terms, metered_cost, metered_terms, parse_duration, parse_ruff,
                              prepaid_terms, prepaid_windows, review_score, ruff, ruff_plain)


@pytest.mark.parametrize("text, units", [("1", 1_000_000), ("0.1", 100_000), ("2.5", 2_500_000),
                                         ("0.000001", 1), ("1_000", 1_000_000_000), ("  3.000000 ", 3_000_000)])
def test_amounts_in_ruff_become_exact_base_units(text, units):
    assert parse_ruff(text) == units


@pytest.mark.parametrize("text, said", [("0.0000001", "more than 6 decimals"), ("abc", "not an amount"),
                                        ("-1", "more than 0"), ("0", "more than 0"), ("nan", "not an amount"),
                                        ("inf", "not an amount"), ("1e30", "more than the chain can hold")])
def test_bad_amounts_are_refused_naming_the_option(text, said):
    with pytest.raises(InputError) as err:
        parse_ruff(text, "--price")
    assert str(err.value).startswith("--price:") and said in str(err.value)


def test_zero_is_a_deposit_when_the_channel_already_holds_enough():
    assert parse_ruff("0", "--deposit", allow_zero=True) == 0


@given(st.integers(min_value=1, max_value=2**64 - 1))
def test_shown_amounts_read_back_to_the_unit(units):
    assert parse_ruff(ruff(units).removesuffix(" RUFF").replace(",", "")) == units
    assert parse_ruff(ruff_plain(units)) == units


def test_durations():
    assert parse_duration("10m") == 600_000
    assert parse_duration("2h") == 7_200_000
    assert parse_duration("500ms") == 500
    for bad in ("10", "1.5h", "0m", "ten minutes"):
        with pytest.raises(InputError, match="--window"):
            parse_duration(bad, "--window")


def test_prepaid_terms_and_what_a_deposit_buys():
    terms = prepaid_terms("1", "10m", "2h")
    assert terms == {"kind": "prepaid", "price": 1_000_000, "window": 600_000, "max_duration": 7_200_000}
    assert describe_terms(terms) == "prepaid: 1 RUFF per 10 min, up to 2 h"
    assert prepaid_windows(terms, 3_500_000) == 3  # 3 whole windows; the half is returned
    assert prepaid_windows(terms, 50_000_000) == 12  # capped by --max
    assert prepaid_terms("1", "10m", None)["max_duration"] == 600_000
    with pytest.raises(InputError, match="--max"):
        prepaid_terms("1", "1h", "10m")


def test_metered_terms_by_the_meter_and_by_time():
    energy = metered_terms("0.3", "kWh", None, "5", "2h")
    assert energy == {"kind": "metered", "rate": 300_000, "meter": "energy", "interval": 0, "deposit": 5_000_000,
                      "max_duration": 7_200_000}
    assert describe_terms(energy) == "metered: 0.3 RUFF per kWh of energy, deposit 5 RUFF, up to 2 h"
    assert metered_cost(energy, 1_500) == 450_000  # 1.5 kWh
    assert metered_cost(energy, 1) == 300  # 1 Wh, rounded down
    timed = metered_terms("1", "10m", None, "0", None)
    assert timed["meter"] == "" and timed["interval"] == 600_000 and timed["deposit"] == 0
    assert metered_cost(timed, 1_199_999) == 1_999_998  # rounded down, in the renter's favour
    with pytest.raises(InputError, match="--meter"):
        metered_terms("1", "10m", "energy", "1", None)
    with pytest.raises(InputError, match="--per"):
        metered_terms("1", "per hour!", None, "1", None)


def test_review_score_warns_on_many_negative_reviews():
    assert review_score(0, 0) == ("no returned calls yet", False)
    assert review_score(12, 1) == ("1 negative of 12 returned (8%)", False)
    assert review_score(10, 3)[1] is True
    assert review_score(2, 1)[1] is False  # too few calls to judge by a share
    assert review_score(2, 2)[1] is True  # but a majority is a majority


@pytest.mark.parametrize("args, said", [
    (["--commands", "outlet.turn_on"], "give the terms"),
    (["--commands", "outlet.turn_on", "--price", "1"], "needs --price and --window"),
    (["--commands", "outlet.turn_on", "--price", "1", "--window", "10m", "--rate", "1"], "not both"),
    (["--commands", "outlet.turn_on", "--rate", "1", "--per", "kWh"], "needs --rate, --per and --deposit"),
    (["--commands", "outlet.turn_on", "--price", "0.0000001", "--window", "10m"], "--price: 0.0000001 RUFF has more"),
    (["--commands", " , ", "--price", "1", "--window", "10m"], "--commands"),
])
def test_offer_refuses_bad_terms_before_asking_the_hub(tmp_path, args, said):
    result = CliRunner().invoke(main, ["--data", str(tmp_path), "--url", "http://127.0.0.1:9", "market", "offer",
                                       "demo:smart_plug", *args])
    assert result.exit_code == 1 and said in result.output, result.output


@pytest.mark.parametrize("args, said", [
    (["rent", "abc", "--deposit", "1"], "CONTRACT: 64 hex digits"),
    (["rent", "ab" * 32, "--deposit", "x"], "--deposit: 'x' is not an amount"),
    (["rent", "ab" * 32, "--deposit", "1", "--for", "soon"], "--for: 'soon' is not a duration"),
    (["refund", "12", ], "CALL or CHANNEL: 64 hex digits"),
])
def test_renter_commands_refuse_bad_input_naming_it(tmp_path, args, said):
    key = tmp_path / "renter.key"
    CliRunner().invoke(main, ["chain", "keygen", "--out", str(key)])
    result = CliRunner().invoke(main, ["--data", str(tmp_path), "market", *args, "--key", str(key)])
    assert result.exit_code == 1 and said in result.output, result.output


def test_the_cheque_book_only_rises_and_survives_a_restart(tmp_path):
    from hub.market.renter import ChequeBook, RentError

    key = tmp_path / "renter.key"
    book = ChequeBook(key)
    assert book.amount("aa") == 0 and book.latest("aa") is None
    book.record("aa", 500, {"kind": "cheque", "n": 1})
    book.record("aa", 700, {"kind": "cheque", "n": 2})
    book.record("bb", 10, {"kind": "cheque", "n": 3})
    again = ChequeBook(key)  # a new process, the same key
    assert again.amount("aa") == 700 and again.latest("aa") == {"kind": "cheque", "n": 2}
    with pytest.raises(RentError, match="lower amount"):
        again.record("aa", 600, {"kind": "cheque", "n": 4})
    assert ChequeBook(key).amount("aa") == 700 and ChequeBook(key).amount("bb") == 10
    assert (key.with_name("renter.key.cheques.json").stat().st_mode & 0o777) == 0o600
