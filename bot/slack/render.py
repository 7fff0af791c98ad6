"""Cards rendered from the database's state and the policy, for any of an escalation's cards."""

from __future__ import annotations

from datetime import datetime

from blocks.card import Card, CardContext, escalation_card
from bot.policy import Policy
from bot.records import CardRecord, EscalationRecord


def card_context(policy: Policy, view: EscalationRecord, card: CardRecord | None) -> CardContext:
    try:
        following = policy.next_tier(view.tier, view.ladder)
    except ValueError:
        following = None
    first = view.cards[0] if view.cards else None
    later_card = card is not None and first is not None and card != first
    return CardContext(
        next_tier=following.name if following else None,
        final_action=policy.on_final_timeout,
        escalated_to=view.tier if card is not None and card.tier != view.tier else None,
        first_card_link=first.permalink if later_card and first is not None else None,
    )


def render_card(
    policy: Policy, view: EscalationRecord, card: CardRecord | None, now: datetime
) -> Card:
    return escalation_card(view, card_context(policy, view, card), now)
