"""`escbot sandbox`: the whole bot (`bot.serve.serve`, with its HTTP server, intake,
sweep and Slack worker) against the sandbox's Slack, SQLite in a temporary folder, the
Redis of REDIS_URL under a key prefix of its own, and the page in front of it.

The bot runs in the main thread (it owns the signals: Ctrl-C stops it); the sandbox's
Slack, the page and the demo agents run beside it and are stopped, the Redis keys under
the prefix deleted and the folder removed once it returns."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import redis

from bot.control import connect
from bot.errors import ConfigError
from bot.policy import load_policy
from bot.sandbox import demo
from bot.sandbox.page import PageServer, SandboxPage
from bot.sandbox.signed import SignedSender
from bot.sandbox.slack import SandboxSlack
from bot.sandbox.workspace import Workspace
from bot.serve import serve
from bot.settings import Settings, read_settings

BOT_TOKEN = "xoxb-sandbox"
READY_TIMEOUT = 60.0


def sandbox(*, port: int, demo_agents: bool, policy_file: Path | None, host: str) -> int:
    base, malformed = read_settings()
    if "REDIS_URL" in malformed:
        raise ConfigError(malformed["REDIS_URL"])
    folder = Path(tempfile.mkdtemp(prefix="escbot-sandbox-"))
    prefix = f"escbot-sandbox:{secrets.token_hex(4)}:"
    slack = SandboxSlack()
    page: PageServer | None = None
    agents: list[subprocess.Popen[bytes]] = []
    try:
        path = policy_file or _write_sample(folder)
        policy = load_policy(path)
        _check_redis(base.redis_url)
        slack.start()
        secret = secrets.token_hex(16)
        bot_port = _free_port()
        settings = Settings(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=secret,
            SLACK_APP_TOKEN=None,
            SLACK_API_URL=slack.api_url,
            REDIS_URL=base.redis_url,
            REDIS_KEY_PREFIX=prefix,
            DATABASE_URL=f"sqlite:///{folder / 'escbot.db'}",
            PAGERDUTY_ROUTING_KEY=None,
            ESCBOT_POLICY=str(path),
            ESCBOT_SWEEP_INTERVAL=1,
        )
        bot_url = f"http://127.0.0.1:{bot_port}"
        workspace = Workspace(
            slack,
            SignedSender(f"{bot_url}/slack/events", secret),
            demo.people_of(policy),
            demo.channels_of(policy),
        )
        try:
            page = PageServer(SandboxPage(workspace), host, port)
        except OSError as exc:
            raise ConfigError(
                f"--port {port}: cannot listen on {host}:{port} ({exc.strerror})"
            ) from None
        page.start()
        if demo_agents:
            env = {**os.environ, "REDIS_URL": base.redis_url, "REDIS_KEY_PREFIX": prefix}
            agents = demo.start_agents(env, folder)
        announce = f"http://{host}:{page.port}/"
        threading.Thread(
            target=_say_when_ready, args=(f"{bot_url}/healthz", announce), daemon=True
        ).start()
        return serve(
            settings, http=True, host="127.0.0.1", port=bot_port, migrate=True, policy=policy
        )
    finally:
        demo.stop_agents(agents)
        if page is not None:
            page.stop()
        slack.stop()
        _forget(base.redis_url, prefix)
        shutil.rmtree(folder, ignore_errors=True)


def _write_sample(folder: Path) -> Path:
    path = folder / "policy.yaml"
    path.write_text(demo.SAMPLE_POLICY, encoding="utf-8")
    return path


def _check_redis(url: str) -> None:
    client = connect(url, timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ConfigError(f"REDIS_URL: cannot reach Redis at {url} ({exc})") from None
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _say_when_ready(health_url: str, page_url: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError), opener.open(health_url, timeout=2) as answer:
            if json.loads(answer.read()).get("ok"):
                print(f"escbot sandbox: open {page_url}", flush=True)
                return
        time.sleep(0.2)
    print(f"escbot sandbox: the bot did not answer in {READY_TIMEOUT:.0f}s", flush=True)


def _forget(url: str, prefix: str) -> None:
    """Delete what this sandbox wrote to Redis (its own prefix only)."""
    with contextlib.suppress(redis.RedisError):
        client = connect(url, timeout=3)
        try:
            batch = []
            for key in client.scan_iter(match=prefix + "*", count=500):
                batch.append(key)
                if len(batch) >= 500:
                    client.delete(*batch)
                    batch = []
            if batch:
                client.delete(*batch)
        finally:
            client.close()
