"""Task and escalation ids: defined once, in the agent SDK (`escbot_agent.ids`).

Re-exported here so that the bot's own imports (`bot.ids`) stay as they are.
"""

from escbot_agent.ids import *  # noqa: F403
