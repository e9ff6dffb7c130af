"""AuditFileHandler with encryption at rest: what reaches the disk, what comes back, who can read."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from llm_audit_log import AuditFileHandler, AuditFormatter, ConfigurationError, Keyring, Verdict
from llm_audit_log import encrypt as encrypt_module
from llm_audit_log.encrypt import decrypt_event_body, unwrap_data_key
from llm_audit_log.errors import DataKeyError, DecryptionError
from llm_audit_log.keys import AuditorKey, KeyringError, load_auditor_key
from llm_audit_log.seal import parse_line
from llm_audit_log.sinks import files as files_module
from llm_audit_log.verify import DecryptedLine, decrypt_paths, verify_paths


def log_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))


def raw_lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().split(b"\n") if line]


def raw_body(line: bytes) -> bytes:
    """The body exactly as written in a line."""
    start = line.index(b'"body":') + len(b'"body":')
    return line[start:line.rindex(b',"kid":"')]


def plant() -> str:
    """A unique value that must never appear on disk in clear."""
    return f"PLANTED{secrets.token_hex(6)}"


@pytest.fixture
def auditor_ring() -> Keyring:
    """The full keyring, as the auditor holds it (signing keys and the auditor private key)."""
    return Keyring.generate()


@pytest.fixture
def host_ring(auditor_ring: Keyring) -> Keyring:
    """What the log host holds: the same signing keys, the auditor's public key only."""
    return auditor_ring.without_auditor_key()


@pytest.fixture
def make_logger(tmp_path, host_ring, request):
    """A fresh logger with an encrypting AuditFileHandler; closed afterwards."""
    made: list[tuple[logging.Logger, logging.Handler]] = []

    def make(directory: Path | None = None, *, keyring: Keyring | None = None,
             encrypt: str | None = "auditor", **options: Any):
        directory = directory or tmp_path / "logs"
        logger = logging.getLogger(f"enc.{request.node.name}.{len(made)}.{secrets.token_hex(3)}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handler = AuditFileHandler(directory / "audit.jsonl", keyring=keyring or host_ring,
                                   encrypt=encrypt, **options)
        logger.addHandler(handler)
        made.append((logger, handler))
        return logger, handler

    yield make
    for logger, handler in made:
        logger.removeHandler(handler)
        handler.close()


