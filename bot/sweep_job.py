"""The sweep as `escbot serve` schedules it: tier climbs and expiry, Redis written back
from the database, trigger firings left pending recorded; then every waker (unposted
cards and unsent pages are retried each sweep too)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from apscheduler.schedulers.background import BackgroundScheduler

from bot.control import ControlPlaneError
from bot.runtime import Runtime
from bot.signal_windows import SignalWindows

log = logging.getLogger("escbot")


def start_sweep(
    runtime: Runtime, owner: str, wakers: Sequence[Callable[[], None]]
) -> BackgroundScheduler:
    """One interval job, not one job per escalation: due work is found in the database
    (by the indexed next_action_at), so a restart or a second replica loses none."""
    scheduler = BackgroundScheduler(timezone="UTC")

    def sweep_job() -> None:
        sweep(runtime, owner)
        for wake in wakers:  # unposted cards and unsent pages are retried every sweep too
            wake()

    scheduler.add_job(
        sweep_job,
        "interval",
        seconds=runtime.settings.sweep_interval,
        id="sweep",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    return scheduler


def sweep(runtime: Runtime, owner: str) -> None:
    try:
        climbed, expired = runtime.service.sweep_tiers(owner=owner)
        if climbed or expired:
            log.info("sweep: %d climbed, %d expired", climbed, expired)
    except Exception:
        log.exception("sweep: tier climbing failed; retrying next sweep")
    try:
        restored = runtime.service.reconcile()
    except ControlPlaneError as exc:
        log.warning("sweep: Redis unavailable (%s); kills are re-asserted once it is back", exc)
        return
    if restored.changed:
        log.warning(
            "sweep: wrote %d key(s) back into Redis",
            len(restored.restored) + len(restored.replayed),
        )
    try:
        recovered = runtime.service.recover_firings(SignalWindows(runtime.redis, runtime.keys))
        if recovered:
            log.warning("sweep: recorded %d trigger firing(s) left pending", recovered)
    except ControlPlaneError as exc:
        log.warning("sweep: Redis unavailable (%s); pending firings wait for it", exc)
    except Exception:
        log.exception("sweep: recording pending trigger firings failed; retrying next sweep")
