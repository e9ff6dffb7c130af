# Copyright 2026 llm-audit-log developers
# SPDX-License-Identifier: Apache-2.0
"""One builder per keyword family: each returns a fast check and a problem-collecting one."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from llm_audit_log.schema._nodes import (
    ACCEPT,
    NO_LIMIT,
    REJECT,
    TYPES,
    Node,
    Problem,
    SchemaError,
    escape,
    is_number,
    is_numeric,
    json_equal,
    report,
    safe_segment,
)

if TYPE_CHECKING:
    from llm_audit_log.schema._compile import Context

__all__ = [
    "ARRAY_KEYWORDS", "NUMBER_KEYWORDS", "OBJECT_KEYWORDS", "STRING_KEYWORDS", "array_part",
    "generic_parts", "number_part", "object_part", "schemas", "string_part",
]

STRING_KEYWORDS: Final = ("minLength", "maxLength", "pattern")
NUMBER_KEYWORDS: Final = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
OBJECT_KEYWORDS: Final = ("properties", "required", "additionalProperties", "maxProperties")
ARRAY_KEYWORDS: Final = ("items", "minItems", "maxItems")
_REF_PREFIX: Final = "#/$defs/"


# -- reading keyword values --------------------------------------------------------------

def _count(schema: Mapping[str, Any], key: str, where: str) -> int | None:
    value = schema.get(key)
    if value is None and key not in schema:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SchemaError(f"{where}: {key} must be a non-negative integer")
    return value


def _bound(schema: Mapping[str, Any], key: str, where: str) -> float | None:
    if key not in schema:
        return None
    value: float = schema[key]
    if not is_number(value):
        raise SchemaError(f"{where}: {key} must be a finite number")
    return value


def schemas(value: Any, key: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise SchemaError(f"{where}: {key} must be an object whose keys are strings")
    return value


# -- keyword families -------------------------------------------------------------------

def string_part(schema: Mapping[str, Any], _ctx: Context, where: str,
                 typed: str | None) -> Node:
    low = _count(schema, "minLength", where) or 0
    max_length = _count(schema, "maxLength", where)
    high = NO_LIMIT if max_length is None else max_length
    regex: re.Pattern[str] | None = None
    if "pattern" in schema:
        if not isinstance(schema["pattern"], str):
            raise SchemaError(f"{where}: pattern must be a string")
        try:
            regex = re.compile(schema["pattern"])
        except re.error as exc:
            raise SchemaError(f"{where}: pattern is not a valid regular expression") from exc
    search = None if regex is None else regex.search
    too_short = "must not be empty" if low == 1 else f"shorter than {low} characters"
    too_long = f"longer than {high} characters"
    wrong_type = typed is None  # guarded: other types pass

    def ok(value: Any) -> bool:
        if not isinstance(value, str):
            return wrong_type
        return low <= len(value) <= high and (search is None or search(value) is not None)

    def check(value: Any, path: str, out: list[Problem]) -> None:
        if not isinstance(value, str):
            return
        if len(value) < low:
            report(out, path, too_short)
        if len(value) > high:
            report(out, path, too_long)
        if search is not None and search(value) is None:
            report(out, path, "does not match the required pattern")

    return Node(ok, check)


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

    return Node(ok, check)


def object_part(schema: Mapping[str, Any], ctx: Context, where: str,
                 typed: str | None) -> Node:
    declared = schemas(schema.get("properties", {}), "properties", where)
    properties = {name: ctx.nested(sub, f"{where}/properties/{escape(name)}")
                  for name, sub in declared.items()}
    required_raw = schema.get("required", [])
    if (not isinstance(required_raw, list) or not all(isinstance(r, str) for r in required_raw)
            or len(set(required_raw)) != len(required_raw)):
        raise SchemaError(f"{where}: required must be a list of distinct strings")
    required: tuple[str, ...] = tuple(required_raw)
    required_set = frozenset(required)
    segments = {name: "/" + escape(name) for name in (*declared, *required)}
    extra_schema = schema.get("additionalProperties", True)
    if not isinstance(extra_schema, (bool, Mapping)):
        raise SchemaError(f"{where}: additionalProperties must be a boolean or a schema")
    extra: Node | None = ctx.nested(extra_schema, f"{where}/additionalProperties")
    if extra is ACCEPT:
        extra = None
    closed = extra is REJECT
    max_properties = _count(schema, "maxProperties", where)
    most = NO_LIMIT if max_properties is None else max_properties
    get = properties.get
    wrong_type = typed is None

    def ok(value: Any) -> bool:
        if type(value) is not dict and not isinstance(value, Mapping):
            return wrong_type
        if len(value) > most or not value.keys() >= required_set:
            return False
        for key, member in value.items():
            node = get(key)
            if node is not None:
                if not node.ok(member):
                    return False
            elif closed or (extra is not None and not extra.ok(member)):
                return False
        return True

    def check(value: Any, path: str, out: list[Problem]) -> None:
        if not isinstance(value, Mapping):
            return
        if len(value) > most:
            report(out, path, f"more than {most} properties")
            return
        for name in required:
            if name not in value:
                report(out, path + segments[name], "missing required field")
        for key, member in value.items():
            node = get(key)
            if node is not None:
                if not node.ok(member):
                    node.check(member, path + segments[key], out)
            elif closed:
                report(out, f"{path}/{safe_segment(key)}", "unexpected field")
            elif extra is not None and not extra.ok(member):
                extra.check(member, f"{path}/{safe_segment(key)}", out)

    return Node(ok, check)


def array_part(schema: Mapping[str, Any], ctx: Context, where: str,
                typed: str | None) -> Node:
    if "items" in schema and not isinstance(schema["items"], (bool, Mapping)):
        raise SchemaError(f"{where}: items must be one schema (prefixItems is not supported)")
    items = ctx.nested(schema["items"], f"{where}/items") if "items" in schema else ACCEPT
    item_ok = None if items is ACCEPT else items.ok
    fewest = _count(schema, "minItems", where) or 0
    max_items = _count(schema, "maxItems", where)
    most = NO_LIMIT if max_items is None else max_items
    too_few = "must not be empty" if fewest == 1 else f"fewer than {fewest} items"
    wrong_type = typed is None

    def ok(value: Any) -> bool:
        if not isinstance(value, (list, tuple)):
            return wrong_type
        if not fewest <= len(value) <= most:
            return False
        return item_ok is None or all(map(item_ok, value))

    def check(value: Any, path: str, out: list[Problem]) -> None:
        if not isinstance(value, (list, tuple)):
            return
        if len(value) < fewest:
            report(out, path, too_few)
        if len(value) > most:
            report(out, path, f"more than {most} items")
            return
        if item_ok is not None:
            for index, member in enumerate(value):
                if not item_ok(member):
                    items.check(member, f"{path}/{index}", out)

    return Node(ok, check)


def generic_parts(schema: Mapping[str, Any], ctx: Context, where: str) -> list[Node]:
    parts: list[Node] = []
    if "enum" in schema:
        if not isinstance(schema["enum"], list):
            raise SchemaError(f"{where}: enum must be a list")
        parts.append(_one_of_values(copy.deepcopy(schema["enum"]),
                                    "not one of the allowed values"))
    if "const" in schema:
        parts.append(_one_of_values([copy.deepcopy(schema["const"])], "not the allowed value"))
    if "allOf" in schema:
        subs = schema["allOf"]
        if not isinstance(subs, list) or not subs:
            raise SchemaError(f"{where}: allOf must be a non-empty list of schemas")
        parts.extend(ctx.compile(sub, f"{where}/allOf/{i}") for i, sub in enumerate(subs))
    if "$ref" in schema:
        ref = schema["$ref"]
        name = ref[len(_REF_PREFIX):] if isinstance(ref, str) else ""
        if not isinstance(ref, str) or not ref.startswith(_REF_PREFIX) or "/" in name:
            raise SchemaError(f"{where}: $ref must have the form #/$defs/<name>")
        name = name.replace("~1", "/").replace("~0", "~")
        parts.append(ctx.resolve(name, where))
    return parts


def _one_of_values(allowed: list[Any], reason: str) -> Node:
    if all(isinstance(v, str) for v in allowed):
        strings = frozenset(allowed)

        def ok(value: Any) -> bool:
            return isinstance(value, str) and value in strings
    else:
        def ok(value: Any) -> bool:
            return any(json_equal(value, each) for each in allowed)

    def check(value: Any, path: str, out: list[Problem]) -> None:
        if not ok(value):
            report(out, path, reason)

    return Node(ok, check)
