"""Generated corpora for the redaction tests: personal data and secrets in the places an
escalation carries them, and ordinary text that must come through untouched. Seeded, so
a failure is the same failure on every run."""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import phonenumbers
from faker import Faker

REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", "AU", "CA")
IBAN_LOCALES = ("de_DE", "en_GB", "fr_FR", "nl_NL", "es_ES", "it_IT")
CARD_TYPES = ("visa16", "visa13", "mastercard", "amex", "discover", "jcb16", "diners", "maestro")


@dataclass(frozen=True)
class Sample:
    kind: str  # what the value is: email, phone, card, iban, secret, ip
    value: str  # the value exactly as written in the text
    text: str  # where it is written


def _phone(rng: random.Random) -> str:
    while True:
        region = rng.choice(REGIONS)
        example = phonenumbers.example_number(region)
        assert example is not None
        national = str(example.national_number)
        digits = national[:-4] + "".join(rng.choice(string.digits) for _ in range(4))
        number = phonenumbers.parse(f"+{example.country_code}{digits}")
        if not phonenumbers.is_valid_number(number):
            continue
        if region in ("US", "CA") and rng.random() < 0.5:
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        style = rng.choice(
            (phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164)
        )
        return phonenumbers.format_number(number, style)


def _card(fake: Faker, rng: random.Random) -> str:
    digits = fake.credit_card_number(card_type=rng.choice(CARD_TYPES))
    if rng.random() < 0.4 and len(digits) == 16:
        sep = rng.choice((" ", "-"))
        return sep.join(digits[i : i + 4] for i in range(0, 16, 4))
    return str(digits)


def _iban(rng: random.Random) -> str:
    value = str(Faker(rng.choice(IBAN_LOCALES)).iban())
    if rng.random() < 0.5:
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def _token(rng: random.Random, alphabet: str, size: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def _secret(rng: random.Random) -> str:
    alnum = string.ascii_letters + string.digits
    kind = rng.randrange(9)
    if kind == 0:
        return f"xoxb-{_token(rng, string.digits, 12)}-{_token(rng, alnum, 24)}"
    if kind == 1:
        return "AKIA" + _token(rng, string.ascii_uppercase + string.digits, 16)
    if kind == 2:
        return "ghp_" + _token(rng, alnum, 36)
    if kind == 3:
        return "u+" + _token(rng, alnum + "_-", 18)
    if kind == 4:
        return "R0" + _token(rng, string.ascii_uppercase + string.digits, 30)
    if kind == 5:

        def part(data: dict[str, object]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

        signature = _token(rng, alnum + "_-", 43)
        return f"{part({'alg': 'HS256'})}.{part({'sub': rng.randrange(10**6)})}.{signature}"
    if kind == 6:
        body = "\n".join(_token(rng, alnum + "+/", 64) for _ in range(3))
        return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    if kind == 7:
        return "github_pat_" + _token(rng, alnum + "_", 82)
    return "xapp-1-" + _token(rng, alnum, 30)


def _value(kind: str, fake: Faker, rng: random.Random) -> str:
    if kind == "email":
        return str(fake.email())
    if kind == "phone":
        return _phone(rng)
    if kind == "card":
        return _card(fake, rng)
    if kind == "iban":
        return _iban(rng)
    if kind == "ip":
        return str(fake.ipv4_public() if rng.random() < 0.7 else fake.ipv6())
    return _secret(rng)


KINDS = ("email", "phone", "card", "iban", "secret", "ip")


def sensitive(count: int, seed: int = 12) -> list[Sample]:
    """`count` texts, each holding one value of a kind, in running text, JSON arguments,
    tool results and thread messages, in turn."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    samples = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        value = _value(kind, fake, rng)
        shape = (index // len(KINDS)) % 4
        if shape == 0:
            text = f"{fake.sentence()} {value} {fake.sentence()}"
        elif shape == 1:
            text = json.dumps({"customer": fake.first_name(), "value": value, "amount": 740})
        elif shape == 2:
            text = f"lookup_customer → {{'id': {rng.randrange(10**6)}, 'contact': '{value}'}}"
        else:
            text = f"Hi team, the customer wrote from {value}, please check."
        if kind == "secret" and shape == 1 and rng.random() < 0.5:
            text = f"config password={value} retries=3"
        samples.append(Sample(kind, value, text))
    return samples


def ordinary(count: int, seed: int = 34) -> list[str]:
    """Text with numbers that are not personal data: amounts, dates, order numbers,
    timestamps, UUIDs, version numbers, durations."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    texts = []
    for index in range(count):
        moment = start + timedelta(seconds=rng.randrange(3 * 365 * 86400))
        kind = index % 13
        if kind == 0:
            amount = rng.randrange(1, 10**5) / 100
            text = f"refund of {amount:.2f} EUR for order {moment:%Y}-{rng.randrange(10**5):05d}"
        elif kind == 1:
            text = f"due {moment:%Y-%m-%d} at {moment:%H:%M}; shipped {moment:%d/%m/%Y}"
        elif kind == 2:
            text = f"order ORD-{rng.randrange(10**6):06d}, ticket #{rng.randrange(10**5)}"
        elif kind == 3:
            text = f"at {moment.isoformat()} (epoch {int(moment.timestamp())})"
        elif kind == 4:
            text = f"trace {uuid.UUID(int=rng.getrandbits(128))} span {rng.getrandbits(64):016x}"
        elif kind == 5:
            text = f"upgraded to v{rng.randrange(10)}.{rng.randrange(30)}.{rng.randrange(100)}"
        elif kind == 6:
            used = f"{rng.randrange(100)}% of quota, {rng.randrange(10**6):,} tokens"
            text = f"took {rng.randrange(10**4)} ms, {used}"
        elif kind == 7:
            text = f"{fake.sentence()} Total: ${rng.randrange(10**6) / 100:,.2f}."
        elif kind == 8:
            text = (
                f"invoice {moment:%Y%m%d}-{rng.randrange(1000):03d}, SKU {fake.bothify('??-####')}"
            )
        else:
            text = (
                f"batch {rng.randrange(10**8)} of {moment:%B %d, %Y}, step {rng.randrange(50)}/50"
            )
        texts.append(text)
    return texts
