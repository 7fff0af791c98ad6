"""Fixtures over the real parts: Redis, SQLite and PostgreSQL on this machine."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from bot.control import ControlPlane, connect
from bot.core import EscalationService
from bot.db.store import Store
from bot.keys import KeyNames
from bot.policy import Policy, parse_policy
from tests.support.databases import DatabaseFactory, database_factory
from tests.support.keyspace import delete_prefixed, new_prefix
from tests.support.redis_server import PrivateRedis

REDIS_URL = os.environ.get("ESCBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

OPERATOR = "U0OPERATOR"
ADMIN = "U0ADMIN1"
ADMIN2 = "U0ADMIN2"
GROUP_MEMBER = "U0GROUPIE"
STRANGER = "U0STRANGER"

POLICY_YAML = f"""
roles:
  operator: [{OPERATOR}, S0OPS]
  admin: [{ADMIN}, {ADMIN2}]
tiers:
  - name: triage
    channel: C0TRIAGE
    ack_timeout: 5m
  - name: review
    channel: C0REVIEW
    ack_timeout: 15m
  - name: incident
    channel: C0INCIDENT
    ack_timeout: 30m
    page: true
on_final_timeout: reject
# The tests drive the sweep's clock without posting cards: an unposted card holds the
# tier's clock back not at all here (tests/test_delivery_order.py tests the grace).
delivery:
  unposted_grace: 0s
"""


class StaticDirectory:
    def __init__(self, groups: dict[str, frozenset[str]]) -> None:
        self.groups = groups

    def members(self, group_id: str) -> frozenset[str]:
        return self.groups.get(group_id, frozenset())


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.exit(f"Redis is not reachable at {REDIS_URL}: {exc}", returncode=2)
    return REDIS_URL


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are removed afterwards."""
    value = new_prefix()
    yield value
    client = redis.Redis.from_url(redis_url)
    delete_prefixed(client, value)
    client.close()


@pytest.fixture
def rdb(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    with database_factory("sqlite", tmp_path_factory.mktemp("sqlite")) as factory:
        yield factory


@pytest.fixture(scope="session")
def pg_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    with database_factory("postgresql", tmp_path_factory.mktemp("pg")) as factory:
        yield factory


@pytest.fixture(params=["sqlite", "postgresql"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def databases(db_kind: str, request: pytest.FixtureRequest) -> DatabaseFactory:
    return request.getfixturevalue(f"{'sqlite' if db_kind == 'sqlite' else 'pg'}_databases")


@pytest.fixture
def database_url(databases: DatabaseFactory) -> str:
    return databases.fresh()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    yield store
    store.dispose()


@pytest.fixture
def policy() -> Policy:
    return parse_policy(POLICY_YAML.encode())


@pytest.fixture
def directory() -> StaticDirectory:
    return StaticDirectory({"S0OPS": frozenset({GROUP_MEMBER})})


@pytest.fixture
def control(redis_url: str, prefix: str) -> Iterator[ControlPlane]:
    client = connect(redis_url)
    yield ControlPlane(client, KeyNames(prefix))
    client.close()


@pytest.fixture
def make_service(
    store: Store, policy: Policy, directory: StaticDirectory
) -> Callable[..., EscalationService]:
    def make(control: ControlPlane, **kwargs: object) -> EscalationService:
        return EscalationService(store, control, policy, directory=directory, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def service(
    make_service: Callable[..., EscalationService], control: ControlPlane
) -> EscalationService:
    return make_service(control)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_control(private_redis: PrivateRedis) -> Iterator[ControlPlane]:
    """The control plane on a private Redis that a test can stop and start."""
    client = connect(private_redis.url, timeout=0.5)
    yield ControlPlane(client, KeyNames("p:"))
    client.close()
