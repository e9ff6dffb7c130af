# Copyright 2026 llm-audit-log developers
# SPDX-License-Identifier: Apache-2.0
"""Compile a documented subset of JSON Schema (draft 2020-12) into nested closures.

The filter validates every audit event in the caller's thread, so validation must cost
microseconds and must not pull in jsonschema at run time. Each schema is compiled once into
two closures per node: a boolean fast path that allocates nothing, and a slow path that
collects problems. The slow path only runs when the fast path says no.

Supported keywords: ``type`` (one name or a list), ``properties``, ``required``,
``additionalProperties`` (boolean or schema), ``enum``, ``const``, ``minLength``,
``maxLength``, ``pattern``, ``minimum``, ``maximum``, ``exclusiveMinimum``,
``exclusiveMaximum``, ``items`` (one schema), ``minItems``, ``maxItems``, ``maxProperties``,
``$ref`` (only ``#/$defs/<name>``) and ``allOf``. Ignored annotations: ``$comment``,
``title``, ``description``, ``examples``, ``default``, any ``x-…`` key, and at the root only
``$schema`` (must be draft 2020-12), ``$id`` and ``$defs``. Any other keyword raises
:class:`SchemaError`: a schema that silently ignored a constraint would accept events it
claims to reject.

Semantics follow JSON Schema, with these deliberate choices:

- ``bool`` is neither ``integer`` nor ``number``; ``1.0`` is an ``integer``.
- ``number`` rejects NaN and infinities: JSON (RFC 8259) cannot carry them.
- ``array`` accepts ``list`` and ``tuple``; ``object`` accepts any ``Mapping``.
- ``pattern`` is a Python ``re`` pattern used with ``re.search`` (unanchored, as in
  JSON Schema). Python's ``$`` also matches before a final newline: bound the length too.
- Lengths count code points. Once ``maxItems`` or ``maxProperties`` fails, the members are
  not inspected, so one oversized value cannot cost unbounded time.

Problems never contain a payload value, and a payload key that the schema does not declare
is shown only if it is a plain identifier (see :func:`safe_segment`).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from llm_audit_log.errors import ConfigurationError

__all__ = [
    "DRAFT_2020_12",
    "MAX_PROBLEMS",
    "CompiledSchema",
    "Problem",
    "SchemaError",
    "compile_schema",
    "safe_segment",
]

#: Problems collected per payload before validation stops: a rejected record stays small.
MAX_PROBLEMS: Final = 50
#: The only dialect the compiler accepts in ``$schema``.
DRAFT_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"

_SAFE_KEY: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
_UNSAFE_SEGMENT: Final = "<field>"
_REF_PREFIX: Final = "#/$defs/"
_ROOT_ONLY: Final = frozenset({"$schema", "$id", "$defs"})
_ANNOTATIONS: Final = frozenset({"$comment", "title", "description", "examples", "default"})
_KEYWORDS: Final = frozenset({
    "type", "properties", "required", "additionalProperties", "enum", "const",
    "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "items", "minItems", "maxItems", "maxProperties", "$ref", "allOf",
})
_STRING_KEYWORDS: Final = ("minLength", "maxLength", "pattern")
_NUMBER_KEYWORDS: Final = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_OBJECT_KEYWORDS: Final = ("properties", "required", "additionalProperties", "maxProperties")
_ARRAY_KEYWORDS: Final = ("items", "minItems", "maxItems")
_NO_LIMIT: Final = 2**63


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


def _escape(name: str) -> str:
    """Escape a property name as a JSON pointer segment (RFC 6901)."""
    return name.replace("~", "~0").replace("/", "~1")


_Ok = Callable[[Any], bool]
_Check = Callable[[Any, str, list[Problem]], None]


class _Node(NamedTuple):
    """A compiled schema: ``ok`` is the fast path, ``check`` collects problems."""

    ok: _Ok
    check: _Check


class _FullError(Exception):
    """Raised inside the slow path once MAX_PROBLEMS problems are collected."""


def _report(out: list[Problem], field: str, reason: str) -> None:
    out.append(Problem(field, reason))
    if len(out) >= MAX_PROBLEMS:
        raise _FullError


def _always(_value: Any) -> bool:
    return True


def _never(_value: Any) -> bool:
    return False


def _nothing(_value: Any, _path: str, _out: list[Problem]) -> None:
    return


def _not_allowed(_value: Any, path: str, out: list[Problem]) -> None:
    _report(out, path, "not allowed")


_ACCEPT: Final = _Node(_always, _nothing)
_REJECT: Final = _Node(_never, _not_allowed)


# -- type predicates ---------------------------------------------------------------------

def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_integer(value: Any) -> bool:
    if isinstance(value, int):
        return not isinstance(value, bool)
    return isinstance(value, float) and value.is_integer()


def _is_number(value: Any) -> bool:
    if isinstance(value, int):
        return not isinstance(value, bool)
    return isinstance(value, float) and math.isfinite(value)


def _is_numeric(value: Any) -> bool:
    """Anything numeric bounds apply to: non-bool ints and every float (NaN compares false)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _is_object(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)  # the ABC check costs ~100 ns


