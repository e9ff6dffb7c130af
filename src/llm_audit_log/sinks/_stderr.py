"""
The handlers' one channel for their own trouble: a line on stderr, never a payload.

Handlers cannot log their failures through ``logging`` (that could recurse into
themselves), so they write one line, prefixed with who is speaking, and stay silent when
``logging.raiseExceptions`` is off or stderr is gone.
"""

from __future__ import annotations

import contextlib
import logging
import sys

__all__ = ["report_on_stderr"]


def report_on_stderr(who: str, message: str) -> None:
    """Write ``llm-audit-log: <who> <message>`` on stderr, if reports are wanted at all."""
    if not logging.raiseExceptions or sys.stderr is None:
        return
    with contextlib.suppress(Exception):  # stderr itself is gone: nowhere left to report
        sys.stderr.write(f"llm-audit-log: {who} {message}\n")
