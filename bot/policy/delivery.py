"""The policy's `delivery:` section (CONTRACTS §13): when low and medium cards become a
digest, and how long a card Slack has not taken holds its tier's clock back."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bot.policy.fields import parse_duration


def _grace(value: object) -> timedelta:
    """A duration, or 0s: the clock of a card not posted then runs from its tier's start."""
    if isinstance(value, str) and value.strip() in ("0", "0s", "0m", "0h"):
        return timedelta(0)
    return parse_duration(value)


class Delivery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # More than this many low and medium cards waiting for one channel go out as digests.
    digest_over: int = Field(default=10, ge=0)
    # A tier's deadline runs from its card's posting. A card not posted within this long
    # of the tier's start (Slack down, a channel that refuses it) stops holding the clock:
    # the deadline then runs from the tier's start plus this, so the climb still happens.
    unposted_grace: Annotated[timedelta, BeforeValidator(_grace)] = timedelta(minutes=5)
