"""What counts as personal data or a secret in a text (CONTRACTS §12): each detector
finds spans and says what value they hold, normalised, so that two spellings of one
phone number or one card are the same value.

Checks beyond the pattern come from maintained libraries: `phonenumbers` (Google's
libphonenumber) for phones, `python-stdnum` for the Luhn check of cards and the IBAN
check sum, the standard `ipaddress` for addresses.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn

DETECTORS = ("email", "phone", "card", "iban", "secret", "ip")
PHONE_REGION = "US"  # numbers written without a country code are read as North American
MIN_PHONE_DIGITS = 7


@dataclass(frozen=True, slots=True)
class Finding:
    start: int
    end: int
    kind: str
    value: str  # normalised: the same value always gets the same placeholder


Detector = Callable[[str], Iterator[Finding]]

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}\b"
)
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){11,18}(?![\w-])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# Card brands by their leading digits (IIN ranges) and lengths: the Luhn check alone
# passes one random number in ten.
_BRANDS = (
    (re.compile(r"4"), (13, 16, 19)),  # Visa
    (re.compile(r"5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)"), (16,)),  # Mastercard
    (re.compile(r"3[47]"), (15,)),  # American Express
    (re.compile(r"6(?:011|5|4[4-9])"), (16, 19)),  # Discover
    (re.compile(r"35"), (16, 19)),  # JCB
    (re.compile(r"3(?:0[0-5]|[689])"), (14, 16, 19)),  # Diners Club
    (re.compile(r"62"), (16, 17, 18, 19)),  # UnionPay
    (re.compile(r"5[06-9]|6\d|0604"), tuple(range(12, 20))),  # Maestro
)
_SECRET_NAMES = (
    r"password|passwd|passphrase|pwd|secret|client[_-]?secret|api[_-]?key|apikey|"
    r"access[_-]?key|secret[_-]?key|private[_-]?key|auth[_-]?token|access[_-]?token|"
    r"refresh[_-]?token|token|credentials?|routing[_-]?key|integration[_-]?key"
)
SECRET_KEY = re.compile(rf"(?i)^(?:[\w-]*[_-])?(?:{_SECRET_NAMES})$")
# Whole tokens whose form gives them away.
_SECRET_TOKENS = re.compile(
    "|".join(
        (
            r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack bot, user, app-level… tokens
            r"\bxapp-\d-[A-Za-z0-9-]{10,}",  # Slack app-level token
            r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+",  # Slack webhook
            r"\b(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA)[0-9A-Z]{16}\b",  # AWS access key id
            r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b",  # GitHub tokens
            r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",  # GitHub fine-grained token
            r"\bu\+[A-Za-z0-9_+-]{18}(?![A-Za-z0-9_+-])",  # PagerDuty user API token
            r"\bR0[0-9A-Z]{30}\b",  # PagerDuty global routing key
            r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}",  # a JWT
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
        )
    )
)
# `password=hunter2`, `"api_key": "…"`, `Authorization: Bearer …`, `Token token=…`: the
# value only, the name stays readable.
_SECRET_PAIR = re.compile(
    rf"(?i)\b(?:[\w-]*[_-])?(?:{_SECRET_NAMES})[\"']?\s*[:=]\s*"
    r"(?:(?:bearer|token|basic)\s+(?:token=)?)?"
    r"(?:\"(?P<dq>[^\"\s]{1,512})\"|'(?P<sq>[^'\s]{1,512})'|(?P<bare>[^\s,;&\"'}\]]{1,512}))"
)
_BEARER = re.compile(r"(?i)\b(?:bearer|Token token=)\s*(?P<value>[A-Za-z0-9._~+/=-]{16,})")


def emails(text: str) -> Iterator[Finding]:
    if "@" not in text:
        return
    for match in _EMAIL.finditer(text):
        yield Finding(match.start(), match.end(), "email", match.group().lower())


def phones(text: str) -> Iterator[Finding]:
    if sum(ch.isdigit() for ch in text) < MIN_PHONE_DIGITS:
        return
    for match in phonenumbers.PhoneNumberMatcher(text, PHONE_REGION):
        number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        start = match.start
        if match.raw_string.startswith("(") and ")" not in match.raw_string:
            start += 1  # "(+1 415 555 0100)": the bracket is the sentence's
        yield Finding(start, match.end, "phone", number)


def cards(text: str) -> Iterator[Finding]:
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if _is_card(digits):
            yield Finding(match.start(), match.end(), "card", digits)


def _is_card(digits: str) -> bool:
    for prefix, lengths in _BRANDS:
        if len(digits) in lengths and prefix.match(digits):
            return bool(luhn.is_valid(digits))
    return False


def ibans(text: str) -> Iterator[Finding]:
    for match in _IBAN.finditer(text):
        compact = match.group().replace(" ", "")
        if stdnum_iban.is_valid(compact):
            yield Finding(match.start(), match.end(), "iban", compact)


def ips(text: str) -> Iterator[Finding]:
    for pattern in (_IPV4, _IPV6) if ":" in text else (_IPV4,):
        for match in pattern.finditer(text):
            try:
                address = ipaddress.ip_address(match.group())
            except ValueError:
                continue
            if address.is_loopback or address.is_unspecified:
                continue  # 127.0.0.1, ::1, 0.0.0.0 identify nobody
            yield Finding(match.start(), match.end(), "ip", address.compressed)


def secrets(text: str) -> Iterator[Finding]:
    for match in _SECRET_TOKENS.finditer(text):
        yield Finding(match.start(), match.end(), "secret", match.group())
    for match in _SECRET_PAIR.finditer(text):
        group = next(name for name in ("dq", "sq", "bare") if match.group(name) is not None)
        yield from _secret_value(match, group)
    for match in _BEARER.finditer(text):
        yield from _secret_value(match, "value")


def _secret_value(match: re.Match[str], group: str) -> Iterator[Finding]:
    value = match.group(group)
    if not value.startswith("["):  # not a placeholder already
        yield Finding(match.start(group), match.end(group), "secret", value)


BUILT_IN: dict[str, Detector] = {
    "secret": secrets,
    "card": cards,
    "iban": ibans,
    "email": emails,
    "ip": ips,
    "phone": phones,
}


def pattern_detector(name: str, pattern: re.Pattern[str]) -> Detector:
    def find(text: str) -> Iterator[Finding]:
        for match in pattern.finditer(text):
            if match.end() > match.start():
                yield Finding(match.start(), match.end(), name, match.group())

    return find
