"""The Web API client: base URL from SLACK_API_URL, retries from slack_sdk's handlers."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.errors import ConfigError
from bot.redaction.outgoing import RulesSource
from bot.slack.outage import Outage, OutageWatch, quiet_sdk_failures, reported
from bot.slack.pacing import ChannelPacer, PacingWatch
from bot.slack.redacting import RedactingWebClient

log = logging.getLogger(__name__)

FATAL_AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)


def make_web_client(
    token: str | None,
    base_url: str,
    *,
    timeout: int = 10,
    outage: Outage | None = None,
    rules: RulesSource | None = None,
    pacer: ChannelPacer | None = None,
) -> WebClient:
    """`outage` is told how every call ended (share one across a process's clients);
    with `rules`, what people read is redacted before it is sent; with `pacer`, a 429
    holds its channel there for Retry-After."""
    client = WebClient(token=token, base_url=base_url, timeout=timeout)
    if rules is not None:
        client = RedactingWebClient(token=token, base_url=base_url, timeout=timeout)
        client.rules = rules
    # 429 waits for Retry-After; a 5xx is tried once more (slack_sdk already retries a
    # dropped connection once). Beyond that, the caller keeps the work and retries later.
    # The outage watch goes last: it is asked only about attempts nobody retries.
    if pacer is not None:
        client.retry_handlers.append(PacingWatch(pacer))
    client.retry_handlers.extend(
        [
            RateLimitErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=1),
            OutageWatch(outage or Outage()),
        ]
    )
    quiet_sdk_failures()
    return client


def refused(exc: SlackApiError, setting: str, also: frozenset[str] = frozenset()) -> str:
    """Slack's error; a refused token stops start-up with one line naming its setting."""
    error = slack_error(exc)
    if error in FATAL_AUTH_ERRORS | also:
        raise ConfigError(f"{setting}: Slack refused the token ({error})") from None
    return error


def check_token(client: WebClient) -> dict[str, str] | None:
    """auth.test: a refused token stops start-up; an unreachable Slack does not (cards wait)."""
    try:
        response = client.auth_test()
    except SlackApiError as exc:
        error = refused(exc, "SLACK_BOT_TOKEN")
        log.warning("Slack auth.test failed (%s); starting anyway", error)
        return None
    except Exception as exc:
        if reported(client, exc):
            log.info("starting anyway: cards wait until Slack answers")
        else:
            log.warning("Slack is unreachable (%s); starting anyway, cards wait for it", exc)
        return None
    return {
        "url": response.get("url", ""),
        "user_id": response.get("user_id", ""),
        "bot_id": response.get("bot_id", ""),
        "team_id": response.get("team_id", ""),
    }


def slack_error(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error") or exc.response.status_code)
    return f"{type(exc).__name__}: {exc}"[:300]


def is_permanent(exc: BaseException) -> bool:
    """An error that retrying will not cure (a bad channel, bad blocks), as opposed to
    Slack or the network being down or rate-limiting us."""
    if not isinstance(exc, SlackApiError) or exc.response is None:
        return False
    status: int = exc.response.status_code
    return status < 500 and status != 429
