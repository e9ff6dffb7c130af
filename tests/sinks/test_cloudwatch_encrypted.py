"""
Encryption at rest together with CloudWatch shipping, end to end against moto's HTTP server.

An ``AuditFileHandler`` configured like ``logging_configs/local-cloudwatch.json`` plus
``encrypt="auditor"`` writes one chain to two sinks: the same sealed, encrypted lines go to
the local files, to CloudWatch and (during an outage) to the spill. The host holds only the
auditor's public key; everything still verifies with it, and no value of an encrypted field
reaches CloudWatch, the files or the spill in clear.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import secrets
import signal
import stat
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from llm_audit_log import AuditFileHandler, ConfigurationError, Keyring
from llm_audit_log._cli import main
from llm_audit_log.keys import KeyringError, load_auditor_key, load_keyring
from llm_audit_log.sinks.cloudwatch import CloudWatchHandler
from llm_audit_log.verify import DecryptedLine, decrypt_paths

pytestmark = pytest.mark.slow
REGION = "us-east-1"
CONFIG = Path(__file__).resolve().parents[2] / "logging_configs" / "local-cloudwatch.json"
#: What the default ``clear_fields`` keep in clear next to the ciphertext.
CLEAR_BODY_KEYS = {"enc", "event_type", "status", "timestamp"}


@pytest.fixture
def rings(tmp_path):
    """The auditor's full keyring, and the host's copy (auditor public key only) on disk."""
    auditor = Keyring.generate()
    host_path = tmp_path / "host-keyring.json"
    auditor.without_auditor_key().save(host_path)
    return auditor, host_path


@pytest.fixture
def configure(server, rings, tmp_path):
    """
    Apply local-cloudwatch.json through dictConfig, with encrypt="auditor" and test values.

    The logger gets a unique name, the group too (unless given); the log directory is the
    same for every call of one test. Returns the logger, the handler, the directory and the
    group; handlers are closed after the test.
    """
    _, host_path = rings
    made: list[tuple[logging.Logger, logging.Handler]] = []

    def apply(tag: str, group: str | None = None,
              **cloudwatch: Any) -> tuple[logging.Logger, AuditFileHandler, Path, str]:
        config = json.loads(CONFIG.read_text())
        group = group or f"/llm-app/audit-enc-{secrets.token_hex(4)}"
        name = f"tests.cwenc.{secrets.token_hex(6)}"
        directory = tmp_path / "audit-logs"
        pipeline = config["filters"]["audit_pipeline"]
        pipeline["keyring"] = f"file:{host_path}"
        # Values from the config end up in every body: encrypted like the rest.
        pipeline["service"] = f"PLANT-{tag}-service"
        pipeline["environment"] = f"PLANT-{tag}-env"
        pipeline["app_version"] = f"PLANT-{tag}-ver"
        handler_config = config["handlers"]["audit_file"]
        handler_config.update(filename=str(directory / "audit.jsonl"), maxBytes=65536,
                              keyring=f"file:{host_path}", encrypt="auditor")
        handler_config["cloudwatch"].update({
            "log_group": group, "endpoint_url": server["url"], "region": REGION,
            "send_interval": 0.2, "max_backoff": 0.5, "close_timeout": 30, **cloudwatch})
        config["loggers"] = {name: config["loggers"]["audit"]}
        logging.config.dictConfig(config)
        logger = logging.getLogger(name)
        (handler,) = logger.handlers
        assert isinstance(handler, AuditFileHandler)
        made.append((logger, handler))
        return logger, handler, directory, group

    yield apply
    for logger, handler in made:
        logger.removeHandler(handler)
        handler.close()


def plant_values(tag: str, i: int) -> dict[str, str]:
    """Unique values for every free field of record ``i``: all must end up encrypted."""
    return {field: f"PLANT-{tag}-{field}-{i}" for field in (
        "message", "user_id", "model", "provider", "request_id", "session_id",
        "finish_reason", "action", "resource", "note", "prompt", "response")}


def log_records(logger: logging.Logger, tag: str, start: int, count: int) -> list[dict[str, str]]:
    """Log ``count`` llm.completion records (numbers ``start``...) with planted values."""
    planted = []
    for i in range(start, start + count):
        p = plant_values(tag, i)
        logger.info("%s", p["message"], extra={"audit": {
            "event_type": "llm.completion", "status": "success", "user_id": p["user_id"],
            "model": p["model"], "provider": p["provider"], "request_id": p["request_id"],
            "session_id": p["session_id"], "finish_reason": p["finish_reason"],
            "action": p["action"], "resource": p["resource"], "metadata": {"note": p["note"]},
            "prompt": p["prompt"], "response": p["response"], "tokens_input": i}})
        planted.append(p)
    return planted


def log_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("audit-*.jsonl"))


def file_lines(directory: Path) -> list[bytes]:
    return [line for path in log_files(directory)
            for line in path.read_bytes().split(b"\n") if line]


def cloudwatch_messages(server, group) -> dict[str, list[str]]:
    """Every event message of every stream of the group (all pages of both calls)."""
    client = boto3.client("logs", endpoint_url=server["url"], region_name=REGION)
    out: dict[str, list[str]] = {}
    for page in client.get_paginator("describe_log_streams").paginate(logGroupName=group):
        for stream in page["logStreams"]:
            name = stream["logStreamName"]
            out[name] = []
            token = None
            while True:
                args = {"logGroupName": group, "logStreamName": name, "startFromHead": True}
                if token:
                    args["nextToken"] = token
                events = client.get_log_events(**args)
                out[name].extend(e["message"] for e in events["events"])
                if events["nextForwardToken"] == token:
                    break
                token = events["nextForwardToken"]
    return out


def verify(server, group, host_path, capsys, *extra: str) -> tuple[int, dict[str, Any]]:
    """``llm-audit verify --json --cloudwatch GROUP`` with the host keyring: exit code, report."""
    capsys.readouterr()
    code = main(["verify", "--json", "--cloudwatch", group, "--keyring", str(host_path),
                 "--endpoint-url", server["url"], "--region", REGION, *extra])
    return code, json.loads(capsys.readouterr().out)


def verify_files(directory, host_path, capsys) -> tuple[int, dict[str, Any]]:
    """``llm-audit verify --json DIR`` with the host keyring: exit code, report."""
    capsys.readouterr()
    code = main(["verify", "--json", "--keyring", str(host_path), str(directory)])
    return code, json.loads(capsys.readouterr().out)


def assert_verified(result: tuple[int, dict[str, Any]], lines: int, events: int) -> None:
    """Exit 0; one closed log with every line checked and every event encrypted."""
    code, report = result
    assert 0 == code, report
    assert lines == report["lines_checked"] == report["lines_verified"]
    (log,) = report["logs"]
    assert (lines, events, events, 0, True) == (
        log["lines"], log["events"], log["encrypted"], log["rejected"], log["closed"])


def assert_every_copy_verifies(server, group, host_path, directory, capsys, lines: int,
                               events: int) -> None:
    """The stream alone, the stream against the files, and the files alone: all exit 0."""
    assert_verified(verify(server, group, host_path, capsys), lines, events)
    assert_verified(verify(server, group, host_path, capsys, "--against", str(directory)),
                    lines, events)
    assert_verified(verify_files(directory, host_path, capsys), lines, events)


def decrypted_events(directory: Path, auditor: Keyring) -> list[dict[str, Any]]:
    """The auditor's view (off the host): every event body, decrypted, in chain order."""
    run = decrypt_paths([directory], auditor)
    bodies = [json.loads(item.body) for item in run
              if isinstance(item, DecryptedLine) and item.kind == "event"]
    assert 0 == run.exit_code
    return bodies


