"""The Slack side: the Bolt app, the Web API client, and delivery to Slack.

The domain (bot.core and below) never imports this package; it imports the domain.
"""
