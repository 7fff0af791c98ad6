"""Reading the policy file: YAML in, a validated Policy out, or one line saying where and
why it is wrong (`policy.yaml: routes[0].ladder: unknown ladder 'x' …`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from pydantic import ValidationError

from bot.errors import ConfigError
from bot.policy.model import Policy
from bot.validation import one_line


def policy_version(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()[:16]


def parse_policy(content: bytes, source: str = "policy") -> Policy:
    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a mapping with `roles` and `tiers`")
    if "version" in data:
        raise ConfigError(f"{source}: version: unknown key (the version is the file's hash)")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        text = one_line(exc, limit=1).replace("Extra inputs are not permitted", "unknown key")
        raise ConfigError(f"{source}: {text}") from None
    return policy.model_copy(update={"version": policy_version(content)})


def read_policy(path: Path | str) -> tuple[Policy, bytes]:
    """The policy and the bytes it was read from (their hash is its version)."""
    path = Path(path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"ESCBOT_POLICY: policy file {path.absolute()} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"ESCBOT_POLICY: cannot read {path.absolute()}: {exc.strerror}") from None
    return parse_policy(content, source=str(path)), content


def load_policy(path: Path | str) -> Policy:
    return read_policy(path)[0]
