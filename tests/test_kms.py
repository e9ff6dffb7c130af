"""Data keys from AWS KMS, against moto: in-process (mock_aws) and once over real HTTP."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from llm_audit_log import AuditFileHandler, Keyring, verify_paths
from llm_audit_log.encrypt import (
    WRAP_KMS,
    KmsRecipient,
    kms_client_factory,
    kms_encryption_context,
    unwrap_data_key,
)
from llm_audit_log.errors import DataKeyError, DecryptionError
from llm_audit_log.sinks import _rotation
from llm_audit_log.verify import DecryptedLine, decrypt_paths

ALIAS = "alias/llm-audit-log"
REGION = "us-east-1"
LOG_ID = "L" + "0" * 20


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and region only; never any real AWS configuration."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def create_key(endpoint_url: str | None = None) -> str:
    """A symmetric KMS key with the alias the shipped config names; returns its ARN."""
    kms = boto3.client("kms", region_name=REGION, endpoint_url=endpoint_url)
    arn: str = kms.create_key(Description="llm-audit-log test")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=arn)
    return arn


@pytest.fixture
def kms_key(aws_env: None) -> Iterator[str]:
    with mock_aws():
        yield create_key()


def header(dk_id: str, wrap: dict[str, Any], index: int = 1) -> dict[str, Any]:
    return {"file_index": index, "encryption": {"alg": "A256GCM", "dk": dk_id, "wrap": wrap,
                                                "clear": []}}


def write_events(handler: AuditFileHandler, secret: str, *, files: int = 2) -> None:
    logger = logging.getLogger(f"kms.{secrets.token_hex(6)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    for index in range(files):
        if index:
            handler.doRollover()
        for number in range(3):
            logger.info("event %d", number, extra={"audit": {
                "event_type": "auth.login", "user_id": secret, "status": "success"}})
    handler.close()
    logger.removeHandler(handler)


class TestKmsRecipient:
    def test_generate_and_decrypt_data_key(self, kms_key):
        """GenerateDataKey gives the file's key; Decrypt with the same context gives it back."""
        recipient = KmsRecipient(ALIAS, kms_client_factory(REGION))
        dk, wrap = recipient.new_data_key(LOG_ID, 1)
        nonce, ct = dk.encrypt_body(b"payload", b"")

        got = unwrap_data_key(header(dk.dk_id, wrap), log_id=LOG_ID,
                              kms_client=boto3.client("kms", region_name=REGION))

        assert b"payload" == got.decrypt_body(nonce, ct, b"")
        assert {"alg", "key", "ct"} == set(wrap)
        assert (WRAP_KMS, kms_key) == (wrap["alg"], wrap["key"])
        assert base64.b64encode(bytes(dk._key)).decode() not in json.dumps(wrap)

    @pytest.mark.parametrize("where", ["log id", "file index"])
    def test_encryption_context_binds_the_key_to_its_file(self, kms_key, where):
        """A wrapped key moved to another log or file index is refused by KMS itself."""
        dk, wrap = KmsRecipient(ALIAS, kms_client_factory(REGION)).new_data_key(LOG_ID, 1)
        body = header(dk.dk_id, wrap, index=2 if where == "file index" else 1)
        log_id = "L" + "f" * 20 if where == "log id" else LOG_ID
        with pytest.raises(DecryptionError):
            unwrap_data_key(body, log_id=log_id,
                            kms_client=boto3.client("kms", region_name=REGION))
        assert {"llm-audit-log": LOG_ID, "file": "1"} == kms_encryption_context(LOG_ID, 1)

    def test_no_client_or_altered_blob_is_the_opaque_error(self, kms_key):
        """Without a KMS client, or with an altered blob: DecryptionError, nothing else."""
        dk, wrap = KmsRecipient(ALIAS, kms_client_factory(REGION)).new_data_key(LOG_ID, 1)
        with pytest.raises(DecryptionError):
            unwrap_data_key(header(dk.dk_id, wrap), log_id=LOG_ID)
        raw = bytearray(base64.b64decode(wrap["ct"]))
        raw[-1] ^= 1
        wrap["ct"] = base64.b64encode(bytes(raw)).decode()
        with pytest.raises(DecryptionError):
            unwrap_data_key(header(dk.dk_id, wrap), log_id=LOG_ID,
                            kms_client=boto3.client("kms", region_name=REGION))

    def test_unknown_key_is_a_data_key_error_naming_the_code(self, kms_key):
        """A KMS refusal names the key id and the error code, and fails handler construction."""
        recipient = KmsRecipient("alias/does-not-exist", kms_client_factory(REGION))
        with pytest.raises(DataKeyError, match="NotFoundException"):
            recipient.new_data_key(LOG_ID, 1)


