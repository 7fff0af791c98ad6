"""The key names: defined once, in the agent SDK (`escbot_agent.keys`).

Re-exported here so that the bot's own imports (`bot.keys`) stay as they are.
"""

from escbot_agent.keys import *  # noqa: F403