def assert_planted_only_in_plaintext(bodies: list[dict[str, Any]],
                                     planted: list[dict[str, str]], tag: str) -> None:
    """The planted values really are in the records (so their absence elsewhere means something)."""
    assert len(planted) == len(bodies)
    for body, p in zip(bodies, planted, strict=True):
        assert p["message"] == body["message"]
        assert p["user_id"] == body["user_id"]
        assert p["model"] == body["model"]
        assert p["note"] == body["metadata"]["note"]
        assert (p["action"], p["resource"]) == (body["action"], body["resource"])
        assert f"PLANT-{tag}-service" == body["service"]
        # Raw prompt and response never reach a record, encrypted or not: keyed hashes only.
        assert "prompt" not in body
        assert body["prompt_hash"].startswith("hmac-sha256:")
        assert "response" not in body
        assert body["response_hash"].startswith("hmac-sha256:")
        assert p["prompt"] not in json.dumps(body)
        assert p["response"] not in json.dumps(body)


def assert_sealed_encrypted(line: bytes | str) -> dict[str, Any]:
    """One sealed line; an event's body is ciphertext plus the default clear fields only."""
    doc = json.loads(line)
    if doc["t"] == "event":
        assert CLEAR_BODY_KEYS == set(doc["body"]), doc["body"].keys()
        assert {"ct", "dk", "n"} == set(doc["body"]["enc"])
        assert ("llm.completion", "success") == (doc["body"]["event_type"],
                                                 doc["body"]["status"])
    return doc


