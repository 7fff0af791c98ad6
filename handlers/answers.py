"""A command's answer, in its ack when the work is done in time, or after it.

Slack shows the body of a slash command's ack to the person who typed it, as it shows a
post to the command's response_url. So the ack waits up to `ANSWER_IN_ACK` for the work
(done on the listeners' pool, as any work after an ack) and carries its answer: one
request to Slack fewer, and a kill's HTTP answer leaves after its key is set instead of
competing with it. Work that takes longer (the database slow or locked) is acked empty
at the deadline, well within Slack's 3 seconds, and answers through the response_url.
"""

from __future__ import annotations

import threading
from typing import Any

from slack_bolt import Ack, Respond

# Seconds an ack waits for the answer; Slack waits 3 for the ack.
ANSWER_IN_ACK = 2.0
# What of an answer an ack can carry (a slash command's ack never replaces a message).
_ACK_FIELDS = ("text", "blocks", "response_type")


class PendingAnswer:
    """Stands in for `respond` while the ack waits: the first answer given before the
    deadline goes into the ack, anything later (or after the ack) to the response_url."""

    def __init__(self, respond: Respond) -> None:
        self._respond = respond
        self._lock = threading.Lock()
        self._given = threading.Event()
        self._answer: dict[str, Any] | None = None
        self._acked = False

    def __call__(self, **answer: Any) -> None:
        with self._lock:
            if not self._acked and self._answer is None:
                self._answer = answer
                self._given.set()
                return
        self._respond(**answer)

    def ack_with_it(self, ack: Ack, within: float) -> None:
        """Ack with the answer once it is given, or empty after `within` seconds."""
        self._given.wait(within)
        with self._lock:
            self._acked = True
            answer = self._answer
        if answer is None:
            ack()
            return
        ack(**{name: answer[name] for name in _ACK_FIELDS if name in answer})
