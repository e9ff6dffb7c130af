"""AuditFilter: payload forms, keyed hashes, provenance, rejected records, strict mode."""

from __future__ import annotations

import datetime
import json
import logging
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_audit_log import (
    AuditFileHandler,
    AuditFilter,
    AuditPayloadError,
    Keyring,
    get_logger,
    verify_paths,
)
from llm_audit_log.filter import STATE_ATTR

GOOD = {"event_type": "llm.completion", "user_id": "u-7", "status": "success",
        "model": "gpt-4o-mini", "prompt": "Tell me about order 5512", "response": "It shipped.",
        "tokens_input": 12, "tokens_output": 4}


def record(extra: dict | None = None, msg: str = "m") -> logging.LogRecord:
    rec = logging.LogRecord("audit", logging.INFO, __file__, 1, msg, None, None)
    for key, value in (extra or {}).items():
        rec.__dict__[key] = value  # as Logger.makeRecord stores extras
    return rec


def state(rec: logging.LogRecord):
    return rec.__dict__[STATE_ATTR]


@pytest.fixture
def ring() -> Keyring:
    return Keyring.generate()


@pytest.fixture
def audit_filter(ring) -> AuditFilter:
    return AuditFilter(keyring=ring, environment="test", app_version="9.9", service="svc")


class TestPayloadForms:
    def test_nested_payload_is_accepted_and_stamped(self, audit_filter):
        """extra={'audit': {...}} is validated and gets event_id, timestamp and provenance."""
        rec = record({"audit": dict(GOOD)})
        assert audit_filter.filter(rec) is True
        body = state(rec).body
        assert state(rec).accepted
        assert ("test", "9.9", "svc") == (body["environment"], body["app_version"],
                                          body["service"])
        assert body["timestamp"].endswith("Z") and len(body["timestamp"]) == 27
        assert 36 == len(body["event_id"]) and body["event_id"][14] == "7"

    def test_flat_extras_with_event_type_are_a_payload(self, audit_filter):
        """Flat extras carrying event_type work like the nested form."""
        rec = record(dict(GOOD))
        audit_filter.filter(rec)
        assert state(rec).accepted
        assert "gpt-4o-mini" == state(rec).body["model"]

    def test_event_ids_are_unique_and_time_ordered(self, audit_filter):
        """UUIDv7 ids sort in creation order within one process."""
        ids = []
        for _ in range(2000):
            rec = record({"audit": dict(GOOD)})
            audit_filter.filter(rec)
            ids.append(state(rec).body["event_id"])
        assert len(set(ids)) == len(ids)
        stamps = [i[:13] for i in ids]  # the millisecond prefix orders ids
        assert stamps == sorted(stamps)


class TestKeyedHashes:
    def test_raw_prompt_and_response_become_keyed_hashes(self, audit_filter, ring):
        """Raw text never survives; the value names the algorithm and pseudonym key id."""
        rec = record({"audit": dict(GOOD)})
        audit_filter.filter(rec)
        body = state(rec).body
        assert "prompt" not in body and "response" not in body
        assert body["prompt_hash"] == ring.pseudonymise(GOOD["prompt"])
        assert body["prompt_hash"].startswith(f"hmac-sha256:{ring.pseudonym_kid}:")

    def test_equal_text_links_across_records_but_differs_across_keys(self, ring, audit_filter):
        """Same key: same hash (linkable); another keyring: another hash (not guessable)."""
        first, second = record({"audit": dict(GOOD)}), record({"audit": dict(GOOD)})
        assert audit_filter.filter(first) and audit_filter.filter(second)
        assert state(first).body["prompt_hash"] == state(second).body["prompt_hash"]
        other = Keyring.generate()
        assert ring.pseudonymise("x") == ring.pseudonymise("x")
        assert ring.pseudonymise("x") != other.pseudonymise("x")

    @pytest.mark.parametrize(("event", "raw"), [
        ({"event_type": "rag.query", "user_id": "u", "status": "success", "source": "kb"},
         "query"),
        ({"event_type": "guardrail.block", "user_id": "u", "status": "success", "rule": "r"},
         "content"),
    ])
    def test_other_raw_fields_are_hashed(self, audit_filter, event, raw):
        """query (rag.query) and content (guardrail.*) are hashed the same way."""
        text = "patient Jane Roe, DOB 1970-01-01"
        rec = record({"audit": dict(event, **{raw: text})})
        audit_filter.filter(rec)
        assert state(rec).accepted
        assert text not in json.dumps(state(rec).body)
        assert f"{raw}_hash" in state(rec).body

    def test_shared_record_no_longer_carries_raw_text(self, audit_filter):
        """Handlers that are not ours see the processed payload, not the raw prompt."""
        nested = record({"audit": dict(GOOD)})
        flat = record(dict(GOOD))
        audit_filter.filter(nested)
        audit_filter.filter(flat)
        assert GOOD["prompt"] not in repr(nested.__dict__)
        assert GOOD["prompt"] not in repr(flat.__dict__)


