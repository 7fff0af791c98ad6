"""The baseline for bench/slack_kill.py: a bare Bolt app whose /agent handler only SETs
the kill key, served the same way as the bot (the same HTTP server and front, ack first).

    python bench/bare_bolt.py --port N   (env: REDIS_URL, SLACK_SIGNING_SECRET, SLACK_API_URL)
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from slack_bolt import App
from slack_sdk import WebClient

from bot.slack.app import fixed_authorize
from bot.slack.front import SlackFront
from bot.slack.http import SlackHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    prefix = os.environ.get("REDIS_KEY_PREFIX", "")
    app = App(
        client=WebClient(base_url=os.environ["SLACK_API_URL"]),
        authorize=fixed_authorize("xoxb-bench", {}),
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    )

    @app.command("/agent")
    def kill(ack, command):  # type: ignore[no-untyped-def]
        ack()
        client.set(f"{prefix}kill:{command['text'].split()[1]}", "1")

    front = SlackFront(app, os.environ["SLACK_SIGNING_SECRET"], lambda: {"ok": "ok"})
    server = SlackHTTPServer(front, "127.0.0.1", args.port)
    server.start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
