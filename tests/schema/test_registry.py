# Copyright 2026 llm-audit-log developers
# SPDX-License-Identifier: Apache-2.0
"""The event schema registry: shipped categories, custom types, and safe problem reports."""

from __future__ import annotations

import copy
import json
import random
import secrets
import string
import threading
from importlib import resources
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from llm_audit_log.schema import EventSchemaRegistry, Problem, SchemaError, default_registry
from llm_audit_log.schema import _registry as registry_module
from llm_audit_log.schema._compile import compile_schema

if TYPE_CHECKING:
    from pathlib import Path

REGISTRY = EventSchemaRegistry()

CATEGORIES: dict[str, list[str]] = {
    "auth": ["auth.login", "auth.logout", "auth.token_issued", "auth.session_start",
             "auth.session_end", "auth.failure"],
    "llm_completion": ["llm.completion"],
    "rag_query": ["rag.query"],
    "tool_call": ["tool.call"],
    "guardrail": ["guardrail.block", "guardrail.flag", "guardrail.redact"],
    "error": ["error"],
    "admin": ["admin.config_change", "admin.permission_change", "admin.key_rotation",
              "admin.user_change", "admin.audit_log_access"],
}
ALL_TYPES = sorted(t for names in CATEGORIES.values() for t in names)
REQUIRED: dict[str, list[str]] = {
    "auth": [], "llm_completion": ["model"], "rag_query": ["source"], "tool_call": ["tool_name"],
    "guardrail": ["rule"], "error": ["error_type"], "admin": ["actor", "target"],
}
COMMON_REQUIRED = ["event_type", "user_id", "status"]


def category_of(event_type: str) -> str:
    return next(c for c, names in CATEGORIES.items() if event_type in names)


def secret_key() -> str:
    """A GitHub-token-shaped string, fresh each run, to plant where a key goes."""
    return "ghp_" + "".join(random.choices(string.ascii_letters + string.digits, k=36))


def hashed() -> str:
    return f"hmac-sha256:tenant-{random.randint(1, 9)}:" + secrets.token_hex(32)


def common_fields(event_type: str) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "timestamp": "2026-03-01T12:34:56.789012Z",
        "event_id": "3f2b8c1e-9d4a-4e7b-8c1f-0a2b3c4d5e6f",
        "user_id": "u-" + secrets.token_hex(6),
        "session_id": "sess-" + secrets.token_hex(8),
        "ip_address": random.choice(["203.0.113.7", "2001:db8::17", "::ffff:198.51.100.4"]),
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "action": "chat.answer",
        "status": "success",
        "resource": "conversation/42",
        "environment": "production",
        "app_version": "2.8.1",
        "host": "web-3.internal",
        "service": "support-bot",
        "trace_id": secrets.token_hex(16),
        "span_id": secrets.token_hex(8),
        "metadata": {"tenant": "acme", "retry": 0, "flags": ["beta"]},
    }


def own_fields(event_type: str) -> dict[str, Any]:
    category = category_of(event_type)
    if category == "auth":
        return {"method": "sso", "reason": "password expired"}
    if category == "llm_completion":
        return {
            "model": "gpt-4o-mini", "model_version": "2024-07-18", "provider": "openai",
            "prompt_hash": hashed(), "response_hash": hashed(), "tokens_input": 812,
            "tokens_output": 164, "latency_ms": 1234.5, "finish_reason": "stop",
            "rag_documents": ["kb-101", "kb-207"], "tools_called": ["lookup_order"],
            "guardrails_triggered": [], "request_id": "req-" + secrets.token_hex(6),
        }
    if category == "rag_query":
        return {
            "source": "support-kb", "query_hash": hashed(), "top_k": 5, "latency_ms": 38,
            "documents": [{"id": "kb-101", "score": 0.91, "source": "faq"}, {"id": "kb-207"}],
        }
    if category == "tool_call":
        return {"tool_name": "lookup_order", "parameters": {"order": "A-1001", "full": True},
                "error_message": "", "latency_ms": 12.25, "call_id": "call_7"}
    if category == "guardrail":
        return {"rule": "pii.credit_card", "severity": "high", "guardrail_action": "mask",
                "stage": "output", "content_hash": hashed()}
    if category == "error":
        return {"error_type": "TimeoutError", "error_message": "upstream timed out",
                "stack_trace": "Traceback (most recent call last):\n  ...", "request_id": "r-9",
                "context": {"route": "/chat", "attempt": 2}}
    return {"actor": "admin-7", "target": "retention_policy", "before": {"days": 180},
            "after": {"days": 365}, "before_digest": "sha256:" + "a" * 64,
            "after_digest": "sha256:" + "b" * 64, "reason": "SOX retention"}


