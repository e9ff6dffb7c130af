# Copyright 2026 llm-audit-log developers
# SPDX-License-Identifier: Apache-2.0
"""The JSON Schema subset compiler: every keyword, both ways, and what it refuses."""

from __future__ import annotations

import random
import re
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from llm_audit_log.errors import ConfigurationError
from llm_audit_log.schema import Problem, SchemaError
from llm_audit_log.schema._compile import MAX_PROBLEMS, compile_schema, safe_segment


def problems(schema: Any, instance: Any) -> list[Problem]:
    return compile_schema(schema).validate(instance)


def reasons(schema: Any, instance: Any) -> list[tuple[str, str]]:
    return [(p.field, p.reason) for p in problems(schema, instance)]


def secret_key() -> str:
    """A key that looks like a GitHub token, made fresh for each test run."""
    return "ghp_" + "".join(random.choices(string.ascii_letters + string.digits, k=36))


class TestTypes:
    @pytest.mark.parametrize(("name", "good", "bad"), [
        ("string", "x", 1),
        ("integer", 3, "3"),
        ("number", 2.5, "2.5"),
        ("boolean", False, 0),
        ("object", {"a": 1}, [("a", 1)]),
        ("array", [1], {"0": 1}),
        ("null", None, 0),
    ])
    def test_each_type_accepts_its_own_and_rejects_others(self, name: str, good: Any, bad: Any) -> None:
        """Each type name accepts its Python counterpart and reports anything else."""
        assert [] == problems({"type": name}, good)
        assert [("", f"expected {name}")] == reasons({"type": name}, bad)

    @pytest.mark.parametrize("name", ["integer", "number"])
    def test_bool_is_not_a_number(self, name: str) -> None:
        """bool subclasses int in Python, but JSON Schema keeps them apart."""
        assert [("", f"expected {name}")] == reasons({"type": name}, True)

    def test_integral_float_is_an_integer(self) -> None:
        """As in JSON Schema, 1.0 is an integer and 1.5 is not."""
        assert [] == problems({"type": "integer"}, 1.0)
        assert [("", "expected integer")] == reasons({"type": "integer"}, 1.5)

    def test_big_integers_are_integers(self) -> None:
        """Python ints of any size are JSON integers."""
        assert [] == problems({"type": "integer", "minimum": 0}, 10**40)

    @pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
    def test_non_finite_floats_are_not_numbers(self, value: float) -> None:
        """JSON cannot carry NaN or infinities, so an audit field must not hold them."""
        assert [("", "expected number")] == reasons({"type": "number"}, value)

    def test_tuple_is_an_array(self) -> None:
        """Tuples serialise as JSON arrays, so they validate as arrays."""
        assert [] == problems({"type": "array", "items": {"type": "integer"}}, (1, 2))

    def test_list_of_types(self) -> None:
        """A list of type names accepts any of them and names them all when none fits."""
        schema = {"type": ["string", "null"]}
        assert [] == problems(schema, None)
        assert [] == problems(schema, "x")
        assert [("", "expected string or null")] == reasons(schema, 1)

    def test_wrong_type_skips_other_keywords(self) -> None:
        """A value of the wrong type gets one clear problem, not a cascade."""
        assert [("", "expected string")] == reasons({"type": "string", "enum": ["a"]}, 5)


class TestStrings:
    def test_length_counts_code_points(self) -> None:
        """An emoji is one character, however many bytes it takes."""
        schema = {"type": "string", "minLength": 2, "maxLength": 2}
        assert [] == problems(schema, "\U0001f600\u00e9")

    def test_too_long(self) -> None:
        """maxLength names the limit in the reason."""
        assert [("", "longer than 3 characters")] == reasons({"maxLength": 3}, "abcd")

    def test_too_short(self) -> None:
        """minLength names the limit in the reason."""
        assert [("", "shorter than 3 characters")] == reasons({"minLength": 3}, "ab")

    def test_min_length_one_reads_as_not_empty(self) -> None:
        """The commonest minimum reads naturally."""
        assert [("", "must not be empty")] == reasons({"minLength": 1}, "")

    def test_pattern_searches_unanchored(self) -> None:
        """JSON Schema patterns are not implicitly anchored."""
        assert [] == problems({"pattern": "b+"}, "abbbc")
        assert [("", "does not match the required pattern")] == reasons({"pattern": "^b"}, "ab")

    def test_string_keywords_ignore_other_types(self) -> None:
        """Without a type, string keywords apply to strings only."""
        assert [] == problems({"maxLength": 1, "pattern": "^x$"}, 12345)

    def test_reason_never_contains_the_value(self) -> None:
        """A secret that fails a string check is not echoed."""
        secret = secret_key()
        found = problems({"type": "string", "maxLength": 3, "pattern": "^[0-9]+$"}, secret)
        assert 2 == len(found)
        assert all(secret not in p.reason and secret not in p.field for p in found)


