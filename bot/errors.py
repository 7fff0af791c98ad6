"""Domain errors. Each carries a message fit to show to the person who asked."""

from __future__ import annotations

# The base and InvalidId live with the agent SDK, which raises InvalidId too.
from escbot_agent.refusals import EscbotError as EscbotError
from escbot_agent.refusals import InvalidId as InvalidId


class ConfigError(EscbotError):
    """A setting or the policy file is missing or malformed."""

    exit_code = 2


class InvalidInput(EscbotError, ValueError):
    """Input that breaks a rule (empty instruction, unknown decision...)."""


class NotAllowed(EscbotError):
    """The actor lacks the role the action needs; recorded as `denied`."""


class UnknownEscalation(EscbotError):
    pass


class UnknownTask(EscbotError):
    pass


class NothingChanged(EscbotError):
    """The request was valid but the state already was what it asked for."""


class AlreadyDecided(EscbotError):
    def __init__(self, escalation_id: str, decision: str, by: str | None, at: str | None):
        self.escalation_id = escalation_id
        self.decision = decision
        self.by = by
        self.at = at
        who = f"by {by} " if by else ""
        when = f"at {at}" if at else ""
        super().__init__(f"escalation {escalation_id} was already {decision} {who}{when}".strip())


class UnknownReview(EscbotError):
    pass


class AlreadyReviewed(EscbotError):
    """A second verdict on a review: nothing changes, and this says who reviewed first."""

    def __init__(self, review_id: int, verdict: str, by: str | None, at: str | None):
        self.review_id = review_id
        self.verdict = verdict
        self.by = by
        self.at = at
        who = f" by {by}" if by else ""
        when = f" at {at}" if at else ""
        super().__init__(f"review {review_id} was already given a verdict ({verdict}){who}{when}")


class ControlPlaneUnavailable(EscbotError):
    """Recorded in the database but not (yet) written to Redis; reconcile will write it.

    `result` is what the action did in the database, for callers that render it anyway.
    """

    exit_code = 3

    def __init__(self, message: str, result: object = None):
        super().__init__(message)
        self.result = result
