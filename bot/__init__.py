"""agent-escalation-bot: the override and escalation layer for AI agents.

Kept free of imports so that the agent SDK (``bot.agent``) loads with nothing but
``redis`` and ``pydantic``.
"""
