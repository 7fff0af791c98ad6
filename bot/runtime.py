"""Builds the running parts (store, Redis, policy, service) from the settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from bot.authz import GroupDirectory
from bot.control import ControlPlane, connect
from bot.core import EscalationService, Listener
from bot.db.store import Store
from bot.keys import KeyNames
from bot.policy import Policy, PolicyHolder, holder_of, load_policy
from bot.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    policy: Policy
    store: Store
    redis: redis.Redis
    keys: KeyNames
    control: ControlPlane
    service: EscalationService

    def close(self) -> None:
        self.store.dispose()
        self.redis.close()


def build_runtime(
    settings: Settings,
    *,
    policy: Policy | PolicyHolder | None = None,
    directory: GroupDirectory | None = None,
    listeners: Sequence[Listener] = (),
    require_migrated: bool = True,
) -> Runtime:
    policies = holder_of(policy or load_policy(settings.policy_path))
    store = Store.from_url(settings.database_url)
    if require_migrated:
        store.require_migrated()
    client = connect(settings.redis_url)
    keys = KeyNames(settings.redis_key_prefix)
    control = ControlPlane(client, keys)
    service = EscalationService(
        store,
        control,
        policies,
        directory=directory,
        listeners=listeners,
        paging=settings.pagerduty_routing_key is not None,
    )
    return Runtime(settings, policies.current, store, client, keys, control, service)
