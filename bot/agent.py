"""Deprecated: the agent SDK is the `escbot-agent` distribution, imported as `escbot_agent`.

`bot.agent` re-exports it for one release, with a DeprecationWarning, and so do its old
submodules (`bot.agent.guard` is `escbot_agent.guard`).
"""

from __future__ import annotations

import sys
import warnings

import escbot_agent
from escbot_agent import *  # noqa: F403
from escbot_agent import (
    aio,
    aio_client,
    aio_reader,
    core,
    errors,
    fleet,
    guard,
    inbox,
    payloads,
    protection,
    reader,
    view,
    writes,
)

__all__ = escbot_agent.__all__

warnings.warn(
    "bot.agent is deprecated: install escbot-agent and import escbot_agent instead",
    DeprecationWarning,
    stacklevel=2,
)

for _module in (
    aio,
    aio_client,
    aio_reader,
    core,
    errors,
    fleet,
    guard,
    inbox,
    payloads,
    protection,
    reader,
    view,
    writes,
):
    sys.modules[f"{__name__}.{_module.__name__.rpartition('.')[2]}"] = _module
