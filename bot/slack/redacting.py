"""Redaction on the way to Slack (CONTRACTS §12), in the two things every message passes
through: the Web API client (cards, announcements, threads, modals, ephemeral messages)
and `respond` (answers through a response_url); and the ack, whose body a person reads
too (a command's answer, `handlers/answers.py`). The bot's own clients are made
redacting; a Bolt middleware hands listeners redacting ones for their request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import Ack, BoltContext, BoltResponse
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient
from slack_sdk.models.attachments import Attachment
from slack_sdk.models.blocks import Block
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookResponse

from bot.redaction.outgoing import MESSAGE_METHODS, RulesSource, redact_message


class RedactingWebClient(WebClient):
    """A WebClient whose message and view payloads are redacted before they are sent."""

    rules: RulesSource | None = None

    def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        auth: dict[str, Any] | None = None,
    ) -> SlackResponse:
        if self.rules is not None and api_method in MESSAGE_METHODS:
            rules = self.rules()
            json = redact_message(json, rules) if json else json
            data = redact_message(data, rules) if data else data
            params = redact_message(params, rules) if params else params
        return super().api_call(
            api_method,
            http_verb=http_verb,
            files=files,
            data=data,
            params=params,
            json=json,
            headers=headers,
            auth=auth,
        )


def redacting_client(client: WebClient, rules: RulesSource) -> RedactingWebClient:
    """A redacting client with `client`'s token, address, timeout and retries."""
    made = RedactingWebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        ssl=client.ssl,
        proxy=client.proxy,
        headers=client.headers,
        logger=client.logger,
        retry_handlers=list(client.retry_handlers),
    )
    made.default_params = dict(client.default_params)
    made.rules = rules
    return made


def _as_dicts(items: Sequence[dict[str, Any] | Block | Attachment] | None) -> Any:
    if items is None:
        return None
    return [item.to_dict() if isinstance(item, Block | Attachment) else item for item in items]


def _redacted(
    text: str,
    blocks: Sequence[dict[str, Any] | Block] | None,
    attachments: Sequence[dict[str, Any] | Attachment] | None,
    rules: RulesSource,
) -> dict[str, Any]:
    message = {"text": text, "blocks": _as_dicts(blocks), "attachments": _as_dicts(attachments)}
    return redact_message(message, rules())


class RedactingRespond(Respond):
    def __init__(self, respond: Respond, rules: RulesSource) -> None:
        super().__init__(response_url=respond.response_url, proxy=respond.proxy, ssl=respond.ssl)
        self.rules = rules

    def __call__(  # type: ignore[override]  # Respond's keywords, passed on unchanged
        self,
        text: str | dict[str, Any] = "",
        blocks: Sequence[dict[str, Any] | Block] | None = None,
        attachments: Sequence[dict[str, Any] | Attachment] | None = None,
        **options: Any,
    ) -> WebhookResponse:
        if isinstance(text, dict):
            return super().__call__(redact_message(text, self.rules()), **options)
        message = _redacted(text, blocks, attachments, self.rules)
        return super().__call__(
            message["text"],
            blocks=message["blocks"],
            attachments=message["attachments"],
            **options,
        )


class RedactingAck(Ack):
    """An ack whose message (a command's answer, a usage error) is redacted: its body is
    what the person reads, as a response_url post is."""

    def __init__(self, rules: RulesSource) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Bolt leaves it untyped
        self.rules = rules

    def __call__(  # type: ignore[override]  # Ack's keywords, passed on unchanged
        self,
        text: str | dict[str, Any] = "",
        blocks: Sequence[dict[str, Any] | Block] | None = None,
        attachments: Sequence[dict[str, Any] | Attachment] | None = None,
        **options: Any,
    ) -> BoltResponse:
        if isinstance(text, dict):
            return super().__call__(redact_message(text, self.rules()), **options)
        if not text and blocks is None and attachments is None:
            return super().__call__(**options)  # an empty ack: nothing to read
        message = _redacted(text, blocks, attachments, self.rules)
        return super().__call__(
            message["text"],
            blocks=message["blocks"],
            attachments=message["attachments"],
            **options,
        )


def redacting_middleware(rules: RulesSource) -> Callable[..., Any]:
    """Listeners get a redacting `client`, `respond` and `ack` for their request (lazy
    listeners get copies of them)."""

    def redact(context: BoltContext, next: Callable[[], Any]) -> Any:  # Bolt's name
        client = context.get("client")
        if isinstance(client, WebClient) and not isinstance(client, RedactingWebClient):
            context["client"] = redacting_client(client, rules)
        respond = context.respond if context.response_url else None
        if respond is not None and not isinstance(respond, RedactingRespond):
            context["respond"] = RedactingRespond(respond, rules)
        if context.ack.response is None and not isinstance(context.ack, RedactingAck):
            context["ack"] = RedactingAck(rules)
        return next()

    return redact