def valid_payload(event_type: str) -> dict[str, Any]:
    """A realistic payload of *event_type* with every field it may carry."""
    return common_fields(event_type) | own_fields(event_type)


def minimal_payload(event_type: str) -> dict[str, Any]:
    """Only the required fields of *event_type*."""
    full = valid_payload(event_type)
    return {k: full[k] for k in COMMON_REQUIRED + REQUIRED[category_of(event_type)]}


def reasons(payload: Any, registry: EventSchemaRegistry = REGISTRY) -> list[tuple[str, str]]:
    return [(p.field, p.reason) for p in registry.validate(payload)]


class TestShippedSchemas:
    def test_event_types(self) -> None:
        """Every documented event type is known, and nothing else."""
        assert ALL_TYPES == REGISTRY.event_types()

    def test_package_data_holds_exactly_the_categories(self) -> None:
        """A stray or missing schema file in the package would be a packaging bug."""
        folder = resources.files("llm_audit_log.schema") / "events"
        found = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))
        assert sorted([*(f"{c}.json" for c in CATEGORIES), "common.json"]) == found

    @pytest.mark.parametrize("name", ["common", *CATEGORIES])
    def test_each_file_is_valid_json_schema(self, name: str) -> None:
        """Each shipped file passes jsonschema's own meta-schema check."""
        folder = resources.files("llm_audit_log.schema") / "events"
        schema = json.loads((folder / f"{name}.json").read_text("utf-8"))
        Draft202012Validator.check_schema(schema)

    @pytest.mark.parametrize("event_type", ALL_TYPES)
    def test_each_merged_schema_is_valid_json_schema(self, event_type: str) -> None:
        """The merged schema the registry compiles is valid JSON Schema too."""
        Draft202012Validator.check_schema(REGISTRY.schema_for(event_type))

    def test_common_required_fields_meet_pci_10_2_2(self) -> None:
        """Who, what and outcome are required on every event type."""
        for event_type in ALL_TYPES:
            required = REGISTRY.schema_for(event_type)["required"]
            assert set(COMMON_REQUIRED) <= set(required)

    def test_schema_for_returns_a_copy(self) -> None:
        """Changing the returned schema cannot change validation."""
        schema = REGISTRY.schema_for("error")
        schema["properties"].clear()
        assert [] == REGISTRY.validate(valid_payload("error"))

    def test_schema_for_unknown_type(self) -> None:
        """There is no schema to give for an unknown type."""
        with pytest.raises(KeyError):
            REGISTRY.schema_for("nope.nothing")


class TestValidPayloads:
    @pytest.mark.parametrize("event_type", ALL_TYPES)
    def test_full_payload_is_valid(self, event_type: str) -> None:
        """A realistic payload with every field validates with zero problems."""
        assert [] == REGISTRY.validate(valid_payload(event_type))

    @pytest.mark.parametrize("event_type", ALL_TYPES)
    def test_minimal_payload_is_valid(self, event_type: str) -> None:
        """The required fields alone are enough; timestamp and event_id come later."""
        assert [] == REGISTRY.validate(minimal_payload(event_type))

    @pytest.mark.parametrize("event_type", ALL_TYPES)
    def test_each_required_field(self, event_type: str) -> None:
        """Removing one required field gives exactly one problem, at that field."""
        for field in COMMON_REQUIRED + REQUIRED[category_of(event_type)]:
            payload = valid_payload(event_type)
            del payload[field]
            assert [(f"/{field}", "missing required field")] == reasons(payload)


