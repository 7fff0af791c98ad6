"""Settings from the environment and `.env` (CONTRACTS §1)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

_ENV_NAMES = {
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_app_token": "SLACK_APP_TOKEN",
    "slack_api_url": "SLACK_API_URL",
    "redis_url": "REDIS_URL",
    "redis_key_prefix": "REDIS_KEY_PREFIX",
    "database_url": "DATABASE_URL",
    "pagerduty_routing_key": "PAGERDUTY_ROUTING_KEY",
    "pagerduty_events_url": "PAGERDUTY_EVENTS_URL",
    "policy_path": "ESCBOT_POLICY",
    "sweep_interval": "ESCBOT_SWEEP_INTERVAL",
    "ssl_cert_file": "SSL_CERT_FILE",
    "requests_ca_bundle": "REQUESTS_CA_BUNDLE",
    "log_format": "ESCBOT_LOG_FORMAT",
    "metrics_label_limit": "ESCBOT_METRICS_LABEL_LIMIT",
}
_FIELD_OF = {name: field for field, name in _ENV_NAMES.items()}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://slack.com/api/"), alias="SLACK_API_URL"
    )
    redis_url: str = Field(default="redis://localhost:6379/0", alias="REDIS_URL")
    redis_key_prefix: str = Field(default="", alias="REDIS_KEY_PREFIX", max_length=100)
    database_url: str = Field(default="sqlite:///escbot.db", alias="DATABASE_URL")
    pagerduty_routing_key: SecretStr | None = Field(default=None, alias="PAGERDUTY_ROUTING_KEY")
    pagerduty_events_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://events.pagerduty.com"), alias="PAGERDUTY_EVENTS_URL"
    )
    ssl_cert_file: Path | None = Field(default=None, alias="SSL_CERT_FILE")
    requests_ca_bundle: Path | None = Field(default=None, alias="REQUESTS_CA_BUNDLE")
    policy_path: Path = Field(default=Path("policy.yaml"), alias="ESCBOT_POLICY")
    sweep_interval: float = Field(default=5.0, alias="ESCBOT_SWEEP_INTERVAL", gt=0, le=3600)
    log_format: Literal["text", "json"] = Field(default="text", alias="ESCBOT_LOG_FORMAT")
    # Distinct task types (and trigger names) a metric label keeps; later ones: `other`.
    metrics_label_limit: int = Field(
        default=50, alias="ESCBOT_METRICS_LABEL_LIMIT", ge=1, le=10_000
    )

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "pagerduty_routing_key",
        "ssl_cert_file",
        "requests_ca_bundle",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("pagerduty_events_url")
    @classmethod
    def _events_url_https(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if value.scheme != "https":
            raise ValueError("must be an https:// URL")
        return value

    @field_validator("ssl_cert_file", "requests_ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        try:
            ssl.create_default_context(cafile=value)
        except ssl.SSLError:
            raise ValueError(f"{value} holds no PEM certificate") from None
        except OSError as exc:
            raise ValueError(f"cannot read {value} ({exc.strerror})") from None
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("redis_key_prefix")
    @classmethod
    def _prefix_printable(cls, value: str) -> str:
        if any(ch.isspace() for ch in value):
            raise ValueError("must not contain whitespace")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"is not a SQLAlchemy URL ({exc})") from None
        backend = url.get_backend_name()
        if backend not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        if backend == "postgres":  # the common spelling; SQLAlchemy knows only postgresql
            return "postgresql" + value.strip().removeprefix("postgres")
        return value

    @property
    def slack_api_base(self) -> str:
        text = str(self.slack_api_url)
        return text if text.endswith("/") else text + "/"

    @property
    def ca_file(self) -> Path | None:
        """The CA bundle trusted for outgoing HTTPS, when one is named."""
        return self.ssl_cert_file or self.requests_ca_bundle

    def missing(self, *fields: str) -> list[str]:
        """The environment names of the settings named here that are unset."""
        return [_ENV_NAMES[field] for field in fields if getattr(self, field) is None]

    def require(self, *fields: str) -> None:
        """Stop when settings this command needs are unset, naming every one of them."""
        missing = self.missing(*fields)
        if missing:
            raise ConfigError("; ".join(f"{name} is required but not set" for name in missing))


def env_name(field: str) -> str:
    return _ENV_NAMES.get(field, field.upper())


def read_settings(**overrides: Any) -> tuple[Settings, dict[str, str]]:
    """The settings, and every malformed one (environment name -> why). Malformed settings
    fall back to their defaults here, so that a caller can also check what else it needs
    and report everything wrong in one message rather than one problem per start."""
    try:
        return Settings(**overrides), {}
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    problems: dict[str, str] = {}
    fallback: dict[str, Any] = {}
    for error in errors:
        field = str(error["loc"][0]) if error["loc"] else "settings"
        name = env_name(field)
        message = error["msg"].removeprefix("Value error, ")
        problems.setdefault(name, f"{name}: {message}")
        known = _FIELD_OF.get(name)
        if known is not None:
            fallback[name] = Settings.model_fields[known].default
    return Settings(**overrides | fallback), problems


def load_settings(**overrides: Any) -> Settings:
    settings, problems = read_settings(**overrides)
    if problems:
        raise ConfigError("; ".join(problems.values()))
    return settings
