"""
Turning whatever a caller passed into plain, bounded JSON, and reporting what would not go.

Problems name a JSON pointer and a reason, never a value: payloads carry secrets. Keys
that are not plain snake_case identifiers are shown as ``<field>``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

__all__ = ["LOGRECORD_ATTRS", "NOT_EXTRAS", "STRICT_JSON", "Limits", "extra_names",
           "finite_and_bounded", "normalise", "safe_segment"]

#: Attributes every LogRecord has (plus the two formatters add): extras may not reuse them.
LOGRECORD_ATTRS: Final = frozenset(
    set(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None).__dict__)
    | {"message", "asctime", "taskName"}
)
#: Attributes other libraries put on records; never read as audit payload.
FOREIGN_ATTRS: Final = frozenset({
    "otelTraceID", "otelSpanID", "otelServiceName", "otelTraceSampled", "color_message",
})
#: Attributes that are never a caller's extra.
NOT_EXTRAS: Final = LOGRECORD_ATTRS | FOREIGN_ATTRS


def extra_names(attrs: dict[str, object]) -> list[str]:
    """The names of a record's extras: what the caller passed, not private (``_``) ones."""
    return [key for key in attrs.keys() - NOT_EXTRAS if key[:1] != "_"]

_SAFE_KEY: Final = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
_INT_BOUND: Final = 2**63
# orjson refuses, instead of converting, everything that is not plain JSON: datetimes,
# dataclasses, subclasses of str/int/dict/list, bytes, sets, objects, non-string keys,
# ints beyond 64 bits, lone surrogates. It does write NaN as null, so floats are checked
# separately. UUIDs and Enums are written as their string or value.
STRICT_JSON: Final = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
                  | orjson.OPT_PASSTHROUGH_SUBCLASS)


def safe_segment(key: object) -> str:
    """A pointer segment that is safe to print: the key if it is a plain identifier."""
    if isinstance(key, str) and _SAFE_KEY.match(key):
        return key
    return "<field>"


@dataclass(frozen=True)
class Limits:
    """Bounds on a payload, so one record cannot exhaust memory or the line format."""

    max_bytes: int = 65_536
    max_depth: int = 16
    max_items: int = 1_000


@dataclass
class _Walk:
    limits: Limits
    problems: list[tuple[str, str]] = field(default_factory=list)
    size: int = 0

    def problem(self, path: tuple[str, ...], reason: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(("/" + "/".join(path) if path else "", reason))

    def value(self, v: Any, path: tuple[str, ...], depth: int) -> Any:
        t = type(v)
        if t is str:
            self.size += len(v) + 3
            if not v.isascii():
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    self.problem(path, "string is not valid Unicode (lone surrogate)")
                    return None
            return v
        if t is bool or v is None:
            self.size += 5
            return v
        if t is int:
            self.size += 8
            if -_INT_BOUND <= v < _INT_BOUND:
                return v
            self.problem(path, "integer out of the 64-bit range")
            return None
        if t is float:
            self.size += 12
            if math.isfinite(v):
                return v
            self.problem(path, "not a finite number (NaN or Infinity)")
            return None
        if isinstance(v, Mapping):
            return self.mapping(v, path, depth)
        if t is list or t is tuple:
            return self.sequence(v, path, depth)
        if isinstance(v, bool):
            return bool(v)
        if isinstance(v, str):
            return self.value("" + v, path, depth)
        if isinstance(v, int):
            return self.value(int(v), path, depth)
        if isinstance(v, float):
            return self.value(float(v), path, depth)
        self.problem(path, f"not JSON-serialisable ({type(v).__name__})")
        return None

    def mapping(self, m: Mapping[Any, Any], path: tuple[str, ...], depth: int) -> Any:
        if depth >= self.limits.max_depth:
            self.problem(path, f"nested deeper than {self.limits.max_depth} levels")
            return None
        if len(m) > self.limits.max_items:
            self.problem(path, f"more than {self.limits.max_items} entries")
            return None
        out: dict[str, Any] = {}
        for key, item in m.items():
            if not isinstance(key, str):
                self.problem((*path, "<key>"), "non-string key")
                continue
            self.size += len(key) + 4
            out[key] = self.value(item, (*path, safe_segment(key)), depth + 1)
        return out

    def sequence(self, seq: list[Any] | tuple[Any, ...], path: tuple[str, ...],
                 depth: int) -> Any:
        if depth >= self.limits.max_depth:
            self.problem(path, f"nested deeper than {self.limits.max_depth} levels")
            return None
        if len(seq) > self.limits.max_items:
            self.problem(path, f"more than {self.limits.max_items} items")
            return None
        return [self.value(item, (*path, str(i)), depth + 1) for i, item in enumerate(seq)]


def _nested_ok(container: Any, depth: int, limits: Limits) -> bool:
    """
    No NaN or infinity, nesting and counts within limits, in a container orjson accepted.

    orjson has already refused every non-JSON type, non-string key, lone surrogate and
    out-of-range integer; it writes NaN as null, so floats are the one thing left to check.
    """
    if depth >= limits.max_depth or len(container) > limits.max_items:
        return False
    for item in container.values() if type(container) is dict else container:
        t = type(item)
        if t is float:
            if item - item != 0.0:  # NaN and the infinities
                return False
        elif (t is dict or t is list) and not _nested_ok(item, depth + 1, limits):
            return False
    return True


def finite_and_bounded(payload: dict[str, Any], limits: Limits,
                       typed: frozenset[str]) -> bool:
    """
    No NaN or infinity anywhere, nesting and counts within limits (orjson checked types).

    Fields in ``typed`` are left to the schema, which rejects NaN for numbers and checks
    the item types of arrays; only the others are walked here.
    """
    if typed.issuperset(payload):
        return True
    try:
        for key in payload.keys() - typed:
            value = payload[key]
            t = type(value)
            if t is float:
                if value - value != 0.0:
                    return False
            elif (t is dict or t is list) and not _nested_ok(value, 1, limits):
                return False
    except RecursionError:
        return False
    return True


def normalise(payload: Mapping[Any, Any], limits: Limits,
              typed: frozenset[str] = frozenset()) -> tuple[dict[str, Any],
                                                            list[tuple[str, str]]]:
    """
    Copy ``payload`` into plain JSON types, checking types, depth, counts and size.

    Returns the copy (offending values replaced by None) and the problems found. The
    common case - already plain JSON - is checked by a fast pass and copied shallowly;
    nested plain values are immutable in practice for the synchronous pipeline.
    """
    if type(payload) is dict and len(payload) <= limits.max_items:
        try:
            size = len(orjson.dumps(payload, option=STRICT_JSON))
        except (TypeError, RecursionError):
            pass  # the walk below says exactly what is wrong
        else:
            if size <= limits.max_bytes and finite_and_bounded(payload, limits, typed):
                return dict(payload), []
    walk = _Walk(limits)
    try:
        out = walk.mapping(payload, (), 0)
    except RecursionError:
        return {}, [("", "payload nested too deeply")]
    if walk.size > limits.max_bytes:
        walk.problem((), f"payload larger than {limits.max_bytes} bytes")
    return (out if isinstance(out, dict) else {}), walk.problems
