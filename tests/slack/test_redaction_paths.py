"""Redaction on every way out, end to end: `escbot serve --http` against the fake Slack and
the fake PagerDuty (over TLS), with escalations carrying generated personal data and
secrets. Cards, modals, threads, announcements, redrawn cards, the page and the log lines
show placeholders only; the agent gets its own values back."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from blocks.actions import Action, Callback, Field_
from bot.db import upkeep
from tests.conftest import ADMIN, OPERATOR
from tests.slack.conftest import Bot, make_bot
from tests.slack.test_cards import card_text, refreshed
from tests.slack.test_decisions import decision, open_edit, submit_edit
from tests.slack.test_tiers import ROUTING_KEY, paging_env
from tests.support.databases import DatabaseFactory
from tests.support.factories import escalation_data
from tests.support.fake_pagerduty import FakePagerDuty
from tests.support.fake_slack import Message
from tests.support.pii_corpus import Sample, sensitive
from tests.support.waiting import wait_until

PAGING_POLICY = f"""
roles:
  operator: [{OPERATOR}]
  admin: [{ADMIN}]
tiers:
  - name: triage
    channel: C0TRIAGE
    ack_timeout: 10m
    page: true
on_final_timeout: reject
"""
PER_ESCALATION = 12
ESCALATIONS = 4


@pytest.fixture(scope="module")
def pagerduty() -> Iterator[FakePagerDuty]:
    with FakePagerDuty(routing_keys={ROUTING_KEY}) as fake:
        yield fake


@pytest.fixture(scope="module")
def bot(
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_databases: DatabaseFactory,
    redis_url: str,
    pagerduty: FakePagerDuty,
) -> Iterator[Bot]:
    tmp = tmp_path_factory.mktemp("redacting-bot")
    yield from make_bot(
        tmp,
        sqlite_databases.fresh(),
        redis_url,
        extra_env=paging_env(pagerduty, tmp) | {"ESCBOT_SWEEP_INTERVAL": "0.2"},
        policy=PAGING_POLICY,
    )


def carrying(samples: list[Sample]) -> dict[str, Any]:
    """An escalation with personal data in its reason, arguments, tool results and thread;
    the tool result too long for the card, so the card offers its full context."""
    history = " ".join(f"step {n}: {samples[4 + n % 5].text}" for n in range(30))
    return escalation_data(
        reason=samples[0].text,
        action={
            "name": "send_reply",
            "args": {"amount": 740, "to": samples[1].value, "body": samples[2].text},
        },
        context={
            "note": samples[3].text,
            "tool_calls": [{"name": "crm_lookup", "result": history}],
            "thread": [s.text for s in samples[5:9]],
        },
    )


def forms(value: str) -> tuple[str, ...]:
    """How a value can appear in what was sent: as is, or escaped inside JSON."""
    return (value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1])


def leaks(text: str, samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if any(form in text for form in forms(s.value))]


def sent_to_slack(bot: Bot, acks: Sequence[str] = ()) -> str:
    """Every Web API call, response_url post and (given) ack body the bot sent Slack."""
    calls = [{"method": c.method, "params": c.params} for c in bot.fake.calls()]
    return json.dumps([calls, bot.fake.responses(), acks], ensure_ascii=False, default=str)


def modal(bot: Bot, action: str, card: Message) -> dict[str, Any]:
    trigger = f"trigger-{action}-{card.ts}"
    assert bot.click(action, card, OPERATOR, trigger_id=trigger).status_code == 200
    [call] = bot.fake.wait_for("views.open", lambda c: c.params.get("trigger_id") == trigger)
    view: dict[str, Any] = call.params["view"]
    return view


def test_nothing_personal_leaves_on_any_path_and_the_agent_gets_its_values(
    bot: Bot, pagerduty: FakePagerDuty
) -> None:
    samples = sensitive(PER_ESCALATION * ESCALATIONS, seed=2026)
    groups = [samples[i : i + PER_ESCALATION] for i in range(0, len(samples), PER_ESCALATION)]
    opened: list[tuple[dict[str, Any], Message]] = [bot.escalate(**carrying(g)) for g in groups]

    contexts: dict[str, str] = {}
    for (data, card), group in zip(opened, groups, strict=True):
        assert "[" in card_text(card)  # placeholders where the values were
        contexts[data["escalation_id"]] = json.dumps(modal(bot, Action.FULL_CONTEXT, card))
        bot.rdb.xadd(
            bot.key("agent-events"),
            {
                "task_id": data["task_id"],
                "escalation_id": data["escalation_id"],
                "text": f"{group[9].text} (writing to {group[1].value} again)",
            },
        )
    for data, _ in opened:
        wait_until(
            lambda d=data: pagerduty.incidents(d["escalation_id"]), what="the page", timeout=20
        )
    for _, card in opened:
        wait_until(lambda c=card: len(bot.fake.thread(c.channel, c.ts)) >= 1, what="thread")
    # Edit & approve the first with its placeholders; reject the second with a comment.
    first, first_card = opened[0]
    view = open_edit(bot, first_card)
    shown = json.loads(view["blocks"][1]["element"]["initial_value"])
    assert shown["to"].startswith("[") and shown["to"] != groups[0][1].value
    assert submit_edit(bot, view, json.dumps(shown | {"amount": 500})).status_code == 200
    refreshed(bot, first_card, lambda m: "Approved" in card_text(m))
    assert decision(bot, first["escalation_id"])["args"] == {
        "amount": 500,
        "to": groups[0][1].value,
        "body": groups[0][2].text,
    }
    second, second_card = opened[1]
    reject = modal(bot, Action.REJECT, second_card)
    comment = f"no: {groups[1][11].text}"
    bot.slack.submit_view(
        callback_id=Callback.REJECT,
        user_id=OPERATOR,
        values={
            Field_.COMMENT.value: {
                Field_.VALUE.value: {"type": "plain_text_input", "value": comment}
            }
        },
        private_metadata=reject["private_metadata"],
    )
    refreshed(bot, second_card, lambda m: "Rejected" in card_text(m))
    assert decision(bot, second["escalation_id"])["comment"] == comment  # as the person wrote

    acks = [
        bot.command(f"kill {data['task_id']} {group[10].text}", OPERATOR).text
        for data, group in zip((d for d, _ in opened), groups, strict=True)
    ]
    assert all("Killed" in ack for ack in acks)  # each answer is in its ack
    for data, group in zip((d for d, _ in opened), groups, strict=True):
        wait_until(
            lambda d=data, g=group: any(
                f"{d['task_id']}` killed" in (text := card_text(m)) and f"[{g[10].kind}-" in text
                for m in bot.fake.messages("C0TRIAGE")
            ),
            what="the kill announcement",
        )

    slack = sent_to_slack(bot, acks)
    pages = json.dumps([e.body for e in pagerduty.events()], ensure_ascii=False)
    log = bot.process.log()
    assert leaks(slack, samples) == []
    assert leaks(pages, samples) == []
    assert leaks(log, samples) == []
    for kind in {s.kind for g in groups for s in g[:9]}:
        assert f"[{kind}-1]" in slack
    for group in groups:
        assert f"[{group[0].kind}-" in pages  # the reason, in the page's summary

    # Stable within an escalation: the thread names the recipient as the modal does.
    for (data, card), group in zip(opened, groups, strict=True):
        mapping = dict(bot.rdb.hgetall(bot.key(f"redaction:{data['escalation_id']}")))
        recipient = next(p for p, v in mapping.items() if v == group[1].value)
        assert recipient in contexts[data["escalation_id"]]
        thread = " ".join(m.text for m in bot.fake.thread(card.channel, card.ts))
        assert f"writing to {recipient} again" in thread
    maps = [
        dict(bot.rdb.hgetall(bot.key(f"redaction:{data['escalation_id']}"))) for data, _ in opened
    ]
    assert all(a != b for i, a in enumerate(maps) for b in maps[i + 1 :])  # per escalation


def test_a_refused_entry_is_logged_and_kept_without_its_personal_data(bot: Bot) -> None:
    [sample] = [s for s in sensitive(40, seed=3) if s.kind == "email"][:1]
    bot.rdb.xadd(
        bot.key("escalations"),
        {"payload": json.dumps(escalation_data(severity=sample.value, reason=sample.text))},
    )
    line = wait_until(
        lambda: [ln for ln in bot.process.log().splitlines() if "intake: rejected" in ln],
        what="the refusal in the log",
    )
    assert line and leaks(bot.process.log(), [sample]) == []
    with bot.store.reading() as session:
        [kept] = [r for r in upkeep.recent_rejected(session) if "[email-1]" in r.raw]
    assert leaks(kept.raw + kept.reason, [sample]) == []


def test_log_lines_of_the_card_path_carry_no_values(bot: Bot) -> None:
    samples = sensitive(PER_ESCALATION, seed=88)
    data, card = bot.escalate(**carrying(samples))
    bot.fake.fail_next("chat.update", status=500)  # a failure the worker logs
    ack = bot.command(f"kill {data['task_id']} {samples[10].text}", OPERATOR).text
    wait_until(
        lambda: any("killed" in m.text for m in bot.fake.messages(card.channel)),
        what="the kill announcement",
    )
    assert leaks(bot.process.log(), samples) == []
    assert leaks(sent_to_slack(bot, [ack]), samples) == []
