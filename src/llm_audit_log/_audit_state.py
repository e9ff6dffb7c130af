"""
What the audit filter leaves on a record, and the names both of its paths share.

:class:`AuditState` travels on the LogRecord under :data:`STATE_ATTR`. The fast path
(``filter.py``) and the general path (``_general_path.py``) both build it, so it lives
below both of them; :mod:`llm_audit_log.filter` re-exports everything here.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from llm_audit_log._payload import LOGRECORD_ATTRS

__all__ = ["PROVENANCE_FIELDS", "REJECTED_EVENT_TYPE", "STATE_ATTR", "AuditState"]

#: Attribute under which the processed result travels on the LogRecord.
STATE_ATTR: Final = "_llm_audit"
_COLLISIONS_ATTR: Final = "_llm_audit_collisions"
REJECTED_EVENT_TYPE: Final = "audit.rejected"
#: Fields only the pipeline fills; a payload that sets one is rejected.
PROVENANCE_FIELDS: Final = frozenset({
    "timestamp", "event_id", "environment", "app_version", "host", "service",
    "logger", "level", "message", "exception", "stack_info", "problems",
    "rejected_event_type", "scrubbed",
})
_RESERVED: Final = PROVENANCE_FIELDS | LOGRECORD_ATTRS


class AuditState:
    """What the filter decided: the body to format, and whether the payload was accepted."""

    __slots__ = ("accepted", "body")

    def __init__(self, body: dict[str, Any], *, accepted: bool) -> None:
        self.body = body
        self.accepted = accepted

    def __repr__(self) -> str:
        return f"AuditState(accepted={self.accepted}, event_type={self.body.get('event_type')!r})"


_DROP: Final = AuditState(body={}, accepted=False)


def _created(record: logging.LogRecord) -> float:
    """The record's creation time, or now if something replaced it with a non-time."""
    created = record.__dict__.get("created")
    if type(created) is float and 0.0 <= created < 1e11:
        return created
    return time.time()