SECRET = "zq-private-value-93817"


class TestRejected:
    @pytest.mark.parametrize(("field", "value", "reason"), [
        ("metadata", {"when": datetime.datetime(2026, 1, 1)}, "not JSON-serialisable (datetime)"),
        ("metadata", {"raw": SECRET.encode()}, "not JSON-serialisable (bytes)"),
        ("metadata", {"tags": {SECRET}}, "not JSON-serialisable (set)"),
        ("metadata", {"obj": object()}, "not JSON-serialisable (object)"),
        ("metadata", {"score": math.nan}, "not a finite number (NaN or Infinity)"),
        ("metadata", {"deep": [{"x": math.inf}]}, "not a finite number (NaN or Infinity)"),
        ("latency_ms", math.nan, "expected number"),
        ("tokens_input", "many", "expected integer"),
    ])
    def test_bad_values_are_named_never_quoted(self, audit_filter, field, value, reason):
        """A bad payload becomes audit.rejected naming field and reason, not the value."""
        rec = record({"audit": dict(GOOD, **{field: value})})
        assert audit_filter.filter(rec) is True
        result = state(rec)
        assert not result.accepted
        assert "audit.rejected" == result.body["event_type"]
        assert any(reason == p["reason"] for p in result.body["problems"])
        assert SECRET not in json.dumps(result.body)
        assert GOOD["prompt"] not in json.dumps(result.body)

    def test_missing_required_fields_are_listed(self, audit_filter):
        """Every missing required field is reported, with the rejected event type."""
        rec = record({"audit": {"event_type": "llm.completion"}})
        audit_filter.filter(rec)
        body = state(rec).body
        assert "llm.completion" == body["rejected_event_type"]
        missing = {p["field"] for p in body["problems"] if p["reason"] == "missing required field"}
        assert {"/user_id", "/status", "/model"} <= missing

    def test_unknown_event_type_is_not_echoed(self, audit_filter):
        """An unknown event type might be anything: it is not repeated in the record."""
        rec = record({"audit": {"event_type": SECRET, "user_id": "u", "status": "success"}})
        audit_filter.filter(rec)
        assert state(rec).body["rejected_event_type"] is None
        assert SECRET not in json.dumps(state(rec).body)

    def test_secret_used_as_a_key_is_not_echoed(self, audit_filter):
        """Keys are shown only when they are plain identifiers."""
        key = "Sk_" + SECRET.upper()
        rec = record({"audit": dict(GOOD, metadata={key: 1}, **{key: 2})})
        audit_filter.filter(rec)
        assert key not in json.dumps(state(rec).body)

    def test_oversized_payload_is_rejected(self, ring):
        """A payload over max_payload_bytes is rejected without its content."""
        small = AuditFilter(keyring=ring, max_payload_bytes=1024)
        rec = record({"audit": dict(GOOD, metadata={"blob": "x" * 5000})})
        small.filter(rec)
        assert ["payload larger than 1024 bytes"] == [p["reason"] for p in
                                                      state(rec).body["problems"]]

    @pytest.mark.parametrize(("option", "over", "within"), [
        ("max_depth", 3, 2), ("max_items", 11, 10)])
    def test_depth_and_item_bounds_hold_at_the_edge(self, ring, option, over, within):
        """Within the bound the payload is accepted; one step past it, rejected (the payload
        itself is depth 1)."""
        bounded = AuditFilter(keyring=ring, **{option: 3 if option == "max_depth" else 10})

        def metadata(size: int) -> object:
            if option == "max_items":
                return {f"k{i}": i for i in range(size)}
            value: object = 1
            for _ in range(size):
                value = {"n": value}
            return value

        accepted, rejected = (record({"audit": dict(GOOD, metadata=metadata(n))})
                              for n in (within, over))
        bounded.filter(accepted)
        bounded.filter(rejected)
        assert state(accepted).accepted
        assert not state(rejected).accepted

    @pytest.mark.parametrize("name", ["timestamp", "event_id", "environment", "message",
                                      "levelname", "msg"])
    def test_provenance_and_logrecord_names_cannot_be_set(self, audit_filter, name):
        """Payload keys that would override provenance or LogRecord attributes are rejected."""
        rec = record({"audit": dict(GOOD, **{name: "forged"})})
        audit_filter.filter(rec)
        assert not state(rec).accepted
        assert f"/{name}" in {p["field"] for p in state(rec).body["problems"]}

    def test_flat_collision_with_logrecord_attribute_becomes_rejected_record(self, audit_filter):
        """With get_logger(), extra={'name': ...} is a rejected record, not a KeyError."""
        logger = get_logger("audit.collision.test")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        captured = []
        handler = logging.Handler()
        handler.emit = captured.append
        handler.addFilter(audit_filter)
        logger.addHandler(handler)
        try:
            logger.info("x", extra=dict(GOOD, name="search", args=SECRET))
        finally:
            logger.removeHandler(handler)
        (rec,) = captured
        problems = {(p["field"], p["reason"]) for p in state(rec).body["problems"]}
        assert ("/name", "collides with a LogRecord attribute") in problems
        assert ("/args", "collides with a LogRecord attribute") in problems
        assert SECRET not in json.dumps(state(rec).body)

    def test_record_without_payload_stays_visible_by_default(self, audit_filter, ring):
        """No payload: a rejected record by default; 'ignore' skips it for our handlers."""
        rec = record()
        assert audit_filter.filter(rec) is True
        assert "no audit payload" in state(rec).body["problems"][0]["reason"]
        ignoring = AuditFilter(keyring=ring, on_missing_payload="ignore")
        assert ignoring.filter(record()) is False