class TestNumbers:
    @pytest.mark.parametrize(("keyword", "limit", "good", "bad", "reason"), [
        ("minimum", 0, 0, -1, "below minimum 0"),
        ("maximum", 10, 10, 10.5, "above maximum 10"),
        ("exclusiveMinimum", 0, 0.001, 0, "must be greater than 0"),
        ("exclusiveMaximum", 1.5, 1, 1.5, "must be less than 1.5"),
    ])
    def test_bounds(self, keyword: str, limit: float, good: float, bad: float, reason: str) -> None:
        """Each bound accepts its edge (or not, if exclusive) and names the limit."""
        assert [] == problems({"type": "number", keyword: limit}, good)
        assert [("", reason)] == reasons({"type": "number", keyword: limit}, bad)

    def test_bounds_ignore_booleans_and_strings(self) -> None:
        """Without a type, numeric bounds apply to numbers only."""
        assert [] == problems({"minimum": 5}, False)
        assert [] == problems({"minimum": 5}, "1")

    def test_integer_bound_on_integer_type(self) -> None:
        """Bounds combine with the integer type."""
        assert [("", "below minimum 1")] == reasons({"type": "integer", "minimum": 1}, 0)


class TestObjects:
    def test_properties_validate_members(self) -> None:
        """Each declared property's schema applies to its member, at its pointer."""
        schema = {"properties": {"n": {"type": "integer"}}}
        assert [] == problems(schema, {"n": 1})
        assert [("/n", "expected integer")] == reasons(schema, {"n": "1"})

    def test_required(self) -> None:
        """A missing required field is reported at its own pointer."""
        schema = {"type": "object", "required": ["a", "b"]}
        assert [("/b", "missing required field")] == reasons(schema, {"a": 1})

    def test_additional_properties_false(self) -> None:
        """Undeclared keys are unexpected when the object is closed."""
        schema = {"properties": {"a": {}}, "additionalProperties": False}
        assert [] == problems(schema, {"a": 1})
        assert [("/b", "unexpected field")] == reasons(schema, {"a": 1, "b": 2})

    def test_additional_properties_schema(self) -> None:
        """An additionalProperties schema applies to every undeclared member."""
        schema = {"properties": {"a": {}}, "additionalProperties": {"type": "integer"}}
        assert [] == problems(schema, {"a": "x", "b": 2})
        assert [("/b", "expected integer")] == reasons(schema, {"a": "x", "b": "2"})

    def test_additional_properties_true_allows_anything(self) -> None:
        """additionalProperties true is the default: anything goes."""
        assert [] == problems({"additionalProperties": True}, {"x": [1, {"y": None}]})

    def test_max_properties(self) -> None:
        """maxProperties counts members."""
        assert [("", "more than 2 properties")] == reasons(
            {"maxProperties": 2}, {"a": 1, "b": 2, "c": 3})

    def test_secret_key_is_masked(self) -> None:
        """A secret used as an undeclared key shows up as <field>, never verbatim."""
        key = secret_key()
        schema = {"additionalProperties": False}
        assert [("/<field>", "unexpected field")] == reasons(schema, {key: 1})

    def test_secret_key_is_masked_in_nested_pointers(self) -> None:
        """A pointer through an undeclared key masks that segment too."""
        key = secret_key()
        schema = {"additionalProperties": {"properties": {"n": {"type": "integer"}}}}
        assert [("/<field>/n", "expected integer")] == reasons(schema, {key: {"n": "x"}})

    @pytest.mark.parametrize(("key", "shown"), [
        ("plain_name", "plain_name"),
        ("a" * 32, "a" * 32),
        ("a" * 33, "<field>"),
        ("Upper", "<field>"),
        ("1st", "<field>"),
        ("name\n", "<field>"),
        ("", "<field>"),
        (7, "<field>"),
    ])
    def test_safe_segment(self, key: object, shown: str) -> None:
        """Only short snake_case keys are shown verbatim."""
        assert shown == safe_segment(key)

    def test_declared_names_are_escaped_as_pointers(self) -> None:
        """Declared names with / or ~ are escaped per RFC 6901."""
        schema = {"properties": {"a/b~c": {"type": "integer"}}, "required": ["x/y"]}
        expected = [("/x~1y", "missing required field"), ("/a~1b~0c", "expected integer")]
        assert expected == reasons(schema, {"a/b~c": "1"})

    def test_non_string_keys_are_unexpected(self) -> None:
        """A Python dict may have non-string keys; they are never declared fields."""
        assert [("/<field>", "unexpected field")] == reasons(
            {"additionalProperties": False}, {1: "x"})

    def test_object_keywords_ignore_other_types(self) -> None:
        """Without a type, object keywords apply to mappings only."""
        assert [] == problems({"required": ["a"], "maxProperties": 0}, [1, 2])


