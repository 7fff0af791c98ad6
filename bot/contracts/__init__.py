"""The contract models: defined once, in the agent SDK (`escbot_agent.contracts`).

Re-exported here so that the bot's own imports (`bot.contracts`) stay as they are.
"""

from escbot_agent.contracts import *  # noqa: F403