class TestInvalidPayloads:
    @pytest.mark.parametrize(("event_type", "field", "value", "reason"), [
        ("auth.login", "user_id", 42, "expected string"),
        ("auth.login", "user_id", "", "must not be empty"),
        ("auth.login", "user_id", "u" * 257, "longer than 256 characters"),
        ("auth.login", "status", "ok", "not one of the allowed values"),
        ("auth.login", "status", None, "expected string"),
        ("auth.login", "trace_id", "A" * 32, "does not match the required pattern"),
        ("auth.login", "metadata", [], "expected object"),
        ("auth.login", "metadata", {f"k{i}": i for i in range(65)}, "more than 64 properties"),
        ("llm.completion", "tokens_input", -1, "below minimum 0"),
        ("llm.completion", "tokens_input", True, "expected integer"),
        ("llm.completion", "tokens_input", 3.5, "expected integer"),
        ("llm.completion", "latency_ms", float("nan"), "expected number"),
        ("llm.completion", "prompt_hash", "sha256:" + "0" * 64,
         "does not match the required pattern"),
        ("llm.completion", "model", "", "must not be empty"),
        ("llm.completion", "rag_documents", ["x"] * 1001, "more than 1000 items"),
        ("rag.query", "top_k", 0, "below minimum 1"),
        ("guardrail.block", "stage", "middle", "not one of the allowed values"),
        ("guardrail.flag", "severity", "HIGH", "not one of the allowed values"),
        ("tool.call", "error_message", "e" * 4097, "longer than 4096 characters"),
        ("admin.config_change", "target", "", "must not be empty"),
    ])
    def test_wrong_value(self, event_type: str, field: str, value: Any, reason: str) -> None:
        """A wrong type or value is one problem at its field, without the value."""
        payload = valid_payload(event_type) | {field: value}
        assert [(f"/{field}", reason)] == reasons(payload)

    def test_nested_pointer(self) -> None:
        """Problems inside arrays of objects point at the element and member."""
        payload = valid_payload("rag.query")
        payload["documents"] = [{"id": "a"}, {"score": "high"}]
        expected = [("/documents/1/id", "missing required field"),
                    ("/documents/1/score", "expected number")]
        assert expected == reasons(payload)

    def test_event_type_of_another_category(self) -> None:
        """A category's fields do not validate under another category's event type."""
        payload = valid_payload("auth.login") | {"event_type": "guardrail.block"}
        assert ("/rule", "missing required field") in reasons(payload)
        assert ("/method", "unexpected field") in reasons(payload)

    @pytest.mark.parametrize("field", ["trace_id", "span_id", "event_id", "timestamp"])
    def test_trailing_newline_is_rejected(self, field: str) -> None:
        """Python's $ matches before a final newline; fixed lengths close that gap."""
        payload = valid_payload("auth.login")
        payload[field] += "\n"
        assert [f"/{field}"] == [p.field for p in REGISTRY.validate(payload)]

    @pytest.mark.parametrize("stamp", [
        "2026-03-01T12:34:56.789Z", "2026-03-01T12:34:56.789012+00:00",
        "2026-03-01 12:34:56.789012Z", "2026-13-01T12:34:56.789012Z",
    ])
    def test_timestamp_format(self, stamp: str) -> None:
        """Only UTC with exactly six fractional digits and Z is accepted."""
        payload = valid_payload("auth.login") | {"timestamp": stamp}
        assert {"/timestamp"} == {p.field for p in REGISTRY.validate(payload)}


