"""The policy file as validated models (CONTRACTS §4 and §8): who may do what, the ladders
of tiers, routes, per-severity SLAs, what an agent may do alone, stages and reviews.

Every key of part two is optional: a file valid under §4 means what it meant.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from bot.policy.conditions import Condition
from bot.policy.delivery import Delivery
from bot.policy.fields import (
    CHANNEL,
    DecideAs,
    Duration,
    Role,
    Severity,
    Stage,
    check_glob,
    check_members,
    check_name,
    check_rate,
)
from bot.policy.redaction import Redaction
from bot.policy.router import MATCH_KEYS, CompiledRoute, Router, Test, compile_test
from bot.policy.triggers import Trigger

DEFAULT_LADDER = "tiers"
ANY_ACTION = "*"


class Roles(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    operator: list[str] = Field(default_factory=list)
    admin: list[str]

    @field_validator("operator")
    @classmethod
    def _operators(cls, value: list[str]) -> list[str]:
        return check_members("operator", value)

    @field_validator("admin")
    @classmethod
    def _admins(cls, value: list[str]) -> list[str]:
        return check_members("admin", value)

    def members(self, role: Role) -> list[str]:
        # An admin may do everything an operator may.
        return [*self.operator, *self.admin] if role == "operator" else list(self.admin)


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    channel: str
    ack_timeout: Duration
    page: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "tier")

    @field_validator("channel", mode="before")
    @classmethod
    def _channel(cls, value: object) -> str:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError("every tier needs a channel id")
        text = str(value).strip()
        if text.startswith("#"):
            raise ValueError(f"{text!r}: use the channel id (C…), not its name")
        if not CHANNEL.match(text):
            raise ValueError(f"{text!r} is not a Slack channel id (C… or G…)")
        return text


def _patterns(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise ValueError("an empty list matches nothing: leave the key out to match anything")
    return tuple(check_glob(str(item)) for item in items)


Patterns = Annotated[tuple[str, ...], BeforeValidator(_patterns)]


class Match(BaseModel):
    """Which escalations a route takes: every key given must match one of its patterns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_type: Patterns | None = None
    agent: Patterns | None = None
    severity: Patterns | None = None
    action: Patterns | None = None
    kind: Patterns | None = None

    def tests(self) -> tuple[Test, ...]:
        return tuple(
            compile_test(key, patterns)
            for key in MATCH_KEYS
            if (patterns := getattr(self, key)) is not None
        )


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    match: Match = Field(default_factory=Match)
    ladder: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "route")


class SeverityRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ack_timeout: Duration | None = None
    start: str | None = None
    approvals: int | None = Field(default=None, ge=1, le=20)


def _condition(value: object) -> Condition | None:
    if value is None or isinstance(value, Condition):
        return value
    if not isinstance(value, str):
        raise ValueError('must be a CEL expression in quotes, e.g. "args.amount > 500"')
    return Condition.compile(value)