def every_category(planted: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """One event per category, every free field holding a planted value."""
    p = planted
    return [
        (f"signed in {p['message']}", {"event_type": "auth.login", "user_id": p["user"],
                                       "status": "success", "session_id": p["session"],
                                       "user_agent": p["agent"], "method": p["method"]}),
        ("completion", {"event_type": "llm.completion", "user_id": p["user"],
                        "status": "success", "model": p["model"], "provider": p["provider"],
                        "prompt": p["prompt"], "response": p["response"], "tokens_input": 512,
                        "metadata": {"note": p["note"]}}),
        ("rag", {"event_type": "rag.query", "user_id": p["user"], "status": "success",
                 "source": p["source"], "query": p["query"],
                 "documents": [{"id": p["doc"], "score": 0.5}]}),
        ("tool", {"event_type": "tool.call", "user_id": p["user"], "status": "success",
                  "tool_name": p["tool"], "parameters": {"order": p["param"]}}),
        ("guardrail", {"event_type": "guardrail.block", "user_id": p["user"],
                       "status": "success", "rule": p["rule"], "content": p["content"]}),
        ("error", {"event_type": "error", "user_id": p["user"], "status": "failure",
                   "error_type": p["error"], "error_message": p["error_message"]}),
        ("admin", {"event_type": "admin.config_change", "user_id": p["user"],
                   "status": "success", "actor": p["actor"], "target": p["target"],
                   "before": {"v": p["before"]}, "after": {"v": p["after"]}}),
        # Rejected (bad type, unknown field named by the rejection record): also encrypted.
        ("bad", {"event_type": "llm.completion", "user_id": p["user"], "status": "success",
                 "model": p["model"], "tokens_input": "many"}),
    ]


PLANTED_KEYS = ("message", "user", "session", "agent", "method", "model", "provider", "prompt",
                "response", "note", "source", "query", "doc", "tool", "param", "rule", "content",
                "error", "error_message", "actor", "target", "before", "after")


class TestNothingInClear:
    def test_planted_values_never_reach_the_disk(self, make_logger, tmp_path, auditor_ring):
        """No value of a field configured as encrypted appears anywhere in the file bytes."""
        planted = {key: plant() for key in PLANTED_KEYS}
        logger, handler = make_logger(maxBytes=8192)
        for _ in range(4):
            for message, payload in every_category(planted):
                logger.info(message, extra={"audit": payload})
        handler.close()
        data = b"".join(p.read_bytes() for p in log_files(tmp_path / "logs"))
        assert len(log_files(tmp_path / "logs")) > 1
        for key, value in planted.items():
            assert value.encode() not in data, key
        assert b'"event_type":"llm.completion"' in data  # a default clear field stays searchable
        report = verify_paths([tmp_path / "logs"], auditor_ring.without_auditor_key())
        assert 0 == report.exit_code, report.findings
        assert report.logs[0].events == report.logs[0].encrypted == 32
        assert 4 == report.logs[0].rejected

    def test_no_key_material_in_the_files(self, make_logger, tmp_path, auditor_ring):
        """Neither the data key nor any signing, pseudonymisation or auditor secret is written."""
        logger, handler = make_logger()
        logger.info("x", extra={"audit": {"event_type": "auth.login", "user_id": "u",
                                          "status": "success"}})
        raw_keys = [bytes(handler._encryption.current._key)]
        handler.close()
        doc = json.loads(auditor_ring.unsafe_export_json())
        raw_keys += [base64.urlsafe_b64decode(text) for text in (
            *(k["key"] for k in doc["keys"]), doc["pseudonym"]["key"], doc["auditor"]["private"])]
        data = b"".join(p.read_bytes() for p in log_files(tmp_path / "logs"))
        for raw in raw_keys:
            for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw),
                            raw.hex().encode(), raw):
                assert encoded not in data

    def test_clear_fields_are_configurable(self, make_logger, tmp_path):
        """Configured index fields are copied in clear; the rest stays encrypted."""
        model, user = plant(), plant()
        logger, handler = make_logger(clear_fields=["event_type", "model", "tokens_input"])
        logger.info("x", extra={"audit": {"event_type": "llm.completion", "user_id": user,
                                          "status": "success", "model": model,
                                          "tokens_input": 7}})
        handler.close()
        path = log_files(tmp_path / "logs")[0]
        event = json.loads(raw_lines(path)[1])
        assert {"enc", "event_type", "model", "tokens_input"} == set(event["body"])
        assert (model, 7) == (event["body"]["model"], event["body"]["tokens_input"])
        assert user.encode() not in path.read_bytes()
        header = json.loads(raw_lines(path)[0])
        assert ["event_type", "model", "tokens_input"] == header["body"]["encryption"]["clear"]


    def test_no_clear_fields_at_all(self, make_logger, tmp_path, host_ring, auditor_ring):
        """clear_fields=[]: the body is the ciphertext alone; it verifies and decrypts."""
        logger, handler = make_logger(clear_fields=[])
        logger.info("x", extra={"audit": {"event_type": "auth.login", "user_id": "u",
                                          "status": "success"}})
        handler.close()
        path = log_files(tmp_path / "logs")[0]
        assert ["enc"] == list(json.loads(raw_lines(path)[1])["body"])
        assert b"auth.login" not in path.read_bytes()
        assert 0 == verify_paths([tmp_path / "logs"], host_ring).exit_code
        assert 0 == decrypt_paths([tmp_path / "logs"], auditor_ring).exit_code