class TestUnknownFields:
    def test_unexpected_field(self) -> None:
        """A field no schema declares is reported by name when the name is plain."""
        payload = valid_payload("tool.call") | {"surprise": 1}
        assert [("/surprise", "unexpected field")] == reasons(payload)

    def test_raw_text_field_is_unexpected(self) -> None:
        """A raw prompt that was not pseudonymised first is rejected, never accepted."""
        payload = valid_payload("llm.completion") | {"prompt": "my card is 4111..."}
        assert [("/prompt", "unexpected field")] == reasons(payload)

    @pytest.mark.parametrize("event_type", ALL_TYPES)
    def test_secret_key_never_appears(self, event_type: str) -> None:
        """A secret used as a key or value shows up nowhere in the problems."""
        secret = secret_key()
        payload = valid_payload(event_type) | {secret: secret, "user_id": secret * 10}
        if "documents" in payload:
            payload["documents"][0][secret] = secret
        found = REGISTRY.validate(payload)
        assert found
        for problem in found:
            assert secret not in problem.field
            assert secret not in problem.reason
        assert ("/<field>", "unexpected field") in [(p.field, p.reason) for p in found]

    def test_secret_key_in_nested_object(self) -> None:
        """A secret key inside a closed nested object is masked in the pointer."""
        payload = valid_payload("rag.query")
        payload["documents"][1][secret_key()] = 1
        assert [("/documents/1/<field>", "unexpected field")] == reasons(payload)


class TestEventTypeLookup:
    def test_missing_event_type(self) -> None:
        """No event_type means no schema: one problem, at /event_type."""
        payload = valid_payload("auth.login")
        del payload["event_type"]
        assert [("/event_type", "missing required field")] == reasons(payload)

    @pytest.mark.parametrize("value", [None, 7, ["auth.login"], True])
    def test_non_string_event_type(self, value: Any) -> None:
        """An event_type that is not a string is reported as such."""
        payload = valid_payload("auth.login") | {"event_type": value}
        assert [("/event_type", "expected string")] == reasons(payload)

    def test_unknown_event_type_is_not_echoed(self) -> None:
        """An unknown event type may itself be a secret: the reason does not repeat it."""
        secret = secret_key()
        payload = valid_payload("auth.login") | {"event_type": secret}
        assert [("/event_type", "unknown event type")] == reasons(payload)

    @pytest.mark.parametrize("payload", [None, [], "auth.login", 5])
    def test_non_mapping_payload(self, payload: Any) -> None:
        """Anything but a mapping is one problem at the root, never an exception."""
        assert [("", "expected object")] == reasons(payload)

    def test_is_known(self) -> None:
        """Built-in names are known; prefixes and unknown names are not."""
        assert REGISTRY.is_known("guardrail.redact")
        assert not REGISTRY.is_known("guardrail")
        assert not REGISTRY.is_known("auth.*")


class TestFieldLookups:
    def test_declared_fields(self) -> None:
        """Declared fields are the common ones plus the category's own."""
        declared = REGISTRY.declared_fields("rag.query")
        assert {"user_id", "status", "source", "documents", "query_hash"} <= declared
        assert "query" not in declared
        assert "model" not in declared

    def test_declared_fields_of_unknown_type(self) -> None:
        """An unknown type still has the common fields every event may carry."""
        assert REGISTRY.declared_fields("auth.login") > REGISTRY.declared_fields("nope.x")
        assert "user_id" in REGISTRY.declared_fields("nope.x")

    @pytest.mark.parametrize(("event_type", "expected"), [
        ("llm.completion", {"prompt": "prompt_hash", "response": "response_hash"}),
        ("rag.query", {"query": "query_hash"}),
        ("guardrail.block", {"content": "content_hash"}),
        ("guardrail.redact", {"content": "content_hash"}),
        ("auth.login", {}),
        ("unknown.type", {}),
    ])
    def test_pseudonymised_fields(self, event_type: str, expected: dict[str, str]) -> None:
        """Raw fields map to the keyed-hash field that replaces them."""
        assert expected == dict(REGISTRY.pseudonymised_fields(event_type))

    def test_pseudonymised_fields_are_read_only(self) -> None:
        """Callers cannot change the mapping the filter relies on."""
        with pytest.raises(TypeError):
            REGISTRY.pseudonymised_fields("rag.query")["query"] = "x"  # type: ignore[index]