class TestEncryptedMirror:
    def test_encrypted_lines_ship_verify_and_never_leak(self, server, configure, rings,
                                                        capsys):
        """300 records, several files and data keys: CloudWatch holds the file's lines, all ciphertext."""
        auditor, host_path = rings
        tag = secrets.token_hex(6)
        logger, handler, directory, group = configure(tag)
        (sink,) = handler.sinks
        planted = log_records(logger, tag, 0, 300)
        handler.close()

        counters = dict(sink.counters)
        lines = file_lines(directory)
        streams = cloudwatch_messages(server, group)
        messages = [m for stream in streams.values() for m in stream]

        # Everything shipped, nothing spilled or lost; one stream with the files' exact lines.
        assert 0 == counters["spilled"] + counters["dropped"] + counters["rejected"]
        assert len(lines) == counters["submitted"] == counters["sent"]
        assert 1 == len(streams)
        client = boto3.client("logs", endpoint_url=server["url"], region_name=REGION)
        (described,) = client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        # The config's "1_year" (366 days) rounded up to a retention CloudWatch allows.
        assert 400 == described["retentionInDays"]
        assert len(lines) == len(messages)
        assert sorted(lines) == sorted(m.encode() for m in messages)

        # Rotated: every file has its own data key, wrapped for the auditor's key.
        files = log_files(directory)
        headers = [json.loads(path.read_bytes().split(b"\n", 1)[0])["body"] for path in files]
        assert len(files) >= 3
        assert len(files) == len({h["encryption"]["dk"] for h in headers})
        assert {auditor.auditor_kid} == {h["encryption"]["wrap"]["akid"] for h in headers}
        assert [["event_type", "status", "timestamp"]] * len(files) == [
            h["encryption"]["clear"] for h in headers]

        # Event bodies are ciphertext (+ clear index fields) in CloudWatch and in the files.
        docs = [assert_sealed_encrypted(m) for m in messages]
        assert 300 == sum(doc["t"] == "event" for doc in docs)
        assert len(files) == sum(doc["t"] == "header" for doc in docs)
        data = b"".join(path.read_bytes() for path in files)
        shipped = "\n".join(messages).encode()
        for blob in (data, shipped):
            assert b"PLANT" not in blob
            assert tag.encode() not in blob
        assert b'"event_type":"llm.completion"' in shipped  # clear fields stay searchable

        # The planted values are in the records: the auditor's key shows them.
        assert_planted_only_in_plaintext(decrypted_events(directory, auditor), planted, tag)

        # The host keyring holds no private auditor key, and it verifies every copy.
        assert load_keyring(host_path).auditor_key is None
        with pytest.raises(KeyringError):
            load_auditor_key(host_path)
        events = 300
        assert_every_copy_verifies(server, group, host_path, directory, capsys, len(lines),
                                   events)

    def test_outage_spills_ciphertext_then_replays_and_verifies(self, server, configure,
                                                                rings, capsys):
        """The service stops mid-stream: the spill (0600) holds the same encrypted lines; after restart all verify."""
        auditor, host_path = rings
        tag = secrets.token_hex(6)
        logger, handler, directory, group = configure(tag)
        (sink,) = handler.sinks
        spill_dir = directory / ".cloudwatch-spill"  # the default: beside the log files
        assert str(spill_dir) == sink.spill_dir

        planted = log_records(logger, tag, 0, 60)
        assert sink.flush(20)
        sent_before = sink.counters["sent"]
        assert sent_before == sink.counters["submitted"]
        assert 0 == sink.counters["spilled"]

        server["server"].stop()
        try:
            planted += log_records(logger, tag, 60, 150)
            # Everything not yet sent ends up in the spill (the sender keeps retrying).
            deadline = time.monotonic() + 20
            while True:
                sink.flush(0)
                c = dict(sink.counters)
                if c["spilled"] and c["spilled"] + c["sent"] == c["submitted"]:
                    break
                assert time.monotonic() < deadline, c
                time.sleep(0.1)
            assert sent_before == c["sent"]  # nothing delivered while the service was down
            assert c["retried"] > 0
            spill_files = sorted(spill_dir.glob("*.spill"))
            assert 1 == len(spill_files)
            assert 0o700 == stat.S_IMODE(spill_dir.stat().st_mode)
            assert 0o600 == stat.S_IMODE(spill_files[0].stat().st_mode)
            spilled = spill_files[0].read_bytes()
            local_now = file_lines(directory)
        finally:
            server["restart"]()

        # The spill holds exactly the unsent lines, byte for byte as in the files, in order.
        entries = [json.loads(raw) for raw in spilled.splitlines()]
        assert c["spilled"] == len(entries)
        assert {group} == {e["g"] for e in entries}
        assert {sink.stream_name} == {e["s"] for e in entries}
        assert [m.encode() for m in (e["m"] for e in entries)] == local_now[sent_before:]
        docs = [assert_sealed_encrypted(e["m"]) for e in entries]
        assert [d["seq"] for d in docs] == list(range(sent_before, sent_before + len(docs)))
        assert 150 == sum(d["t"] == "event" for d in docs)
        spilled_keys = {d["body"]["encryption"]["dk"] for d in docs if d["t"] == "header"}
        assert len(spilled_keys) >= 2  # files rotated (new data keys) during the outage
        assert b"PLANT" not in spilled
        assert tag.encode() not in spilled
        assert 150 == spilled.count(rb'\"enc\":{\"ct\":')  # ciphertext, JSON in JSON

        planted += log_records(logger, tag, 210, 40)
        handler.close()  # drains: replays the spill, then the rest

        counters = dict(sink.counters)
        lines = file_lines(directory)
        messages = [m for s in cloudwatch_messages(server, group).values() for m in s]
        assert 0 == counters["dropped"] + counters["rejected"]
        assert len(lines) == counters["submitted"] == counters["sent"]
        assert [] == list(spill_dir.glob("*.spill"))  # replayed and removed
        assert len(lines) == len(messages)
        assert sorted(lines) == sorted(m.encode() for m in messages)
        shipped = "\n".join(messages).encode()
        data = b"".join(path.read_bytes() for path in log_files(directory))
        for blob in (data, shipped):
            assert b"PLANT" not in blob
            assert tag.encode() not in blob
        assert 250 == sum(json.loads(m)["t"] == "event" for m in messages)
        assert_planted_only_in_plaintext(decrypted_events(directory, auditor), planted, tag)

        events = 250
        assert_every_copy_verifies(server, group, host_path, directory, capsys, len(lines),
                                   events)

    def test_closed_during_outage_next_start_replays_the_spill(self, server, configure, rings,
                                                                 capsys):
        """Closed while the service is down: the spill keeps the encrypted tail; the next handler replays it."""
        auditor, host_path = rings
        tag = secrets.token_hex(6)
        logger, first, directory, group = configure(tag, close_timeout=2)
        (sink,) = first.sinks
        spill_dir = Path(sink.spill_dir)
        planted = log_records(logger, tag, 0, 50)
        assert sink.flush(20)
        sent_before = sink.counters["sent"]

        server["server"].stop()
        try:
            planted += log_records(logger, tag, 50, 100)
            first.close()  # cannot deliver: the rest, footer included, stays in the spill
            counters = dict(sink.counters)
            spill_files = sorted(spill_dir.glob("*.spill"))
            assert 1 == len(spill_files)
            assert 0o600 == stat.S_IMODE(spill_files[0].stat().st_mode)
            spilled = spill_files[0].read_bytes()
        finally:
            server["restart"]()

        first_lines = file_lines(directory)
        assert 0 == counters["dropped"]
        assert sent_before == counters["sent"]
        assert len(first_lines) == counters["submitted"]
        assert len(first_lines) - sent_before == counters["spilled"]
        entries = [json.loads(raw) for raw in spilled.splitlines()]
        assert [e["m"].encode() for e in entries] == first_lines[sent_before:]
        assert "footer" == json.loads(entries[-1]["m"])["t"]
        assert 100 == sum(assert_sealed_encrypted(e["m"])["t"] == "event" for e in entries)
        assert b"PLANT" not in spilled
        assert tag.encode() not in spilled

        # The next start in the same directory continues the log and replays the orphan.
        logger, second, _, _ = configure(tag, group=group)
        (sink2,) = second.sinks
        planted += log_records(logger, tag, 150, 50)
        second.close()

        lines = file_lines(directory)
        streams = cloudwatch_messages(server, group)
        messages = [m for s in streams.values() for m in s]
        assert 0 == sink2.counters["dropped"] + sink2.counters["rejected"]
        assert [] == list(spill_dir.glob("*.spill"))
        assert {sink.stream_name, sink2.stream_name} == set(streams)
        assert [line.decode() for line in first_lines] == streams[sink.stream_name]
        assert [line.decode() for line in lines[len(first_lines):]] == \
            streams[sink2.stream_name]
        assert len(lines) == len(messages)
        shipped = "\n".join(messages).encode()
        data = b"".join(path.read_bytes() for path in log_files(directory))
        for blob in (data, shipped):
            assert b"PLANT" not in blob
            assert tag.encode() not in blob
        assert_planted_only_in_plaintext(decrypted_events(directory, auditor), planted, tag)

        events = 200
        assert_every_copy_verifies(server, group, host_path, directory, capsys, len(lines),
                                   events)