class ActionRule(BaseModel):
    """What an agent may do alone with one action (or `*`: every action not listed)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    decide: DecideAs
    when: Annotated[Condition | None, BeforeValidator(_condition)] = None
    otherwise: DecideAs = "approve"
    min_confidence: float | None = None
    approvals: int | None = Field(default=None, ge=1, le=20)
    review_sample: float = 0.0

    @field_validator("min_confidence", "review_sample")
    @classmethod
    def _rates(cls, value: float | None) -> float | None:
        return None if value is None else check_rate(value)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: Roles
    tiers: list[Tier] = Field(min_length=1)
    ladders: dict[str, Annotated[list[Tier], Field(min_length=1)]] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    severities: dict[Severity, SeverityRule] = Field(default_factory=dict)
    actions: dict[str, ActionRule] = Field(default_factory=dict)
    stages: dict[str, Stage] = Field(default_factory=dict)
    reviews: dict[str, Annotated[float, AfterValidator(check_rate)]] = Field(default_factory=dict)
    triggers: list[Trigger] = Field(default_factory=list)
    redaction: Redaction = Field(default_factory=Redaction)
    delivery: Delivery = Field(default_factory=Delivery)
    on_final_timeout: Literal["reject", "terminate", "none"] = "reject"
    version: str = Field(default="", exclude=True)
    _router: Router = PrivateAttr(default_factory=lambda: Router(()))
    _triggers_of: dict[str, tuple[Trigger, ...]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        names = [tier.name for ladder in self.all_ladders().values() for tier in ladder]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(
                f"tier names must be unique (across all ladders); repeated: {', '.join(repeated)}"
            )
        for name in self.ladders:
            if name == DEFAULT_LADDER:
                raise ValueError(f"ladders.{name}: the name is taken by the default ladder")
            check_name(name, "ladder")
        known = ", ".join(self.all_ladders())
        seen: set[str] = set()
        for index, route in enumerate(self.routes):
            if route.ladder not in self.all_ladders():
                raise ValueError(
                    f"routes[{index}].ladder: unknown ladder {route.ladder!r} (ladders: {known})"
                )
            if route.name is not None:
                if route.name in seen:
                    raise ValueError(f"routes[{index}].name: {route.name!r} is used twice")
                seen.add(route.name)
        named: set[str] = set()
        for index, trigger in enumerate(self.triggers):
            if trigger.name in named:
                raise ValueError(f"triggers[{index}].name: {trigger.name!r} is used twice")
            named.add(trigger.name)
        for severity, rule in self.severities.items():
            if rule.start not in (None, "first", "last") and rule.start not in names:
                raise ValueError(
                    f"severities.{severity}.start: {rule.start!r} is not first, last or a tier"
                )
        self._router = Router(
            [
                CompiledRoute(
                    index, route.name or f"routes[{index}]", route.ladder, route.match.tests()
                )
                for index, route in enumerate(self.routes)
            ]
        )
        return self

    @property
    def router(self) -> Router:
        return self._router

    def triggers_of(self, signal: str) -> tuple[Trigger, ...]:
        """The triggers that watch this signal, in the file's order."""
        if not self._triggers_of and self.triggers:
            found: dict[str, list[Trigger]] = {}
            for trigger in self.triggers:
                found.setdefault(trigger.signal, []).append(trigger)
            self._triggers_of = {name: tuple(items) for name, items in found.items()}
        return self._triggers_of.get(signal, ())

    def trigger(self, name: str) -> Trigger | None:
        return next((t for t in self.triggers if t.name == name), None)

    @property
    def unavailable(self) -> str | None:
        """Why the policy could not be read, for a break-glass stand-in; None for a policy."""
        return None

    # ------------------------------------------------------------------ ladders and tiers

    def all_ladders(self) -> dict[str, list[Tier]]:
        return {DEFAULT_LADDER: self.tiers, **self.ladders}

    def ladder(self, name: str | None) -> list[Tier]:
        """A ladder by name; the default one (`tiers`) for None or a name it no longer has."""
        return self.ladders.get(name or DEFAULT_LADDER, self.tiers)

    @property
    def first_tier(self) -> Tier:
        return self.tiers[0]

    def tier(self, name: str | None, ladder: str | None = None) -> Tier:
        tiers = self.ladder(ladder)
        if name is None:
            return tiers[0]
        for tier in tiers:
            if tier.name == name:
                return tier
        raise KeyError(name)

    def tier_names(self, ladder: str | None = None) -> list[str]:
        return [tier.name for tier in self.ladder(ladder)]

    def next_tier(self, name: str, ladder: str | None = None) -> Tier | None:
        """The tier after `name` in its ladder; None at the last. An escalation whose tier
        the ladder no longer has (renamed, removed) climbs to the ladder's first tier, not
        out of the policy."""
        tiers = self.ladder(ladder)
        names = [tier.name for tier in tiers]
        if name not in names:
            return tiers[0]
        index = names.index(name)
        return tiers[index + 1] if index + 1 < len(tiers) else None