class TestExceptions:
    def test_exception_records_are_accepted_with_scrubbed_traceback(self, audit_filter):
        """logger.exception with a payload: accepted; the traceback text is scrubbed."""
        secret_mail = "jane.roe.4711@example.org"
        try:
            raise ValueError(f"cannot reach {secret_mail}")
        except ValueError:
            import sys

            rec = record({"audit": dict(GOOD)})
            rec.exc_info = sys.exc_info()
        audit_filter.filter(rec)
        assert state(rec).accepted
        assert rec.exc_info is None
        assert "ValueError" in rec.exc_text
        assert secret_mail not in rec.exc_text
        assert {"EMAIL": 1} == state(rec).body["scrubbed"]


class TestConfiguration:
    @pytest.mark.parametrize("options", [{"strict": "false"}, {"on_missing_payload": "drop"},
                                         {"max_payload_bytes": 0}, {"environment": "x" * 65}])
    def test_bad_options_fail_clearly(self, ring, options):
        """Config-file values of the wrong type fail at configuration, naming the option."""
        from llm_audit_log import ConfigurationError

        with pytest.raises(ConfigurationError, match=next(iter(options))):
            AuditFilter(keyring=ring, **options)


class TestStrictMode:
    def test_strict_mode_raises_naming_fields_not_values(self, ring):
        """strict=True raises AuditPayloadError at the call site; the message has no values."""
        strict = AuditFilter(keyring=ring, strict=True)
        logger = logging.getLogger("audit.strict.test")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addFilter(strict)
        try:
            with pytest.raises(AuditPayloadError) as info:
                logger.info("x", extra={"audit": dict(GOOD, tokens_input=SECRET)})
        finally:
            logger.removeFilter(strict)
        assert "/tokens_input: expected integer" in str(info.value)
        assert SECRET not in str(info.value)


class TestCustomEventTypes:
    def test_registered_type_is_validated_with_common_fields(self, ring):
        """Users add event types with their own schema; common fields still apply."""
        custom = AuditFilter(keyring=ring, event_types={"billing.charge": {
            "type": "object", "properties": {"amount_cents": {"type": "integer", "minimum": 0}},
            "required": ["amount_cents"]}})
        ok = record({"audit": {"event_type": "billing.charge", "user_id": "u",
                               "status": "success", "amount_cents": 250}})
        bad = record({"audit": {"event_type": "billing.charge", "status": "success",
                                "amount_cents": -1}})
        custom.filter(ok)
        custom.filter(bad)
        assert state(ok).accepted
        assert {"/user_id", "/amount_cents"} == {p["field"] for p in state(bad).body["problems"]}


# -- property tests --------------------------------------------------------------------------

def json_values() -> st.SearchStrategy:
    leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    return st.recursive(leaves, lambda kids: st.lists(kids, max_size=4)
                        | st.dictionaries(st.text(max_size=10), kids, max_size=4), max_leaves=20)


def hostile_values() -> st.SearchStrategy:
    odd = (st.binary(max_size=8) | st.sets(st.integers(), max_size=3) | st.datetimes()
           | st.just(object()) | st.just(math.inf) | st.characters(min_codepoint=0xD800,
                                                                    max_codepoint=0xDFFF))
    return st.recursive(json_values() | odd, lambda kids: st.lists(kids, max_size=3)
                        | st.dictionaries(st.text(max_size=8) | st.integers(), kids, max_size=3),
                        max_leaves=12)