BILLING: dict[str, Any] = {
    "properties": {
        "amount_cents": {"type": "integer", "minimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "note_hash": {"$ref": "#/$defs/hashed_value"},
    },
    "required": ["amount_cents"],
    "x-pseudonymise": {"note": "note_hash"},
}


class TestRegister:
    def test_register_mapping(self) -> None:
        """A custom type gets the common fields and its own, both required sets."""
        registry = EventSchemaRegistry()
        registry.register("billing.charge", BILLING)
        base = {"event_type": "billing.charge", "user_id": "u1", "status": "success"}
        assert [] == reasons(base | {"amount_cents": 5, "currency": "EUR"}, registry)
        assert [("/amount_cents", "missing required field")] == reasons(base, registry)
        assert [("/status", "missing required field")] == reasons(
            {"event_type": "billing.charge", "user_id": "u1", "amount_cents": 1}, registry)
        assert [("/amount_cents", "below minimum 0")] == reasons(
            base | {"amount_cents": -5}, registry)
        assert [("/model", "unexpected field")] == reasons(
            base | {"amount_cents": 1, "model": "m"}, registry)

    def test_custom_defs_and_common_defs(self) -> None:
        """A custom schema may use its own $defs and the common ones (hashed_value)."""
        registry = EventSchemaRegistry()
        registry.register("billing.refund", {
            "$defs": {"cents": {"type": "integer", "minimum": 1}},
            "properties": {"amount_cents": {"$ref": "#/$defs/cents"},
                           "note_hash": {"$ref": "#/$defs/hashed_value"}},
        })
        base = {"event_type": "billing.refund", "user_id": "u1", "status": "success"}
        assert [] == reasons(base | {"amount_cents": 5, "note_hash": hashed()}, registry)
        assert [("/amount_cents", "below minimum 1"),
                ("/note_hash", "does not match the required pattern")] == reasons(
            base | {"amount_cents": 0, "note_hash": "plain text"}, registry)

    def test_register_does_not_touch_other_registries(self) -> None:
        """Registration is per registry."""
        registry = EventSchemaRegistry()
        registry.register("billing.charge", BILLING)
        assert registry.is_known("billing.charge")
        assert not EventSchemaRegistry().is_known("billing.charge")

    def test_custom_lookups(self) -> None:
        """Custom types answer the same lookups as built-in ones."""
        registry = EventSchemaRegistry()
        registry.register("billing.charge", BILLING)
        assert {"note": "note_hash"} == dict(registry.pseudonymised_fields("billing.charge"))
        assert {"amount_cents", "currency", "note_hash", "user_id"} \
            <= registry.declared_fields("billing.charge")
        assert "billing.charge" in registry.event_types()

    @pytest.mark.parametrize("as_str", [True, False])
    def test_register_path(self, tmp_path: Path, as_str: bool) -> None:
        """A schema may come from a JSON file, by str or PathLike path."""
        path = tmp_path / "billing.json"
        path.write_text(json.dumps(BILLING), "utf-8")
        registry = EventSchemaRegistry()
        registry.register("billing.charge", str(path) if as_str else path)
        assert [] == reasons({"event_type": "billing.charge", "user_id": "u", "status": "failure",
                              "amount_cents": 0}, registry)

    def test_registered_schema_is_copied(self) -> None:
        """Changing the caller's dict afterwards changes nothing."""
        schema = json.loads(json.dumps(BILLING))
        registry = EventSchemaRegistry()
        registry.register("billing.charge", schema)
        schema["properties"]["amount_cents"]["minimum"] = 100
        assert [] == reasons({"event_type": "billing.charge", "user_id": "u",
                              "status": "success", "amount_cents": 1}, registry)

    def test_same_schema_twice_is_a_no_op(self) -> None:
        """Re-running a logging config re-registers the same type harmlessly."""
        registry = EventSchemaRegistry()
        registry.register("billing.charge", BILLING)
        registry.register("billing.charge", json.loads(json.dumps(BILLING)))
        assert registry.is_known("billing.charge")

    def test_different_schema_for_registered_type(self) -> None:
        """A second, different schema for one type is refused."""
        registry = EventSchemaRegistry()
        registry.register("billing.charge", BILLING)
        with pytest.raises(SchemaError, match="different schema"):
            registry.register("billing.charge", {"properties": {}})

    def test_common_field_can_be_narrowed_not_widened(self) -> None:
        """A redeclared common field must satisfy both definitions."""
        registry = EventSchemaRegistry()
        registry.register("kiosk.visit", {"properties": {"user_id": {"pattern": "^k-"}}})
        base = {"event_type": "kiosk.visit", "status": "success"}
        assert [] == reasons(base | {"user_id": "k-1"}, registry)
        assert [("/user_id", "does not match the required pattern")] == reasons(
            base | {"user_id": "u-1"}, registry)
        registry.register("kiosk.loose", {"properties": {"user_id": {"type": "integer"}}})
        assert reasons({"event_type": "kiosk.loose", "status": "success", "user_id": 5},
                       registry)

    @pytest.mark.parametrize("name", [
        "Billing.charge", "billing..charge", "billing.", ".billing", "1billing", "billing-charge",
        "billing.Charge", "", "billing charge", "billing.charge\n",
    ])
    def test_bad_event_type_names(self, name: str) -> None:
        """Event type names are dotted lower-case identifiers."""
        with pytest.raises(SchemaError, match="event_type"):
            EventSchemaRegistry().register(name, {})

    @pytest.mark.parametrize("name", ["llm.completion", "auth.login", "error", "admin.user_change"])
    def test_builtin_types_cannot_be_shadowed(self, name: str) -> None:
        """A custom schema never replaces a built-in one."""
        with pytest.raises(SchemaError, match="built-in"):
            EventSchemaRegistry().register(name, {})

    def test_namespace_of_a_builtin_category_is_allowed(self) -> None:
        """A new name in a built-in namespace is not shadowing."""
        registry = EventSchemaRegistry()
        registry.register("auth.mfa_challenge", {"properties": {"method": {"type": "string"}}})
        assert registry.is_known("auth.mfa_challenge")

    @pytest.mark.parametrize(("schema", "message"), [
        ({"properties": {"a": {"oneOf": []}}}, "oneOf"),
        ({"oneOf": []}, "oneOf"),
        ({"properties": {"event_type": {"const": "x"}}}, "event_type"),
        ({"additionalProperties": True}, "additionalProperties"),
        ({"type": "array"}, "type"),
        ({"required": ["ghost"]}, "ghost"),
        ({"properties": []}, "properties"),
        ({"x-pseudonymise": {"note": "missing_hash"}}, "x-pseudonymise"),
        ({"properties": {"h": {}}, "x-pseudonymise": {"h": "h"}}, "x-pseudonymise"),
        ({"properties": {"h": {}}, "x-pseudonymise": {"Bad Name": "h"}}, "x-pseudonymise"),
        ({"x-pseudonymise": ["a"]}, "x-pseudonymise"),
        ({"$defs": {"hashed_value": {"type": "string"}}}, "hashed_value"),
        ({"$schema": "http://json-schema.org/draft-07/schema#"}, "schema"),
        ({"properties": {"s": {"enum": [{1, 2}]}}}, "JSON"),
        ({"properties": {"n": {"maximum": float("inf")}}}, "NaN"),
    ])
    def test_bad_custom_schema(self, schema: dict[str, Any], message: str) -> None:
        """Schemas the compiler or the merge cannot honour are refused with a clear reason."""
        with pytest.raises(SchemaError, match=message):
            EventSchemaRegistry().register("custom.thing", schema)

    def test_bad_schema_argument(self) -> None:
        """The schema must be a mapping or a path."""
        with pytest.raises(SchemaError, match="mapping or a path"):
            EventSchemaRegistry().register("custom.thing", 5)  # type: ignore[arg-type]

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing schema file names the path."""
        with pytest.raises(SchemaError, match="cannot read"):
            EventSchemaRegistry().register("custom.thing", tmp_path / "absent.json")

    @pytest.mark.parametrize(("text", "message"), [
        ("{", "not a valid JSON"),
        ("[]", "JSON object"),
        ('{"properties": {}, "properties": {}}', "repeats the key"),
    ])
    def test_bad_file(self, tmp_path: Path, text: str, message: str) -> None:
        """Broken JSON, and JSON with a repeated key, is refused."""
        path = tmp_path / "schema.json"
        path.write_text(text, "utf-8")
        with pytest.raises(SchemaError, match=message):
            EventSchemaRegistry().register("custom.thing", path)


class TestDefaultRegistry:
    def test_shared(self) -> None:
        """Every call returns the same registry."""
        assert default_registry() is default_registry()

    def test_thread_safe_first_use(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Threads racing on first use all get the one registry."""
        monkeypatch.setattr(registry_module, "_default", None)
        seen: list[EventSchemaRegistry] = []
        barrier = threading.Barrier(8)

        def grab() -> None:
            barrier.wait()
            seen.append(default_registry())

        threads = [threading.Thread(target=grab) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert 1 == len({id(r) for r in seen})
        assert 8 == len(seen)


# -- property tests: our compiler against jsonschema, on every shipped schema ------------

MERGED = {category: REGISTRY.schema_for(names[0]) for category, names in CATEGORIES.items()}
COMPILED = {category: compile_schema(schema) for category, schema in MERGED.items()}
ORACLE = {category: Draft202012Validator(schema) for category, schema in MERGED.items()}
BASES = {event_type: valid_payload(event_type) for event_type in ALL_TYPES}
FIELD_NAMES = sorted({name for s in MERGED.values() for name in s["properties"]})

scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                              max_size=4),
    max_leaves=10,
)
edge_strings = st.sampled_from([0, 1, 2, 16, 27, 32, 36, 45, 46, 64, 65, 128, 129, 255, 256,
                                257, 512, 513]).map(lambda n: "a" * n) | st.sampled_from([
    "", "success", "failure", "input", "low", "critical", "llm.completion", "auth.login",
    "2026-03-01T12:34:56.789012Z", "0" * 32, "0" * 16, "::1", "1.2.3.4\n",
    "hmac-sha256:k:" + "0" * 64, "hmac-sha256:k:" + "0" * 64 + "\n",
])
field_values = (json_values | edge_strings
                | st.sampled_from([-1, 0, 1, 0.5, -0.0, 2**63, True, [], {}, ["a"], [{"id": "x"}]])
                | st.lists(st.fixed_dictionaries({"id": edge_strings}, optional={
                    "score": scalars, "source": edge_strings, "other": scalars}), max_size=3))


