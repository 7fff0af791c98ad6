"""The policy file (CONTRACTS §4): who may do what, the tiers, what happens at the end."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.errors import ConfigError
from bot.validation import one_line

Role = Literal["operator", "admin"]
_DURATION = re.compile(r"^\s*([+-]?\d+)\s*([smh])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
_MEMBER = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,}$")
_TIER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def parse_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(str(value)) if isinstance(value, str | int) else None
    if not match:
        raise ValueError(f"{value!r} is not a duration (use e.g. 90s, 5m or 2h)")
    if int(match.group(1)) <= 0:
        raise ValueError(f"{value!r}: a duration must be positive (use e.g. 90s, 5m or 2h)")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _member_list(role: str, value: list[str]) -> list[str]:
    if not value:
        raise ValueError(f"the {role} role is empty: list at least one Slack user or group id")
    for member in value:
        if not _MEMBER.match(str(member)):
            raise ValueError(f"{member!r} is not a Slack user id (U…/W…) or user-group id (S…)")
    return value


class Roles(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    operator: list[str] = Field(default_factory=list)
    admin: list[str]

    @field_validator("operator")
    @classmethod
    def _operators(cls, value: list[str]) -> list[str]:
        return _member_list("operator", value)

    @field_validator("admin")
    @classmethod
    def _admins(cls, value: list[str]) -> list[str]:
        return _member_list("admin", value)

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
        if not _TIER_NAME.match(value):
            raise ValueError(f"{value!r} is not a tier name (letters, digits, - and _)")
        return value

    @field_validator("channel", mode="before")
    @classmethod
    def _channel(cls, value: object) -> str:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError("every tier needs a channel id")
        text = str(value).strip()
        if text.startswith("#"):
            raise ValueError(f"{text!r}: use the channel id (C…), not its name")
        if not _CHANNEL.match(text):
            raise ValueError(f"{text!r} is not a Slack channel id (C… or G…)")
        return text


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: Roles
    tiers: list[Tier] = Field(min_length=1)
    on_final_timeout: Literal["reject", "terminate", "none"] = "reject"
    version: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _unique_tiers(self) -> Policy:
        names = [tier.name for tier in self.tiers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"tier names must be unique; repeated: {', '.join(duplicates)}")
        return self

    @property
    def first_tier(self) -> Tier:
        return self.tiers[0]

    def tier(self, name: str | None) -> Tier:
        if name is None:
            return self.first_tier
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(name)

    def tier_names(self) -> list[str]:
        return [tier.name for tier in self.tiers]

    def next_tier(self, name: str) -> Tier | None:
        """The tier after `name`; None at the last. An escalation whose tier the policy no
        longer has (renamed, removed) climbs to the first tier, not out of the policy."""
        names = self.tier_names()
        if name not in names:
            return self.tiers[0]
        index = names.index(name)
        return self.tiers[index + 1] if index + 1 < len(self.tiers) else None

    @property
    def unavailable(self) -> str | None:
        """Why the policy could not be read, for a break-glass stand-in; None for a policy."""
        return None


UNAVAILABLE_VERSION = "unavailable"


class UnavailablePolicy(Policy):
    """What the break-glass CLI acts under when the policy file cannot be read or
    validated: no roles (only the trusted `cli:` and system actors are allowed) and no
    tiers (anything that routes or climbs escalations stops, saying why). Never loaded by
    `serve`; audit rows written under it record the version `unavailable` and the why."""

    problem: str = Field(exclude=True)

    @classmethod
    def because(cls, problem: str) -> UnavailablePolicy:
        return cls.model_construct(
            roles=Roles.model_construct(operator=[], admin=[]),
            tiers=[],
            on_final_timeout="none",
            version=UNAVAILABLE_VERSION,
            problem=" ".join(problem.split()),
        )

    @property
    def unavailable(self) -> str | None:
        return self.problem

    def _refuse(self) -> ConfigError:
        return ConfigError(f"ESCBOT_POLICY: the policy is unavailable ({self.problem})")

    @property
    def first_tier(self) -> Tier:
        raise self._refuse()

    def tier(self, name: str | None) -> Tier:
        raise self._refuse()

    def tier_names(self) -> list[str]:
        raise self._refuse()

    def next_tier(self, name: str) -> Tier | None:
        raise self._refuse()


def policy_version(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()[:16]


def parse_policy(content: bytes, source: str = "policy") -> Policy:
    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a mapping with `roles` and `tiers`")
    if "version" in data:
        raise ConfigError(f"{source}: version: unknown key (the version is the file's hash)")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        text = one_line(exc, limit=1).replace("Extra inputs are not permitted", "unknown key")
        raise ConfigError(f"{source}: {text}") from None
    return policy.model_copy(update={"version": policy_version(content)})


def load_policy(path: Path | str) -> Policy:
    path = Path(path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"ESCBOT_POLICY: policy file {path.absolute()} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"ESCBOT_POLICY: cannot read {path.absolute()}: {exc.strerror}") from None
    return parse_policy(content, source=str(path))
