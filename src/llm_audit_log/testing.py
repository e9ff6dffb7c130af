"""
Helpers for testing code that writes audit records.

``capture_audit`` collects the bodies your code would write, after the whole filter
pipeline (schema check, keyed hashes, provenance), without touching the disk::

    with capture_audit("audit") as records:
        handle_request()
    assert records[0]["event_type"] == "llm.completion"
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from llm_audit_log.filter import AuditFilter
from llm_audit_log.formatter import AuditFormatter
from llm_audit_log.keys import Keyring

__all__ = ["CapturingHandler", "capture_audit"]


class CapturingHandler(logging.Handler):
    """Keep the canonical body of every record as a dict (and as the exact JSON text)."""

    def __init__(self, audit_filter: AuditFilter) -> None:
        super().__init__()
        self.addFilter(audit_filter)
        self.formatter = AuditFormatter()
        self.records: list[dict[str, Any]] = []
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Format exactly as the file handler would, and keep the result."""
        import json  # noqa: PLC0415 - test helper; keeps the module import light

        text = self.format(record)
        self.texts.append(text)
        self.records.append(json.loads(text))


@contextmanager
def capture_audit(logger: str | logging.Logger = "audit", *,
                  keyring: Keyring | None = None, **filter_options: Any,
                  ) -> Iterator[list[dict[str, Any]]]:
    """
    Capture the audit bodies a logger produces while the block runs.

    Args:
        logger: the logger (or its name) your code logs to.
        keyring: keys for keyed hashes; a throwaway keyring by default.
        filter_options: passed to :class:`AuditFilter` (``strict=True`` is handy in tests).

    """
    target = logging.getLogger(logger) if isinstance(logger, str) else logger
    handler = CapturingHandler(AuditFilter(keyring=keyring or Keyring.generate(),
                                           **filter_options))
    previous_level = target.level
    if target.getEffectiveLevel() > logging.INFO:
        target.setLevel(logging.INFO)
    target.addHandler(handler)
    try:
        yield handler.records
    finally:
        target.removeHandler(handler)
        target.setLevel(previous_level)