class TestArrays:
    def test_items(self) -> None:
        """items applies to every element, reported at its index."""
        schema = {"type": "array", "items": {"type": "string"}}
        assert [] == problems(schema, ["a", "b"])
        assert [("/1", "expected string"), ("/3", "expected string")] == reasons(
            schema, ["a", 2, "c", None])

    def test_min_and_max_items(self) -> None:
        """minItems and maxItems name their limits."""
        assert [("", "fewer than 2 items")] == reasons({"minItems": 2}, [1])
        assert [("", "must not be empty")] == reasons({"minItems": 1}, [])
        assert [("", "more than 1 items")] == reasons({"maxItems": 1}, [1, 2])

    def test_oversized_array_is_not_inspected(self) -> None:
        """Past maxItems the items are not checked, so cost stays bounded."""
        schema = {"maxItems": 2, "items": {"type": "string"}}
        assert [("", "more than 2 items")] == reasons(schema, [1, 2, 3])

    def test_array_keywords_ignore_other_types(self) -> None:
        """Without a type, array keywords apply to lists only."""
        assert [] == problems({"minItems": 3}, "ab")


class TestEnumAndConst:
    def test_enum_of_strings(self) -> None:
        """enum accepts listed values only, without echoing the value."""
        schema = {"enum": ["low", "high"]}
        assert [] == problems(schema, "low")
        assert [("", "not one of the allowed values")] == reasons(schema, "medium")

    def test_enum_uses_json_equality(self) -> None:
        """1 equals 1.0, but True is not 1 and False is not 0."""
        schema = {"enum": [1, [0], {"a": False}]}
        assert [] == problems(schema, 1.0)
        assert [] == problems(schema, [0.0])
        assert [] == problems(schema, {"a": False})
        for bad in (True, [False], {"a": 0}, None, "1"):
            assert [("", "not one of the allowed values")] == reasons(schema, bad)

    def test_const(self) -> None:
        """const accepts exactly one JSON value."""
        assert [] == problems({"const": "x"}, "x")
        assert [("", "not the allowed value")] == reasons({"const": "x"}, "y")
        assert [("", "not the allowed value")] == reasons({"const": 0}, False)

    def test_const_is_copied_at_compile_time(self) -> None:
        """Mutating the schema afterwards does not change the compiled check."""
        schema: dict[str, Any] = {"const": {"a": 1}}
        compiled = compile_schema(schema)
        schema["const"]["a"] = 2
        assert [] == compiled.validate({"a": 1})


