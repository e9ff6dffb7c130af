# Copyright 2026 llm-audit-log developers
# SPDX-License-Identifier: Apache-2.0
"""Compile a documented subset of JSON Schema (draft 2020-12) into nested closures.

The filter validates every audit event in the caller's thread, so validation must cost
microseconds and must not pull in jsonschema at run time. Each schema is compiled once into
two closures per node: a boolean fast path that allocates nothing, and a slow path that
collects problems. The slow path only runs when the fast path says no.

The fast path is specialised while compiling: each node also records what it makes of a
value of exactly ``str``, ``int`` or ``float`` (a length range, a set of strings, an
interval; see :class:`~llm_audit_log.schema._nodes.Node`), and objects and arrays check such
members inline rather than calling the member's closure. Anything else (subclasses, ``bool``,
tuples, other mappings, ints beyond the inline window) goes to the generic closure, so the
verdict is the same either way; ``tests/schema/test_fast_paths.py`` holds the two together.

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

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from llm_audit_log.schema._nodes import (
    ACCEPT,
    ANY_STRING,
    INT_WINDOW,
    MAX_PROBLEMS,
    NO_STRING,
    REJECT,
    TYPES,
    Check,
    FullError,
    Node,
    Ok,
    Problem,
    SchemaError,
    StrSpec,
    always,
    escape,
    nothing,
    report,
    safe_segment,
)
from llm_audit_log.schema._numbers import NUMBER_KEYWORDS, number_part
from llm_audit_log.schema._parts import (
    ARRAY_KEYWORDS,
    OBJECT_KEYWORDS,
    STRING_KEYWORDS,
    array_part,
    generic_parts,
    object_part,
    schemas,
    string_part,
)

__all__ = [
    "DRAFT_2020_12",
    "MAX_PROBLEMS",
    "CompiledSchema",
    "Context",
    "Problem",
    "SchemaError",
    "compile_schema",
    "safe_segment",
]

#: The only dialect the compiler accepts in ``$schema``.
DRAFT_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"

_ROOT_ONLY: Final = frozenset({"$schema", "$id", "$defs"})
_ANNOTATIONS: Final = frozenset({"$comment", "title", "description", "examples", "default"})
_KEYWORDS: Final = frozenset({
    "type", "properties", "required", "additionalProperties", "enum", "const",
    "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "items", "minItems", "maxItems", "maxProperties", "$ref", "allOf",
})


class Context:
    """Compile-time state: the root's ``$defs`` and which of them are compiled."""

    def __init__(self, defs: Mapping[str, Any]) -> None:
        self.defs = defs
        self.compiled: dict[str, Node] = {}
        self.started: dict[str, int] = {}  # name -> nesting depth when its compile began
        self.depth = 0  # how many properties/items levels deep the compiler is

    def resolve(self, name: str, where: str) -> Node:
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

            return Node(ok, check)
        self.started[name] = self.depth
        node = _compile(self.defs[name], self, f"#/$defs/{escape(name)}")
        del self.started[name]
        self.compiled[name] = node
        return node

    def compile(self, schema: Any, where: str) -> Node:
        """Compile a schema that applies to the same instance (an ``allOf`` member)."""
        return _compile(schema, self, where)

    def nested(self, schema: Any, where: str) -> Node:
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