def payloads() -> st.SearchStrategy:
    event_types = st.sampled_from(["auth.login", "llm.completion", "rag.query", "tool.call",
                                   "guardrail.flag", "error", "admin.config_change", "nope"])
    base = st.fixed_dictionaries({"event_type": event_types, "user_id": st.text(max_size=5),
                                  "status": st.sampled_from(["success", "failure", "x"])})
    return st.builds(lambda b, extra: {**b, **extra}, base,
                     st.dictionaries(st.text(max_size=12), hostile_values(), max_size=5))


def completions() -> st.SearchStrategy:
    """Mostly valid llm.completion payloads: the shapes the fast path takes."""
    text = st.text(max_size=40)
    return st.fixed_dictionaries(
        {"event_type": st.just("llm.completion"), "user_id": st.text(min_size=1, max_size=8),
         "status": st.sampled_from(["success", "failure"])},
        optional={"model": st.text(min_size=1, max_size=12), "prompt": text, "response": text,
                  "tokens_input": st.integers(-2, 10**12), "latency_ms": st.floats(),
                  "rag_documents": st.lists(st.text(max_size=6), max_size=3),
                  "session_id": text | st.none(), "finish_reason": text,
                  "request_id": st.sampled_from(["r-1", "api_key=sk_live_x", "a@b.co"])})


class TestProperties:
    @settings(max_examples=300, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(payload=payloads() | st.dictionaries(st.text(max_size=8), hostile_values()),
           flat=st.booleans())
    def test_no_payload_ever_raises_in_default_mode(self, audit_filter, payload, flat):
        """Whatever the payload, the default filter returns and attaches a result."""
        rec = record(payload if flat and "event_type" in payload else {"audit": payload})
        assert audit_filter.filter(rec) is True
        assert STATE_ATTR in rec.__dict__

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(batch=st.lists(payloads(), min_size=1, max_size=8))
    def test_every_record_written_verifies(self, tmp_path_factory, ring, batch):
        """Accepted and rejected records alike are written and the log verifies."""
        directory: Path = tmp_path_factory.mktemp("prop")
        logger = logging.getLogger(f"audit.prop.{directory.name}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handler = AuditFileHandler(directory / "a.jsonl", keyring=ring)
        logger.addHandler(handler)
        try:
            for payload in batch:
                logger.info("m", extra={"audit": payload})
        finally:
            logger.removeHandler(handler)
            handler.close()
        report = verify_paths([directory], ring)
        assert 0 == report.exit_code, report.findings
        assert len(batch) == report.logs[0].events


class TestStamp:
    def test_stamp_matches_the_separate_functions(self):
        """stamp() gives format_timestamp()'s text and a UUIDv7 of the same millisecond."""
        import uuid

        from llm_audit_log.context import format_timestamp, stamp

        created = 1_790_000_000.123456
        timestamp, event_id = stamp(created)
        assert format_timestamp(created) == timestamp
        parsed = uuid.UUID(event_id)
        assert 7 == parsed.version
        assert int(created * 1000) == parsed.int >> 80

    @settings(max_examples=300, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(payload=completions(), flat=st.booleans(), args=st.booleans())
    def test_fast_and_general_paths_agree(self, audit_filter, payload, flat, args):
        """The one-pass path gives what the explaining path gives, or leaves it the record."""
        def make() -> logging.LogRecord:
            extra = dict(payload) if flat else {"audit": dict(payload)}
            rec = record(extra, msg="m %s" if args else "m")
            rec.args = ("x",) if args else None
            rec.created = 1_790_000_000.25
            return rec

        fast_rec, general_rec = make(), make()
        fast = audit_filter._process_fast(fast_rec, fast_rec.__dict__)
        raw, nested = audit_filter._payload_of(general_rec, general_rec.__dict__)
        general = audit_filter._process_general(general_rec, raw, nested)
        if fast is None:  # not for the fast path: it must have left the record untouched
            assert make().__dict__.keys() == fast_rec.__dict__.keys()
            assert (make().msg, make().args) == (fast_rec.msg, fast_rec.args)
            return
        assert fast.accepted == general.accepted
        fast_body = {k: v for k, v in fast.body.items() if k != "event_id"}
        general_body = {k: v for k, v in general.body.items() if k != "event_id"}
        assert fast_body == general_body
        assert fast_rec.getMessage() == general_rec.getMessage()
