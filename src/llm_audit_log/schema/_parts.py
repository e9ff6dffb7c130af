# Copyright 2026 llm-audit-log developers
# SPDX-License-Identifier: Apache-2.0
"""One builder per keyword family: each returns a fast check and a problem-collecting one.

The number family, with its interval arithmetic, is in ``_numbers.py``.
"""

from __future__ import annotations

import copy
import operator
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from llm_audit_log.schema._nodes import (
    ACCEPT,
    ANY_STRING,
    INT_WINDOW,
    NO_LIMIT,
    NO_STRING,
    REJECT,
    Node,
    Ok,
    Problem,
    SchemaError,
    escape,
    int_window,
    json_equal,
    report,
    safe_segment,
)

if TYPE_CHECKING:
    from llm_audit_log.schema._compile import Context

__all__ = [
    "ARRAY_KEYWORDS", "OBJECT_KEYWORDS", "STRING_KEYWORDS", "array_part", "generic_parts",
    "object_part", "schemas", "string_part",
]

STRING_KEYWORDS: Final = ("minLength", "maxLength", "pattern")
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

    if search is not None and typed is not None:
        generic = ok
        longest = min(high, INT_WINDOW)

        def ok(value: Any) -> bool:
            if type(value) is str and low <= len(value) <= longest:
                return search(value) is not None
            return generic(value)

    def check(value: Any, path: str, out: list[Problem]) -> None:
        if not isinstance(value, str):
            return
        if len(value) < low:
            report(out, path, too_short)
        if len(value) > high:
            report(out, path, too_long)
        if search is not None and search(value) is None:
            report(out, path, "does not match the required pattern")

    return Node(ok, check, None if search is not None else (low, high))


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
    sized = max_properties is not None  # no len() reaches NO_LIMIT: skip the comparison
    get = properties.get
    wrong_type = typed is None
    extra_ok = None if extra is None else extra.ok
    # The fast path calls each member's ok, except that a member of exactly str, int, float
    # or list type is checked inline when its property's verdict on that type is known
    # (Node.strs, .ints, .floats, .str_list). Where the inline check is only sufficient (it
    # compares one-digit ints, see INT_WINDOW), a member it does not accept goes on to its
    # own ok. An exact dict looks its required keys up in one C call: a missing one raises
    # KeyError, and an exact dict has no __missing__ to run.
    oks = {name: node.ok for name, node in properties.items()}
    lengths = {name: (node.strs[0], min(node.strs[1], INT_WINDOW))
               for name, node in properties.items() if isinstance(node.strs, tuple)}
    members = {name: node.strs for name, node in properties.items()
               if isinstance(node.strs, frozenset)}
    int_windows = {name: int_window(node.ints) for name, node in properties.items()
                   if node.ints}
    float_bounds = {name: node.floats for name, node in properties.items() if node.floats}
    str_lists = {name: (node.str_list[0], min(node.str_list[1], INT_WINDOW),
                        node.str_list[2], min(node.str_list[3], INT_WINDOW))
                 for name, node in properties.items() if node.str_list}
    ok_for = oks.get
    length_for = lengths.get
    set_for = members.get
    int_for = int_windows.get
    float_for = float_bounds.get
    str_list_for = str_lists.get
    fetch_required = operator.itemgetter(*required) if required else None

    def ok(value: Any) -> bool:
        if type(value) is dict:
            if sized and len(value) > most:
                return False
            if fetch_required is not None:
                try:
                    fetch_required(value)
                except KeyError:
                    return False
        elif isinstance(value, Mapping):
            if len(value) > most or not value.keys() >= required_set:
                return False
        else:
            return wrong_type
        for key, member in value.items():
            kind = type(member)
            if kind is str:
                bounds = length_for(key)
                if bounds is not None:
                    low, high = bounds
                    if low <= len(member) <= high:
                        continue
                else:
                    allowed = set_for(key)
                    if allowed is not None:
                        if member in allowed:
                            continue
                        return False
            elif kind is int:
                window = int_for(key)
                if window is not None:
                    floor, ceiling = window
                    if floor <= member <= ceiling:
                        continue
            elif kind is float:
                interval = float_for(key)
                if interval is not None:
                    above, below = interval
                    if above < member < below:
                        continue
                    return False
            elif kind is list:
                shape = str_list_for(key)
                if shape is not None:
                    fewest, most_items, shortest, longest = shape
                    if fewest <= len(member) <= most_items:
                        for item in member:
                            if type(item) is not str or not shortest <= len(item) <= longest:
                                break
                        else:
                            continue
            member_ok = ok_for(key)
            if member_ok is not None:
                if not member_ok(member):
                    return False
            elif closed or (extra_ok is not None and not extra_ok(member)):
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

    return Node(ok, check, NO_STRING if typed is not None else ANY_STRING)


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

    fast = _list_fast_path(ok, fewest, min(most, INT_WINDOW), items)

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

    str_list = None
    if typed is not None and isinstance(items.strs, tuple):
        str_list = (fewest, most, *items.strs)
    return Node(fast, check, NO_STRING if typed is not None else ANY_STRING, str_list=str_list)


def _list_fast_path(generic: Ok, fewest: int, most: int, items: Node) -> Ok:
    """Accept an exact list of *fewest* to *most* valid items without the generic checks.

    String items are checked inline when the item's verdict on them is known; any item the
    inline check does not accept goes to the item's own ok. Anything else (a tuple, a list
    subclass, a count outside the window) takes *generic*, which is exact.
    """
    item_ok = items.ok
    if items is ACCEPT:
        def ok(value: Any) -> bool:
            if type(value) is list and fewest <= len(value) <= most:
                return True
            return generic(value)

        return ok
    if isinstance(items.strs, tuple):
        shortest, longest = items.strs[0], min(items.strs[1], INT_WINDOW)

        def ok_lengths(value: Any) -> bool:
            if type(value) is not list or not fewest <= len(value) <= most:
                return generic(value)
            for member in value:
                if (type(member) is not str or not shortest <= len(member) <= longest) \
                        and not item_ok(member):
                    return False
            return True

        return ok_lengths
    if isinstance(items.strs, frozenset) and items.strs:
        allowed = items.strs

        def ok_members(value: Any) -> bool:
            if type(value) is not list or not fewest <= len(value) <= most:
                return generic(value)
            for member in value:
                if (type(member) is not str or member not in allowed) and not item_ok(member):
                    return False
            return True

        return ok_members

    def ok_items(value: Any) -> bool:
        if type(value) is not list or not fewest <= len(value) <= most:
            return generic(value)
        for member in value:  # noqa: SIM110 - a loop calls Python faster than all(map())
            if not item_ok(member):
                return False
        return True

    return ok_items


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
    # An exact str equals only the exact strs among the values (json_equal compares strings
    # with ==); a str subclass among them could redefine ==, so then the verdict is unknown.
    texts = [v for v in allowed if isinstance(v, str)]
    strs = frozenset(texts) if all(type(v) is str for v in texts) else None
    if len(texts) == len(allowed):
        strings = frozenset(allowed)

        def ok(value: Any) -> bool:
            if type(value) is str:
                return value in strings
            return isinstance(value, str) and value in strings
    else:
        def ok(value: Any) -> bool:
            return any(json_equal(value, each) for each in allowed)

    def check(value: Any, path: str, out: list[Problem]) -> None:
        if not ok(value):
            report(out, path, reason)

    return Node(ok, check, strs)
