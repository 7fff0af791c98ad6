"""What to post next, and how (CONTRACTS §13): the cards owed, most severe first, then
oldest; high and critical one by one; low and medium, once more than the policy's
`delivery.digest_over` wait for one channel, as digests. And the deadline a card shows,
which runs from its posting.

Pure: the Slack worker asks, paces each channel, and posts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.core.delivery import PendingCard
from bot.policy import Policy
from bot.records import EscalationRecord

URGENT = frozenset({"high", "critical"})
# Low and medium cards wait this long from when they were owed before they go out, so a
# flood arriving together becomes a few digests rather than a card and then digests.
GATHER = timedelta(seconds=2)


@dataclass(frozen=True)
class Send:
    """One message: a card, or a digest of several."""

    channel: str
    cards: tuple[PendingCard, ...]
    digest: bool = False

    @property
    def urgent(self) -> bool:
        return any(card.escalation.severity in URGENT for card in self.cards)


@dataclass
class Plan:
    sends: list[Send] = field(default_factory=list)
    held: list[PendingCard] = field(default_factory=list)  # not yet: gathering
    wake_at: datetime | None = None  # when what is held is ready

    def wake(self, at: datetime) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)


def plan(
    pending: Sequence[PendingCard],
    *,
    digest_over: int,
    now: datetime,
    digest_capacity: Callable[[Sequence[EscalationRecord]], int],
    gather: timedelta = GATHER,
) -> Plan:
    """`pending` comes most severe first, then oldest: the urgent cards of every channel
    go first, in that order, then each channel's low and medium ones."""
    result = Plan()
    calm: dict[str, list[PendingCard]] = {}
    for card in pending:
        if card.escalation.severity in URGENT:
            result.sends.append(Send(card.channel, (card,)))
        else:
            calm.setdefault(card.channel, []).append(card)
    for channel, cards in calm.items():
        oldest = min((c.waiting_since for c in cards if c.waiting_since), default=None)
        if oldest is not None and now < oldest + gather:
            result.held += cards
            result.wake(oldest + gather)
            continue
        if len(cards) <= digest_over:
            result.sends += [Send(channel, (card,)) for card in cards]
            continue
        rest = list(cards)
        while rest:
            size = digest_capacity([card.escalation for card in rest])
            result.sends.append(Send(channel, tuple(rest[:size]), digest=True))
            rest = rest[size:]
    return result


def deadline_of(policy: Policy, card: PendingCard, posted_at: datetime) -> datetime | None:
    """When the card's tier times out if it is posted at `posted_at`; None when no clock
    runs for it (acknowledged, decided, or climbed on past this card's tier)."""
    escalation = card.escalation
    if escalation.state != "open" or escalation.next_action_at is None:
        return None
    if escalation.tier != card.tier:
        return None
    timeout = escalation.ack_timeout
    if timeout is None:
        try:
            timeout = policy.tier(escalation.tier, escalation.ladder).ack_timeout
        except KeyError:
            return None
    return posted_at + timeout