class TestRoundTrip:
    def test_decrypt_gives_back_exactly_what_a_plain_handler_writes(
            self, make_logger, tmp_path, auditor_ring, host_ring, payload):
        """For the same records, decrypted bodies equal a clear handler's bodies byte for byte."""
        logger, encrypted = make_logger(tmp_path / "enc", maxBytes=4096)
        plain = AuditFileHandler(tmp_path / "plain" / "audit.jsonl", keyring=host_ring)
        logger.addHandler(plain)
        samples = ["caf\u00e9 \u2028 \U0001f600", 'quote " backslash \\', "\x00\x1f", "z" * 300]
        for number in range(40):
            logger.info("event %d %s", number, samples[number % 4],
                        extra={"audit": payload("llm.completion", tokens_input=number,
                                                latency_ms=number / 3, metadata={
                                                    "text": samples[number % 4]})})
        logger.removeHandler(plain)
        plain.close()
        encrypted.close()
        expected = [raw_body(line) for p in log_files(tmp_path / "plain")
                    for line in raw_lines(p) if json.loads(line)["t"] == "event"]

        run = decrypt_paths([tmp_path / "enc"], host_ring, auditor_key=auditor_ring.auditor_key)
        got = [item.body for item in run if isinstance(item, DecryptedLine)
               and item.kind == "event"]

        assert 40 == len(expected)
        assert expected == got
        assert 0 == run.exit_code
        assert len(log_files(tmp_path / "enc")) > 2

    def test_files_stay_within_max_bytes(self, make_logger, tmp_path, host_ring, payload):
        """Size rotation accounts for the encrypted (larger) line."""
        logger, handler = make_logger(maxBytes=4096)
        for _ in range(60):
            logger.info("e", extra={"audit": payload("tool.call", parameters={"x": "y" * 200})})
        handler.close()
        paths = log_files(tmp_path / "logs")
        assert len(paths) > 5
        assert all(p.stat().st_size <= 4096 for p in paths)
        assert 0 == verify_paths([tmp_path / "logs"], host_ring).exit_code

    def test_static_fields_and_rejected_bodies_decrypt(self, make_logger, tmp_path, auditor_ring,
                                                        monkeypatch):
        """Clear copies may come from static_fields; a body the formatter could not render is still encrypted and decrypts."""
        logger, handler = make_logger(clear_fields=["event_type", "team"])
        handler.setFormatter(AuditFormatter(static_fields={"team": "billing"}))
        logger.info("a", extra={"audit": {"event_type": "auth.login", "user_id": "u",
                                          "status": "success"}})
        monkeypatch.setattr(AuditFormatter, "format_body", lambda self, record: 1 / 0)
        logger.info("b", extra={"audit": {"event_type": "auth.login", "user_id": "u",
                                          "status": "success"}})
        handler.close()
        bodies = [json.loads(i.body) for i in decrypt_paths([tmp_path / "logs"], auditor_ring)
                  if isinstance(i, DecryptedLine) and i.kind == "event"]
        assert "billing" == bodies[0]["team"]
        assert "audit.rejected" == bodies[1]["event_type"]
        first = json.loads(raw_lines(log_files(tmp_path / "logs")[0])[1])["body"]
        assert "billing" == first["team"]


