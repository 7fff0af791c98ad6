"""What `escbot sandbox` starts from (its sample policy, its people and channels) and
what it leaves behind in Redis (nothing outside its own prefix, nothing inside it)."""

from __future__ import annotations

import redis

from bot.policy import parse_policy
from bot.sandbox import demo
from bot.sandbox.run import _forget
from tests.conftest import POLICY_YAML


def test_the_sample_policy_has_three_tiers_and_the_pages_people_in_their_roles() -> None:
    policy = parse_policy(demo.SAMPLE_POLICY.encode())
    assert [tier.name for tier in policy.tiers] == ["triage", "review", "incident"]
    assert policy.roles.operator == [demo.OPERATOR.user_id]
    assert policy.roles.admin == [demo.ADMIN.user_id]
    assert demo.people_of(policy) == [demo.OPERATOR, demo.ADMIN, demo.STRANGER]
    assert demo.channels_of(policy) == {
        "C0TRIAGE": "triage",
        "C0REVIEW": "review",
        "C0INCIDENT": "incident",
    }
    assert [trigger.name for trigger in policy.triggers] == ["cost-spike"]


def test_a_given_policy_lends_its_first_operator_and_admin_to_the_page() -> None:
    policy = parse_policy(POLICY_YAML.encode())
    operator, admin, stranger = demo.people_of(policy)
    assert operator.user_id in policy.roles.operator and operator.role == "operator"
    assert admin.user_id in policy.roles.admin and admin.role == "admin"
    assert stranger == demo.STRANGER
    assert list(demo.channels_of(policy)) == list(
        dict.fromkeys(t.channel for ladder in policy.all_ladders().values() for t in ladder)
    )


def test_stopping_forgets_its_own_keys_and_only_those(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    mine = f"{prefix}sandbox:"
    client.set(f"{mine}kill:demo-1", "{}")
    client.xadd(f"{mine}escalations", {"payload": "{}"})
    client.set(f"{prefix}other", "kept")
    _forget(redis_url, mine)
    assert sorted(client.scan_iter(match=f"{prefix}*")) == [f"{prefix}other".encode()]
    client.close()
