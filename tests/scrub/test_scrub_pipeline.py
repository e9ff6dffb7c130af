"""
Scrubbing end to end: planted secrets and PII in every place a record carries strings
never reach any output (file lines, rejected records, stderr), and hard negatives survive.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

import corpus
import pytest
from pythonjsonlogger.json import JsonFormatter

from llm_audit_log import AuditFileHandler, AuditFilter, Keyring, ScrubFilter, verify_paths

PLANTED = [p for p in corpus.planted() if p.kind != "IP_ADDRESS"]  # IPs are opt-in
NEGATIVES = corpus.negatives()


def bodies(directory: Path) -> list[dict]:
    lines = []
    for path in sorted(directory.glob("*.jsonl")):
        lines += [json.loads(raw) for raw in path.read_bytes().split(b"\n") if raw]
    return [line["body"] for line in lines if line["t"] == "event"]


def raw_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.glob("*.jsonl")))


@pytest.fixture
def audit_log(tmp_path, request):
    """A logger wired like the shipped config: filter on the logger and the handler."""
    ring = Keyring.generate()
    logger = logging.getLogger(f"audit.scrubtest.{request.node.name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    audit_filter = AuditFilter(keyring=ring)
    handler = AuditFileHandler(tmp_path / "logs" / "audit.jsonl", keyring=ring)
    handler.addFilter(audit_filter)
    logger.addFilter(audit_filter)
    logger.addHandler(handler)
    yield logger, handler, ring, tmp_path / "logs"
    logger.removeHandler(handler)
    logger.removeFilter(audit_filter)
    handler.close()


@contextlib.contextmanager
def console_beside(logger: logging.Logger) -> Iterator[io.StringIO]:
    """A handler that is not ours (python-json-logger to a string) on the audit logger."""
    stream = io.StringIO()
    console = logging.StreamHandler(stream)
    console.setFormatter(JsonFormatter())
    logger.addHandler(console)
    try:
        yield stream
    finally:
        logger.removeHandler(console)


def plant_everywhere(logger: logging.Logger, text: str) -> None:
    """Log ``text`` (a sentence holding a secret) in every place a record carries strings."""
    base = {"event_type": "tool.call", "user_id": "u-1", "status": "success",
            "tool_name": "search"}
    logger.info(text, extra={"audit": dict(base)})  # message
    logger.info("note: %s", text, extra={"audit": dict(base)})  # args
    logger.info("nested", extra={"audit": dict(base, parameters={"q": text, "list": [text],
                                                                 "deep": {"x": [text]}})})
    logger.info("key", extra={"audit": dict(base, parameters={text: "v"})})  # a key
    logger.info("flat", extra=dict(base, parameters={"q": text}))  # flat form
    try:
        raise ValueError(text)
    except ValueError:
        logger.exception("failed", extra={"audit": dict(base, status="failure")})
    logger.info(text, extra={"audit": dict(base, tool_name=123)})  # a rejected record
    logger.info("no payload %s", text)  # rejected: no payload


class TestNothingLeaks:
    def test_every_planted_value_is_absent_from_every_output(self, audit_log, capfd):
        """>= 20 values of every kind, planted everywhere: 100 % absent; report per kind."""
        logger, handler, ring, directory = audit_log
        kinds = Counter(p.kind for p in PLANTED)
        assert min(kinds.values()) >= 20
        for item in PLANTED:
            plant_everywhere(logger, item.text)
        handler.close()
        data = raw_bytes(directory)
        err = capfd.readouterr()
        leaked = Counter(p.kind for p in PLANTED
                         if p.secret.encode() in data or p.secret in err.err + err.out)
        report = {kind: f"recall {1 - leaked[kind] / n:.0%} ({n - leaked[kind]}/{n})"
                  for kind, n in sorted(kinds.items())}
        print("\nscrub recall per kind (every place):", json.dumps(report, indent=1))
        assert {} == dict(leaked)
        assert 0 == verify_paths([directory], ring).exit_code

    def test_counts_travel_in_the_signed_body(self, audit_log):
        """The body says which detectors fired and how often, never what they found."""
        logger, handler, _ring, directory = audit_log
        email = next(p for p in PLANTED if p.kind == "EMAIL")
        logger.info(email.text, extra={"audit": {
            "event_type": "auth.login", "user_id": email.secret, "status": "success"}})
        handler.close()
        (body,) = bodies(directory)
        assert {"EMAIL": 2} == body["scrubbed"]
        assert body["user_id"].startswith("[REDACTED:EMAIL:")
        assert email.secret not in json.dumps(body)

    def test_equal_values_get_equal_markers(self, audit_log):
        """Markers are keyed hashes: the same address links across records."""
        logger, handler, _ring, directory = audit_log
        email = next(p for p in PLANTED if p.kind == "EMAIL").secret
        for _ in range(2):
            logger.info("from %s", email, extra={"audit": {
                "event_type": "auth.login", "user_id": "u", "status": "success"}})
        handler.close()
        first, second = bodies(directory)
        assert first["message"] == second["message"]


class TestOtherHandlersOfTheAuditLogger:
    def test_extras_beside_the_payload_are_scrubbed_for_them(self, audit_log):
        """A console handler beside ours prints extras our body leaves out: scrubbed."""
        logger, _handler, _ring, directory = audit_log
        base = {"event_type": "auth.login", "user_id": "u-1", "status": "success"}
        with console_beside(logger) as stream:
            for item in PLANTED:
                logger.info("signed in", extra={"audit": dict(base), "password": item.secret,
                                                "note": item.text, "tags": [item.text]})
        output = stream.getvalue() + raw_bytes(directory).decode()
        assert [] == [p.kind for p in PLANTED if p.secret in output]
        assert len(PLANTED) == len(bodies(directory))
        assert all(b["event_type"] == "auth.login" for b in bodies(directory))

    def test_an_internal_error_leaves_a_scrubbed_rejected_record(self, audit_log):
        """A payload that breaks the filter still gives a rejected record with nothing raw."""

        class Broken(Mapping[str, object]):
            def __getitem__(self, key: str) -> object:
                raise KeyError(key)

            def __iter__(self) -> Iterator[str]:
                return iter(["event_type"])

            def __len__(self) -> int:
                return 1

        logger, _handler, _ring, directory = audit_log
        with console_beside(logger) as stream:
            for item in PLANTED:
                logger.info("user said %s", item.text, extra={"audit": Broken(),
                                                              "note": item.text})
        output = stream.getvalue() + raw_bytes(directory).decode()
        assert [] == [p.kind for p in PLANTED if p.secret in output]
        reasons = {b["problems"][0]["reason"] for b in bodies(directory)}
        assert {"internal error while processing (KeyError)"} == reasons


class TestShapesFromAgentsAndCode:
    """Credentials as coding assistants and devops agents log them, through the pipeline."""

    SECRET = "Pw9xQ2mZ7vLk"
    SHAPES = ('apiKey := "{s}"', 'os.environ["OPENAI_API_KEY"] = "{s}"',
              "password          = {s}", 'db_password = SecretStr("{s}")',
              '{{"password"=>"{s}"}}', "**Password:** {s}", "Cookie: theme=dark; sid={s}",
              "postgres://app:{s}#1@db.internal:5432/app", "API Key: {s}",
              "--password {s}", "mysql -u root -p{s} shop", "curl -u bob:{s} https://x")

    def test_no_shape_reaches_the_file_or_a_handler_beside_it(self, audit_log, capfd):
        logger, handler, ring, directory = audit_log
        with console_beside(logger) as stream:
            for shape in self.SHAPES:
                plant_everywhere(logger, shape.format(s=self.SECRET))
            logger.info("deployed", extra={"audit": {
                "event_type": "tool.call", "user_id": "u-1", "status": "success",
                "tool_name": "kubectl_apply", "parameters": {"env": [
                    {"name": "OPENAI_API_KEY", "value": self.SECRET},
                    {"name": "LOG_LEVEL", "value": "debug"}]}}})
        handler.close()
        err = capfd.readouterr()
        outputs = raw_bytes(directory).decode() + stream.getvalue() + err.out + err.err
        assert self.SECRET not in outputs
        assert '"value":"debug"' in outputs.replace(" ", "")
        assert 0 == verify_paths([directory], ring).exit_code


class TestRawTextElsewhere:
    def test_a_prompt_in_metadata_or_an_extra_is_never_kept_as_text(self, audit_log):
        """Raw text under metadata.prompt, or as a flat extra beside the payload: hashed."""
        logger, _handler, _ring, directory = audit_log
        prompt = "I am Jane Doe and I live at 12 Elm Street; summarise my contract."
        with console_beside(logger) as stream:
            logger.info("asked", extra={"audit": {
                "event_type": "tool.call", "user_id": "u-1", "status": "success",
                "tool_name": "search", "metadata": {"prompt": prompt}}, "messages": [prompt]})
        output = stream.getvalue() + raw_bytes(directory).decode()
        assert "Jane Doe" not in output
        assert {"RAW_TEXT": 1} == bodies(directory)[0]["scrubbed"]


class TestRejectedRecordsKeepWho:
    def test_who_and_which_request_survive_a_rejection(self, audit_log):
        """A wrong type elsewhere: the record still says who, scrubbed, never the bad value."""
        logger, _handler, _ring, directory = audit_log
        email = next(p for p in PLANTED if p.kind == "EMAIL").secret
        logger.info("asked", extra={"audit": {
            "event_type": "llm.completion", "user_id": "u-1842", "status": "success",
            "session_id": email, "request_id": "Jane Doe, 12 Elm St", "trace_id": "ab" * 16,
            "span_id": "not-hex-at-all!", "model": "gpt-4o-mini", "tokens_input": "512"}})
        body = bodies(directory)[0]
        assert "audit.rejected" == body["event_type"]
        assert ("u-1842", "ab" * 16) == (body["user_id"], body["trace_id"])
        assert body["session_id"].startswith("[REDACTED:EMAIL:")
        assert "request_id" not in body and "span_id" not in body  # not identifier-shaped
        assert "512" not in json.dumps(body) and "Jane" not in json.dumps(body)

    def test_a_field_that_is_itself_the_problem_is_not_kept(self, audit_log):
        logger, _handler, _ring, directory = audit_log
        logger.info("asked", extra={"audit": {"event_type": "auth.login", "user_id": "u-1",
                                              "status": "success", "trace_id": "not-hex"}})
        body = bodies(directory)[0]
        assert ("u-1", False) == (body["user_id"], "trace_id" in body)
        assert {"/trace_id"} == {p["field"] for p in body["problems"]}  # length, pattern


class TestRejectedRecords:
    def test_a_payload_attribute_named_with_an_underscore_is_cleared_too(self):
        """payload_attr="_audit": a rejected record keeps no raw payload for other handlers."""
        audit_filter = AuditFilter(keyring=Keyring.generate(), payload_attr="_audit")
        email = next(p for p in PLANTED if p.kind == "EMAIL").secret
        record = logging.LogRecord("audit", logging.INFO, __file__, 1, "x", None, None)
        record._audit = {"event_type": "auth.login", "user_id": email}  # no status: rejected
        audit_filter.filter(record)
        assert record._audit is None


class TestHardNegatives:
    def test_hard_negatives_survive_byte_for_byte(self, audit_log):
        """UUIDs, hashes, model names, timestamps, versions...: untouched; 0 false positives."""
        logger, handler, _ring, directory = audit_log
        for item in NEGATIVES:
            logger.info(item.text, extra={"audit": {
                "event_type": "tool.call", "user_id": "u", "status": "success",
                "tool_name": "t", "parameters": {"v": item.value}}})
        handler.close()
        written = bodies(directory)
        altered = Counter(n.kind for n, body in zip(NEGATIVES, written, strict=True)
                          if body["message"] != n.text or body["parameters"]["v"] != n.value)
        print("\nfalse positives per kind:",
              {kind: altered[kind] for kind in sorted({n.kind for n in NEGATIVES})})
        assert {} == dict(altered)
        assert all("scrubbed" not in body for body in written)


class TestScrubFilterAlone:
    def test_other_handlers_see_scrubbed_records(self):
        """On the logger, ScrubFilter protects handlers that are not ours (here a JSON one)."""
        ring = Keyring.generate()
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter())
        logger = logging.getLogger("app.scrubfilter.test")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        scrub = ScrubFilter(keyring=ring)
        logger.addFilter(scrub)
        logger.addHandler(handler)
        try:
            for item in PLANTED:
                logger.info("user said %s", item.text, extra={"ctx": {"said": [item.text]}})
                try:
                    raise RuntimeError(item.text)
                except RuntimeError:
                    logger.exception("boom")
        finally:
            logger.removeHandler(handler)
            logger.removeFilter(scrub)
        output = stream.getvalue()
        assert [] == [p.kind for p in PLANTED if p.secret in output]
        assert "[REDACTED:" in output

    def test_extras_of_every_shape_reach_other_handlers_scrubbed(self):
        """
        Extras named like credentials go whole; bytes, sets, objects and whole floats are
        judged by what a formatter prints (here ``%r`` and ``%s``, which show them raw).
        """
        ring = Keyring.generate()
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(
            "%(message)s %(password)s %(api_key)r %(blob)r %(group)r %(obj)s %(amount)r"))
        logger = logging.getLogger("app.scrubfilter.shapes")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        scrub = ScrubFilter(keyring=ring)
        logger.addFilter(scrub)
        logger.addHandler(handler)

        class Shown:
            def __init__(self, text: str) -> None:
                self.text = text

            def __str__(self) -> str:
                return f"Shown({self.text})"

        card = next(p for p in PLANTED if p.kind == "CARD_NUMBER" and " " not in p.secret
                    and "-" not in p.secret).secret
        try:
            for item in PLANTED:
                logger.info("login", extra={
                    "password": item.secret, "api_key": [item.secret],
                    "blob": item.text.encode(), "group": {item.text}, "obj": Shown(item.text),
                    "amount": float(card)})
        finally:
            logger.removeHandler(handler)
            logger.removeFilter(scrub)
        output = stream.getvalue()
        assert [] == [p.kind for p in PLANTED if p.secret in output]
        assert card not in output
        amount = output.splitlines()[0].rsplit(" ", 1)[1]  # the float card, %r of its marker
        assert amount.startswith("'[REDACTED:CARD_NUMBER:")
        assert len(PLANTED) <= output.count(amount)

    def test_options_from_dictconfig_shape(self):
        """Options are plain values: disable a detector, allowlist a value, custom pattern."""
        ring = Keyring.generate()
        email = next(p for p in PLANTED if p.kind == "EMAIL").secret
        scrub = ScrubFilter(keyring=ring, allowlist=[email],
                            custom_patterns={"TICKET": r"TCK-[0-9]{6}"}, marker="typed")
        record = logging.LogRecord("x", logging.INFO, __file__, 1,
                                   "mail %s about TCK-123456", (email,), None)
        scrub.filter(record)
        assert f"mail {email} about [REDACTED:TICKET]" == record.getMessage()
