"""Live reload of the policy file: a good file is put in force, a bad or missing one is
refused and the previous one stays, with one log line and an audit row."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from bot.control import ControlPlane
from bot.core import EscalationService
from bot.db import audit
from bot.db.store import Store
from bot.policy import parse_policy
from bot.policy_reload import PolicyReloader
from tests.conftest import POLICY_YAML, StaticDirectory
from tests.support.waiting import wait_until
from tests.test_policy_service import policy_yaml


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_YAML)
    return path


@pytest.fixture
def reloading(
    store: Store, control: ControlPlane, directory: StaticDirectory, policy_file: Path
) -> tuple[EscalationService, PolicyReloader]:
    service = EscalationService(
        store, control, parse_policy(policy_file.read_bytes()), directory=directory
    )
    service.adopt_policy(service.policy)
    return service, PolicyReloader(policy_file, service, interval=0.05)


def actions(store: Store) -> list[str]:
    with store.reading() as session:
        return [record.action for record in audit.iter_records(session)]


def test_a_good_file_is_put_in_force_and_recorded(
    reloading: tuple[EscalationService, PolicyReloader], policy_file: Path, store: Store
) -> None:
    service, reloader = reloading
    old = service.policy.version
    assert reloader.reload() == "unchanged"
    policy_file.write_text(policy_yaml())
    assert reloader.reload() == "changed"
    assert service.policy.version != old and service.policy.ladders
    assert actions(store) == ["policy_changed"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_text(POLICY_YAML + "routes: [{ladder: nope}]\n"),
        lambda path: path.write_text("roles: ["),
        lambda path: path.unlink(),
    ],
    ids=["invalid", "not-yaml", "removed"],
)
def test_a_bad_or_missing_file_keeps_the_policy_in_force(
    reloading: tuple[EscalationService, PolicyReloader],
    policy_file: Path,
    store: Store,
    caplog: pytest.LogCaptureFixture,
    damage: object,
) -> None:
    service, reloader = reloading
    before = service.policy.version
    damage(policy_file)  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger="escbot.policy"):
        assert reloader.reload() == "refused"
        assert reloader.reload() == "refused"  # the same bad file again: audited once
    assert service.policy.version == before
    warnings = [r for r in caplog.records if r.name == "escbot.policy"]
    assert len(warnings) == 2 and all("\n" not in r.getMessage() for r in warnings)
    assert actions(store) == ["policy_refused"]
    with store.reading() as session:
        [row] = list(audit.iter_records(session))
    assert f"{before} stays in force" in (row.reason or "")


def test_the_reloader_sees_a_change_and_a_sighup(
    reloading: tuple[EscalationService, PolicyReloader], policy_file: Path
) -> None:
    service, reloader = reloading
    stop = threading.Event()
    thread = threading.Thread(target=reloader.run, args=(stop,), daemon=True)
    thread.start()
    try:
        replaced = policy_file.with_suffix(".new")
        replaced.write_text(policy_yaml())
        replaced.replace(policy_file)  # an editor's atomic save
        wait_until(lambda: service.policy.ladders, what="the new policy in force")
        # Behind the reloader's back, then poked (SIGHUP's handler pokes it).
        service.policies.swap(parse_policy(POLICY_YAML.encode()))
        reloader.poke()
        wait_until(lambda: service.policy.ladders, what="the file read again on a poke")
    finally:
        stop.set()
        thread.join(5)
