"""Money as reps type it and as dealbot shows it.

Amounts are always `Decimal` with an ISO 4217 currency code; floats never enter, because a
pipeline total that drifts by a cent is a pipeline total nobody trusts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final

__all__ = [
    "CURRENCY_SYMBOLS",
    "MAX_AMOUNT",
    "InvalidAmount",
    "Money",
    "format_money",
    "format_money_short",
    "is_currency_code",
    "parse_amount",
]

MAX_AMOUNT: Final = Decimal(10) ** 12
_CENT: Final = Decimal("0.01")

# Only symbols that name one currency unambiguously in a sales context; "$" is USD because
# that is what an AE typing "$50k" means, whatever the CAD and AUD reps might say.
CURRENCY_SYMBOLS: Final[dict[str, str]] = {"$": "USD", "€": "EUR", "£": "GBP"}
_SYMBOL_FOR: Final[dict[str, str]] = {code: sym for sym, code in CURRENCY_SYMBOLS.items()}

# Active ISO 4217 codes. A closed list keeps "40k abc" an error instead of a new currency,
# and lets the command parser tell "Initech EUR 40000" apart from an account name.
_ISO_CODES: Final[frozenset[str]] = frozenset((
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWL",
))  # fmt: skip

_SCALES: Final[dict[str, Decimal]] = {
    "k": Decimal(10) ** 3,
    "m": Decimal(10) ** 6,
    "b": Decimal(10) ** 9,
}

# [0-9] rather than \d: Decimal would happily accept Arabic-Indic digits, and a rep who
# types them almost certainly pasted something by mistake.
_AMOUNT_RE: Final = re.compile(
    r"""
    ^(?P<code1>[A-Za-z]{3}(?=[\s$€£0-9.]))?\s*
    (?P<sym>[$€£])?\s*
    (?P<num>[0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)\s*
    (?P<scale>[kKmMbB])?\s*
    (?P<code2>[A-Za-z]{3})?$
    """,
    re.VERBOSE,
)
_SHORT_UNITS: Final[tuple[tuple[str, Decimal], ...]] = (
    ("", Decimal(1)),
    ("k", _SCALES["k"]),
    ("M", _SCALES["m"]),
    ("B", _SCALES["b"]),
)
_GROUPED_RE: Final = re.compile(r"^[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?$")


class InvalidAmount(ValueError):
    """An amount a rep typed that dealbot cannot read; `str()` is a message for the rep."""


@dataclass(frozen=True)
class Money:
    """An exact amount in one currency."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise TypeError(f"Money.amount must be a finite Decimal, got {self.amount!r}")
        if not is_currency_code(self.currency):
            raise ValueError(f"Money.currency must be an ISO 4217 code, got {self.currency!r}")


def is_currency_code(text: str) -> bool:
    """Return whether `text` is an upper-case ISO 4217 code dealbot knows."""
    return text in _ISO_CODES


def parse_amount(text: str, *, default_currency: str = "USD") -> Money:
    """Return the Money a rep typed, e.g. `50k`, `$1.2M`, `€40,000`, `40k eur`.

    Amounts are rounded to cents. Raises InvalidAmount with a message fit for the rep when
    the text is not a positive amount of at most 10^12.
    """
    shown = text.strip()
    if not shown:
        raise InvalidAmount("No amount given: try `50k` or `$50,000`.")
    if len(shown) > 40:
        raise InvalidAmount(f"`{shown[:40]}…` is too long to be an amount.")
    if shown[0] in "-−(" or shown.endswith(")"):
        raise InvalidAmount(f"`{shown}` is negative: amounts must be more than zero.")
    match = _AMOUNT_RE.match(shown)
    if match is None:
        raise InvalidAmount(f"`{shown}` is not an amount: try `50k`, `$1.2M` or `€40,000`.")

    currency = _currency_of(match, shown, default_currency)
    number = match["num"]
    if "," in number and not _GROUPED_RE.match(number):
        raise InvalidAmount(
            f"`{shown}` has commas in odd places: use `,` for thousands and `.` for "
            "decimals, e.g. `40,000.50`."
        )
    try:
        value = Decimal(number.replace(",", ""))
    except InvalidOperation:
        raise InvalidAmount(f"`{shown}` is not an amount: try `50k` or `$50,000`.") from None
    if match["scale"]:
        value *= _SCALES[match["scale"].lower()]
    if value > MAX_AMOUNT:
        raise InvalidAmount(f"`{shown}` is more than 1 trillion: check the amount.")
    value = value.quantize(_CENT, rounding=ROUND_HALF_UP)
    if value <= 0:
        raise InvalidAmount(f"`{shown}` is zero: amounts must be more than zero.")
    return Money(value, currency)


def _currency_of(match: re.Match[str], shown: str, default_currency: str) -> str:
    """Return the one currency the symbol and codes in `match` agree on."""
    named: list[str] = []
    if match["sym"]:
        named.append(CURRENCY_SYMBOLS[match["sym"]])
    for group in ("code1", "code2"):
        code = (match[group] or "").upper()
        if code:
            if code not in _ISO_CODES:
                raise InvalidAmount(f"`{match[group]}` in `{shown}` is not a currency code.")
            named.append(code)
    if len(set(named)) > 1:
        raise InvalidAmount(f"`{shown}` names two currencies: pick one.")
    if named:
        return named[0]
    return default_currency.upper()


def format_money(money: Money) -> str:
    """Return `money` for people: `$50,000`, `£12,500.50`, `50,000 CHF`.

    Cents show only when there are some, since deal sizes are nearly always round.
    """
    cents = money.amount.quantize(_CENT, rounding=ROUND_HALF_UP)
    digits = f"{abs(cents):,.0f}" if cents == cents.to_integral_value() else f"{abs(cents):,.2f}"
    return _with_currency(digits, money.currency, negative=cents < 0)


def format_money_short(money: Money) -> str:
    """Return `money` compactly for dense tables: `$1.2M`, `$50k`, `$950`, `40k CHF`.

    One decimal is kept below 100 of a unit (`$12.5k`), none above (`$125k`), which keeps
    columns narrow while still telling $1.2M from $1.5M.
    """
    value = abs(money.amount)
    unit = max(i for i, (_, scale) in enumerate(_SHORT_UNITS) if value >= scale or i == 0)
    while True:
        suffix, scale = _SHORT_UNITS[unit]
        scaled = value / scale
        places = Decimal("0.1") if unit and scaled < 100 else Decimal(1)
        rounded = scaled.quantize(places, rounding=ROUND_HALF_UP)
        # 999,999 would otherwise show as "$1000k"; it reads better as "$1M".
        if rounded >= 1000 and unit < len(_SHORT_UNITS) - 1:
            unit += 1
            continue
        break
    text = f"{rounded:,f}".removesuffix(".0") + suffix
    return _with_currency(text, money.currency, negative=money.amount < 0)


def _with_currency(digits: str, currency: str, *, negative: bool) -> str:
    """Return `digits` with the currency's symbol in front, or its code after."""
    sign = "-" if negative else ""
    symbol = _SYMBOL_FOR.get(currency)
    if symbol is not None:
        return f"{sign}{symbol}{digits}"
    return f"{sign}{digits} {currency}"
