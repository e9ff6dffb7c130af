"""
The python-json-logger subclass that turns a processed record into the canonical body.

Canonical means sorted keys, compact separators, UTF-8 text and no NaN, so the same
record always gives the same bytes. It subclasses python-json-logger's orjson formatter:
JSON encoding is the largest cost on the hot path, and orjson does it ~6x faster.
Provenance fields (``message``, ``logger``, ``level``, ``exception``, ``stack_info`` and
those the filter filled) are set last: ``static_fields`` can never override them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from pythonjsonlogger.orjson import OrjsonFormatter

from llm_audit_log.errors import AuditLogError
from llm_audit_log.filter import STATE_ATTR

__all__ = ["AuditFormatter"]


class UnprocessedRecordError(AuditLogError, ValueError):
    """The record never went through :class:`~llm_audit_log.AuditFilter`."""


class AuditFormatter(OrjsonFormatter):
    """
    Emit the record's audit body as one canonical JSON object.

    Accepts python-json-logger's options; ``static_fields`` are merged *under* the
    audit body. Formatting is pure: sequence numbers and MACs belong to the handler.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prefix = ""

    def format(self, record: logging.LogRecord) -> str:
        """Return the canonical JSON body for a record processed by the audit filter."""
        return self.format_body(record).decode("utf-8")

    def format_body(self, record: logging.LogRecord) -> bytes:
        """
        The canonical body as UTF-8 bytes: what :meth:`format` returns, encoded.

        Our handlers seal bytes; taking them straight from orjson saves a decode and an
        encode of every line (a subclass that overrides :meth:`format` is called instead).
        """
        state = record.__dict__.get(STATE_ATTR)
        if state is None:
            raise UnprocessedRecordError("record was not processed by the audit filter")
        # The body is this record's own processed copy: completing it in place is
        # idempotent (the same fields, the same values), so no second copy is made.
        data: dict[str, Any] = (
            {**self.static_fields, **state.body} if self.static_fields else state.body)
        message = record.msg  # the filter formatted it already (args cleared) on its fast path
        data["message"] = message if type(message) is str and not record.args \
            else record.getMessage()
        data["logger"] = record.name
        data["level"] = record.levelname
        if record.exc_info and not record.exc_text:
            # The stdlib text form: one string (python-json-logger may return a list).
            record.exc_text = logging.Formatter.formatException(self, record.exc_info)
        if record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack_info"] = logging.Formatter.formatStack(self, record.stack_info)
        try:
            return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # lone surrogates (orjson refuses them); escape them instead
            return _CANONICAL_ASCII(data).encode("ascii")

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        """Canonical JSON; falls back to ASCII escapes for text that is not valid UTF-8."""
        try:
            return orjson.dumps(log_data, option=orjson.OPT_SORT_KEYS).decode("utf-8")
        except TypeError:  # lone surrogates (orjson refuses them); escape them instead
            return _CANONICAL_ASCII(log_data)


def format_body(handler: logging.Handler, record: logging.LogRecord) -> bytes:
    """The record's body as UTF-8 bytes, from an audit handler's formatter (for sealing)."""
    formatter = handler.formatter
    if type(formatter) is AuditFormatter:  # exactly ours: its bytes, without a round trip
        return formatter.format_body(record)
    return handler.format(record).encode("utf-8")


def _refuse(value: object) -> Any:
    # The filter normalised the body already; anything left here is a bug, not data.
    raise TypeError(f"not JSON-serialisable ({type(value).__name__})")


# Built once: json.dumps with options constructs a new encoder on every call.
_CANONICAL_ASCII = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                                    allow_nan=False, default=_refuse).encode