class TestKeyHygiene:
    def test_host_with_only_the_public_key_cannot_decrypt_a_rotated_file(
            self, make_logger, tmp_path, auditor_ring, host_ring):
        """After rotation the old data key is erased; nothing the host holds unwraps it; the auditor can."""
        secret = plant()
        logger, handler = make_logger()
        logger.info("x", extra={"audit": {"event_type": "auth.login", "user_id": secret,
                                          "status": "success"}})
        first_key = handler._encryption.current
        handler.doRollover()
        logger.info("y", extra={"audit": {"event_type": "auth.login", "user_id": "u",
                                          "status": "success"}})
        first = log_files(tmp_path / "logs")[0]
        header, event = (parse_line(line) for line in raw_lines(first)[:2])
        position = {"log_id": event.log_id, "seq": event.seq, "prev": event.prev,
                    "kid": event.kid, "ts": event.ts}

        # The host's copy of the first file's key is gone ...
        assert first_key.erased
        assert bytes(32) == bytes(first_key._key)
        with pytest.raises(DataKeyError):
            first_key.encrypt_body(b"", b"")
        # ... the host keyring has no private half, and its file cannot be used as one ...
        assert handler._keyring.auditor_key is None
        host_ring.save(tmp_path / "host.json")
        with pytest.raises(KeyringError):
            load_auditor_key(tmp_path / "host.json")
        # ... the live key belongs to another file and does not open this one ...
        live = handler._encryption.current
        assert live.dk_id != header.body["encryption"]["dk"]
        with pytest.raises(DecryptionError):
            decrypt_event_body(live, event.body, **position)
        # ... and unwrapping needs the auditor's private key: none, or a fresh one, fails.
        for attempt in (None, AuditorKey.generate()):
            with pytest.raises(DecryptionError):
                unwrap_data_key(header.body, log_id=header.log_id, auditor_key=attempt)
        # The auditor, off the host, reads it.
        key = unwrap_data_key(header.body, log_id=header.log_id,
                              auditor_key=auditor_ring.auditor_key)
        assert secret in decrypt_event_body(key, event.body, **position).decode()

    def test_new_auditor_key_applies_from_the_next_file(self, make_logger, tmp_path, host_ring):
        """rotate_key with a keyring naming another auditor wraps the next file's key for it."""
        logger, handler = make_logger()
        event = {"event_type": "auth.login", "user_id": "u", "status": "success"}
        logger.info("a", extra={"audit": event})
        new_auditor = AuditorKey.generate()
        handler.rotate_key(host_ring.with_auditor_key(new_auditor).without_auditor_key())
        logger.info("b", extra={"audit": event})
        handler.doRollover()
        logger.info("c", extra={"audit": event})
        handler.close()
        first, second = log_files(tmp_path / "logs")
        akids = [json.loads(raw_lines(p)[0])["body"]["encryption"]["wrap"]["akid"]
                 for p in (first, second)]
        assert [host_ring.auditor_kid, new_auditor.kid] == akids
        run = decrypt_paths([tmp_path / "logs"], host_ring, auditor_key=new_auditor)
        items = list(run)
        assert 1 == sum(isinstance(i, DecryptedLine) and i.encrypted for i in items)
        assert 4 == run.exit_code  # the first file needs the old auditor key

    def test_close_erases_the_key(self, make_logger):
        """Closing the handler erases the current data key."""
        logger, handler = make_logger()
        logger.info("x", extra={"audit": {"event_type": "auth.login", "user_id": "u",
                                          "status": "success"}})
        key = handler._encryption.current
        handler.close()
        assert key.erased
        assert handler._encryption.current is None

    def test_cipher_is_reused_and_lines_are_one_write(self, make_logger, monkeypatch):
        """Per record: no new AESGCM object, one os.write, a fresh nonce."""
        logger, _handler = make_logger()
        logger.info("warm", extra={"audit": {"event_type": "auth.login", "user_id": "u",
                                             "status": "success"}})
        built: list[int] = []
        real = encrypt_module.AESGCM
        monkeypatch.setattr(encrypt_module, "AESGCM", lambda key: built.append(1) or real(key))
        writes: list[bytes] = []
        real_write = os.write
        monkeypatch.setattr(files_module.os, "write",
                            lambda fd, data: writes.append(bytes(data)) or real_write(fd, data))
        for _ in range(20):
            logger.info("x", extra={"audit": {"event_type": "auth.login", "user_id": "u",
                                              "status": "success"}})
        assert [] == built
        assert 20 == len(writes)
        assert all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)
        nonces = {json.loads(w)["body"]["enc"]["n"] for w in writes}
        assert 20 == len(nonces)

    def test_files_are_private(self, make_logger, tmp_path):
        """Encrypted files are 0600 in a 0700 directory, like clear ones."""
        logger, handler = make_logger()
        logger.info("x", extra={"audit": {"event_type": "auth.login", "user_id": "u",
                                          "status": "success"}})
        handler.close()
        assert 0o700 == stat.S_IMODE((tmp_path / "logs").stat().st_mode)
        assert all(0o600 == stat.S_IMODE(p.stat().st_mode) for p in log_files(tmp_path / "logs"))

    def test_repr_names_recipient_ids_only(self, make_logger, auditor_ring):
        """The handler's repr shows path, key id and recipient id, never key bytes."""
        _logger, handler = make_logger()
        text = repr(handler)
        assert f"enc=auditor:{auditor_ring.auditor_kid}" in text
        entry = auditor_ring.auditor_key.unsafe_export_entry()
        assert entry["private"] not in text
        assert entry["public"] not in text
        assert base64.b64encode(bytes(handler._encryption.current._key)).decode() not in text
        assert handler._encryption.current.dk_id in repr(handler._encryption)


