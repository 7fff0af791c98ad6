"""The Bolt app, built by a factory: nothing happens at import time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from logging import Logger

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult

from bot.redaction.outgoing import RulesSource
from bot.slack.client import make_web_client
from bot.slack.outage import Outage
from bot.slack.redacting import redacting_middleware
from handlers import register
from handlers.deps import Deps, Registry

LISTENER_THREADS = 16


class _QuietTokenWarning(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment and, seeing our client too, warns
    that it ignores it, which is what we want: the token reaches it through authorize."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def fixed_authorize(token: str, identity: dict[str, str] | None) -> Callable[..., AuthorizeResult]:
    """Authorization without a call to Slack per request. Bolt's default asks auth.test,
    which fails while Slack's API is down: a kill must never wait for Slack."""
    identity = identity or {}

    def authorize(
        enterprise_id: str | None, team_id: str | None, logger: Logger
    ) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id or identity.get("team_id"),
            bot_token=token,
            bot_id=identity.get("bot_id") or None,
            bot_user_id=identity.get("user_id") or None,
        )

    return authorize


def create_app(
    *,
    token: str,
    api_url: str,
    signing_secret: str | None,
    deps: Deps,
    identity: dict[str, str] | None = None,
    outage: Outage | None = None,
    rules: RulesSource | None = None,
) -> tuple[App, Registry]:
    """An app for HTTP (requests verified with `signing_secret`) or, without a secret,
    for Socket Mode, where Slack's WebSocket is the proof of origin. `identity` is the
    bot's own auth.test answer, when Slack gave one at start-up; `outage` is told how
    every call of the listeners to Slack ended; `rules`: what people read is redacted
    before it leaves, through the listeners' client and `respond` too."""
    bolt_logger = logging.getLogger("slack_bolt.App")
    if not any(isinstance(f, _QuietTokenWarning) for f in bolt_logger.filters):
        bolt_logger.addFilter(_QuietTokenWarning())
    executor = ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="listener")
    app = App(
        client=make_web_client(None, api_url, outage=outage, rules=rules),
        authorize=fixed_authorize(token, identity),
        signing_secret=signing_secret or "",
        request_verification_enabled=signing_secret is not None,
        # Listeners are an ack function (fast, no I/O) and a lazy function for the work:
        # Slack gets its answer as soon as the ack function returns.
        process_before_response=True,
        listener_executor=executor,
    )
    if rules is not None:
        app.use(redacting_middleware(rules))
    # Work a listener hands over after its ack runs on the same pool as the lazy
    # listeners, so that stopping waits for both.
    registry = register(app, replace(deps, work=executor.submit))
    return app, registry