@st.composite
def near_valid(draw: st.DrawFn, category: str) -> dict[str, Any]:
    """A valid payload of the category, then up to four random mutations."""
    payload = copy.deepcopy(BASES[draw(st.sampled_from(CATEGORIES[category]))])
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["drop", "set", "set", "add"]))
        if kind == "drop" and payload:
            del payload[draw(st.sampled_from(sorted(payload)))]
        elif kind == "set":
            payload[draw(st.sampled_from(FIELD_NAMES))] = draw(field_values)
        else:
            payload[draw(st.text(max_size=8))] = draw(json_values)
    return payload


def agree(category: str, payload: Any) -> None:
    expected = ORACLE[category].is_valid(payload)
    assert expected == (COMPILED[category].validate(payload) == [])
    if isinstance(payload, dict) and payload.get("event_type") in CATEGORIES[category]:
        assert expected == (REGISTRY.validate(payload) == [])


class TestAgreesWithJsonschema:
    @pytest.mark.parametrize("category", sorted(CATEGORIES))
    @settings(max_examples=150, deadline=None)
    @given(data=st.data())
    def test_near_valid_payloads(self, category: str, data: st.DataObject) -> None:
        """Mutated valid payloads: valid for us exactly when valid for jsonschema."""
        agree(category, data.draw(near_valid(category)))

    @pytest.mark.parametrize("category", sorted(CATEGORIES))
    @settings(max_examples=60, deadline=None)
    @given(payload=json_values)
    def test_arbitrary_values(self, category: str, payload: Any) -> None:
        """Any JSON-like value at all: no exception, and the same verdict as jsonschema."""
        agree(category, payload)

    def test_problems_are_problem_instances(self) -> None:
        """validate returns Problem objects, the type the filter reads."""
        payload = valid_payload("auth.login") | {"status": "?"}
        assert [Problem("/status", "not one of the allowed values")] == REGISTRY.validate(payload)