class TestCrashAndRetention:
    def test_restart_after_a_torn_tail_uses_a_new_key_and_verifies(
            self, make_logger, tmp_path, host_ring, auditor_ring):
        """A crash leaves a torn encrypted line; the restart acknowledges it under a new data key."""
        logger, handler = make_logger()
        logger.info("a", extra={"audit": {"event_type": "auth.login", "user_id": "u",
                                          "status": "success"}})
        old_dk = handler._encryption.current.dk_id
        handler._abandon_file()
        os.close(handler._lock_fd)
        handler._lock_fd = None
        path = log_files(tmp_path / "logs")[0]
        with path.open("ab") as fh:
            fh.write(b'{"alg":"HS256","body":{"enc":{"ct":"AAAA')
        _logger2, handler2 = make_logger()
        handler2.close()
        second = log_files(tmp_path / "logs")[1]
        header = json.loads(raw_lines(second)[0])
        assert old_dk != header["body"]["encryption"]["dk"]
        report = verify_paths([tmp_path / "logs"], host_ring)
        assert 0 == report.exit_code, report.findings
        assert Verdict.RESUMED in {f.verdict for f in report.findings}
        assert 0 == decrypt_paths([tmp_path / "logs"], auditor_ring).report.exit_code

    def test_retention_prunes_encrypted_files(self, make_logger, tmp_path, host_ring,
                                              monkeypatch):
        """Retention reads headers and tails of encrypted files and prunes them as usual."""
        now = [time.time() - 10 * 86400]
        monkeypatch.setattr(files_module.time, "time", lambda: now[0])
        monkeypatch.setattr("llm_audit_log.context.time.time", lambda: now[0])
        logger, handler = make_logger(retention=3)
        for _ in range(3):
            logger.info("old", extra={"audit": {"event_type": "auth.login", "user_id": "u",
                                                "status": "success"}})
            handler.doRollover()
        now[0] += 10 * 86400
        logger.info("new", extra={"audit": {"event_type": "auth.login", "user_id": "u",
                                            "status": "success"}})
        handler.doRollover()
        handler.close()
        assert 2 == len(log_files(tmp_path / "logs"))
        report = verify_paths([tmp_path / "logs"], host_ring)
        assert 0 == report.exit_code, report.findings
        assert Verdict.PRUNED in {f.verdict for f in report.findings}

    def test_threads_share_one_chain_and_one_key_per_file(self, make_logger, tmp_path,
                                                          host_ring, auditor_ring):
        """Four threads writing encrypted records: one verifying chain, every record decrypts."""
        logger, handler = make_logger(maxBytes=64 * 1024)

        def work(t: int) -> None:
            for i in range(200):
                logger.info("t%d-%d", t, i, extra={"audit": {"event_type": "auth.login",
                                                             "user_id": f"t{t}",
                                                             "status": "success"}})

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        handler.close()
        assert 0 == verify_paths([tmp_path / "logs"], host_ring).exit_code
        run = decrypt_paths([tmp_path / "logs"], auditor_ring)
        messages = {json.loads(i.body)["message"] for i in run
                    if isinstance(i, DecryptedLine) and i.kind == "event"}
        assert {f"t{t}-{i}" for t in range(4) for i in range(200)} == messages
        assert 0 == run.exit_code


class TestFork:
    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
    def test_forked_child_writes_its_own_log_under_its_own_keys(self, make_logger, tmp_path,
                                                                 host_ring, auditor_ring):
        """After fork the child erases the inherited data key and starts a log of its own."""
        logger, handler = make_logger()
        event = {"event_type": "auth.login", "user_id": "u", "status": "success"}
        logger.info("parent", extra={"audit": event})
        pid = os.fork()
        if pid == 0:  # child
            try:
                logger.info("child", extra={"audit": event})
                handler.close()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        logger.info("parent again", extra={"audit": event})
        handler.close()
        headers = [json.loads(raw_lines(p)[0])["body"]["encryption"]["dk"]
                   for p in log_files(tmp_path / "logs")]
        report = verify_paths([tmp_path / "logs"], host_ring)
        run = decrypt_paths([tmp_path / "logs"], auditor_ring)
        messages = sorted(json.loads(i.body)["message"] for i in run
                          if isinstance(i, DecryptedLine) and i.kind == "event")
        assert len(set(headers)) == len(headers) == 2
        assert 0 == report.exit_code, report.findings
        assert 2 == len(report.logs)
        assert ["child", "parent", "parent again"] == messages
        assert 0 == run.exit_code


