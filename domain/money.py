"""Money is integer minor units (cents) with an ISO 4217 currency. Never a float."""

from __future__ import annotations

from domain.errors import InvalidInput

MAX_CENTS = 10**13  # 100 billion in major units: far past any real week, well inside BIGINT
MINUTES_PER_HOUR = 60
# Currencies in circulation (ISO 4217, without fund, metal and test codes): anything else is refused
# before it can name a ledger account.
CURRENCIES = frozenset(
    """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD
    BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN
    ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD
    IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD
    MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD
    OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP
    SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD
    UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """.split()
)
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half away from zero, in integers only."""
    if denominator <= 0:
        raise InvalidInput("denominator must be positive")
    sign = -1 if numerator < 0 else 1
    quotient, remainder = divmod(abs(numerator), denominator)
    if remainder * 2 >= denominator:
        quotient += 1
    return sign * quotient


def amount_for_minutes(minutes: int, rate_cents_per_hour: int) -> int:
    """What ``minutes`` of work cost at an hourly rate: one half-up rounding, to the cent."""
    return round_half_up(minutes * rate_cents_per_hour, MINUTES_PER_HOUR)


def check_cents(value: int, *, what: str = "amount", allow_zero: bool = True) -> int:
    """``value`` if it is a whole, non-negative number of cents within the documented range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be a whole number of cents, e.g. 2550 for 25.50", "amount_invalid")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidInput(
            f"{what} must be {'zero or more' if allow_zero else 'more than zero'} cents", "amount_invalid"
        )
    if value > MAX_CENTS:
        raise InvalidInput(f"{what} is over the limit of {MAX_CENTS} cents", "amount_invalid")
    return value


def check_currency(code: str) -> str:
    """An upper-case three-letter ISO 4217 code."""
    if not isinstance(code, str) or code.strip().upper() not in CURRENCIES:
        raise InvalidInput(
            f"currency {str(code)[:10]!r} is not an ISO 4217 currency in circulation, such as USD or EUR",
            "currency_invalid",
        )
    return code.strip().upper()


def format_money(cents: int, currency: str) -> str:
    """``$25.50`` / ``25.50 CHF``: for pages and notifications only, never for arithmetic."""
    sign = "-" if cents < 0 else ""
    major, minor = divmod(abs(cents), 100)
    text = f"{major:,}.{minor:02d}"
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def cents_from_text(text: str, *, what: str = "amount") -> int:
    """``250``, ``250.5`` or ``1,250.50`` (major units, as a person types them in a form) to whole cents,
    without a float; more than two decimals, a sign or anything else is refused."""
    cleaned = str(text).strip().replace(",", "").replace("_", "")
    major, dot, minor = cleaned.partition(".")
    if not major.isdigit() or (dot and not (minor.isdigit() and len(minor) <= 2)) or not major.isascii():
        raise InvalidInput(f"{what} is not an amount such as 250.00", "amount_invalid")
    return check_cents(int(major) * 100 + int(minor.ljust(2, "0") if dot else 0), what=what)
