"""Money rules: integer cents, one half-up rounding per amount, never a float."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from domain.errors import InvalidInput
from domain.money import (
    MAX_CENTS,
    amount_for_minutes,
    cents_from_text,
    check_cents,
    check_currency,
    format_money,
    round_half_up,
)


def ids(cases: Sequence[Sequence[object]]) -> list[str]:
    return [str(case[0]) for case in cases]


# --- round_half_up ----------------------------------------------------------------------------------

ROUNDING = [
    ("exact division", 120, 60, 2),
    ("zero", 0, 60, 0),
    ("below a half rounds down", 29, 60, 0),
    ("exactly a half rounds up", 30, 60, 1),
    ("above a half rounds up", 31, 60, 1),
    ("2.5 rounds up to 3", 5, 2, 3),
    ("3.5 rounds up to 4 (not to even)", 7, 2, 4),
    ("0.5 rounds up to 1 (not to even)", 1, 2, 1),
    ("1.49 rounds down", 149, 100, 1),
    ("a third rounds down", 1, 3, 0),
    ("two thirds round up", 2, 3, 1),
    ("denominator one", 12345, 1, 12345),
    ("-0.5 rounds away from zero to -1", -1, 2, -1),
    ("-2.5 rounds away from zero to -3", -5, 2, -3),
    ("-1.49 rounds toward zero", -149, 100, -1),
    ("-0.4 rounds to zero", -2, 5, 0),
    ("a large exact half", 10**30 + 1, 2, 10**30 // 2 + 1),
    ("a large number just under a half", 10**30 - 1, 10**30 * 2, 0),
    ("a large week: 168 hours at MAX rate", 168 * 60 * 10**13, 60, 168 * 10**13),
    ("a large half away from zero, negative", -(10**30 + 1), 2, -(10**30 // 2 + 1)),
]


@pytest.mark.parametrize(("name", "numerator", "denominator", "expected"), ROUNDING, ids=ids(ROUNDING))
def test_round_half_up(name: str, numerator: int, denominator: int, expected: int) -> None:
    result = round_half_up(numerator, denominator)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("denominator", [0, -1, -60])
def test_round_half_up_needs_a_positive_denominator(denominator: int) -> None:
    with pytest.raises(InvalidInput, match="denominator must be positive"):
        round_half_up(1, denominator)


# --- amount_for_minutes -----------------------------------------------------------------------------

AMOUNTS = [
    ("an hour costs the hourly rate", 60, 2550, 2550),
    ("a 12-minute slot costs a fifth of the rate", 12, 2550, 510),
    ("four slots at 25.50", 48, 2550, 2040),
    # Rounding happens once on the week's total, not per slot or per entry.
    ("121 minutes at 19.99 is 40.31 (not 27.99 + 12.33)", 121, 1999, 4031),
    ("84 minutes at 19.99 is 27.99 (not 7 x 4.00)", 84, 1999, 2799),
    ("12 minutes at 19.99 is 4.00 (399.8 rounded)", 12, 1999, 400),
    ("37 minutes at 19.99 is 12.33", 37, 1999, 1233),
    ("one minute at 1 cent an hour is nothing", 1, 1, 0),
    ("29 minutes at 1 cent an hour is nothing", 29, 1, 0),
    ("30 minutes at 1 cent an hour is exactly a half: 1 cent", 30, 1, 1),
    ("90 minutes at 1 cent an hour is 1.5: 2 cents", 90, 1, 2),
    ("zero minutes", 0, 2550, 0),
    ("a zero rate", 600, 0, 0),
    ("a full 168-hour week at the maximum rate", 168 * 60, MAX_CENTS, 168 * MAX_CENTS),
    ("one minute at an odd rate", 1, 2999, 50),
]


@pytest.mark.parametrize(("name", "minutes", "rate", "expected"), AMOUNTS, ids=ids(AMOUNTS))
def test_amount_for_minutes(name: str, minutes: int, rate: int, expected: int) -> None:
    amount = amount_for_minutes(minutes, rate)
    assert amount == expected
    assert type(amount) is int


def test_rounding_once_differs_from_rounding_each_slot() -> None:
    per_slot = 7 * amount_for_minutes(12, 1999)  # 7 x 400 = 2800
    once = amount_for_minutes(7 * 12, 1999)  # 2798.6 -> 2799
    assert (per_slot, once) == (2800, 2799)


# --- check_cents ------------------------------------------------------------------------------------

GOOD_CENTS = [
    ("zero", 0, True),
    ("one cent", 1, True),
    ("a usual rate", 2550, True),
    ("exactly the maximum", MAX_CENTS, True),
    ("one cent when zero is not allowed", 1, False),
]


@pytest.mark.parametrize(("name", "value", "allow_zero"), GOOD_CENTS, ids=ids(GOOD_CENTS))
def test_check_cents_accepts_whole_cents_in_range(name: str, value: int, allow_zero: bool) -> None:
    assert check_cents(value, allow_zero=allow_zero) == value


BAD_CENTS = [
    ("True is not a number of cents", True, True, "whole number of cents"),
    ("False is not zero cents", False, True, "whole number of cents"),
    ("a float is refused", 25.5, True, "whole number of cents"),
    ("even a whole float is refused", 2550.0, True, "whole number of cents"),
    ("a string is refused", "2550", True, "whole number of cents"),
    ("None is refused", None, True, "whole number of cents"),
    ("a negative amount", -1, True, "zero or more cents"),
    ("zero when it is not allowed", 0, False, "more than zero cents"),
    ("negative when zero is not allowed", -5, False, "more than zero cents"),
    ("one over the maximum", MAX_CENTS + 1, True, "over the limit"),
    ("far over the maximum", 2**63, True, "over the limit"),
]


@pytest.mark.parametrize(("name", "value", "allow_zero", "says"), BAD_CENTS, ids=ids(BAD_CENTS))
def test_check_cents_refuses(name: str, value: object, allow_zero: bool, says: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_cents(value, what="rate", allow_zero=allow_zero)  # type: ignore[arg-type]
    assert says in str(raised.value)
    assert str(raised.value).startswith("rate ")
    assert raised.value.status_code == 422


def test_the_float_message_shows_an_example() -> None:
    with pytest.raises(InvalidInput, match=r"e\.g\. 2550 for 25\.50"):
        check_cents(25.5)  # type: ignore[arg-type]


# --- check_currency ---------------------------------------------------------------------------------

CURRENCIES = [
    ("upper case", "USD", "USD"),
    ("lower case is upper-cased", "eur", "EUR"),
    ("mixed case", "Chf", "CHF"),
    ("surrounding spaces are trimmed", " gbp ", "GBP"),
    ("a code without a symbol", "JPY", "JPY"),
]


@pytest.mark.parametrize(("name", "code", "expected"), CURRENCIES, ids=ids(CURRENCIES))
def test_check_currency_accepts_three_letters(name: str, code: str, expected: str) -> None:
    assert check_currency(code) == expected


BAD_CURRENCIES = [
    ("empty", ""),
    ("two letters", "US"),
    ("four letters", "USDT"),
    ("digits", "840"),
    ("a symbol", "$"),
    ("letters with a digit", "US1"),
    ("a space inside", "U SD"),
    ("accented letters", "ÉUR"),
    ("not a string", 840),
    ("None", None),
    ("three letters that name no currency", "XYZ"),
    ("a test code", "XTS"),
    ("a precious metal", "XAU"),
    ("a withdrawn currency", "DEM"),
]


@pytest.mark.parametrize(("name", "code"), BAD_CURRENCIES, ids=ids(BAD_CURRENCIES))
def test_check_currency_refuses_what_is_not_an_iso_code(name: str, code: object) -> None:
    with pytest.raises(InvalidInput, match="is not an ISO 4217 currency in circulation") as refused:
        check_currency(code)  # type: ignore[arg-type]
    assert refused.value.code == "currency_invalid"


# --- format_money -----------------------------------------------------------------------------------

FORMATS = [
    ("dollars with a symbol", 2550, "USD", "$25.50"),
    ("euros with a symbol", 2550, "EUR", "€25.50"),
    ("pounds with a symbol", 5, "GBP", "£0.05"),
    ("a code after the number when there is no symbol", 2550, "CHF", "25.50 CHF"),
    ("zero", 0, "USD", "$0.00"),
    ("one cent", 1, "USD", "$0.01"),
    ("thousands are grouped", 123456789, "USD", "$1,234,567.89"),
    ("a negative amount", -2550, "USD", "-$25.50"),
    ("a negative amount without a symbol", -1, "CHF", "-0.01 CHF"),
    ("the maximum", MAX_CENTS, "EUR", "€100,000,000,000.00"),
]


@pytest.mark.parametrize(("name", "cents", "currency", "expected"), FORMATS, ids=ids(FORMATS))
def test_format_money(name: str, cents: int, currency: str, expected: str) -> None:
    assert format_money(cents, currency) == expected


# --- cents_from_text (the admin's top-up form) ----------------------------------------------------------

TYPED = [
    ("whole units", "250", 25000),
    ("one decimal", "250.5", 25050),
    ("two decimals", "250.50", 25050),
    ("grouped thousands", "1,250.50", 125050),
    ("spaces around", " 12 ", 1200),
    ("zero", "0", 0),
]


@pytest.mark.parametrize(("name", "text", "cents"), TYPED, ids=ids(TYPED))
def test_cents_from_text(name: str, text: str, cents: int) -> None:
    assert cents_from_text(text) == cents


@pytest.mark.parametrize(
    "text", ["", "12.345", "-5", "+5", "1e3", "12.", ".5", "abc", "١٢", "NaN", "10000000000000000"]
)
def test_cents_from_text_refuses_what_is_not_an_amount(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        cents_from_text(text)
    assert refused.value.code == "amount_invalid"
