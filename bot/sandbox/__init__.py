"""`escbot sandbox`: the whole bot against a stand-in for Slack, with a page that looks
and behaves like Slack for this bot (CONTRACTS §15)."""
