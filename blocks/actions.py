"""Action and callback ids, and the small versioned payloads that travel in buttons and
modals. Once shipped an id is never renamed: cards already posted keep their buttons."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Action(StrEnum):
    ACKNOWLEDGE = "escalation.acknowledge"
    APPROVE = "escalation.approve"
    REJECT = "escalation.reject"
    REDIRECT = "escalation.redirect"
    TERMINATE = "escalation.terminate"
    FULL_CONTEXT = "escalation.context"
    EDIT = "escalation.edit"
    ESCALATE = "escalation.escalate"
    # A digest's button (numbered: escalation.open.0, .1 …, one id per button), opening
    # the escalation's card in a modal.
    OPEN_CARD = "escalation.open"
    CONFIRM_REVIVE_ALL = "control.revive_all.confirm"
    REVIEW_LOOKS_RIGHT = "review.looks_right"
    REVIEW_FLAG = "review.flag"
    TASK_RESUME = "task.resume"  # under a pause's announcement
    TASK_RESTART = "task.restart"
    TASK_ABANDON = "task.abandon"


class Callback(StrEnum):
    REJECT = "escalation.reject.submit"
    REDIRECT = "escalation.redirect.submit"
    EDIT = "escalation.edit.submit"
    REVIEW_FLAG = "review.flag.submit"
    TASK_RESTART = "task.restart.submit"
    TASK_ABANDON = "task.abandon.submit"


class Field_(StrEnum):
    """Block and action ids of modal inputs: values arrive as values[block][action]."""

    COMMENT = "comment"
    INSTRUCTION = "instruction"
    VALUE = "value"
    ARGS = "args"
    WRONG = "wrong"  # the flag modal: what is wrong
    PAUSE = "pause"  # the flag modal: pause nothing, the task, or its agent
    EXPLANATION = "explanation"  # the abandon modal: what the end user is told


class ButtonValue(BaseModel):
    """In every card button's `value` (at most 2000 characters)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    version: int = Field(default=1, alias="v")
    escalation_id: str = Field(alias="e")

    def dump(self) -> str:
        return self.model_dump_json(by_alias=True)


class ModalMetadata(BaseModel):
    """In a modal's `private_metadata` (at most 3000 characters)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    version: int = Field(default=1, alias="v")
    escalation_id: str = Field(alias="e")
    channel: str | None = Field(default=None, alias="c")
    # The action's JSON Schema, when it is small enough to travel along: the edit modal
    # then checks arguments against it before it closes.
    args_schema: dict[str, Any] | None = Field(default=None, alias="s")

    def dump(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


class ReviewButtonValue(BaseModel):
    """In a review card's buttons' `value`."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    version: int = Field(default=1, alias="v")
    review_id: int = Field(alias="r", gt=0)

    def dump(self) -> str:
        return self.model_dump_json(by_alias=True)


class ReviewModalMetadata(BaseModel):
    """In the flag modal's `private_metadata`."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    version: int = Field(default=1, alias="v")
    review_id: int = Field(alias="r", gt=0)
    channel: str | None = Field(default=None, alias="c")

    def dump(self) -> str:
        return self.model_dump_json(by_alias=True)


class TaskButtonValue(BaseModel):
    """In the buttons under a pause's announcement."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    version: int = Field(default=1, alias="v")
    task_id: str = Field(alias="t", min_length=1, max_length=300)

    def dump(self) -> str:
        return self.model_dump_json(by_alias=True)


class TaskModalMetadata(BaseModel):
    """In the restart and abandon modals' `private_metadata`."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    version: int = Field(default=1, alias="v")
    task_id: str = Field(alias="t", min_length=1, max_length=300)
    channel: str | None = Field(default=None, alias="c")

    def dump(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)
