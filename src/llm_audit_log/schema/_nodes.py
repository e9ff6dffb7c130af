# Copyright 2026 llm-audit-log developers
# SPDX-License-Identifier: Apache-2.0
"""Building blocks of compiled schemas: problems, nodes, and JSON's notion of types."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from llm_audit_log.errors import ConfigurationError

__all__ = [
    "ACCEPT", "ANY_STRING", "INT_WINDOW", "MAX_PROBLEMS", "NO_LIMIT", "NO_STRING", "REJECT",
    "TYPES", "Check", "FullError", "Interval", "Node", "Ok", "Problem", "SchemaError", "StrSpec",
    "always", "escape", "int_window", "is_array", "is_number", "is_numeric", "json_equal",
    "nothing", "report", "safe_segment",
]

#: Problems collected per payload before validation stops: a rejected record stays small.
MAX_PROBLEMS: Final = 50
#: Stands in for an absent upper bound, so the fast path compares without a None check.
NO_LIMIT: Final = 2**63

_SAFE_KEY: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
_UNSAFE_SEGMENT: Final = "<field>"


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a payload does not match its schema.

    ``field`` is a JSON pointer into the payload (``""`` is the root) and ``reason`` a short
    text. Neither ever contains a payload value: payloads carry secrets.
    """

    field: str
    reason: str


class SchemaError(ConfigurationError):
    """A schema uses a keyword outside the supported subset, or uses one wrongly."""


def safe_segment(key: object) -> str:
    """Show an undeclared key only if it is a plain identifier: a secret may be used as a key."""
    if isinstance(key, str) and _SAFE_KEY.fullmatch(key):
        return key
    return _UNSAFE_SEGMENT


def escape(name: str) -> str:
    """Escape a property name as a JSON pointer segment (RFC 6901)."""
    return name.replace("~", "~0").replace("/", "~1")


Ok = Callable[[Any], bool]
Check = Callable[[Any, str, list[Problem]], None]


#: What a node makes of a value whose type is exactly ``str``: ``(low, high)`` means it is
#: valid exactly when ``low <= len(value) <= high``, a frozenset that it is valid exactly when
#: it is a member, ``None`` that the compiler cannot tell (a pattern, say). Containers use it to
#: check their string members inline, without calling the member's ``ok``.
StrSpec = tuple[int, int] | frozenset[str] | None

#: Every ``str`` is valid / none is.
ANY_STRING: Final[tuple[int, int]] = (0, NO_LIMIT)
NO_STRING: Final[frozenset[str]] = frozenset()


#: What a node makes of an exact ``int`` (``low <= value <= high``) or an exact ``float``
#: (``low < value < high``, open so that NaN and the infinities fail); the bounds may be
#: infinite. ``None``: the compiler cannot tell.
Interval = tuple[float, float] | None


#: Ints checked inline lie within +-INT_WINDOW: one-digit ints, which CPython compares
#: fastest (an int against an infinite float bound is several times slower).
INT_WINDOW: Final = 2**30 - 1


def int_window(interval: tuple[float, float]) -> tuple[int, int]:
    """The ints of *interval* within +-INT_WINDOW, as ``(floor, ceiling)``.

    Inside the window an int is valid; outside it, the exact check decides. An empty window
    is ``(1, 0)``.
    """
    floor = int(max(interval[0], -INT_WINDOW))
    ceiling = int(min(interval[1], INT_WINDOW))
    return (floor, ceiling) if floor <= ceiling else (1, 0)


class Node(NamedTuple):
    """A compiled schema: ``ok`` is the fast path, ``check`` collects problems.

    ``strs``, ``ints`` and ``floats`` are exact summaries of ``ok`` for values of exactly
    those types, when the compiler knows one, and ``str_list`` a sufficient one for a list of
    strings: containers use them to check members inline.
    """

    ok: Ok
    check: Check
    strs: StrSpec = None
    ints: Interval = None
    floats: Interval = None
    #: ``(fewest, most, low, high)``: an exact ``list`` of ``fewest`` to ``most`` exact strs,
    #: each ``low`` to ``high`` code points long, is valid (a sufficient condition only).
    str_list: tuple[int, int, int, int] | None = None


class FullError(Exception):
    """Raised inside the slow path once MAX_PROBLEMS problems are collected."""


def report(out: list[Problem], field: str, reason: str) -> None:
    out.append(Problem(field, reason))
    if len(out) >= MAX_PROBLEMS:
        raise FullError


def always(_value: Any) -> bool:
    return True


def _never(_value: Any) -> bool:
    return False


def nothing(_value: Any, _path: str, _out: list[Problem]) -> None:
    return


def _not_allowed(_value: Any, path: str, out: list[Problem]) -> None:
    report(out, path, "not allowed")


ACCEPT: Final = Node(always, nothing, ANY_STRING)
REJECT: Final = Node(_never, _not_allowed, NO_STRING)


# -- type predicates ---------------------------------------------------------------------

def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_integer(value: Any) -> bool:
    if isinstance(value, int):
        return not isinstance(value, bool)
    return isinstance(value, float) and value.is_integer()


def is_number(value: Any) -> bool:
    if isinstance(value, int):
        return not isinstance(value, bool)
    return isinstance(value, float) and math.isfinite(value)


def is_numeric(value: Any) -> bool:
    """Anything numeric bounds apply to: non-bool ints and every float (NaN compares false)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _is_object(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)  # the ABC check costs ~100 ns


def is_array(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _is_null(value: Any) -> bool:
    return value is None


TYPES: Final[Mapping[str, Ok]] = {
    "string": _is_string, "integer": _is_integer, "number": is_number,
    "boolean": _is_boolean, "object": _is_object, "array": is_array, "null": _is_null,
}


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0``, but ``True != 1``; lists and objects compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if is_numeric(a) and is_numeric(b):
        return bool(a == b)
    if is_array(a) and is_array(b):
        return len(a) == len(b) and all(map(json_equal, a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return len(a) == len(b) and all(k in b and json_equal(v, b[k]) for k, v in a.items())
    return a is None and b is None
