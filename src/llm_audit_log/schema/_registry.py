# Copyright 2026 llm-audit-log developers
# SPDX-License-Identifier: Apache-2.0
"""Event types and their compiled schemas: the shipped categories plus any registered ones.

Every category schema is merged with ``events/common.json`` by this loader (rather than
with ``allOf``), because ``additionalProperties: false`` only sees the properties declared
next to it. Merging never widens the common fields: a field a category redeclares becomes
``allOf: [common, category]``, and ``required`` is the union.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from llm_audit_log.schema._compile import (
    DRAFT_2020_12,
    CompiledSchema,
    Problem,
    SchemaError,
    compile_schema,
)
from llm_audit_log.schema._nodes import Ok

__all__ = ["EventSchemaRegistry", "default_registry"]

#: The shipped category schemas, in ``events/``; ``common.json`` is merged into each.
BUILTIN_CATEGORIES: Final = (
    "auth", "llm_completion", "rag_query", "tool_call", "guardrail", "error", "admin",
)
_EVENT_TYPE: Final = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*")
_RAW_FIELD: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
_PSEUDONYMISE: Final = "x-pseudonymise"
_CATEGORY_KEYS: Final = frozenset({
    "$schema", "$comment", "title", "description", "examples", "type", "properties",
    "required", "additionalProperties", "$defs", _PSEUDONYMISE,
})
_EVENT_TYPE_PROBLEM: Final = "/event_type"


@dataclass(frozen=True, slots=True)
class _Entry:
    """One event type: its merged schema and what the filter needs to know about it."""

    schema: dict[str, Any]
    compiled: CompiledSchema
    ok: Ok  # compiled's fast path, unguarded: it may raise
    declared: frozenset[str]
    pseudonymised: Mapping[str, str]
    builtin: bool


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON with a repeated key silently keeps the last one: refuse it in a schema."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise SchemaError(f"schema repeats the key {key!r}")
        result[key] = value
    return result


def _parse(text: str, origin: str) -> dict[str, Any]:
    try:
        loaded = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:  # JSONDecodeError, and our SchemaError (a ValueError too)
        raise SchemaError(f"{origin}: not a valid JSON schema file: {exc}") from exc
    if not isinstance(loaded, dict):
        raise SchemaError(f"{origin}: a schema file must hold a JSON object")
    return loaded


def _plain(value: Any, where: str) -> Any:
    """Deep-copy *value* as plain JSON types, so later changes by the caller cannot leak in."""
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise SchemaError(f"{where}: object keys must be strings")
        return {k: _plain(v, f"{where}/{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}/{i}") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise SchemaError(f"{where}: NaN and infinities are not JSON")
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise SchemaError(f"{where}: {type(value).__name__} is not a JSON value")


def _category_names(category: Mapping[str, Any], origin: str) -> list[str]:
    """Read the event types a shipped category covers from its ``event_type`` property."""
    spec = category.get("properties", {}).get("event_type", {})
    names = spec.get("enum", [spec["const"]] if "const" in spec else [])
    if not names or not all(isinstance(n, str) and _EVENT_TYPE.fullmatch(n) for n in names):
        raise SchemaError(f"{origin}: properties.event_type must be a const or an enum of "
                          "event type names")
    return list(names)


def _merge(common: Mapping[str, Any], category: Mapping[str, Any],
           origin: str) -> dict[str, Any]:
    """Add the category's own fields to the common ones; the module docstring has the rules."""
    for key in category:
        if key not in _CATEGORY_KEYS and not key.startswith("x-"):
            raise SchemaError(f"{origin}: top-level {key!r} is not supported in an event "
                              "schema (use properties, required and $defs)")
    if category.get("type", "object") != "object":
        raise SchemaError(f"{origin}: type must be 'object'")
    if category.get("additionalProperties", False) is not False:
        raise SchemaError(f"{origin}: additionalProperties must be false (unknown fields "
                          "are rejected)")
    if "$schema" in category and category["$schema"] != DRAFT_2020_12:
        raise SchemaError(f"{origin}: $schema must be {DRAFT_2020_12}")
    own = category.get("properties", {})
    own_required = category.get("required", [])
    own_defs = category.get("$defs", {})
    if not isinstance(own, dict) or not isinstance(own_required, list) \
            or not isinstance(own_defs, dict):
        raise SchemaError(f"{origin}: properties and $defs must be objects, required a list")

    properties = dict(common["properties"])
    for name, sub in own.items():
        properties[name] = {"allOf": [properties[name], sub]} if name in properties else sub
    required = list(common["required"])
    required += [name for name in own_required if name not in required]
    for name in required:
        if name not in properties:
            raise SchemaError(f"{origin}: required field {name!r} is not in properties")
    defs = dict(common.get("$defs", {}))
    for name, sub in own_defs.items():
        if name in defs and defs[name] != sub:
            raise SchemaError(f"{origin}: $defs/{name} clashes with the common definition")
        defs[name] = sub

    merged: dict[str, Any] = {"$schema": DRAFT_2020_12}
    for key in ("title", "description"):
        if key in category:
            merged[key] = category[key]
    merged |= {"type": "object", "properties": properties, "required": required,
               "additionalProperties": False, "$defs": defs}
    if _PSEUDONYMISE in category:
        merged[_PSEUDONYMISE] = _pseudonymise_map(category[_PSEUDONYMISE], properties, origin)
    return merged


