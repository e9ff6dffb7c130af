"""The shipped logging_configs/ load through dictConfig and produce verifying logs."""

from __future__ import annotations

import json
import logging
import logging.config
from pathlib import Path

import pytest
import yaml

from llm_audit_log import AuditFileHandler, AuditFilter, Keyring, verify_paths
from llm_audit_log._demo import DEMO_EVENTS
from llm_audit_log.errors import KeyringError

CONFIGS = Path(__file__).resolve().parents[1] / "logging_configs"


def load(name: str) -> dict:
    text = (CONFIGS / name).read_text()
    return yaml.safe_load(text) if name.endswith(".yaml") else json.loads(text)


@pytest.fixture
def configured(audit_config, tmp_path):
    """Apply a shipped config with a full keyring; the audit logger is restored afterwards."""
    ring = Keyring.generate()
    return (lambda name: audit_config(name, ring)), ring, tmp_path


class TestShippedConfigs:
    @pytest.mark.parametrize("name", ["local.json", "local.yaml"])
    def test_every_category_is_logged_and_verifies(self, configured, name):
        """The dictConfig snippet + logger.info(..., extra=...) + verify: exit 0."""
        apply, ring, cwd = configured
        logger = apply(name)
        for message, payload in DEMO_EVENTS:
            logger.info(message, extra={"audit": dict(payload)})
        logging.getLogger("audit.rag").info("child logger", extra={"audit": dict(
            DEMO_EVENTS[1][1])})
        for handler in logger.handlers:
            handler.close()
        report = verify_paths([cwd / "audit-logs"], ring)
        assert 0 == report.exit_code, report.findings
        assert len(DEMO_EVENTS) + 1 == report.logs[0].events
        assert 1 == report.logs[0].rejected
        text = "".join(p.read_text() for p in (cwd / "audit-logs").glob("*.jsonl"))
        assert "What is our refund window?" not in text

    def test_json_and_yaml_say_the_same(self):
        """The two shipped forms configure the same pipeline."""
        assert load("local.json") == load("local.yaml")

    def test_configs_hold_no_key_material(self):
        """Configs name where keys come from; they never hold keys."""
        for name in ("local.json", "local.yaml"):
            text = (CONFIGS / name).read_text()
            assert "env:LLM_AUDIT_KEYRING" in text
            assert '"key"' not in text

    def test_existing_loggers_keep_working(self, configured):
        """disable_existing_loggers is false: loggers made earlier are not silenced."""
        earlier = logging.getLogger("app.before.config")
        apply, _ring, _cwd = configured
        apply("local.json")
        assert not earlier.disabled

    def test_reapplying_a_changed_config_needs_the_filters_cleared(self, configured):
        """The README's advice: dictConfig keeps old filters; cleared, the new one applies."""
        apply, _ring, _cwd = configured
        logger = apply("local.json")
        changed = load("local.json")
        changed["filters"]["audit_pipeline"]["environment"] = "production"

        def environment_of_next_record() -> str:
            record = logger.makeRecord("audit", logging.INFO, __file__, 1, "x", None, None,
                                       extra={"audit": dict(DEMO_EVENTS[0][1])})
            logger.filter(record)
            return str(record.__dict__["audit"]["environment"])

        for handler in logger.handlers:
            handler.close()
        logging.config.dictConfig(changed)
        kept = environment_of_next_record()
        for handler in logger.handlers:
            handler.close()
        logger.filters.clear()
        logging.config.dictConfig(changed)
        assert ("development", "production") == (kept, environment_of_next_record())

    def test_missing_key_fails_configuration_clearly(self, tmp_path, monkeypatch):
        """No LLM_AUDIT_KEYRING: dictConfig fails naming the variable."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("LLM_AUDIT_KEYRING", raising=False)
        with pytest.raises(ValueError, match="Unable to configure filter") as info:
            logging.config.dictConfig(load("local.json"))
        assert isinstance(info.value.__cause__, KeyringError)
        assert "LLM_AUDIT_KEYRING" in str(info.value.__cause__)

    def test_handler_and_filter_types(self, configured):
        """The config wires our filter on the logger and handler, and our handler."""
        apply, _ring, _cwd = configured
        logger = apply("local.json")
        assert any(isinstance(f, AuditFilter) for f in logger.filters)
        (handler,) = logger.handlers
        assert isinstance(handler, AuditFileHandler)
        assert not logger.propagate
