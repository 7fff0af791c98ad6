"""Personal data and secrets replaced by placeholders before any text leaves the bot for
people (CONTRACTS §12)."""

from bot.redaction.detectors import DETECTORS, Finding
from bot.redaction.redactor import (
    PLACEHOLDER,
    RedactionRules,
    Redactor,
    UnknownPlaceholders,
    findings,
    restore,
)

__all__ = [
    "DETECTORS",
    "PLACEHOLDER",
    "Finding",
    "RedactionRules",
    "Redactor",
    "UnknownPlaceholders",
    "findings",
    "restore",
]
