"""The fake Slack Web API the tests run the bot against: the product's own stand-in
(`bot/sandbox/fake_slack.py`, also what `escbot sandbox` runs on)."""

from bot.sandbox.fake_slack import (
    APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    TEAM_ID,
    Call,
    Ephemeral,
    FakeSlack,
    Message,
    ResponsePost,
    SlackError,
    block_problems,
    blocks_problems,
    view_problems,
)

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_NAME",
    "BOT_USER_ID",
    "TEAM_ID",
    "Call",
    "Ephemeral",
    "FakeSlack",
    "Message",
    "ResponsePost",
    "SlackError",
    "block_problems",
    "blocks_problems",
    "view_problems",
]
