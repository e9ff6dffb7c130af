"""
The audit filter's general path: every case, with every problem named.

:class:`~llm_audit_log.filter.AuditFilter` inherits :class:`GeneralPathMixin`. The filter
keeps its per-record fast path (the common case in one call) in ``filter.py``; anything
else, or anything that goes wrong there, comes here: the explaining checks, the accepted
payload's provenance, and the content-free ``audit.rejected`` body. What the fast path
needs to know about each event type is worked out here too, once per type.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from llm_audit_log._audit_state import (
    _COLLISIONS_ATTR,
    _DROP,
    _RESERVED,
    PROVENANCE_FIELDS,
    REJECTED_EVENT_TYPE,
    STATE_ATTR,
    AuditState,
    _created,
)
from llm_audit_log._payload import Limits, extra_names, normalise, safe_segment
from llm_audit_log.context import format_timestamp, new_event_id, stamp
from llm_audit_log.errors import AuditPayloadError
from llm_audit_log.schema import EventSchemaRegistry
from llm_audit_log.scrub import SCRUB_ERROR_MARKER, Scrubber
from llm_audit_log.scrub._walk import bump
from llm_audit_log.scrub_filter import scrub_record_text

__all__ = ["GeneralPathMixin"]

#: Attributes of a fresh LogRecord plus a nested payload; more means extras beside it.
NESTED_RECORD_SIZE: Final = len(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) + 1
#: What a rejected record keeps of its payload, when shaped as an identifier (no spaces:
#: never free text) and not itself the problem.
_ID: Final = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_KEPT_WHEN_REJECTED: Final = {
    "user_id": _ID, "session_id": _ID, "request_id": _ID,
    "trace_id": re.compile(r"[0-9a-f]{32}"), "span_id": re.compile(r"[0-9a-f]{16}"),
}
_NO_PAYLOAD: Final = "no audit payload (extra={'audit': {...}} or flat extras with event_type)"

_TypeInfo = tuple[frozenset[str], tuple[tuple[str, str], ...], Callable[[dict[str, Any]], bool]]


class GeneralPathMixin:
    """The general (explaining) path, accepted-payload stamping and ``audit.rejected`` bodies."""

    # Set by AuditFilter.__init__.
    strict: bool
    on_missing_payload: str
    payload_attr: str
    _registry: EventSchemaRegistry
    _scrubber: Scrubber | None
    _pseudonymise: Callable[[str], str]
    _limits: Limits
    _provenance: dict[str, str]

    if TYPE_CHECKING:  # provided by AuditFilter
        def _flat_payload(self, record: logging.LogRecord) -> dict[str, Any] | None: ...
        def _known(self, event_type: object) -> _TypeInfo | None: ...
        def _replace_on_record(self, record: logging.LogRecord, payload: dict[str, Any], *,
                               scrubbed: bool) -> None: ...

    # -- the general path -------------------------------------------------------------------
    def _process_slow(self, record: logging.LogRecord) -> AuditState:
        """The general path, which names every problem; never raises but in strict mode."""
        attrs = record.__dict__
        try:
            state = self._process_general(record, *self._payload_of(record, attrs))
        except AuditPayloadError:
            raise
        except Exception as exc:  # fail visible, never break the caller
            problem = [("", f"internal error while processing ({type(exc).__name__})")]
            try:
                self._clear_rejected(record, {})
                state = AuditState(self.rejected_body(record, problem), accepted=False)
            except Exception:  # the record itself is broken (e.g. its attributes replaced)
                state = AuditState({"event_type": REJECTED_EVENT_TYPE, "status": "failure",
                                    "rejected_event_type": None,
                                    "problems": [{"field": "", "reason": problem[0][1]}],
                                    "timestamp": format_timestamp(time.time()),
                                    "event_id": new_event_id(), **self._provenance},
                                   accepted=False)
        attrs[STATE_ATTR] = state
        return state

    def _payload_of(self, record: logging.LogRecord,
                    attrs: dict[str, Any]) -> tuple[Any, bool]:
        """The raw payload (nested, else flat) and whether it was nested."""
        raw = attrs.get(self.payload_attr)
        if raw is not None:
            return raw, True
        return self._flat_payload(record), False

    def _accept(self, record: logging.LogRecord, payload: dict[str, Any],
                raw_text: list[tuple[str, str]], counts: dict[str, int],
                nested: bool) -> AuditState:
        """Hash raw text, fill provenance, and leave the processed payload on the record."""
        if raw_text:
            pseudonymise = self._pseudonymise
            for hashed_name, value in raw_text:
                payload[hashed_name] = pseudonymise(value)
        created = record.__dict__.get("created")
        if type(created) is not float or not 0.0 <= created < 1e11:
            created = _created(record)
        payload["timestamp"], payload["event_id"] = stamp(created)
        payload.update(self._provenance)
        if counts:
            payload["scrubbed"] = counts
        if nested:
            record.__dict__[self.payload_attr] = payload
            if len(record.__dict__) > NESTED_RECORD_SIZE:
                self._scrub_side_extras(record)
        elif counts or raw_text:
            self._replace_on_record(record, payload, scrubbed=bool(counts))
        return AuditState(payload, accepted=True)

    def _process_general(self, record: logging.LogRecord, raw: Any, nested: bool) -> AuditState:
        """Every case, with every problem named; the fast path's fallback."""
        attrs = record.__dict__
        scrubber = self._scrubber
        counts: dict[str, int] = {}
        if scrubber is not None and (record.exc_info or record.exc_text or record.stack_info):
            scrub_record_text(record, scrubber, counts)  # rare: tracebacks are scrubbed now
        collisions = attrs.get(_COLLISIONS_ATTR, ())
        if raw is None and not collisions:
            if self.on_missing_payload == "ignore":
                return _DROP
            return self._reject(record, [("", _NO_PAYLOAD)], None, counts)
        if type(raw) is dict:
            info = self._known(raw.get("event_type"))
            typed = info[0] if info is not None else frozenset()
        elif raw is None or isinstance(raw, Mapping):
            typed = frozenset()
        else:
            return self._reject(record, [("", "audit payload must be an object")], None,
                                counts)
        payload, problems = normalise(raw or {}, self._limits, typed)
        if collisions:
            problems.extend((f"/{name}", "collides with a LogRecord attribute")
                            for name in collisions)
        event_type = payload.get("event_type")
        if not _RESERVED.isdisjoint(payload):
            for key in sorted(payload.keys() & _RESERVED):
                problems.append((f"/{safe_segment(key)}",
                                 "reserved: filled by the audit pipeline"
                                 if key in PROVENANCE_FIELDS else
                                 "collides with a LogRecord attribute"))
                del payload[key]
        # Raw text is taken out before validation and hashed after it: the schema checks
        # what the caller gave, and never spends time re-checking our own hashes.
        raw_text: list[tuple[str, str]] = []
        info = self._known(event_type)
        for raw_name, hashed_name in info[1] if info is not None else ():
            if raw_name not in payload:
                continue
            value = payload.pop(raw_name)
            if hashed_name in payload:
                problems.append((f"/{raw_name}", f"given together with {hashed_name}"))
            elif type(value) is str:
                raw_text.append((hashed_name, value))
            else:
                problems.append((f"/{raw_name}", "expected string"))
        if not problems:
            problems.extend((p.field, p.reason) for p in self._registry.validate(payload))
        if problems:
            return self._reject(record, problems, event_type, counts)
        if scrubber is not None:
            scrub_record_text(record, scrubber, counts)  # the slow path scrubs everything
            payload = scrubber.scrub_value(payload, counts)
        return self._accept(record, payload, raw_text, counts, nested=nested)

    # -- event types ------------------------------------------------------------------------
    def _type_info(self, event_type: str) -> _TypeInfo | None:
        """Typed fields, raw->hashed pairs and the schema's boolean check, for known types."""
        registry = self._registry
        check = registry.fast_check(event_type)
        if check is None:
            return None
        return (_typed_properties(registry.schema_for(event_type)) - _RESERVED,
                tuple(registry.pseudonymised_fields(event_type).items()), check)

    # -- rejected records -------------------------------------------------------------------
    def _reject(self, record: logging.LogRecord, problems: list[tuple[str, str]],
                event_type: object, counts: dict[str, int] | None = None) -> AuditState:
        if self.strict:
            summary = "; ".join(f"{f or '/'}: {r}" for f, r in problems)
            raise AuditPayloadError(f"audit payload rejected: {summary}", tuple(problems))
        counts = {} if counts is None else counts
        who = self._who(record, problems, counts)
        self._clear_rejected(record, counts)
        body = self.rejected_body(record, problems, event_type)
        body.update(who)
        if counts:
            body["scrubbed"] = counts
        return AuditState(body, accepted=False)

    def _who(self, record: logging.LogRecord, problems: list[tuple[str, str]],
             counts: dict[str, int]) -> dict[str, str]:
        """
        Who acted, and in which request: kept by a rejected record for an investigation.

        Only the fields in ``_KEPT_WHEN_REJECTED`` shaped as identifiers, not themselves a
        problem, and after scrubbing (a secret in them becomes a marker).
        """
        try:
            raw, _nested = self._payload_of(record, record.__dict__)
            if not isinstance(raw, Mapping):
                return {}
            flagged = {field.split("/")[1] for field, _ in problems if field.startswith("/")}
            kept: dict[str, str] = {}
            for name, shape in _KEPT_WHEN_REJECTED.items():
                value = raw.get(name)
                if type(value) is not str or name in flagged or not shape.fullmatch(value):
                    continue
                if self._scrubber is not None:
                    value = self._scrubber.scrub_text(value, counts)
                kept[name] = value
        except Exception:  # a payload that breaks on reading keeps nothing
            return {}
        return kept

    def _clear_rejected(self, record: logging.LogRecord, counts: dict[str, int]) -> None:
        """
        Leave nothing raw on a rejected record, for any handler: text scrubbed, extras None.

        If scrubbing itself fails, the message, traceback and stack text go entirely.
        """
        if self._scrubber is not None:
            try:
                scrub_record_text(record, self._scrubber, counts)
            except Exception:
                record.msg, record.args = SCRUB_ERROR_MARKER, None
                record.exc_info = record.exc_text = record.stack_info = None
                bump(counts, "SCRUB_ERROR")
        attrs = record.__dict__
        if self.payload_attr in attrs:  # whatever its name (it may start with "_")
            attrs[self.payload_attr] = None
        for key in extra_names(attrs):
            attrs[key] = None

    def _scrub_side_extras(self, record: logging.LogRecord) -> None:
        """
        Extras given beside a nested payload: not audited, but other handlers print them.

        They are scrubbed on the record (whole values under credential-like names), and
        counted nowhere: the audit body does not hold them.
        """
        scrubber = self._scrubber
        if scrubber is None:
            return
        attrs = record.__dict__
        counts: dict[str, int] = {}
        for key in extra_names(attrs):
            if key != self.payload_attr:
                attrs[key] = scrubber.scrub_field(key, attrs[key], counts)

    def rejected_body(self, record: logging.LogRecord, problems: list[tuple[str, str]],
                      event_type: object = None) -> dict[str, Any]:
        """The content-free body of an ``audit.rejected`` record."""
        shown = (event_type if isinstance(event_type, str)
                 and self._registry.is_known(event_type) else None)
        body: dict[str, Any] = {
            "event_type": REJECTED_EVENT_TYPE,
            "status": "failure",
            "rejected_event_type": shown,
            "problems": [{"field": f, "reason": r} for f, r in problems[:50]],
            "timestamp": format_timestamp(_created(record)),
            "event_id": new_event_id(),
        }
        body.update(self._provenance)
        return body


_SCALAR_SCHEMA_TYPES: Final = frozenset({"string", "integer", "number", "boolean"})


def _pinned_type(schema: Any, defs: dict[str, Any], depth: int = 0) -> str | None:
    """The one JSON type a (sub)schema pins, following local $refs and allOf; else None."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _pinned_type(defs.get(ref[len("#/$defs/"):]), defs, depth + 1)
    kind = schema.get("type")
    if kind is None and isinstance(schema.get("allOf"), list):
        kinds = {_pinned_type(sub, defs, depth + 1) for sub in schema["allOf"]} - {None}
        kind = kinds.pop() if len(kinds) == 1 else None
    return kind if isinstance(kind, str) else None


def _typed_properties(schema: dict[str, Any]) -> frozenset[str]:
    """Top-level fields typed as a JSON scalar, or as an array of scalars."""
    defs = schema.get("$defs", {})
    typed = set()
    for name, sub in schema.get("properties", {}).items():
        kind = _pinned_type(sub, defs)
        if kind in _SCALAR_SCHEMA_TYPES or (
                kind == "array" and isinstance(sub, dict)
                and _pinned_type(sub.get("items"), defs) in _SCALAR_SCHEMA_TYPES):
            typed.add(name)
    return frozenset(typed)

