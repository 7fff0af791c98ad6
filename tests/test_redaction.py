"""The detectors and placeholders (CONTRACTS §12) over generated corpora: every value of
every kind replaced, ordinary text left alone."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from pydantic import ValidationError

from bot.policy.redaction import Redaction
from bot.redaction import Redactor, UnknownPlaceholders, restore
from tests.support.pii_corpus import KINDS, ordinary, sensitive

RULES = Redaction(patterns={"order": r"ORD-[0-9]{6}"}, keep=["context.policy_rule"]).rules
CORPUS = 2400
FALSE_POSITIVE_BUDGET = 0.005


def test_every_kind_is_replaced_in_a_generated_corpus() -> None:
    samples = sensitive(CORPUS)
    assert Counter(sample.kind for sample in samples) == dict.fromkeys(KINDS, CORPUS // 6)
    missed = []
    for sample in samples:
        out = Redactor(RULES).text(sample.text)
        if sample.value in out or f"[{sample.kind}-1]" not in out:
            missed.append((sample.kind, sample.value, out))
    print(f"\nredacted {len(samples) - len(missed)} of {len(samples)} values")
    assert missed == []


def test_ordinary_text_is_left_alone() -> None:
    texts = ordinary(CORPUS)
    rules = Redaction().rules  # every detector, none of your own patterns
    changed = [(text, out) for text in texts if (out := Redactor(rules).text(text)) != text]
    rate = len(changed) / len(texts)
    print(f"\nfalse positives: {len(changed)} of {len(texts)} ({rate:.2%})")
    assert rate <= FALSE_POSITIVE_BUDGET, changed[:10]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe@example.com now", "mail [email-1] now"),
        ("call +1 415 555 0100 or (415) 555-0100", "call [phone-1] or [phone-1]"),
        ("(+44 20 7946 0958)", "([phone-1])"),
        ("card 4111 1111 1111 1111, exp 12/29", "card [card-1], exp 12/29"),
        ("not a card: 4111 1111 1111 1112", "not a card: 4111 1111 1111 1112"),
        ("IBAN DE89 3704 0044 0532 0130 00.", "IBAN [iban-1]."),
        ("not an IBAN: DE00 3704 0044 0532 0130 00", "not an IBAN: DE00 3704 0044 0532 0130 00"),
        ("from 203.0.113.7 and 2001:db8::1", "from [ip-1] and [ip-2]"),
        ("not an address: 999.1.1.1, 12:30:45", "not an address: 999.1.1.1, 12:30:45"),
        ("password=hunter2 user=jane", "password=[secret-1] user=jane"),
        ('{"api_key": "sk-live-123"}', '{"api_key": "[secret-1]"}'),
        ("Authorization: Bearer abcdefghijklmnop1234", "Authorization: Bearer [secret-1]"),
        ("token xoxb-1234567890-abcdefghijkl", "token [secret-1]"),
        ("order ORD-123456 shipped", "order [order-1] shipped"),
        (
            "<@U0OPERATOR> at <!date^1795316700^{time}|03:05>",
            "<@U0OPERATOR> at <!date^1795316700^{time}|03:05>",
        ),
        ("already [email-1] and [phone-2]", "already [email-1] and [phone-2]"),
    ],
)
def test_each_detector(text: str, expected: str) -> None:
    assert Redactor(RULES).text(text) == expected


def test_the_same_value_is_the_same_placeholder_within_a_scope_and_comes_back() -> None:
    redactor = Redactor(RULES)
    first = redactor.text("Jane.Doe@example.com wrote, then jane.doe@example.com again")
    assert first == "[email-1] wrote, then [email-1] again"
    assert redactor.text("and bob@example.org") == "and [email-2]"
    assert restore({"to": "[email-1]", "cc": ["[email-2]"]}, redactor.originals, RULES.kinds) == {
        "to": "Jane.Doe@example.com",
        "cc": ["bob@example.org"],
    }
    other = Redactor(RULES)
    assert other.text("bob@example.org") == "[email-1]"  # numbered per escalation
    assert other.originals != redactor.originals


def test_a_map_goes_on_numbering_after_what_it_holds() -> None:
    redactor = Redactor(RULES, {"[email-1]": "a@example.com", "[email-4]": "b@example.com"})
    assert redactor.text("a@example.com, c@example.com") == "[email-1], [email-5]"
    assert redactor.added == {"[email-5]": "c@example.com"}
    fresh = Redactor(RULES)
    fresh.reserve("seen [phone-2] before")
    assert fresh.text("+1 415 555 0100") == "[phone-3]"


def test_a_known_value_keeps_its_placeholder_in_any_form() -> None:
    known = {"[phone-1]": "+44 121 234 5881", "[card-1]": "4111 1111 1111 1111"}
    redactor = Redactor(RULES, known)
    assert redactor.text("+44 121 234 5881 / +441212345881") == "[phone-1] / [phone-1]"
    assert redactor.text("card 4111-1111-1111-1111") == "card [card-1]"
    assert redactor.added == {}


def test_json_values_keep_paths_and_secret_named_keys() -> None:
    redactor = Redactor(RULES)
    redacted = redactor.value(
        {
            "reason": "refund for jane.doe@example.com",
            "context": {
                "policy_rule": "refunds for jane.doe@example.com",
                "state": {"password": "hunter2", "notes": ["call +1 415 555 0100"], "n": 4111},
            },
        }
    )
    assert redacted == {
        "reason": "refund for [email-1]",
        "context": {
            "policy_rule": "refunds for jane.doe@example.com",
            "state": {"password": "[secret-1]", "notes": ["call [phone-1]"], "n": 4111},
        },
    }


def test_a_placeholder_never_issued_is_refused_on_the_way_back() -> None:
    with pytest.raises(UnknownPlaceholders) as caught:
        restore({"to": "[email-3]", "note": "[unrelated-1] stays"}, {}, RULES.kinds)
    assert caught.value.missing == ["[email-3]"]


def test_detectors_can_be_chosen_and_patterns_are_checked() -> None:
    only_email = Redaction(detectors=["email"]).rules
    assert Redactor(only_email).text("a@example.com +1 415 555 0100") == "[email-1] +1 415 555 0100"
    assert not Redaction(detectors=[]).rules.active
    for bad, message in (
        ({"patterns": {"Order": "x"}}, "lower-case"),
        ({"patterns": {"email": "x"}}, "built-in detector"),
        ({"patterns": {"order": "("}}, "not a regular expression"),
        ({"patterns": {"order": "x*"}}, "matches the empty text"),
        ({"keep": ["nowhere.x"]}, "dotted path"),
        ({"detectors": ["dna"]}, "email"),
    ):
        with pytest.raises(ValidationError, match=re.escape(message)):
            Redaction.model_validate(bad)
