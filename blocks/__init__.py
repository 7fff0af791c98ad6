"""Block Kit builders: pure functions from views to slack_sdk blocks."""
