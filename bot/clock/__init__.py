"""UTC time and its ISO form: defined once, in the agent SDK (`escbot_agent.clock`).

Re-exported here so that the bot's own imports (`bot.clock`) stay as they are.
"""

from escbot_agent.clock import *  # noqa: F403
