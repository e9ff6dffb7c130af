"""The shipped encrypted configs load through dictConfig, write unreadable logs, and verify."""

from __future__ import annotations

import json
import logging
import logging.config
import os
from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws

from llm_audit_log import AuditFileHandler, Keyring, verify_paths
from llm_audit_log._demo import DEMO_EVENTS
from llm_audit_log.encrypt import kms_client_factory
from llm_audit_log.verify import DecryptedLine, decrypt_paths

CONFIGS = Path(__file__).resolve().parents[1] / "logging_configs"
ENCRYPTED = ("local-encrypted.json", "local-encrypted.yaml", "local-kms.json")


def load(name: str) -> dict:
    text = (CONFIGS / name).read_text()
    return yaml.safe_load(text) if name.endswith(".yaml") else json.loads(text)


@pytest.fixture
def configured(audit_config, tmp_path):
    """Apply a config with the host's keyring (auditor public key only); restored after."""
    auditor_ring = Keyring.generate()
    host_ring = auditor_ring.without_auditor_key()
    return (lambda name: audit_config(name, host_ring)), auditor_ring, tmp_path


def log_demo(logger: logging.Logger) -> None:
    for message, payload in DEMO_EVENTS:
        logger.info(message, extra={"audit": dict(payload)})
    for handler in logger.handlers:
        handler.close()


@pytest.fixture
def aws(monkeypatch, tmp_path):
    """Fake AWS credentials and region from the environment (the standard chain); moto KMS."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1"),
                        ("AWS_CONFIG_FILE", str(tmp_path / "none")),
                        ("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))):
        monkeypatch.setenv(name, value)
    with mock_aws():
        kms = boto3.client("kms")
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/llm-audit-log", TargetKeyId=key)
        yield


class TestShippedEncryptedConfigs:
    @pytest.mark.parametrize("name", ["local-encrypted.json", "local-encrypted.yaml"])
    def test_auditor_config_writes_verifiable_unreadable_logs(self, configured, name):
        """Every category logged; verify with the host keyring; only the auditor key decrypts."""
        apply, auditor_ring, cwd = configured
        logger = apply(name)
        (handler,) = logger.handlers
        assert isinstance(handler, AuditFileHandler)
        log_demo(logger)
        directory = cwd / "audit-logs-encrypted"
        data = b"".join(p.read_bytes() for p in directory.glob("*.jsonl"))
        for planted in (b"u-1842", b"order_lookup", b"guardrails.pii-output", b"s-77c1"):
            assert planted not in data

        report = verify_paths([directory], auditor_ring.without_auditor_key())
        run = decrypt_paths([directory], auditor_ring)
        users = [json.loads(i.body).get("user_id") for i in run
                 if isinstance(i, DecryptedLine) and i.kind == "event"]

        assert 0 == report.exit_code, report.findings
        assert len(DEMO_EVENTS) == report.logs[0].encrypted
        assert 1 == report.logs[0].rejected  # event_type is a clear field
        assert "u-1842" in users
        assert 0 == run.exit_code

    def test_kms_config_against_moto(self, configured, aws):
        """local-kms.json: key id from the config, region and credentials from the AWS chain."""
        apply, auditor_ring, cwd = configured
        log_demo(apply("local-kms.json"))
        directory = cwd / "audit-logs-kms"
        assert b"u-1842" not in b"".join(p.read_bytes() for p in directory.glob("*.jsonl"))

        report = verify_paths([directory], auditor_ring)
        run = decrypt_paths([directory], auditor_ring.without_auditor_key(),
                            kms_client_factory=kms_client_factory())
        shown = [i for i in run if isinstance(i, DecryptedLine) and i.encrypted]

        assert 0 == report.exit_code, report.findings
        assert len(DEMO_EVENTS) == len(shown)
        assert 0 == run.exit_code

    def test_json_and_yaml_say_the_same(self):
        """The two encrypted-config forms configure the same pipeline."""
        assert load("local-encrypted.json") == load("local-encrypted.yaml")

    @pytest.mark.parametrize("name", ENCRYPTED)
    def test_configs_hold_no_key_material_and_keep_existing_loggers(self, name):
        """Keys come from the keyring source or the AWS chain; earlier loggers stay enabled."""
        config = load(name)
        text = (CONFIGS / name).read_text()
        assert "env:LLM_AUDIT_KEYRING" in text
        assert '"key"' not in text
        assert "aws_access_key" not in text.lower()
        assert config["disable_existing_loggers"] is False
        handler = config["handlers"]["audit_file"]
        assert handler["encrypt"] in ("auditor", "kms")
        if handler["encrypt"] == "kms":
            assert "alias/llm-audit-log" == handler["kms_key_id"]
            assert "kms_region" not in handler

    def test_public_only_host_keyring_is_enough_to_write(self, configured):
        """The handler never needs the auditor's private key."""
        apply, _auditor_ring, _cwd = configured
        (handler,) = apply("local-encrypted.json").handlers
        assert handler._keyring.auditor_key is None
        assert handler._keyring.auditor_public_key is not None