class _FailingKms:
    """A KMS client stand-in: works until told to fail, like a network outage."""

    def __init__(self) -> None:
        self.fail = False
        self.calls = 0

    def generate_data_key(self, **_kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.fail:
            raise ConnectionError("endpoint unreachable")
        return {"Plaintext": os.urandom(32), "CiphertextBlob": os.urandom(64), "KeyId": "arn:x"}


class TestKmsOutage:
    def test_rotation_waits_instead_of_losing_records(self, make_logger, tmp_path, host_ring,
                                                      capsys, monkeypatch):
        """If no data key can be had at rotation, records go on into the current file."""
        kms = _FailingKms()
        logger, handler = make_logger(encrypt="kms", kms_key_id="alias/x",
                                      kms_client_factory=lambda: kms, maxBytes=4096)
        kms.fail = True
        for number in range(40):
            logger.info("e %d", number, extra={"audit": {"event_type": "auth.login",
                                                          "user_id": "u", "status": "success"}})
        err = capsys.readouterr().err
        assert "cannot start the next file" in err
        assert "ConnectionError" in err
        assert 1 == len(log_files(tmp_path / "logs"))
        assert 2 == kms.calls  # the first file's key, then one failed attempt: no retry storm
        kms.fail = False
        real_time = time.time
        monkeypatch.setattr(files_module.time, "time", lambda: real_time() + 120)
        logger.info("after", extra={"audit": {"event_type": "auth.login", "user_id": "u",
                                              "status": "success"}})
        handler.close()
        assert 2 == len(log_files(tmp_path / "logs"))
        report = verify_paths([tmp_path / "logs"], host_ring)
        assert 0 == report.exit_code, report.findings
        assert 41 == report.logs[0].events


class TestOptions:
    @pytest.mark.parametrize("options", [
        {"encrypt": "rot13"},
        {"encrypt": "kms"},
        {"encrypt": "kms", "kms_key_id": ""},
        {"encrypt": "auditor", "kms_key_id": "alias/x"},
        {"encrypt": None, "clear_fields": ["event_type"]},
        {"encrypt": None, "kms_key_id": "alias/x"},
        {"encrypt": "auditor", "clear_fields": ["message"]},
        {"encrypt": "auditor", "clear_fields": ["enc"]},
        {"encrypt": "auditor", "clear_fields": ["has space"]},
        {"encrypt": "auditor", "clear_fields": "event_type"},
        {"encrypt": "kms", "kms_key_id": "k", "kms_region": "us-east-1",
         "kms_client_factory": lambda: None},
    ])
    def test_bad_options_fail_configuration(self, tmp_path, host_ring, options):
        """Every encryption option is checked at construction."""
        with pytest.raises(ConfigurationError):
            AuditFileHandler(tmp_path / "a.jsonl", keyring=host_ring, delay=True, **options)

    def test_auditor_mode_needs_an_auditor_key(self, tmp_path):
        """A keyring without an auditor key cannot encrypt for one; the message says how to fix it."""
        doc = json.loads(Keyring.generate().unsafe_export_json())
        del doc["auditor"]
        ring = Keyring.from_json(json.dumps(doc), source="old-keyring")
        with pytest.raises(ConfigurationError, match="llm-audit keygen"):
            AuditFileHandler(tmp_path / "a.jsonl", keyring=ring, delay=True, encrypt="auditor")

    def test_low_order_auditor_key_is_refused(self, tmp_path):
        """An auditor 'public key' that is a low-order point fails configuration at once."""
        doc = json.loads(Keyring.generate().without_auditor_key().unsafe_export_json())
        doc["auditor"]["public"] = base64.urlsafe_b64encode(bytes(32)).decode()
        ring = Keyring.from_json(json.dumps(doc), source="bad-auditor")
        with pytest.raises(ConfigurationError, match="not a usable X25519 key"):
            AuditFileHandler(tmp_path / "a.jsonl", keyring=ring, delay=True, encrypt="auditor")