class TestEncryptedStandaloneHandler:
    """CloudWatchHandler(encrypt=...): no local files; a data key per time window."""

    def make(self, server, host_path: Path, tmp_path: Path, **options: Any):
        group = f"/llm-app/cw-only-{secrets.token_hex(4)}"
        handler = CloudWatchHandler(
            group, keyring=f"file:{host_path}", endpoint_url=server["url"], region=REGION,
            create_group=True, send_interval=0.2, max_backoff=0.5,
            spill_dir=str(tmp_path / "spill"), **options)
        logger = logging.getLogger(f"tests.cwonly.{secrets.token_hex(6)}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        return logger, handler, group

    def test_windows_rotate_keys_verify_without_reading_and_decrypt(
            self, server, rings, tmp_path, capsys, monkeypatch):
        auditor, host_path = rings
        logger, handler, group = self.make(server, host_path, tmp_path, encrypt="auditor",
                                           key_window=60)
        clock = [time.time()]
        monkeypatch.setattr("llm_audit_log.sinks.cloudwatch.time.time", lambda: clock[0])
        planted = []
        for window in range(3):
            planted += log_records(logger, f"cw{window}", window * 10, 10)
            clock[0] += 61  # the next record opens the next window under a new key
        assert handler.close(30)
        logger.removeHandler(handler)

        (messages,) = cloudwatch_messages(server, group).values()
        lines = [json.loads(m) for m in messages]
        headers = [x for x in lines if x["t"] == "header"]
        assert [1, 2, 3] == [h["body"]["file_index"] for h in headers]
        assert 3 == len({h["body"]["encryption"]["dk"] for h in headers})
        assert ["rotate", "rotate", "close"] == [x["body"]["reason"] for x in lines
                                                 if x["t"] == "footer"]
        events = [x for x in lines if x["t"] == "event"]
        assert 30 == len(events)
        assert all(set(x["body"]) == CLEAR_BODY_KEYS for x in events)
        assert not [m for m in messages if "PLANT-" in m]

        code, report = verify(server, group, host_path, capsys)
        assert 0 == code, report
        assert (len(lines), 30) == (report["lines_verified"], report["logs"][0]["encrypted"])

        auditor_path = tmp_path / "auditor-keyring.json"
        auditor.save(auditor_path)
        capsys.readouterr()
        assert 0 == main(["decrypt", "--cloudwatch", group, "--keyring", str(auditor_path),
                          "--endpoint-url", server["url"], "--region", REGION])
        shown = [json.loads(raw) for raw in capsys.readouterr().out.splitlines()]
        bodies = [d["body"] for d in shown if d["kind"] == "event"]
        assert [p["user_id"] for p in planted] == [b["user_id"] for b in bodies]
        assert [p["message"] for p in planted] == [b["message"] for b in bodies]

    def test_host_keyring_cannot_decrypt_the_stream(self, server, rings, tmp_path, capsys):
        _, host_path = rings
        logger, handler, group = self.make(server, host_path, tmp_path, encrypt="auditor")
        log_records(logger, "host", 0, 5)
        assert handler.close(30)
        logger.removeHandler(handler)
        capsys.readouterr()
        assert 4 == main(["decrypt", "--cloudwatch", group, "--keyring", str(host_path),
                          "--endpoint-url", server["url"], "--region", REGION])
        shown = [json.loads(raw) for raw in capsys.readouterr().out.splitlines()]
        assert not [d for d in shown if d["kind"] == "event"]

    def test_kms_data_keys_through_the_same_server(self, server, rings, tmp_path, capsys):
        """encrypt="kms": data keys from KMS (moto over HTTP), decrypted with kms:Decrypt."""
        _, host_path = rings
        kms = boto3.client("kms", endpoint_url=server["url"], region_name=REGION)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        logger, handler, group = self.make(
            server, host_path, tmp_path, encrypt="kms", encrypt_kms_key_id=key_id,
            kms_endpoint_url=server["url"], kms_region=REGION)
        planted = log_records(logger, "kms", 0, 5)
        assert handler.close(30)
        logger.removeHandler(handler)
        (messages,) = cloudwatch_messages(server, group).values()
        assert not [m for m in messages if "PLANT-" in m]
        assert 0 == verify(server, group, host_path, capsys)[0]
        capsys.readouterr()
        assert 0 == main(["decrypt", "--cloudwatch", group, "--keyring", str(host_path),
                          "--endpoint-url", server["url"], "--region", REGION,
                          "--kms-endpoint-url", server["url"], "--kms-region", REGION])
        shown = [json.loads(raw) for raw in capsys.readouterr().out.splitlines()]
        assert [p["user_id"] for p in planted] == [d["body"]["user_id"] for d in shown
                                                   if d["kind"] == "event"]

    def test_bad_options_fail_configuration(self, server, rings, tmp_path):
        _, host_path = rings
        with pytest.raises(ConfigurationError, match="key_window"):
            self.make(server, host_path, tmp_path, encrypt="auditor", key_window=0)
        with pytest.raises(ConfigurationError, match="need encrypt"):
            self.make(server, host_path, tmp_path, clear_fields=["user_id"])

    def test_an_idle_window_closes_on_time_and_its_key_is_erased(
            self, server, rings, tmp_path, capsys, monkeypatch):
        """No event for an hour: the window still ends, its key is erased, the log verifies."""
        _, host_path = rings
        logger, handler, group = self.make(server, host_path, tmp_path, encrypt="auditor",
                                           key_window=60)
        log_records(logger, "idle", 0, 1)
        key = handler._encryption.current
        assert key is not None and not key.erased
        clock = [time.time() + 3600]
        monkeypatch.setattr("llm_audit_log.sinks.cloudwatch.time.time", lambda: clock[0])
        deadline = time.monotonic() + 10
        while not key.erased and time.monotonic() < deadline:
            time.sleep(0.05)
        assert key.erased  # the window's own thread closed it, without an event
        assert handler.close(30)
        logger.removeHandler(handler)
        (messages,) = cloudwatch_messages(server, group).values()
        kinds = [(x["t"], x["body"].get("reason")) for x in map(json.loads, messages)]
        assert [("header", "genesis"), ("event", None), ("footer", "rotate"),
                ("header", "rotate"), ("footer", "close")] == kinds
        assert 0 == verify(server, group, host_path, capsys)[0]

    def test_a_clock_stepped_back_cannot_extend_a_window(self, server, rings, tmp_path,
                                                         monkeypatch):
        """The window also ends on the monotonic clock: stepping the wall clock back is no help."""
        _, host_path = rings
        logger, handler, _group = self.make(server, host_path, tmp_path, encrypt="auditor",
                                            key_window=60)
        key = handler._encryption.current
        wall, mono = time.time(), time.monotonic()
        monkeypatch.setattr("llm_audit_log.sinks.cloudwatch.time.time", lambda: wall - 3600)
        monkeypatch.setattr("llm_audit_log.sinks.cloudwatch.time.monotonic", lambda: mono + 61)
        for _ in range(200):  # up to 10 s of real time
            if key.erased:
                break
            threading.Event().wait(0.05)
        assert key.erased
        assert handler.close(30)
        logger.removeHandler(handler)

    def test_a_slow_kms_at_a_window_end_does_not_hold_up_logging(self, server, rings, tmp_path,
                                                                  monkeypatch):
        """The next key is fetched by the window thread outside the handler's lock."""
        _, host_path = rings
        calls: list[float] = []

        class SlowKms:
            def generate_data_key(self, **_: Any) -> dict[str, Any]:
                calls.append(time.monotonic())
                if len(calls) > 1:
                    threading.Event().wait(3)  # KMS slow to answer
                return {"Plaintext": os.urandom(32), "CiphertextBlob": b"blob", "KeyId": "k"}

        logger, handler, _group = self.make(
            server, host_path, tmp_path, encrypt="kms", encrypt_kms_key_id="k",
            kms_client_factory=SlowKms, key_window=60)
        clock = [time.time() + 61]  # the idle window has ended: the thread asks KMS
        monkeypatch.setattr("llm_audit_log.sinks.cloudwatch.time.time", lambda: clock[0])
        while len(calls) < 2:
            threading.Event().wait(0.05)
        started = time.monotonic()
        log_records(logger, "during", 0, 1)
        took = time.monotonic() - started
        assert took < 1.0  # the KMS call (3 s) is not made under the lock
        assert handler.close(30)
        logger.removeHandler(handler)

    def test_logging_after_close_starts_no_window_thread(self, server, rings, tmp_path):
        _, host_path = rings
        logger, handler, _group = self.make(server, host_path, tmp_path, encrypt="auditor",
                                            key_window=60)
        log_records(logger, "before", 0, 1)
        assert handler.close(30)
        handler._window_thread.join(5)
        log_records(logger, "after", 1, 1)  # still attached, e.g. after another dictConfig
        assert not handler._window_thread.is_alive()
        logger.removeHandler(handler)

    def test_a_fork_during_the_window_threads_wait_cannot_hang_the_child(self, server, rings,
                                                                          tmp_path):
        """The child gets a fresh stop event: a copy locked by the parent's thread is dropped."""
        _, host_path = rings
        logger, handler, _group = self.make(server, host_path, tmp_path, encrypt="auditor",
                                            key_window=60)
        condition = handler._window_stop._cond
        held, release = threading.Event(), threading.Event()

        def inside_wait() -> None:  # the window thread between acquire and release
            with condition:
                held.set()
                release.wait()

        thread = threading.Thread(target=inside_wait)
        thread.start()
        held.wait()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.alarm(10)  # a hang kills the child: the test then fails
                handler.close(5)  # what logging.shutdown does in an idle child
                code = 0
            finally:
                os._exit(code)
        release.set()
        thread.join()
        _, status = os.waitpid(pid, 0)
        assert 0 == os.waitstatus_to_exitcode(status)
        assert handler.close(30)
        logger.removeHandler(handler)

    def test_key_window_has_a_floor(self, server, rings, tmp_path):
        _, host_path = rings
        with pytest.raises(ConfigurationError, match="at least 60"):
            self.make(server, host_path, tmp_path, encrypt="auditor", key_window=1)


class FakeKms:
    """GenerateDataKey that can be switched off; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    def generate_data_key(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.fail:
            raise ConnectionError("KMS down")
        return {"Plaintext": os.urandom(32), "CiphertextBlob": b"blob", "KeyId": "k"}


@pytest.fixture
def every_data_key(monkeypatch) -> list[Any]:
    """Every DataKey made during the test, to check that none outlives its use."""
    from llm_audit_log import encrypt as encrypt_module

    made: list[Any] = []
    original = encrypt_module.DataKey.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(encrypt_module.DataKey, "__init__", init)
    return made


class TestKeyWindowEdges:
    """Races, KMS outages, close and fork around the window thread (from review)."""

    make = TestEncryptedStandaloneHandler.make

    def test_events_racing_the_thread_leave_no_key_alive(self, server, rings, tmp_path, capsys,
                                                         monkeypatch, every_data_key):
        _, host_path = rings
        logger, handler, group = self.make(server, host_path, tmp_path, encrypt="auditor",
                                           key_window=60)
        clock = [time.time()]
        monkeypatch.setattr("llm_audit_log.sinks.cloudwatch.time.time", lambda: clock[0])
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(0.003):
                clock[0] += 61

        ticker = threading.Thread(target=tick)
        ticker.start()
        writers = [threading.Thread(target=log_records, args=(logger, f"w{n}", n * 1000, 150))
                   for n in range(4)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        stop.set()
        ticker.join()
        assert handler.close(30)
        handler._window_thread.join(5)
        logger.removeHandler(handler)
        assert not [key for key in every_data_key if not key.erased]
        (messages,) = cloudwatch_messages(server, group).values()
        headers = [x for x in map(json.loads, messages) if x["t"] == "header"]
        assert [h["body"]["file_index"] for h in headers] == list(range(1, len(headers) + 1))
        assert len(headers) > 3
        code, report = verify(server, group, host_path, capsys)
        assert 0 == code, report
        assert 600 == report["logs"][0]["encrypted"]

    def test_kms_down_costs_one_call_per_retry_not_per_event(self, server, rings, tmp_path,
                                                             capsys, monkeypatch):
        _, host_path = rings
        kms = FakeKms()
        logger, handler, group = self.make(server, host_path, tmp_path, encrypt="kms",
                                           encrypt_kms_key_id="k",
                                           kms_client_factory=lambda: kms, key_window=60)
        kms.fail = True
        clock = [time.time() + 61]
        monkeypatch.setattr("llm_audit_log.sinks.cloudwatch.time.time", lambda: clock[0])
        for _ in range(30):
            log_records(logger, "down", 0, 1)
            threading.Event().wait(0.05)
        assert 2 == kms.calls  # the first key, then one retry by the thread
        assert 1 == capsys.readouterr().err.count("cannot get the next data key")
        assert handler.close(30)
        logger.removeHandler(handler)
        (messages,) = cloudwatch_messages(server, group).values()
        assert 30 == sum(json.loads(m)["t"] == "event" for m in messages)
        assert 0 == verify(server, group, host_path, capsys)[0]

    def test_a_record_after_close_leaves_no_key_alive(self, server, rings, tmp_path, capsys,
                                                      every_data_key):
        _, host_path = rings
        logger, handler, group = self.make(server, host_path, tmp_path, encrypt="auditor",
                                           key_window=60)
        log_records(logger, "before", 0, 1)
        assert handler.close(30)
        log_records(logger, "after", 1, 1)  # still attached, e.g. after another dictConfig
        assert not [key for key in every_data_key if not key.erased]
        handler.close(30)
        logger.removeHandler(handler)
        assert 0 == verify(server, group, host_path, capsys)[0]  # two closed logs

    def test_a_forked_child_makes_its_own_kms_client(self, server, rings, tmp_path):
        """A boto3 client's pooled sockets must never be shared by parent and child."""
        _, host_path = rings
        kms = FakeKms()
        made: list[int] = []

        def factory() -> FakeKms:
            made.append(os.getpid())
            return kms

        logger, handler, _group = self.make(server, host_path, tmp_path, encrypt="kms",
                                            encrypt_kms_key_id="k", kms_client_factory=factory,
                                            key_window=60)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.alarm(10)
                log_records(logger, "child", 0, 1)
                os.write(write, json.dumps(made).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        seen = json.loads(os.read(read, 1000) or b"[]")
        os.close(read)
        os.waitpid(pid, 0)
        assert handler.close(30)
        logger.removeHandler(handler)
        assert pid in seen

    def test_without_a_key_records_are_counted_then_declared_as_lost(
            self, server, rings, tmp_path, capsys, monkeypatch):
        """A new log (as in a forked child) while KMS is down: no KMS call per record, and
        the next log's header declares what was lost, which the verifier reports (exit 1)."""
        _, host_path = rings
        kms = FakeKms()
        logger, handler, group = self.make(server, host_path, tmp_path, encrypt="kms",
                                           encrypt_kms_key_id="k",
                                           kms_client_factory=lambda: kms, key_window=60)
        log_records(logger, "first", 0, 1)
        handler._window_stop.set()  # the state a forked child finds: no thread, no log yet
        handler._window_thread.join(5)
        with handler.lock:
            handler._chain = None
            handler._encryption.erase()
            handler._window_thread, handler._window_stop = None, threading.Event()
        kms.fail = True
        log_records(logger, "lost", 0, 20)
        assert 2 == kms.calls  # the first log's key, then one attempt for the new log
        assert 20 == handler.counters["dropped"]
        kms.fail = False
        later = time.monotonic() + 61
        monkeypatch.setattr("llm_audit_log.sinks.cloudwatch.time.monotonic", lambda: later)
        log_records(logger, "back", 20, 1)
        assert handler.close(30)
        logger.removeHandler(handler)
        code, report = verify(server, group, host_path, capsys)
        assert 1 == code  # (the first log, left open as a parent's would be, is unsealed)
        assert ["the writer reports 20 record(s) it could not write"] == [
            f["detail"] for f in report["findings"] if f["verdict"] == "truncated"]
