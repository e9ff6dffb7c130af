# Copyright 2026 llm-audit-log developers
# SPDX-License-Identifier: Apache-2.0
"""The fast path's specialised checks: inline member checks agree with the slow path.

The compiler summarises what a node makes of exact ``str``, ``int``, ``float`` and lists of
strings, and containers check such members inline. These tests pin the edges where a
summary could drift from the generic check: subclasses, ``bool``, integral floats, NaN and
the infinities, huge ints, float bounds, and values outside the one-digit int window.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from llm_audit_log.schema import EventSchemaRegistry, Problem
from llm_audit_log.schema import _compile as compile_module
from llm_audit_log.schema import _nodes as nodes_module
from llm_audit_log.schema import _parts as parts_module
from llm_audit_log.schema._compile import MAX_PROBLEMS, CompiledSchema, compile_schema


class Text(str):
    __slots__ = ()


class Whole(int):
    __slots__ = ()


class Real(float):
    __slots__ = ()


SHAPES: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "s": {"type": "string", "maxLength": 3},
        "s1": {"type": "string", "minLength": 1, "maxLength": 3},
        "su": {"type": "string", "minLength": 2},
        "sp": {"type": "string", "maxLength": 4, "pattern": "^[ab]+$"},
        "e": {"type": "string", "enum": ["on", "off"]},
        "c": {"allOf": [{"type": "string", "pattern": "^o"}, {"enum": ["on", "off", "x", 1]}]},
        "m": {"enum": ["a", 1, None]},
        "k": {"const": "on"},
        "i": {"type": "integer", "minimum": 0},
        "ib": {"type": "integer", "exclusiveMinimum": -1.5, "maximum": 10**20},
        "im": {"type": "integer", "maximum": 3},
        "n": {"type": "number", "minimum": 0},
        "nb": {"type": "number", "exclusiveMinimum": -2.5, "maximum": 3},
        "nx": {"type": "number", "maximum": 2**63 + 1},  # no float equals it
        "nt": {"type": "number"},
        "it": {"type": "integer"},
        "l": {"type": "array", "maxItems": 2, "items": {"type": "string", "maxLength": 2}},
        "le": {"type": "array", "minItems": 1, "items": {"enum": ["a", "b"]}},
        "lo": {"type": "array", "items": {
            "type": "object", "properties": {"id": {"type": "string", "minLength": 1}},
            "required": ["id"], "additionalProperties": False}},
        "la": {"type": "array", "maxItems": 1},
        "r": {"$ref": "#/$defs/short"},
        "o": {"type": "object", "maxProperties": 1,
              "additionalProperties": {"type": "string", "maxLength": 1}},
    },
    "required": ["s"],
    "additionalProperties": False,
    "$defs": {"short": {"type": "string", "maxLength": 2}},
}
COMPILED = compile_schema(SHAPES)

STRINGS = st.sampled_from(["", "a", "b", "ab", "ba", "abc", "abcd", "on", "off", "x", "ob"])
JSON_SCALARS = (
    st.none() | st.booleans() | st.integers(-3, 12)
    | st.sampled_from([10**20, 10**20 + 1, 2**63, 2**63 + 2, -(2**31), 2**31, -(2**63)])
    | st.floats(-4, 4, allow_nan=False)
    | st.sampled_from([-2.5, 3.0, 1.0, -1.0, 0.0, -0.0, 5e-324, -5e-324, 1e300, 9.2e18, 9.3e18,
                       math.nextafter(-2.5, 0), math.nextafter(3.0, math.inf)])
    | STRINGS | st.text(max_size=4)
    | STRINGS.map(Text) | st.integers(-2, 3).map(Whole) | st.sampled_from([0.5, 1.0, -3.0]).map(Real)
)
ODD_SCALARS = st.sampled_from([math.nan, math.inf, -math.inf]) | st.sampled_from(
    [math.nan, 1.0, math.inf]).map(Real)
KEYS = st.sampled_from([*SHAPES["properties"], "id", "zz"])


def values(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda kids: st.lists(kids, max_size=3)
        | st.dictionaries(st.sampled_from(["id", "x", ""]), kids, max_size=2),
        max_leaves=6,
    )


def instances(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects close to SHAPES, so that many of them are valid."""
    members = values(scalars)
    return st.tuples(
        st.fixed_dictionaries({"s": STRINGS | members}),
        st.dictionaries(KEYS, members, max_size=5),
    ).map(lambda pair: pair[0] | pair[1])


def odd(instance: dict[str, Any], how: int) -> Any:
    """The same members in a container the inline checks do not take as-is."""
    if how == 1:
        return MappingProxyType(instance)
    if how == 2:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in instance.items()}
    return instance


def agree(compiled: CompiledSchema, instance: Any) -> bool:
    collected: list[Problem] = []
    try:
        compiled._check(instance, "", collected)
    except Exception:  # the cap stops collection with an internal exception
        assert MAX_PROBLEMS == len(collected)
    valid = compiled.is_valid(instance)
    assert valid == (collected == [])
    return valid


def compile_with_window(window: int) -> CompiledSchema:
    """SHAPES compiled as if only ints within +-window were checked inline."""
    with pytest.MonkeyPatch.context() as patch:
        for module in (nodes_module, parts_module, compile_module):
            patch.setattr(module, "INT_WINDOW", window)
        return compile_schema(SHAPES)


NARROW = [compile_with_window(window) for window in (0, 1, 2, 3)]


