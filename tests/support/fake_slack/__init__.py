"""The fake Slack Web API the tests run the bot against: the product's own stand-in,
`bot/sandbox/fake_slack.py` (what `escbot sandbox` runs on). This name is that module
itself, so every name in it (private helpers too) imports from here unchanged."""

import sys

from bot.sandbox import fake_slack

sys.modules[__name__] = fake_slack