class TestReferencesAndAllOf:
    def test_ref_to_defs(self) -> None:
        """$ref applies a definition from the root's $defs."""
        schema = {"$defs": {"id": {"type": "string", "maxLength": 2}},
                  "properties": {"a": {"$ref": "#/$defs/id"}}}
        assert [] == problems(schema, {"a": "xy"})
        assert [("/a", "longer than 2 characters")] == reasons(schema, {"a": "xyz"})

    def test_ref_with_escaped_name(self) -> None:
        """Definition names are JSON pointer segments."""
        schema = {"$defs": {"a/b": {"type": "null"}}, "$ref": "#/$defs/a~1b"}
        assert [("", "expected null")] == reasons(schema, 1)

    def test_recursive_ref(self) -> None:
        """A definition may refer to itself through a nested member."""
        schema = {"$defs": {"node": {"type": "object", "properties": {
            "child": {"$ref": "#/$defs/node"}, "n": {"type": "integer"}}}},
            "$ref": "#/$defs/node"}
        assert [] == problems(schema, {"child": {"child": {"n": 1}}})
        assert [("/child/child/n", "expected integer")] == reasons(
            schema, {"child": {"child": {"n": "1"}}})

    def test_deep_recursion_is_a_problem_not_a_crash(self) -> None:
        """An instance deeper than the interpreter's stack is reported, not raised."""
        schema = {"$defs": {"node": {"properties": {"c": {"$ref": "#/$defs/node"}}}},
                  "$ref": "#/$defs/node"}
        deep: dict[str, Any] = {}
        for _ in range(100_000):
            deep = {"c": deep}
        assert [("", "nested too deeply")] == reasons(schema, deep)

    def test_all_of(self) -> None:
        """allOf applies every subschema and collects all their problems."""
        schema = {"allOf": [{"type": "string"}, {"maxLength": 1}, {"pattern": "^[0-9]$"}]}
        assert [] == problems(schema, "7")
        assert [("", "longer than 1 characters"), ("", "does not match the required pattern")] \
            == reasons(schema, "ab")

    def test_boolean_schemas(self) -> None:
        """true accepts anything, false nothing, wherever a schema may appear."""
        assert [] == problems(True, object())
        assert [("", "not allowed")] == reasons(False, None)
        assert [("/a", "not allowed")] == reasons({"properties": {"a": False}}, {"a": 1})


class TestAnnotations:
    def test_annotations_are_ignored(self) -> None:
        """Documentation keywords and x- extensions have no effect."""
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "urn:example:thing", "$comment": "c", "title": "t", "description": "d",
            "examples": [1], "default": 2, "$defs": {}, "x-pseudonymise": {"a": "b"},
            "type": "integer",
        }
        assert [] == problems(schema, 3)


class TestRefusals:
    @pytest.mark.parametrize("keyword", [
        "oneOf", "anyOf", "not", "if", "then", "else", "format", "patternProperties",
        "propertyNames", "prefixItems", "contains", "uniqueItems", "minProperties",
        "multipleOf", "dependentRequired", "dependentSchemas", "unevaluatedProperties",
        "unevaluatedItems", "$dynamicRef", "$anchor", "contentEncoding", "additionalItems",
    ])
    def test_unsupported_keyword_is_an_error(self, keyword: str) -> None:
        """A keyword outside the subset fails closed at compile time."""
        with pytest.raises(SchemaError, match=re.escape(repr(keyword))):
            compile_schema({"properties": {"a": {keyword: True}}})

    def test_unsupported_keyword_in_unused_def_is_an_error(self) -> None:
        """Every $defs entry is compiled, so nothing waits for the first event to fail."""
        with pytest.raises(SchemaError, match="oneOf"):
            compile_schema({"$defs": {"unused": {"oneOf": []}}})

    def test_schema_error_is_a_configuration_error(self) -> None:
        """Callers may catch the library's configuration errors, or ValueError."""
        assert issubclass(SchemaError, ConfigurationError)
        assert issubclass(SchemaError, ValueError)

    @pytest.mark.parametrize("schema", [
        {"type": "float"},
        {"type": []},
        {"type": ["string", "string"]},
        {"maxLength": -1},
        {"maxLength": "5"},
        {"minItems": True},
        {"minimum": "0"},
        {"maximum": float("nan")},
        {"pattern": "("},
        {"pattern": 5},
        {"required": "a"},
        {"required": ["a", "a"]},
        {"properties": []},
        {"additionalProperties": 1},
        {"items": [{}]},
        {"enum": "a"},
        {"allOf": []},
        {"$ref": "#/definitions/a"},
        {"$ref": "#/$defs/missing"},
        {"$ref": "other.json#/$defs/a"},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}},
        {"$schema": "http://json-schema.org/draft-07/schema#"},
        {"properties": {"a": {"$id": "urn:x"}}},
        {"properties": {"a": {"$defs": {}}}},
        {"properties": {"a": 5}},
        {1: {}},
    ])
    def test_malformed_keyword_values_are_errors(self, schema: Any) -> None:
        """Keyword values outside the spec (or our subset of it) are rejected up front."""
        with pytest.raises(SchemaError):
            compile_schema(schema)

    def test_error_message_names_the_location(self) -> None:
        """The message says where in the schema the problem is."""
        with pytest.raises(SchemaError, match="#/properties/a/items"):
            compile_schema({"properties": {"a": {"items": {"format": "uuid"}}}})


