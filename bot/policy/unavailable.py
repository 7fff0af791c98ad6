"""The stand-in the break-glass CLI acts under when the policy file cannot be read or
validated: no roles (only the trusted `cli:` and system actors are allowed) and no tiers
(anything that routes or climbs escalations stops, saying why). Never loaded by `serve`;
audit rows written under it record the version `unavailable` and the why."""

from __future__ import annotations

from pydantic import Field

from bot.errors import ConfigError
from bot.policy.model import Policy, Roles, Tier

UNAVAILABLE_VERSION = "unavailable"


class UnavailablePolicy(Policy):
    problem: str = Field(default="", exclude=True)

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

    def ladder(self, name: str | None) -> list[Tier]:
        raise self._refuse()

    def tier(self, name: str | None, ladder: str | None = None) -> Tier:
        raise self._refuse()

    def tier_names(self, ladder: str | None = None) -> list[str]:
        raise self._refuse()

    def next_tier(self, name: str, ladder: str | None = None) -> Tier | None:
        raise self._refuse()