def _is_array(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _is_null(value: Any) -> bool:
    return value is None


_TYPES: Final[Mapping[str, _Ok]] = {
    "string": _is_string, "integer": _is_integer, "number": _is_number,
    "boolean": _is_boolean, "object": _is_object, "array": _is_array, "null": _is_null,
}


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0``, but ``True != 1``; lists and objects compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if _is_numeric(a) and _is_numeric(b):
        return bool(a == b)
    if _is_array(a) and _is_array(b):
        return len(a) == len(b) and all(map(_json_equal, a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return len(a) == len(b) and all(k in b and _json_equal(v, b[k]) for k, v in a.items())
    return a is None and b is None


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
    if not _is_number(value):
        raise SchemaError(f"{where}: {key} must be a finite number")
    return value


def _schemas(value: Any, key: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise SchemaError(f"{where}: {key} must be an object whose keys are strings")
    return value


class _Context:
    """Compile-time state: the root's ``$defs`` and which of them are compiled."""

    def __init__(self, defs: Mapping[str, Any]) -> None:
        self.defs = defs
        self.compiled: dict[str, _Node] = {}
        self.started: dict[str, int] = {}  # name -> nesting depth when its compile began
        self.depth = 0  # how many properties/items levels deep the compiler is

    def resolve(self, name: str, where: str) -> _Node:
        node = self.compiled.get(name)
        if node is not None:
            return node
        if name not in self.defs:
            raise SchemaError(f"{where}: $ref target #/$defs/{name} does not exist")
        if name in self.started:
            if self.started[name] == self.depth:
                raise SchemaError(f"{where}: $ref cycle through #/$defs/{name} never nests")
            compiled = self.compiled  # filled in once the outer compile of *name* ends

            def ok(value: Any) -> bool:
                return compiled[name].ok(value)

            def check(value: Any, path: str, out: list[Problem]) -> None:
                compiled[name].check(value, path, out)

            return _Node(ok, check)
        self.started[name] = self.depth
        node = _compile(self.defs[name], self, f"#/$defs/{_escape(name)}")
        del self.started[name]
        self.compiled[name] = node
        return node

    def nested(self, schema: Any, where: str) -> _Node:
        """Compile a schema that applies to a member, one level deeper in the instance."""
        self.depth += 1
        try:
            return _compile(schema, self, where)
        finally:
            self.depth -= 1


# -- compiling ---------------------------------------------------------------------------

def _check_keys(schema: Mapping[str, Any], where: str, *, root: bool) -> None:
    for key in schema:
        if not isinstance(key, str):
            raise SchemaError(f"{where}: keywords must be strings")
        if key in _KEYWORDS or key in _ANNOTATIONS or key.startswith("x-"):
            continue
        if key in _ROOT_ONLY:
            if root:
                continue
            raise SchemaError(f"{where}: {key} is supported only at the schema root")
        raise SchemaError(
            f"{where}: unsupported keyword {key!r}; the compiler accepts a documented subset "
            "of JSON Schema and never ignores a constraint"
        )
    if root and "$schema" in schema and schema["$schema"] != DRAFT_2020_12:
        raise SchemaError(f"{where}: $schema must be {DRAFT_2020_12}")


def _compile(schema: Any, ctx: _Context, where: str, *, root: bool = False) -> _Node:
    if schema is True:
        return _ACCEPT
    if schema is False:
        return _REJECT
    if not isinstance(schema, Mapping):
        raise SchemaError(f"{where}: a schema must be an object or a boolean")
    _check_keys(schema, where, root=root)

    names = _type_names(schema, where)
    single = names[0] if names is not None and len(names) == 1 else None
    kinds = set(_TYPES) if names is None else set(names)
    parts: list[_Node] = []
    main: _Node | None = None
    builders: tuple[tuple[tuple[str, ...], frozenset[str], Callable[..., _Node]], ...] = (
        (_STRING_KEYWORDS, frozenset({"string"}), _string_part),
        (_NUMBER_KEYWORDS, frozenset({"integer", "number"}), _number_part),
        (_OBJECT_KEYWORDS, frozenset({"object"}), _object_part),
        (_ARRAY_KEYWORDS, frozenset({"array"}), _array_part),
    )
    for keywords, applies_to, build in builders:
        if not any(k in schema for k in keywords):
            continue
        typed = single in applies_to
        part = build(schema, ctx, where, single if typed else None)
        if not kinds & applies_to:
            continue  # checked for errors above, but it can never apply
        if typed:
            main = part
        else:
            parts.append(part)
    parts.extend(_generic_parts(schema, ctx, where))

    type_ok: _Ok | None = None
    type_reason = ""
    if names is not None:
        type_ok = _type_predicate(names)
        type_reason = "expected " + " or ".join(names)
    if main is not None:
        parts.insert(0, main)  # a typed part checks the type itself on the fast path
    elif type_ok is not None:
        parts.insert(0, _Node(type_ok, _nothing))  # the checker reports a wrong type
    if not parts:
        return _ACCEPT
    return _Node(_all([p.ok for p in parts]),
                 _checker(type_ok, type_reason, tuple(p.check for p in parts)))


def _type_names(schema: Mapping[str, Any], where: str) -> list[str] | None:
    if "type" not in schema:
        return None
    raw = schema["type"]
    names = [raw] if isinstance(raw, str) else raw
    if (not isinstance(names, list) or not names or len(set(map(str, names))) != len(names)
            or not all(isinstance(n, str) and n in _TYPES for n in names)):
        raise SchemaError(f"{where}: type must be one of {sorted(_TYPES)} or a list of them")
    return names


def _type_predicate(names: list[str]) -> _Ok:
    if len(names) == 1:
        return _TYPES[names[0]]
    predicates = tuple(_TYPES[n] for n in names)
    return lambda v: any(p(v) for p in predicates)


def _all(oks: list[_Ok]) -> _Ok:
    if not oks:
        return _always
    if len(oks) == 1:
        return oks[0]
    if len(oks) == 2:  # the common case, spelled out for speed
        a, b = oks
        return lambda v: a(v) and b(v)
    chain = tuple(oks)
    return lambda v: all(ok(v) for ok in chain)


def _checker(type_ok: _Ok | None, type_reason: str, checks: tuple[_Check, ...]) -> _Check:
    def check(value: Any, path: str, out: list[Problem]) -> None:
        if type_ok is not None and not type_ok(value):
            _report(out, path, type_reason)
            return
        for each in checks:
            each(value, path, out)

    return check


def _string_part(schema: Mapping[str, Any], _ctx: _Context, where: str,
                 typed: str | None) -> _Node:
    low = _count(schema, "minLength", where) or 0
    max_length = _count(schema, "maxLength", where)
    high = _NO_LIMIT if max_length is None else max_length
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
            _report(out, path, too_short)
        if len(value) > high:
            _report(out, path, too_long)
        if search is not None and search(value) is None:
            _report(out, path, "does not match the required pattern")

    return _Node(ok, check)


def _number_part(schema: Mapping[str, Any], _ctx: _Context, where: str,
                 typed: str | None) -> _Node:
    minimum = _bound(schema, "minimum", where)
    maximum = _bound(schema, "maximum", where)
    above = _bound(schema, "exclusiveMinimum", where)
    below = _bound(schema, "exclusiveMaximum", where)
    kind = _is_numeric if typed is None else _TYPES[typed]
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
        if not _is_numeric(value):
            return
        if minimum is not None and value < minimum:
            _report(out, path, f"below minimum {minimum}")
        if maximum is not None and value > maximum:
            _report(out, path, f"above maximum {maximum}")
        if above is not None and value <= above:
            _report(out, path, f"must be greater than {above}")
        if below is not None and value >= below:
            _report(out, path, f"must be less than {below}")

    return _Node(ok, check)


def _object_part(schema: Mapping[str, Any], ctx: _Context, where: str,
                 typed: str | None) -> _Node:
    declared = _schemas(schema.get("properties", {}), "properties", where)
    properties = {name: ctx.nested(sub, f"{where}/properties/{_escape(name)}")
                  for name, sub in declared.items()}
    required_raw = schema.get("required", [])
    if (not isinstance(required_raw, list) or not all(isinstance(r, str) for r in required_raw)
            or len(set(required_raw)) != len(required_raw)):
        raise SchemaError(f"{where}: required must be a list of distinct strings")
    required: tuple[str, ...] = tuple(required_raw)
    required_set = frozenset(required)
    segments = {name: "/" + _escape(name) for name in (*declared, *required)}
    extra_schema = schema.get("additionalProperties", True)
    if not isinstance(extra_schema, (bool, Mapping)):
        raise SchemaError(f"{where}: additionalProperties must be a boolean or a schema")
    extra: _Node | None = ctx.nested(extra_schema, f"{where}/additionalProperties")
    if extra is _ACCEPT:
        extra = None
    closed = extra is _REJECT
    max_properties = _count(schema, "maxProperties", where)
    most = _NO_LIMIT if max_properties is None else max_properties
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
            _report(out, path, f"more than {most} properties")
            return
        for name in required:
            if name not in value:
                _report(out, path + segments[name], "missing required field")
        for key, member in value.items():
            node = get(key)
            if node is not None:
                if not node.ok(member):
                    node.check(member, path + segments[key], out)
            elif closed:
                _report(out, f"{path}/{safe_segment(key)}", "unexpected field")
            elif extra is not None and not extra.ok(member):
                extra.check(member, f"{path}/{safe_segment(key)}", out)

    return _Node(ok, check)


def _array_part(schema: Mapping[str, Any], ctx: _Context, where: str,
                typed: str | None) -> _Node:
    if "items" in schema and not isinstance(schema["items"], (bool, Mapping)):
        raise SchemaError(f"{where}: items must be one schema (prefixItems is not supported)")
    items = ctx.nested(schema["items"], f"{where}/items") if "items" in schema else _ACCEPT
    item_ok = None if items is _ACCEPT else items.ok
    fewest = _count(schema, "minItems", where) or 0
    max_items = _count(schema, "maxItems", where)
    most = _NO_LIMIT if max_items is None else max_items
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
            _report(out, path, too_few)
        if len(value) > most:
            _report(out, path, f"more than {most} items")
            return
        if item_ok is not None:
            for index, member in enumerate(value):
                if not item_ok(member):
                    items.check(member, f"{path}/{index}", out)

    return _Node(ok, check)


def _generic_parts(schema: Mapping[str, Any], ctx: _Context, where: str) -> list[_Node]:
    parts: list[_Node] = []
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
        parts.extend(_compile(sub, ctx, f"{where}/allOf/{i}") for i, sub in enumerate(subs))
    if "$ref" in schema:
        ref = schema["$ref"]
        name = ref[len(_REF_PREFIX):] if isinstance(ref, str) else ""
        if not isinstance(ref, str) or not ref.startswith(_REF_PREFIX) or "/" in name:
            raise SchemaError(f"{where}: $ref must have the form #/$defs/<name>")
        name = name.replace("~1", "/").replace("~0", "~")
        parts.append(ctx.resolve(name, where))
    return parts


def _one_of_values(allowed: list[Any], reason: str) -> _Node:
    if all(isinstance(v, str) for v in allowed):
        strings = frozenset(allowed)

        def ok(value: Any) -> bool:
            return isinstance(value, str) and value in strings
    else:
        def ok(value: Any) -> bool:
            return any(_json_equal(value, each) for each in allowed)

    def check(value: Any, path: str, out: list[Problem]) -> None:
        if not ok(value):
            _report(out, path, reason)

    return _Node(ok, check)


# -- public entry points -----------------------------------------------------------------

class CompiledSchema:
    """A schema compiled once into closures; validating never raises."""

    __slots__ = ("_check", "_ok")

    def __init__(self, node: _Node) -> None:
        self._ok = node.ok
        self._check = node.check

    def is_valid(self, instance: Any) -> bool:
        """Whether *instance* matches, without collecting problems."""
        try:
            return self._ok(instance)
        except Exception:
            return False

    def validate(self, instance: Any) -> list[Problem]:
        """Every problem with *instance* (at most MAX_PROBLEMS); an empty list means valid.

        Never raises: an instance nested too deeply for the interpreter, or one whose
        mapping methods fail, is reported as a problem at the root.
        """
        try:
            valid = self._ok(instance)
        except Exception:
            valid = False  # the slow path meets the same failure and reports it
        if valid:
            return []
        out: list[Problem] = []
        try:
            self._check(instance, "", out)
        except _FullError:
            pass
        except RecursionError:
            out.append(Problem("", "nested too deeply"))
        except Exception:
            out.append(Problem("", "could not be validated"))
        if not out:  # fail closed should the two paths ever disagree
            out.append(Problem("", "could not be validated"))
        return out[:MAX_PROBLEMS]


def compile_schema(schema: Mapping[str, Any] | bool) -> CompiledSchema:
    """Compile *schema* once, so each validation afterwards is a few closure calls.

    Every ``$defs`` entry is compiled, used or not, so an unsupported keyword anywhere in
    the schema fails here rather than at the first event that reaches it.

    Raises:
        SchemaError: a keyword outside the supported subset, or a malformed keyword value.

    """
    if isinstance(schema, bool):
        return CompiledSchema(_ACCEPT if schema else _REJECT)
    if not isinstance(schema, Mapping):
        raise SchemaError("#: a schema must be an object or a boolean")
    ctx = _Context(_schemas(schema.get("$defs", {}), "$defs", "#"))
    for name in ctx.defs:
        ctx.resolve(name, "#/$defs")
    return CompiledSchema(_compile(schema, ctx, "#", root=True))
