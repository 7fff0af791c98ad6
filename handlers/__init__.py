"""Slack listeners: parse, ack, one service call, render. Registered here, in one place."""

from __future__ import annotations

from slack_bolt import App

from handlers import actions, commands, errors, events, recovery, reviews, submissions
from handlers.deps import Deps, Registry


def register(app: App, deps: Deps) -> Registry:
    registry = Registry()
    errors.register(app)
    commands.register(app, deps, registry)
    actions.register(app, deps, registry)
    submissions.register(app, deps, registry)
    reviews.register(app, deps, registry)
    recovery.register(app, deps, registry)
    events.register(app, deps, registry)
    return registry