def _compile(schema: Any, ctx: Context, where: str, *, root: bool = False) -> Node:
    if schema is True:
        return ACCEPT
    if schema is False:
        return REJECT
    if not isinstance(schema, Mapping):
        raise SchemaError(f"{where}: a schema must be an object or a boolean")
    _check_keys(schema, where, root=root)

    names = _type_names(schema, where)
    single = names[0] if names is not None and len(names) == 1 else None
    kinds = set(TYPES) if names is None else set(names)
    parts: list[Node] = []
    main: Node | None = None
    builders: tuple[tuple[tuple[str, ...], frozenset[str], Callable[..., Node]], ...] = (
        (STRING_KEYWORDS, frozenset({"string"}), string_part),
        (NUMBER_KEYWORDS, frozenset({"integer", "number"}), number_part),
        (OBJECT_KEYWORDS, frozenset({"object"}), object_part),
        (ARRAY_KEYWORDS, frozenset({"array"}), array_part),
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
    parts.extend(generic_parts(schema, ctx, where))

    type_ok: Ok | None = None
    type_reason = ""
    if names is not None:
        type_ok = _type_predicate(names)
        type_reason = "expected " + " or ".join(names)
    if main is not None:
        parts.insert(0, main)  # a typed part checks the type itself on the fast path
    elif type_ok is not None and names is not None:
        parts.insert(0, _type_node(type_ok, names))  # the checker reports a wrong type
    if not parts:
        return ACCEPT
    generic = _all([p.ok for p in parts])
    strs = _strings(parts, generic)
    check = _checker(type_ok, type_reason, tuple(p.check for p in parts))
    if len(parts) == 1:
        only = parts[0]
        return Node(_specialise(generic, strs, names), check, strs, only.ints, only.floats,
                    only.str_list)
    return Node(_specialise(generic, strs, names), check, strs)


def _type_names(schema: Mapping[str, Any], where: str) -> list[str] | None:
    if "type" not in schema:
        return None
    raw = schema["type"]
    names = [raw] if isinstance(raw, str) else raw
    if (not isinstance(names, list) or not names or len(set(map(str, names))) != len(names)
            or not all(isinstance(n, str) and n in TYPES for n in names)):
        raise SchemaError(f"{where}: type must be one of {sorted(TYPES)} or a list of them")
    return names


def _type_predicate(names: list[str]) -> Ok:
    if len(names) == 1:
        return TYPES[names[0]]
    predicates = tuple(TYPES[n] for n in names)
    return lambda v: any(p(v) for p in predicates)


_ANY_NUMBER: Final = (-math.inf, math.inf)


def _type_node(type_ok: Ok, names: list[str]) -> Node:
    """The type check alone, with what it makes of exact strs, ints and floats."""
    strs = ANY_STRING if "string" in names else NO_STRING
    if names == ["number"]:
        return Node(type_ok, nothing, strs, _ANY_NUMBER, _ANY_NUMBER)
    if names == ["integer"]:
        return Node(type_ok, nothing, strs, _ANY_NUMBER)
    return Node(type_ok, nothing, strs)


def _all(oks: list[Ok]) -> Ok:
    if not oks:
        return always
    if len(oks) == 1:
        return oks[0]
    if len(oks) == 2:  # the common case, spelled out for speed
        a, b = oks
        return lambda v: a(v) and b(v)
    chain = tuple(oks)
    return lambda v: all(ok(v) for ok in chain)


def _strings(parts: list[Node], ok: Ok) -> StrSpec:
    """What all *parts* together make of an exact ``str`` (see :data:`StrSpec`)."""
    low, high = ANY_STRING
    sets: list[frozenset[str]] = []
    known = True
    for part in parts:
        spec = part.strs
        if spec is None:
            known = False
        elif isinstance(spec, frozenset):
            sets.append(spec)
        else:
            low, high = max(low, spec[0]), min(high, spec[1])
    if sets:
        # Only these strings can pass; keep those the whole node accepts. They are exact
        # strs, so the verdict holds for every exact str equal to one of them.
        try:
            return frozenset(text for text in frozenset.intersection(*sets) if ok(text))
        except Exception:  # e.g. a $ref whose target is still being compiled
            return None
    if not known:
        return None
    return (low, high) if low <= high else NO_STRING


def _specialise(generic: Ok, strs: StrSpec, names: list[str] | None) -> Ok:
    """Decide exact ``str`` values inline when the node's verdict on them is known."""
    if isinstance(strs, frozenset) and (names is None or names == ["string"]):
        allowed = strs
        return lambda v: v in allowed if type(v) is str else generic(v)
    if isinstance(strs, tuple) and names == ["string"] and strs != ANY_STRING:
        # Sufficient, not exact: a string longer than INT_WINDOW goes to generic too.
        low, high = strs[0], min(strs[1], INT_WINDOW)
        if low == 0:
            return lambda v: (type(v) is str and len(v) <= high) or generic(v)
        return lambda v: (type(v) is str and low <= len(v) <= high) or generic(v)
    return generic


def _checker(type_ok: Ok | None, type_reason: str, checks: tuple[Check, ...]) -> Check:
    def check(value: Any, path: str, out: list[Problem]) -> None:
        if type_ok is not None and not type_ok(value):
            report(out, path, type_reason)
            return
        for each in checks:
            each(value, path, out)

    return check


# -- public entry points -----------------------------------------------------------------

class CompiledSchema:
    """A schema compiled once into closures; validating never raises."""

    __slots__ = ("_check", "_ok")

    def __init__(self, node: Node) -> None:
        self._ok = node.ok
        self._check = node.check

    @property
    def fast_path(self) -> Ok:
        """The boolean fast path itself, for callers that guard it: it may raise."""
        return self._ok

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
        except FullError:
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
        return CompiledSchema(ACCEPT if schema else REJECT)
    if not isinstance(schema, Mapping):
        raise SchemaError("#: a schema must be an object or a boolean")
    ctx = Context(schemas(schema.get("$defs", {}), "$defs", "#"))
    for name in ctx.defs:
        ctx.resolve(name, "#/$defs")
    return CompiledSchema(_compile(schema, ctx, "#", root=True))
