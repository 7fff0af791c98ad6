"""Errors that carry a message fit to show to the person who asked, rather than a traceback:
the base of every such error of the bot, and the invalid id the SDK refuses too."""

from __future__ import annotations


class EscbotError(Exception):
    """Base of every error the bot reports to a person rather than as a traceback."""

    exit_code = 1

    @property
    def message(self) -> str:
        return str(self)


class InvalidId(EscbotError, ValueError):
    """A task or escalation id that the control plane does not accept."""