class TestRobustness:
    def test_problems_are_capped(self) -> None:
        """A payload with many problems yields at most MAX_PROBLEMS of them."""
        schema = {"additionalProperties": False}
        found = problems(schema, {f"k{i}": i for i in range(500)})
        assert MAX_PROBLEMS == len(found)

    def test_all_problems_are_collected(self) -> None:
        """Validation does not stop at the first problem."""
        schema = {"type": "object", "required": ["a"], "properties": {
            "b": {"type": "integer"}, "c": {"maxLength": 1}}, "additionalProperties": False}
        expected = [("/a", "missing required field"), ("/b", "expected integer"),
                    ("/c", "longer than 1 characters"), ("/d", "unexpected field")]
        assert expected == reasons(schema, {"b": "x", "c": "xx", "d": 0})

    def test_mapping_that_raises_is_reported(self) -> None:
        """A Mapping whose methods fail is reported at the root, never raised."""
        class Broken(dict):  # type: ignore[type-arg]
            def items(self) -> Any:
                raise RuntimeError

        assert [("", "could not be validated")] == reasons({"properties": {"a": {}}}, Broken(a=1))

    def test_is_valid_matches_validate(self) -> None:
        """is_valid is the fast path of validate."""
        compiled = compile_schema({"type": "integer"})
        assert compiled.is_valid(1)
        assert not compiled.is_valid("1")


# -- property tests ----------------------------------------------------------------------

KITCHEN_SINK: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "short": {"type": "string", "minLength": 1, "maxLength": 3},
        "tree": {"type": ["object", "null"], "maxProperties": 3,
                 "properties": {"kid": {"$ref": "#/$defs/tree"}, "v": {"type": "integer"}}},
    },
    "type": "object",
    "properties": {
        "s": {"$ref": "#/$defs/short"},
        "p": {"type": "string", "pattern": "^[a-c]+$"},
        "n": {"type": "number", "minimum": -5, "exclusiveMaximum": 5},
        "i": {"type": "integer", "exclusiveMinimum": 0, "maximum": 10**20},
        "b": {"type": "boolean"},
        "z": {"type": "null"},
        "e": {"enum": ["a", 1, None, [1, "a"], {"k": True}]},
        "c": {"const": 0},
        "l": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": ["integer", "string"]}},
        "o": {"type": "object", "maxProperties": 2, "additionalProperties": {"type": "string"}},
        "t": {"$ref": "#/$defs/tree"},
        "a": {"allOf": [{"minLength": 2}, {"maxLength": 4}, {"minimum": 1}]},
        "u": {"minItems": 2, "required": ["q"], "pattern": "x"},
        "f": False,
    },
    "required": ["s"],
    "additionalProperties": {"type": ["string", "array"], "maxItems": 1},
}