def _pseudonymise_map(raw: Any, properties: Mapping[str, Any], origin: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise SchemaError(f"{origin}: {_PSEUDONYMISE} must map raw field names to hashed ones")
    for source, target in raw.items():
        if not _RAW_FIELD.fullmatch(source) or source in properties:
            raise SchemaError(f"{origin}: {_PSEUDONYMISE} source {source!r} must be a plain "
                              "field name that the schema does not declare")
        if not isinstance(target, str) or target not in properties:
            raise SchemaError(f"{origin}: {_PSEUDONYMISE} target for {source!r} must be a "
                              "declared property")
    return dict(raw)


def _entry(merged: dict[str, Any], *, builtin: bool, origin: str) -> _Entry:
    try:
        compiled = compile_schema(merged)
    except SchemaError as exc:
        raise SchemaError(f"{origin}: {exc}") from exc
    return _Entry(
        schema=merged,
        compiled=compiled,
        ok=compiled.fast_path,
        declared=frozenset(merged["properties"]),
        pseudonymised=MappingProxyType(dict(merged.get(_PSEUDONYMISE, {}))),
        builtin=builtin,
    )


class EventSchemaRegistry:
    """Which event types exist, and a compiled validator for each.

    Built-in categories are loaded from package data once per registry. Custom event
    types get the common fields exactly as built-in ones do, and may use the common
    ``$defs`` (``{"$ref": "#/$defs/hashed_value"}`` for a keyed hash).
    Reads are lock-free; ``register`` swaps in a new table under a lock.
    """

    def __init__(self) -> None:
        folder = resources.files("llm_audit_log.schema") / "events"
        self._common = _parse((folder / "common.json").read_text("utf-8"), "common.json")
        self._lock = threading.Lock()
        entries: dict[str, _Entry] = {}
        for category in BUILTIN_CATEGORIES:
            origin = f"{category}.json"
            raw = _parse((folder / origin).read_text("utf-8"), origin)
            merged = _merge(self._common, raw, origin)
            entry = _entry(merged, builtin=True, origin=origin)
            for name in _category_names(raw, origin):
                if name in entries:
                    raise SchemaError(f"{origin}: event type {name!r} is defined twice")
                entries[name] = entry
        self._entries: Mapping[str, _Entry] = entries
        self._common_fields = frozenset(self._common["properties"])

    def register(self, event_type: str, schema: Mapping[str, Any] | str | os.PathLike[str],
                 ) -> None:
        """Add a custom event type; registering the same schema again is a no-op.

        Args:
            event_type: dotted lower-case name, e.g. ``billing.charge``.
            schema: the type's own ``properties`` / ``required`` / ``$defs`` (and optional
                ``x-pseudonymise``), as a mapping or the path of a JSON file. It must not
                declare ``event_type``: this method pins it.

        Raises:
            SchemaError: a bad name, a built-in name, a name already registered with another
                schema, or a schema the compiler does not accept.

        """
        if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
            raise SchemaError("event_type must be a dotted lower-case name matching "
                              f"{_EVENT_TYPE.pattern}")
        origin = f"event type {event_type!r}"
        if isinstance(schema, (str, os.PathLike)):
            path = Path(schema)
            origin = f"{origin} ({path})"
            try:
                text = path.read_text("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise SchemaError(f"{origin}: cannot read the schema file") from exc
            own = _parse(text, origin)
        elif isinstance(schema, Mapping):
            own = _plain(schema, origin)
        else:
            raise SchemaError(f"{origin}: schema must be a mapping or a path to a JSON file")
        properties = own.get("properties", {})
        if not isinstance(properties, dict):
            raise SchemaError(f"{origin}: properties must be an object")
        if "event_type" in properties:
            raise SchemaError(f"{origin}: must not declare event_type; register() sets it")
        own["properties"] = {**properties, "event_type": {"const": event_type}}
        entry = _entry(_merge(self._common, own, origin), builtin=False, origin=origin)
        with self._lock:
            current = self._entries.get(event_type)
            if current is not None:
                if current.builtin:
                    raise SchemaError(f"{origin}: shadows a built-in event type")
                if current.schema == entry.schema:
                    return
                raise SchemaError(f"{origin}: already registered with a different schema")
            self._entries = {**self._entries, event_type: entry}

    def validate(self, payload: Mapping[str, Any]) -> list[Problem]:
        """Check *payload* against its event type's schema; an empty list means valid.

        Never raises and never echoes a value: an unknown event type is reported as
        ``unknown event type`` without its name.
        """
        if type(payload) is dict:  # the hot path: a plain dict, usually valid
            event_type = payload.get("event_type")
            if type(event_type) is str:
                entry = self._entries.get(event_type)
                if entry is not None:
                    try:
                        valid = entry.ok(payload)
                    except Exception:
                        valid = False  # validate() meets the same failure and reports it
                    return [] if valid else entry.compiled.validate(payload)
        candidate: object = payload  # typed callers aside, any JSON value may arrive here
        if type(candidate) is not dict and not isinstance(candidate, Mapping):
            return [Problem("", "expected object")]
        try:
            event_type = payload.get("event_type")
            missing = event_type is None and "event_type" not in payload
        except Exception:
            return [Problem("", "could not be validated")]
        if missing:
            return [Problem(_EVENT_TYPE_PROBLEM, "missing required field")]
        if not isinstance(event_type, str):
            return [Problem(_EVENT_TYPE_PROBLEM, "expected string")]
        entry = self._entries.get(event_type)
        if entry is None:
            return [Problem(_EVENT_TYPE_PROBLEM, "unknown event type")]
        return entry.compiled.validate(payload)

    def fast_check(self, event_type: str) -> Callable[[dict[str, Any]], bool] | None:
        """
        The compiled boolean check for a known type (True: valid), for callers on a hot path.

        It may raise on exotic input; callers treat an exception as "not valid" and call
        :meth:`validate` for the problems.
        """
        entry = self._entries.get(event_type)
        return None if entry is None else entry.ok

    def is_known(self, event_type: str) -> bool:
        """Whether *event_type* is built in or registered."""
        return isinstance(event_type, str) and event_type in self._entries

    def declared_fields(self, event_type: str) -> frozenset[str]:
        """Top-level field names the type declares: names that are safe to echo.

        For an unknown type, the common fields, which every event may carry.
        """
        entry = self._entries.get(event_type)
        return self._common_fields if entry is None else entry.declared

    def pseudonymised_fields(self, event_type: str) -> Mapping[str, str]:
        """Raw field -> keyed-hash field (``{"prompt": "prompt_hash", ...}``); empty if none."""
        entry = self._entries.get(event_type)
        return MappingProxyType({}) if entry is None else entry.pseudonymised

    def event_types(self) -> list[str]:
        """Every known event type, sorted."""
        return sorted(self._entries)

    def schema_for(self, event_type: str) -> dict[str, Any]:
        """Return a copy of the merged JSON Schema for *event_type*, e.g. to publish to a SIEM.

        Raises:
            KeyError: the event type is unknown.

        """
        return copy.deepcopy(self._entries[event_type].schema)


_default: EventSchemaRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> EventSchemaRegistry:
    """Return the process-wide registry, built on first use."""
    global _default  # noqa: PLW0603 - one lazily built instance per process
    registry = _default
    if registry is None:
        with _default_lock:
            if _default is None:
                _default = EventSchemaRegistry()
            registry = _default
    return registry
