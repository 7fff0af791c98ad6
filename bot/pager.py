"""PagerDuty through the ``pagerduty`` package's Events API v2 client.

The pager sends what the database says an escalation owes (the paging outbox): a
trigger when it reaches a paging tier, an acknowledge when someone acknowledges it, a
resolve when it is decided or expires. The dedup key is the escalation id, so sending
an event again is harmless. The client's own retries (which sleep for seconds, retry a
503 six times and a 429 forever) are cut to one immediate retry of a 429: a failure is
recorded and the next attempt comes from a later tick, with backoff, so PagerDuty never
holds up anything else.

Outgoing HTTPS trusts the CA bundle of ``SSL_CERT_FILE``, else ``REQUESTS_CA_BUNDLE``
(CONTRACTS §1), else the system's.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pagerduty import EventsApiV2Client

from blocks.text import compact_json, fit
from bot.core import EscalationService, PageJob
from bot.logs import log_ids
from bot.policy.redaction import rules_source
from bot.records import EscalationRecord
from bot.redaction import RedactionRules
from bot.redaction.outgoing import redact_details

log = logging.getLogger(__name__)

SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}
SUMMARY_LIMIT = 1023
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


def ca_file_from(environ: Mapping[str, str]) -> Path | None:
    """The CA bundle the environment names, as Python's HTTPS clients read it."""
    for name in CA_VARIABLES:
        if value := environ.get(name, "").strip():
            return Path(value)
    return None


def events_client(
    routing_key: str, events_url: str, *, timeout: int, ca_file: Path | None
) -> EventsApiV2Client:
    """A client that makes one request per event (two for a 429) and never sleeps."""
    verify: ssl.SSLContext | bool = True
    if ca_file is not None:
        verify = ssl.create_default_context(cafile=ca_file)
    client = EventsApiV2Client(routing_key, base_url=events_url.rstrip("/"), verify=verify)
    client.retry = {429: 1}  # and no retry of a 5xx: the outbox retries, with backoff
    client.sleep_timer = 0
    client.max_network_attempts = 0
    client.timeout = timeout  # what each request is given (the constructor's is not used)
    return client


def summary(view: EscalationRecord) -> str:
    text = f"[{view.severity}] {view.agent} on {view.task_id}: {view.reason}"
    return fit(" ".join(text.split()), SUMMARY_LIMIT)


def trigger_event(view: EscalationRecord, rules: RedactionRules | None = None) -> dict[str, Any]:
    """The arguments of EventsApiV2Client.trigger for an escalation; its summary and
    details redacted under `rules` (one scope: the same value, the same placeholder)."""
    links = [
        {"href": card.permalink, "text": f"Escalation card in Slack ({card.tier})"}
        for card in view.cards
        if card.permalink
    ]
    shown = {
        "summary": summary(view),
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
    if rules is not None:
        shown = redact_details(shown, rules)
    return {
        "summary": shown["summary"],
        "source": view.agent,
        "dedup_key": view.id,
        "severity": SEVERITY.get(view.severity, "warning"),
        "links": links[-1:] or None,
        "custom_details": shown["custom_details"],
    }


class Pager:
    def __init__(
        self,
        service: EscalationService,
        routing_key: str,
        events_url: str,
        *,
        poll_interval: float = 5.0,
        timeout: int = 10,
        ca_file: Path | None = None,
    ) -> None:
        """``ca_file`` None: the one ``SSL_CERT_FILE`` or ``REQUESTS_CA_BUNDLE`` names."""
        self.client = events_client(
            routing_key,
            events_url,
            timeout=timeout,
            ca_file=ca_file or ca_file_from(os.environ),
        )
        self.service = service
        self.rules = rules_source(service.policies)
        self.poll_interval = poll_interval
        self._wake = threading.Event()

    def wake(self, _event: object = None) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self._wake.wait(self.poll_interval)
                self._wake.clear()
                try:
                    self.tick()
                except Exception:
                    log.exception("pager: unexpected error; retrying")
        finally:
            self.close()

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
                    "pager: %s of %s failed (%s); retrying",
                    job.action,
                    job.escalation.id,
                    error,
                    extra=log_ids(escalation_id=job.escalation.id, task_id=job.escalation.task_id),
                )
                self.service.page_done(job, error=error)
                continue
            self.service.page_done(job)
            sent += 1
        return sent

    def send(self, job: PageJob) -> None:
        view = job.escalation
        if job.action == "trigger":
            self.client.trigger(**trigger_event(view, self.rules()))
        elif job.action == "acknowledge":
            self.client.acknowledge(view.id)
        else:
            self.client.resolve(view.id)

    def close(self) -> None:
        self.client.close()


def describe(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            body = compact_json(response.json())
        except ValueError:
            body = (response.text or "")[:200]
        return f"HTTP {response.status_code}: {fit(body, 300)}"
    cause = exc.__cause__ or exc  # the network error under "exceeded the attempts"
    return f"{type(cause).__name__}: {fit(str(cause), 300)}"