KEYS = st.sampled_from(["s", "p", "n", "i", "b", "z", "e", "c", "l", "o", "t", "a", "u", "f",
                        "v", "kid", "k", "q"]) | st.text(max_size=6)


def json_values(keys: st.SearchStrategy[str] = KEYS) -> st.SearchStrategy[Any]:
    """Arbitrary JSON-like values: big ints and floats included, NaN and infinities not."""
    scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70)
               | st.floats(allow_nan=False, allow_infinity=False)
               | st.sampled_from([0, 1, -5, 5, 1.0, 0.0, 10**20, 10**20 + 1, "", "a", "abc",
                                  "abcd", "x\n", "ab\n"])
               | st.text(max_size=8))
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
        max_leaves=12,
    )


def trees() -> st.SearchStrategy[Any]:
    """Values for the recursive ``tree`` definition, mostly well formed."""
    leaf: st.SearchStrategy[Any] = st.none() | st.integers(0, 2) | st.just({})
    return st.recursive(leaf, lambda kids: st.fixed_dictionaries({}, optional={
        "kid": kids, "v": st.integers(-1, 1) | st.text(max_size=1), "w": st.none()}),
        max_leaves=6)


def kitchen_instances() -> st.SearchStrategy[dict[str, Any]]:
    """Objects close to the kitchen-sink schema, so that many of them are valid."""
    numbers = st.floats(-6, 6, allow_nan=False) | st.integers(-6, 12)
    declared = st.fixed_dictionaries(
        {"s": st.sampled_from(["a", "ab", "abc", "", "abcd", 1])},
        optional={
            "p": st.text(alphabet="abcd\n", max_size=4),
            "n": st.sampled_from([-5, -5.0001, 4.999, 5, True]) | numbers,
            "i": st.sampled_from([1.0, 1.5, 10**20, 10**20 + 1, True]) | numbers,
            "b": st.booleans() | st.none(),
            "z": st.none() | st.just(0),
            "e": st.sampled_from(["a", 1, 1.0, True, None, [1, "a"], [1.0, "a"], ["a", 1],
                                  {"k": True}, {"k": 1}, "b"]),
            "c": st.sampled_from([0, 0.0, -0.0, False, "0", None, [0]]),
            "l": st.lists(st.integers() | st.text(max_size=2) | st.booleans() | numbers,
                          max_size=4),
            "o": st.dictionaries(st.text(max_size=2), st.text(max_size=2) | st.integers(),
                                 max_size=3),
            "t": trees(),
            "a": st.sampled_from(["ab", "abcd", "a", "abcde", 0, 1, 0.5, None]),
            "u": st.sampled_from(["x", "y", [1], [1, 2], {"q": 1}, {}, 3]),
            "f": json_values(),
        },
    )
    extra = st.dictionaries(st.text(max_size=3), st.text(max_size=2)
                            | st.lists(st.integers(), max_size=2) | st.integers(), max_size=2)
    return st.tuples(declared, extra).map(lambda pair: pair[1] | pair[0])


class TestAgreesWithJsonschema:
    @settings(max_examples=400, deadline=None)
    @given(json_values() | kitchen_instances())
    def test_kitchen_sink_agrees(self, instance: Any) -> None:
        """On a schema using every supported keyword, valid means valid to jsonschema too."""
        expected = Draft202012Validator(KITCHEN_SINK).is_valid(instance)
        assert expected == (problems(KITCHEN_SINK, instance) == [])

    @settings(max_examples=300, deadline=None)
    @given(json_values() | kitchen_instances())
    def test_fast_and_slow_paths_agree(self, instance: Any) -> None:
        """The boolean fast path and the problem-collecting slow path never disagree."""
        compiled = compile_schema(KITCHEN_SINK)
        collected: list[Problem] = []
        try:
            compiled._check(instance, "", collected)
        except Exception:  # the cap stops collection with an internal exception
            assert MAX_PROBLEMS == len(collected)
        assert compiled.is_valid(instance) == (collected == [])

    def test_kitchen_sink_is_valid_json_schema(self) -> None:
        """The test schema itself is well formed, so the comparison means something."""
        Draft202012Validator.check_schema(KITCHEN_SINK)
