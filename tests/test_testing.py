"""llm_audit_log.testing: capture what your code would write, in tests."""

from __future__ import annotations

import logging

import pytest

from llm_audit_log import AuditPayloadError
from llm_audit_log.testing import capture_audit


class TestCaptureAudit:
    def test_captures_processed_bodies(self):
        """Bodies come out exactly as written: hashed prompt, provenance filled."""
        with capture_audit("audit.capture.test") as records:
            logging.getLogger("audit.capture.test").info("answered", extra={"audit": {
                "event_type": "llm.completion", "user_id": "u", "status": "success",
                "model": "m", "prompt": "raw text"}})
        (body,) = records
        assert "llm.completion" == body["event_type"]
        assert "prompt" not in body
        assert body["prompt_hash"].startswith("hmac-sha256:")
        assert "answered" == body["message"]

    def test_strict_option_surfaces_bad_payloads_in_tests(self):
        """Passing strict=True makes a bad payload fail the test at the call site."""
        with capture_audit("audit.capture.strict", strict=True), pytest.raises(AuditPayloadError):
            logging.getLogger("audit.capture.strict").info("x", extra={"audit": {
                "event_type": "auth.login"}})
