# Copyright 2026 llm-audit-log developers
# SPDX-License-Identifier: Apache-2.0
"""The number keyword family: bounds, and the exact int/float fast checks they compile to.

Split from ``_parts.py`` (one builder per keyword family) because the typed fast checks need
interval arithmetic of their own: closed int intervals, open float intervals, nextafter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from llm_audit_log.schema._nodes import (
    ANY_STRING,
    NO_STRING,
    TYPES,
    Interval,
    Node,
    Ok,
    Problem,
    SchemaError,
    int_window,
    is_number,
    is_numeric,
    report,
)

if TYPE_CHECKING:
    from llm_audit_log.schema._compile import Context

__all__ = ["NUMBER_KEYWORDS", "number_part"]

NUMBER_KEYWORDS: Final = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _bound(schema: Mapping[str, Any], key: str, where: str) -> float | None:
    if key not in schema:
        return None
    value: float = schema[key]
    if not is_number(value):
        raise SchemaError(f"{where}: {key} must be a finite number")
    return value


def number_part(schema: Mapping[str, Any], _ctx: Context, where: str,
                 typed: str | None) -> Node:
    minimum = _bound(schema, "minimum", where)
    maximum = _bound(schema, "maximum", where)
    above = _bound(schema, "exclusiveMinimum", where)
    below = _bound(schema, "exclusiveMaximum", where)
    kind = is_numeric if typed is None else TYPES[typed]
    wrong_type = typed is None

    # Written as "fails if v < minimum", as JSON Schema states it: NaN then fails nothing.
    def ok(value: Any) -> bool:
        if not kind(value):
            return wrong_type
        return not ((minimum is not None and value < minimum)
                    or (maximum is not None and value > maximum)
                    or (above is not None and value <= above)
                    or (below is not None and value >= below))

    fast: Ok = ok
    ints: Interval = None
    floats: Interval = None
    if typed is not None:
        ints = _int_interval(minimum, maximum, above, below)
        if typed == "number":
            floats = _float_interval(minimum, maximum, above, below)
        fast = _typed_number(ok, ints, floats)

    def check(value: Any, path: str, out: list[Problem]) -> None:
        if not is_numeric(value):
            return
        if minimum is not None and value < minimum:
            report(out, path, f"below minimum {minimum}")
        if maximum is not None and value > maximum:
            report(out, path, f"above maximum {maximum}")
        if above is not None and value <= above:
            report(out, path, f"must be greater than {above}")
        if below is not None and value >= below:
            report(out, path, f"must be less than {below}")

    if typed is None:
        return Node(ok, check, ANY_STRING)
    return Node(fast, check, NO_STRING, ints, floats)


def _int_interval(minimum: float | None, maximum: float | None, above: float | None,
                  below: float | None) -> tuple[float, float]:
    """The bounds as one closed interval for exact ints.

    ``ceil``/``floor`` are exact on ints and floats, and Python compares an int with a float
    (infinities included) exactly.
    """
    low: float = -math.inf
    high: float = math.inf
    if minimum is not None:
        low = max(low, math.ceil(minimum))
    if above is not None:
        low = max(low, math.floor(above) + 1)
    if maximum is not None:
        high = min(high, math.floor(maximum))
    if below is not None:
        high = min(high, math.ceil(below) - 1)
    return low, high


def _float_interval(minimum: float | None, maximum: float | None, above: float | None,
                    below: float | None) -> Interval:
    """The bounds plus finiteness as one open interval for exact floats, if there is one."""
    low = _float_bound(minimum, above, -math.inf)
    high = _float_bound(maximum, below, math.inf)
    return None if low is None or high is None else (low, high)


def _float_bound(inclusive: float | None, exclusive: float | None,
                 limit: float) -> float | None:
    """The tightest exclusive float bound on one side (*limit* is -inf below, inf above).

    For a float ``v``: ``v >= m`` exactly when ``v > nextafter(m, -inf)``, and ``v <= m``
    exactly when ``v < nextafter(m, inf)``. ``None`` when a bound is an int that no float
    represents exactly.
    """
    best = limit
    for value, shift in ((inclusive, True), (exclusive, False)):
        if value is None:
            continue
        try:
            as_float = float(value)
        except OverflowError:
            return None
        if as_float != value:
            return None
        bound = math.nextafter(as_float, limit) if shift else as_float
        best = max(best, bound) if limit < 0 else min(best, bound)
    return best


def _typed_number(generic: Ok, ints: tuple[float, float], floats: Interval) -> Ok:
    """Specialise a typed number check for exact ``int`` and, if known, exact ``float``.

    Anything else (``bool``, subclasses, a float for ``integer``, an int outside
    :func:`int_window`) takes the generic path.
    """
    low, high = ints
    floor, ceiling = int_window(ints)
    if floats is None:
        if high == math.inf and low == floor:  # "integer >= n", the common shape
            def ok(value: Any) -> bool:
                if type(value) is int:
                    return value >= floor
                return generic(value)

            return ok

        def ok_int(value: Any) -> bool:
            if type(value) is int and floor <= value <= ceiling:
                return True
            return generic(value)

        return ok_int
    low_open, high_open = floats

    def ok_number(value: Any) -> bool:
        kind = type(value)
        if kind is float:
            number: float = value
            return low_open < number < high_open
        if kind is int and floor <= value <= ceiling:
            return True
        return generic(value)

    return ok_number
