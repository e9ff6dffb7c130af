"""
The logging.Filter that runs stages 1-3 (context, schema, pseudonymise) in a fixed order.

It reads the audit payload (``extra={"audit": {...}}`` or flat extras carrying
``event_type``), copies it into plain bounded JSON, replaces raw ``prompt`` /
``response`` / ``query`` / ``content`` with keyed hashes, fills provenance, and validates
it against the event's schema. The result is attached to the record for our formatter;
the raw payload on the shared record is replaced by the processed one, so handlers that
are not ours never see raw text either.

A payload that fails becomes an ``audit.rejected`` body naming fields and reasons, never
values; with ``strict=True`` the filter raises :class:`AuditPayloadError` instead.

The per-record fast path is here; the general path and the rejected bodies are inherited
from ``_general_path``, and :class:`AuditState` with the names both paths share lives in
``_audit_state``. All of them are importable from this module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from llm_audit_log._audit_state import (
    _COLLISIONS_ATTR,
    _DROP,
    _RESERVED,
    PROVENANCE_FIELDS,
    REJECTED_EVENT_TYPE,
    AuditState,
    _created,
)
from llm_audit_log._audit_state import STATE_ATTR as STATE_ATTR  # noqa: PLC0414 - re-export
from llm_audit_log._general_path import NESTED_RECORD_SIZE, GeneralPathMixin, _TypeInfo
from llm_audit_log._payload import (
    LOGRECORD_ATTRS,
    NOT_EXTRAS,
    STRICT_JSON,
    Limits,
    extra_names,
    finite_and_bounded,
    safe_segment,
)
from llm_audit_log.context import host_name, stamp
from llm_audit_log.errors import ConfigurationError
from llm_audit_log.keys import DEFAULT_KEYRING_SOURCE, Keyring, load_keyring
from llm_audit_log.schema import EventSchemaRegistry, default_registry
from llm_audit_log.scrub_filter import make_scrubber, scrub_record_text

__all__ = ["PROVENANCE_FIELDS", "REJECTED_EVENT_TYPE", "AuditFilter", "AuditLogger",
           "AuditState", "get_logger"]

_MISSING_POLICIES: Final = ("reject", "ignore")


class AuditFilter(GeneralPathMixin, logging.Filter):
    """
    Schema-check, pseudonymise and stamp audit records; never break the caller by default.

    Args:
        name: as for :class:`logging.Filter` (logger-name prefix).
        keyring: key source (``env:VAR``, ``env-inline:VAR``, ``file:PATH``) for the
            pseudonymisation key.
        environment / app_version / service: provenance written into every record.
        strict: raise :class:`AuditPayloadError` on a bad payload instead of writing an
            ``audit.rejected`` record.
        on_missing_payload: ``"reject"`` (default: a record with no audit payload becomes
            a visible ``audit.rejected`` record) or ``"ignore"`` (our handlers skip it).
        payload_attr: the ``extra`` key that holds a nested payload.
        max_payload_bytes / max_depth / max_items: payload bounds.
        event_types: custom event types, ``{"billing.charge": schema-or-path}``.
        scrubbing: stage 3 options (see :class:`~llm_audit_log.ScrubFilter`): ``true``
            (default), ``false``, or a mapping such as ``{"disable": ["PHONE"],
            "allowlist": ["support@example.com"]}``.

    """

    def __init__(
        self,
        name: str = "",
        *,
        keyring: str | Keyring = DEFAULT_KEYRING_SOURCE,
        environment: str | None = None,
        app_version: str | None = None,
        service: str | None = None,
        strict: bool = False,
        on_missing_payload: str = "reject",
        payload_attr: str = "audit",
        max_payload_bytes: int = 65_536,
        max_depth: int = 16,
        max_items: int = 1_000,
        event_types: Mapping[str, Any] | None = None,
        scrubbing: Mapping[str, Any] | bool = True,
    ) -> None:
        super().__init__(name)
        if not isinstance(strict, bool):  # "false" from a config file would be truthy
            raise ConfigurationError("strict must be true or false")
        if on_missing_payload not in _MISSING_POLICIES:
            raise ConfigurationError(
                f"on_missing_payload must be one of {_MISSING_POLICIES}, "
                f"not {on_missing_payload!r}")
        for option, value in (("max_payload_bytes", max_payload_bytes),
                              ("max_depth", max_depth), ("max_items", max_items)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigurationError(f"{option} must be a positive integer")
        for option, text in (("environment", environment), ("app_version", app_version),
                             ("service", service)):
            if text is not None and (not isinstance(text, str) or len(text) > 64):
                raise ConfigurationError(f"{option} must be a string of at most 64 characters")
        self._keyring = load_keyring(keyring)
        self._pseudonymise = self._keyring.pseudonymise  # bound once: the hot path calls it
        self._scrubber = make_scrubber(self._keyring, scrubbing)
        if event_types:
            self._registry = EventSchemaRegistry()
            # dictConfig hands nested dicts over as converting dicts: copy item by item.
            for event_type in list(event_types):
                self._registry.register(event_type, event_types[event_type])
        else:
            self._registry = default_registry()
        self._fast = _FastTable(self._type_info)
        self.strict = strict
        self.on_missing_payload = on_missing_payload
        self.payload_attr = payload_attr
        self._limits = Limits(max_bytes=max_payload_bytes, max_depth=max_depth,
                              max_items=max_items)
        configured = {"environment": environment, "app_version": app_version,
                      "service": service}
        self._provenance = {"host": host_name()} | {
            key: text for key, text in configured.items() if text is not None}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(keyring_kid={self._keyring.pseudonym_kid!r}, "
                f"strict={self.strict})")

    # -- logging.Filter ---------------------------------------------------------------------
    def filter(self, record: logging.LogRecord) -> bool:
        """Process the record once (idempotent across several filters and handlers)."""
        if self.name and not super().filter(record):
            return False
        attrs = record.__dict__
        state = attrs.get(STATE_ATTR)
        if state is None:
            # The common case in one call (every record pays for each layer); anything
            # else, or anything that goes wrong there, takes the explaining path.
            try:
                state = self._process_fast(record, attrs)
            except Exception:
                state = None
            if state is None:
                state = self._process_slow(record)
            else:
                attrs[STATE_ATTR] = state
        return state is not _DROP

    def process(self, record: logging.LogRecord) -> AuditState:
        """Run the stages and attach the result to ``record``; raises only in strict mode."""
        try:
            state = self._process_fast(record, record.__dict__)
        except Exception:
            state = None
        if state is None:
            return self._process_slow(record)
        record.__dict__[STATE_ATTR] = state
        return state

    # -- stages -----------------------------------------------------------------------------
    def _flat_payload(self, record: logging.LogRecord) -> dict[str, Any] | None:
        """Flat extras carrying ``event_type``: every attribute a LogRecord does not have."""
        attrs = record.__dict__
        if "event_type" not in attrs:
            return None
        # extra_names, inline: every flat record pays for this line
        return {k: attrs[k] for k in attrs.keys() - NOT_EXTRAS if k[:1] != "_"}

    def _process_fast(self, record: logging.LogRecord,
                      attrs: dict[str, Any]) -> AuditState | None:
        """
        The common case in one pass: a plain, valid, clean payload of a known type.

        Anything unusual returns None (having changed nothing) and the general path decides
        (and explains). The one orjson call checks plain-JSON-ness and gives the text the
        scrub gate reads.
        """
        raw = attrs.get(self.payload_attr)
        nested = raw is not None
        if not nested:
            raw = self._flat_payload(record)
        if type(raw) is not dict or record.exc_info or record.exc_text or record.stack_info \
                or _COLLISIONS_ATTR in attrs:
            return None
        event_type = raw.get("event_type")
        info = self._fast[event_type] if type(event_type) is str else None
        if info is None:
            return None
        typed, raw_pairs, valid = info
        limits = self._limits
        if len(raw) > limits.max_items:
            return None
        payload = dict(raw)
        raw_text: list[tuple[str, str]] = []
        raw_size = 0
        for raw_name, hashed_name in raw_pairs:
            if raw_name not in payload:
                continue
            value = payload.pop(raw_name)
            if type(value) is not str or hashed_name in payload:
                return None
            raw_text.append((hashed_name, value))
            raw_size += len(value)
        try:
            message = record.msg
            if type(message) is not str or record.args:
                message = record.getMessage()
            text = orjson.dumps([message, record.name, *payload.values()], option=STRICT_JSON)
            if (len(text) + raw_size) * 2 > limits.max_bytes or type(message) is not str:
                return None
            # ``typed`` holds no reserved name: one subset test clears both questions.
            if not typed.issuperset(payload) and (
                    not _RESERVED.isdisjoint(payload)
                    or not finite_and_bounded(payload, limits, typed)):
                return None
            if not valid(payload):
                return None
        except Exception:  # the general path reports what is wrong
            return None
        if record.args:  # formatted once here; formatters then read the finished text
            record.msg = message
            record.args = None
        counts: dict[str, int] = {}
        scrubber = self._scrubber
        if scrubber is not None and not scrubber.values_text_is_clean(payload, text):
            scrub_record_text(record, scrubber, counts)
            payload = scrubber.scrub_value(payload, counts)
        # What _accept does, inline on the hot path (test_fast_and_general_paths_agree
        # holds the two together).
        if raw_text:
            pseudonymise = self._pseudonymise
            for hashed_name, value in raw_text:
                payload[hashed_name] = pseudonymise(value)
        created = attrs.get("created")
        if type(created) is not float or not 0.0 <= created < 1e11:
            created = _created(record)
        payload["timestamp"], payload["event_id"] = stamp(created)
        payload.update(self._provenance)
        if counts:
            payload["scrubbed"] = counts
        if nested:
            attrs[self.payload_attr] = payload
            if len(attrs) > NESTED_RECORD_SIZE:
                self._scrub_side_extras(record)
        elif counts or raw_text:
            self._replace_on_record(record, payload, scrubbed=bool(counts))
        return AuditState(payload, accepted=True)

    def _known(self, event_type: object) -> _TypeInfo | None:
        """What :meth:`_type_info` says of ``event_type`` (cached), or None if unknown."""
        return self._fast[event_type] if type(event_type) is str else None

    def _replace_on_record(self, record: logging.LogRecord, payload: dict[str, Any], *,
                           scrubbed: bool) -> None:
        """Other handlers share this record: leave them scrubbed values and keyed hashes."""
        attrs = record.__dict__
        if scrubbed:
            for key in extra_names(attrs):
                attrs[key] = payload.get(key)
        info = self._known(payload["event_type"])
        for raw_name, hashed_name in info[1] if info is not None else ():
            if raw_name in attrs:
                attrs[raw_name] = payload.get(hashed_name)


class _FastTable(dict[str, "_TypeInfo | None"]):
    """Per event type, built on first use: what the fast path needs to know about it."""

    def __init__(self, build: Callable[[str], _TypeInfo | None]) -> None:
        super().__init__()
        self._build = build

    def __missing__(self, event_type: str) -> _TypeInfo | None:
        info = self._build(event_type)
        if info is not None:  # unknown names are not cached: they must not grow the table
            self[event_type] = info
        return info


class AuditLogger(logging.Logger):
    """
    A Logger whose flat extras may reuse LogRecord attribute names without a KeyError.

    The stdlib raises ``KeyError`` at the call site for ``extra={"name": ...}``; this class
    drops the colliding keys and lets the audit filter turn them into a rejected record.
    """

    def makeRecord(
        self, name: str, level: int, fn: str, lno: int, msg: object, args: Any,
        exc_info: Any, func: str | None = None, extra: Mapping[str, object] | None = None,
        sinfo: str | None = None,
    ) -> logging.LogRecord:
        """Build the record; colliding extras are set aside by name, never by value."""
        clashes: list[str] = []
        if extra:
            clashes = [k for k in extra if k in LOGRECORD_ATTRS]
            if clashes:
                extra = {k: v for k, v in extra.items() if k not in LOGRECORD_ATTRS}
        record = super().makeRecord(name, level, fn, lno, msg, args, exc_info, func, extra,
                                    sinfo)
        if clashes:
            record.__dict__[_COLLISIONS_ATTR] = tuple(safe_segment(k) for k in clashes)
        return record


def get_logger(name: str = "audit") -> logging.Logger:
    """
    ``logging.getLogger(name)``, upgraded to :class:`AuditLogger`.

    A plain Logger that already exists under ``name`` is upgraded in place (it has no
    extra state); a logger of another custom class is returned unchanged.
    """
    logger = logging.getLogger(name)
    if type(logger) is logging.Logger:
        logger.__class__ = AuditLogger
    return logger