class TestAgreement:
    @settings(max_examples=400, deadline=None)
    @given(instances(JSON_SCALARS))
    def test_agrees_with_jsonschema(self, instance: dict[str, Any]) -> None:
        """On JSON values (and str/int/float subclasses) valid means valid to jsonschema."""
        expected = Draft202012Validator(SHAPES).is_valid(instance)
        assert expected == agree(COMPILED, instance)

    @settings(max_examples=300, deadline=None)
    @given(instances(JSON_SCALARS | ODD_SCALARS), st.integers(0, 2))
    def test_fast_and_slow_paths_agree(self, instance: dict[str, Any], how: int) -> None:
        """NaN, infinities, tuples and other Mappings too: the two paths never disagree."""
        agree(COMPILED, odd(instance, how))

    @settings(max_examples=300, deadline=None)
    @given(instances(JSON_SCALARS | ODD_SCALARS), st.integers(0, 2))
    def test_window_only_changes_speed(self, instance: dict[str, Any], how: int) -> None:
        """Values outside the inline window take the exact path, with the same verdict."""
        value = odd(instance, how)
        expected = agree(COMPILED, value)
        for compiled in NARROW:
            assert expected == agree(compiled, value)
            assert COMPILED.validate(value) == compiled.validate(value)


def valid(**members: Any) -> bool:
    instance = {"s": "a", **members}
    return agree(COMPILED, instance)


class TestEdges:
    @pytest.mark.parametrize("field", ["i", "ib", "im", "it", "n", "nb", "nt"])
    def test_bool_is_not_a_number(self, field: str) -> None:
        assert not valid(**{field: True})
        assert not valid(**{field: False})

    def test_integral_float_is_an_integer(self) -> None:
        assert valid(i=1.0, ib=-1.0, it=4.0, im=3.0)
        assert not valid(i=1.5)
        assert not valid(i=-1.0)
        assert not valid(it=math.inf)

    @pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, Real(math.nan)])
    @pytest.mark.parametrize("field", ["n", "nb", "nt", "nx"])
    def test_non_finite_floats_are_not_numbers(self, field: str, value: float) -> None:
        assert not valid(**{field: value})

    def test_float_bounds(self) -> None:
        assert valid(n=0.0, nb=3.0, nx=9.2e18)
        assert valid(n=-0.0)
        assert not valid(n=-5e-324)
        assert not valid(nb=-2.5)
        assert valid(nb=math.nextafter(-2.5, 0))
        assert not valid(nb=math.nextafter(3.0, math.inf))
        assert not valid(nx=1e19)

    def test_big_ints(self) -> None:
        assert valid(i=10**30, ib=10**20, nt=10**400, it=-(10**30), nx=2**63 + 1)
        assert not valid(ib=10**20 + 1)
        assert not valid(nx=2**63 + 2)
        assert not valid(im=2**40)
        assert valid(im=-(2**40))
        assert valid(ib=-1)
        assert not valid(ib=-2)
        assert valid(ib=Whole(0), i=Whole(3))

    def test_string_subclasses_are_strings(self) -> None:
        assert valid(s=Text("abc"), s1=Text("a"), sp=Text("ab"), e=Text("on"), c=Text("on"),
                     k=Text("on"), m=Text("a"), r=Text("ab"), l=[Text("ab")],
                     le=[Text("a")], lo=[{"id": Text("x")}], o={"k": Text("x")})
        assert not valid(s=Text("abcd"))
        assert not valid(e=Text("of"))

    def test_enum_narrowed_by_all_of(self) -> None:
        assert valid(c="on")
        assert valid(c="off")
        assert not valid(c="x")  # in the enum, but not matching the pattern
        assert not valid(c=1)  # in the enum, but not a string

    def test_arrays(self) -> None:
        assert valid(l=[], le=["a", "b", "a"], lo=[{"id": "1"}, {"id": "2"}], la=[1])
        assert valid(l=("a", "bb"), le=("b",), lo=({"id": "1"},))
        assert not valid(l=["a", "b", "c"])
        assert not valid(l=["abc"])
        assert not valid(l=[1])
        assert not valid(le=[])
        assert not valid(le=["c"])
        assert not valid(lo=[{"id": ""}])
        assert not valid(la=[1, 2])


class TestRegistryFastPath:
    REGISTRY = EventSchemaRegistry()
    PAYLOAD: dict[str, Any] = {  # noqa: RUF012 - read only
        "event_type": "llm.completion", "user_id": "u-1842", "status": "success",
        "model": "gpt-4o-mini", "model_version": "2024-07-18", "provider": "openai",
        "tokens_input": 512, "tokens_output": 64, "latency_ms": 830.2,
        "finish_reason": "stop", "session_id": "s-77c1",
        "rag_documents": ["doc_1201", "doc_0932"], "tools_called": ["order_lookup"],
    }

    def test_typical_payload_is_valid(self) -> None:
        assert [] == self.REGISTRY.validate(self.PAYLOAD)

    def test_other_mappings_and_subclassed_event_types_take_the_general_path(self) -> None:
        assert [] == self.REGISTRY.validate(MappingProxyType(self.PAYLOAD))
        assert [] == self.REGISTRY.validate({**self.PAYLOAD, "event_type": Text("llm.completion")})

    @pytest.mark.parametrize(("change", "expected"), [
        ({"event_type": "llm.nope"}, [("/event_type", "unknown event type")]),
        ({"event_type": ["llm.completion"]}, [("/event_type", "expected string")]),
        ({"tokens_input": True}, [("/tokens_input", "expected integer")]),
        ({"latency_ms": math.nan}, [("/latency_ms", "expected number")]),
        ({"rag_documents": ["x" * 257]}, [("/rag_documents/0", "longer than 256 characters")]),
        ({"status": "ok"}, [("/status", "not one of the allowed values")]),
    ])
    def test_invalid_payloads_are_reported_as_before(
            self, change: dict[str, Any], expected: list[tuple[str, str]]) -> None:
        problems = self.REGISTRY.validate({**self.PAYLOAD, **change})
        assert expected == [(p.field, p.reason) for p in problems]