class TestKmsHandler:
    def test_log_verify_and_decrypt(self, kms_key, tmp_path):
        """encrypt='kms': nothing planted in clear, verify needs no KMS, decrypt asks KMS."""
        secret = f"PLANTED{secrets.token_hex(6)}"
        ring = Keyring.generate().without_auditor_key()
        handler = AuditFileHandler(tmp_path / "logs" / "audit.jsonl", keyring=ring,
                                   encrypt="kms", kms_key_id=ALIAS, kms_region=REGION)
        assert f"enc=kms:{ALIAS}" in repr(handler)
        write_events(handler, secret)
        data = b"".join(p.read_bytes() for p in (tmp_path / "logs").glob("*.jsonl"))
        assert secret.encode() not in data
        assert data.count(b'"alg":"aws-kms"') == 2

        report = verify_paths([tmp_path / "logs"], ring)
        run = decrypt_paths([tmp_path / "logs"], ring,
                            kms_client_factory=kms_client_factory(REGION))
        events = [json.loads(i.body) for i in run if isinstance(i, DecryptedLine)
                  and i.encrypted]

        assert 0 == report.exit_code, report.findings
        assert 6 == report.logs[0].encrypted
        assert [secret] * 6 == [e["user_id"] for e in events]
        assert 0 == run.exit_code

    def test_unreachable_key_fails_construction(self, kms_key, tmp_path):
        """A handler whose first data key cannot be had fails at construction, writing nothing."""
        with pytest.raises(DataKeyError):
            AuditFileHandler(tmp_path / "logs" / "audit.jsonl", keyring=Keyring.generate(),
                             encrypt="kms", kms_key_id="alias/missing", kms_region=REGION)
        assert [] == [p for p in (tmp_path / "logs").iterdir() if not p.name.startswith(".")]

    def test_decrypt_without_kms_access_is_cannot_verify(self, kms_key, tmp_path):
        """Decrypting without a KMS client: every event refused, exit 4 (not tampering)."""
        ring = Keyring.generate()
        write_events(AuditFileHandler(tmp_path / "logs" / "audit.jsonl", keyring=ring,
                                      encrypt="kms", kms_key_id=ALIAS, kms_region=REGION), "u")
        run = decrypt_paths([tmp_path / "logs"], ring)
        refused = [i for i in run if not isinstance(i, DecryptedLine)]
        assert 6 == len(refused)
        assert 4 == run.exit_code

    def test_kms_outage_at_rotation_keeps_writing_then_rotates(self, kms_key, tmp_path,
                                                               monkeypatch, capsys):
        """
        KMS refuses the next file's data key: records go on in the current file (past its
        size limit, said once on stderr), rotation is retried after the hold, nothing is
        lost, and the log verifies and decrypts whole.
        """
        monkeypatch.setattr(_rotation, "_KEY_RETRY_SECONDS", 0.5)
        outage = {"on": False, "refused": 0}

        def refuse(**_: Any) -> None:
            if outage["on"]:
                outage["refused"] += 1
                raise ClientError({"Error": {"Code": "KMSInternalException",
                                             "Message": "injected outage"}}, "GenerateDataKey")

        def client() -> Any:
            kms = boto3.client("kms", region_name=REGION)
            kms.meta.events.register("before-call.kms.GenerateDataKey", refuse)
            return kms

        ring = Keyring.generate().without_auditor_key()
        logs = tmp_path / "logs"
        handler = AuditFileHandler(logs / "audit.jsonl", keyring=ring, maxBytes=4096,
                                   encrypt="kms", kms_key_id=ALIAS, kms_client_factory=client)
        logger = logging.getLogger(f"kms.outage.{secrets.token_hex(6)}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)

        def log(first: int, count: int) -> None:
            for number in range(first, first + count):
                logger.info("event", extra={"audit": {
                    "event_type": "auth.login", "user_id": f"u-{number}",
                    "status": "success"}})

        outage["on"] = True
        log(0, 40)  # about four files' worth, all in the first file
        outage_files = sorted(logs.glob("*.jsonl"))
        outage_stderr = capsys.readouterr().err
        outage["on"] = False
        log(40, 2)  # still inside the hold: no KMS call, same file
        held_files = sorted(logs.glob("*.jsonl"))
        time.sleep(0.6)
        log(42, 20)
        handler.close()
        logger.removeHandler(handler)

        assert 1 == len(outage_files) and outage_files == held_files
        assert outage_files[0].stat().st_size > 4096
        assert 1 == outage["refused"]  # one try per hold, not one per record
        assert 1 == outage_stderr.count("cannot start the next file")
        assert "KMSInternalException" in outage_stderr
        assert 2 <= len(list(logs.glob("*.jsonl")))
        report = verify_paths([logs], ring)
        assert 0 == report.exit_code, report.findings
        run = decrypt_paths([logs], ring, kms_client_factory=kms_client_factory(REGION))
        users = [json.loads(i.body)["user_id"] for i in run
                 if isinstance(i, DecryptedLine) and i.encrypted]
        assert [f"u-{n}" for n in range(62)] == users
        assert 0 == run.exit_code

class TestKmsOverHttp:
    def test_end_to_end_through_moto_server(self, aws_env, tmp_path):
        """boto3 over real HTTP to moto on loopback: write, rotate, then `llm-audit decrypt`."""
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            arn = create_key(endpoint)
            secret = f"PLANTED{secrets.token_hex(6)}"
            ring = Keyring.generate().without_auditor_key()
            ring.save(tmp_path / "host.json")
            handler = AuditFileHandler(tmp_path / "logs" / "audit.jsonl", keyring=ring,
                                       encrypt="kms", kms_key_id=ALIAS, kms_region=REGION,
                                       kms_endpoint_url=endpoint)
            write_events(handler, secret, files=3)
            assert secret.encode() not in b"".join(
                p.read_bytes() for p in (tmp_path / "logs").glob("*.jsonl"))

            result = subprocess.run(
                [sys.executable, "-m", "llm_audit_log", "decrypt", "--keyring",
                 str(tmp_path / "host.json"), "--kms-region", REGION, "--kms-endpoint-url",
                 endpoint, str(tmp_path / "logs")],
                capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ))

            assert 0 == result.returncode, result.stderr
            lines = [json.loads(line) for line in result.stdout.splitlines()]
            events = [line for line in lines if line["kind"] == "event"]
            assert [secret] * 9 == [e["body"]["user_id"] for e in events]
            assert all(e["encrypted"] for e in events)
            headers = [line for line in lines if line["kind"] == "header"]
            assert {arn} == {h["body"]["encryption"]["wrap"]["key"] for h in headers}
        finally:
            server.stop()
