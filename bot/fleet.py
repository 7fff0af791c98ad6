"""The fleet, as the agents' guards report it in Redis (CONTRACTS §10): each running
task's hash `task:{task_id}` (a TTL of 30 s, refreshed every few seconds) and the sorted
set `tasks` (task id → last seen, epoch seconds; trimmed at 24 h). Read-only here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from bot.control import ControlPlaneError, describe_redis_error
from bot.keys import KeyNames
from bot.records import LiveTask

LIVE = timedelta(seconds=30)  # seen this recently: live
LOST_SHOWN = timedelta(hours=1)  # not seen for 30 s, but within this: shown as lost
REMEMBERED = timedelta(hours=24)  # `tasks` keeps this long
ENDED = ("finished", "killed")


@dataclass(frozen=True)
class FleetView:
    live: tuple[LiveTask, ...]
    lost: tuple[LiveTask, ...]


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _task(task_id: str, seen: float, fields: dict[str, Any], *, lost: bool) -> LiveTask:
    return LiveTask(
        task_id=task_id,
        agent=str(fields.get("agent") or "?"),
        task_type=str(fields.get("task_type") or "") or None,
        state=str(fields.get("state") or ("lost" if lost else "?")),
        step=str(fields.get("step") or ""),
        host=str(fields.get("host") or ""),
        pid=str(fields.get("pid") or ""),
        started_at=str(fields.get("started_at") or ""),
        last_seen=datetime.fromtimestamp(seen, UTC),
        lost=lost,
    )


class Fleet:
    def __init__(self, client: redis.Redis, keys: KeyNames) -> None:
        self.client = client
        self.keys = keys

    def view(self, now: datetime, *, limit: int = 200) -> FleetView:
        """Live tasks (seen in the last 30 s), and those lost (not seen since, within the
        hour, and not ended cleanly), newest first."""
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.zrevrangebyscore(
                self.keys.tasks, "+inf", _epoch(now - LOST_SHOWN), withscores=True, start=0,
                num=limit,
            )  # fmt: skip
            pipe.zrangebyscore(
                self.keys.tasks_ended, _epoch(now - LOST_SHOWN), "+inf", withscores=True
            )
            seen, ended = pipe.execute()
            ended_at = {str(task): float(at) for task, at in ended}
            hashes = self._hashes([str(task) for task, _ in seen])
        except redis.RedisError as exc:
            raise ControlPlaneError(describe_redis_error(exc)) from exc
        live, lost = [], []
        for (task, score), fields in zip(seen, hashes, strict=True):
            task_id, at = str(task), float(score)
            if now.timestamp() - at <= LIVE.total_seconds():
                live.append(_task(task_id, at, fields, lost=False))
            elif ended_at.get(task_id, 0) < at and fields.get("state") not in (
                "finished",
                "killed",
            ):
                lost.append(_task(task_id, at, fields, lost=True))
        return FleetView(tuple(live), tuple(lost))

    def task(self, task_id: str, now: datetime) -> LiveTask | None:
        """The task as its guard last reported it (live or not), if seen in 24 h."""
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.zscore(self.keys.tasks, task_id)
            pipe.hgetall(self.keys.task(task_id))
            score, fields = pipe.execute()
        except redis.RedisError as exc:
            raise ControlPlaneError(describe_redis_error(exc)) from exc
        if score is None or now.timestamp() - float(score) > REMEMBERED.total_seconds():
            return None
        lost = now.timestamp() - float(score) > LIVE.total_seconds()
        return _task(task_id, float(score), fields or {}, lost=lost)

    def seen(self, task_ids: Sequence[str], now: datetime) -> set[str]:
        """Which of these tasks a guard reported in the last 24 h."""
        if not task_ids:
            return set()
        try:
            scores = self.client.zmscore(self.keys.tasks, list(task_ids))
        except redis.RedisError as exc:
            raise ControlPlaneError(describe_redis_error(exc)) from exc
        floor = now.timestamp() - REMEMBERED.total_seconds()
        found = zip(task_ids, scores, strict=True)
        return {task for task, score in found if score is not None and float(score) >= floor}

    def _hashes(self, task_ids: list[str]) -> list[dict[str, Any]]:
        if not task_ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hgetall(self.keys.task(task_id))
        return [dict(found or {}) for found in pipe.execute()]
