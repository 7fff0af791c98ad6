"""PagerDuty through pdpyras's Events API v2 session.

The pager sends what the database says an escalation owes (the paging outbox): a
trigger when it reaches a paging tier, an acknowledge when someone acknowledges it, a
resolve when it is decided or expires. The dedup key is the escalation id, so sending
an event again is harmless. pdpyras's own retries (which sleep for seconds, and retry a
429 forever) are turned off: a failure is recorded and the next attempt comes from a
later tick, with backoff, so PagerDuty never holds up anything else.
"""

from __future__ import annotations

import logging
import threading
import warnings
from dataclasses import replace
from types import ModuleType
from typing import Any

from blocks.text import compact_json, fit
from bot.core import EscalationService, PageJob
from bot.records import EscalationRecord

log = logging.getLogger(__name__)

SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}
SUMMARY_LIMIT = 1023


def pdpyras_module() -> ModuleType:
    """pdpyras, without its deprecation warning reaching operators (it still works; the
    stack names it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*pdpyras.*deprecated", category=UserWarning)
        import pdpyras
    module: ModuleType = pdpyras
    return module


def summary(view: EscalationRecord) -> str:
    text = f"[{view.severity}] {view.agent} on {view.task_id}: {view.reason}"
    return fit(" ".join(text.split()), SUMMARY_LIMIT)


def trigger_event(view: EscalationRecord) -> dict[str, Any]:
    """The arguments of EventsAPISession.trigger for an escalation."""
    links = [
        {"href": card.permalink, "text": f"Escalation card in Slack ({card.tier})"}
        for card in view.cards
        if card.permalink
    ]
    return {
        "summary": summary(view),
        "source": view.agent,
        "dedup_key": view.id,
        "severity": SEVERITY.get(view.severity, "warning"),
        "links": links[-1:] or None,
        "custom_details": {
            "escalation_id": view.id,
            "task_id": view.task_id,
            "agent": view.agent,
            "task_type": view.task_type,
            "kind": view.kind,
            "tier": view.tier,
            "reason": view.reason,
            "confidence": view.confidence,
            "action": view.action,
            "context": view.context,
        },
    }


class Pager:
    def __init__(
        self,
        service: EscalationService,
        routing_key: str,
        events_url: str,
        *,
        poll_interval: float = 5.0,
        timeout: float = 10.0,
    ) -> None:
        pdpyras = pdpyras_module()
        self.session = pdpyras.EventsAPISession(routing_key)
        self.session.url = events_url.rstrip("/")
        self.session.retry = {429: 1}  # one retry, then give the event back to the outbox
        self.session.sleep_timer = 0
        self.session.max_network_attempts = 0
        self.session.timeout = timeout
        self.service = service
        self.poll_interval = poll_interval
        self._wake = threading.Event()

    def wake(self, _event: object = None) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            try:
                self.tick()
            except Exception:
                log.exception("pager: unexpected error; retrying")

    def tick(self) -> int:
        sent = 0
        for job in self.service.claim_pages():
            events = job.events()
            if not events:
                self.service.page_done(job, skipped=True)
                continue
            try:
                for event in events[:-1]:
                    self.send(replace(job, action=event))
                    self.service.page_done(replace(job, action=event), claimed=True)
                self.send(job)
            except Exception as exc:
                error = describe(exc)
                log.warning(
                    "pager: %s of %s failed (%s); retrying", job.action, job.escalation.id, error
                )
                self.service.page_done(job, error=error)
                continue
            self.service.page_done(job)
            sent += 1
        return sent

    def send(self, job: PageJob) -> None:
        view = job.escalation
        if job.action == "trigger":
            self.session.trigger(**trigger_event(view))
        elif job.action == "acknowledge":
            self.session.acknowledge(view.id)
        else:
            self.session.resolve(view.id)


def describe(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            body = compact_json(response.json())
        except ValueError:
            body = (response.text or "")[:200]
        return f"HTTP {response.status_code}: {fit(body, 300)}"
    return f"{type(exc).__name__}: {fit(str(exc), 300)}"
