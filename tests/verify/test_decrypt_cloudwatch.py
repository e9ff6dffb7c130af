"""
``llm-audit decrypt --cloudwatch``: an auditor reads the central copy when the host is gone.

Encrypted lines go to local files and, the same bytes, to CloudWatch (moto's real HTTP
server on loopback). Decrypting the stream gives exactly what decrypting the files gives;
a forged event is refused; a host keyring without the auditor's private key decrypts
nothing.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from llm_audit_log import AuditFileHandler
from llm_audit_log._cli import main
from llm_audit_log.keys import Keyring
from llm_audit_log.sinks.cloudwatch import CloudWatchHandler
from llm_audit_log.verify import DecryptedLine, decrypt_cloudwatch, verify_cloudwatch

pytestmark = pytest.mark.slow
REGION = "us-east-1"


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """The auditor's full keyring, and the host's: signing keys plus the public half only."""
    full = Keyring.generate()
    paths = {"auditor": tmp_path / "auditor-ring.json", "host": tmp_path / "host-ring.json"}
    full.save(paths["auditor"])
    full.without_auditor_key().save(paths["host"])
    return paths


@pytest.fixture
def shipped(server: dict[str, Any], keys: dict[str, Path], tmp_path: Path) -> dict[str, Any]:
    """Encrypted records logged to files and CloudWatch, with a planted value in each."""
    group = f"decrypt-{secrets.token_hex(4)}"
    plant = f"PLANT-{secrets.token_hex(6)}"
    handler = AuditFileHandler(
        tmp_path / "logs" / "audit.jsonl", keyring=f"file:{keys['host']}", encrypt="auditor",
        maxBytes=16_384, cloudwatch={"log_group": group, "create_group": True,
                                     "endpoint_url": server["url"], "region": REGION,
                                     "send_interval": 0.2, "max_backoff": 1.0})
    logger = logging.getLogger(f"tests.decrypt.cw.{secrets.token_hex(6)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    for i in range(120):
        logger.info("asked %s", f"{plant}-msg-{i}", extra={"audit": {
            "event_type": "auth.login", "user_id": f"{plant}-{i}", "status": "success"}})
    handler.close()
    logger.removeHandler(handler)
    return {"group": group, "plant": plant, "logs": tmp_path / "logs", "url": server["url"]}


def decrypt(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> tuple[int, list[Any]]:
    capsysbinary.readouterr()
    code = main(["decrypt", *args])
    out = capsysbinary.readouterr().out.decode()
    return code, [json.loads(line) for line in out.splitlines()]


def stream_args(shipped: dict[str, Any], keyring: Path) -> list[str]:
    return ["--cloudwatch", shipped["group"], "--keyring", str(keyring),
            "--endpoint-url", shipped["url"], "--region", REGION]


def comparable(lines: list[Any]) -> list[tuple[Any, ...]]:
    """What must agree between the two copies (the file names differ: paths vs streams)."""
    return [(d["log"], d["seq"], d["kind"], json.dumps(d["body"], sort_keys=True))
            for d in lines]


class TestDecryptCloudWatch:
    def test_stream_decrypts_exactly_like_the_files(self, shipped, keys, capsysbinary):
        assert len(list(shipped["logs"].iterdir())) > 2  # rotated: several data keys
        code, from_files = decrypt(capsysbinary, str(shipped["logs"]), "--keyring",
                                   str(keys["auditor"]))
        assert 0 == code
        code, from_stream = decrypt(capsysbinary, *stream_args(shipped, keys["auditor"]))
        assert 0 == code
        assert comparable(from_files) == comparable(from_stream)
        users = [d["body"]["user_id"] for d in from_stream if d["kind"] == "event"]
        assert [f"{shipped['plant']}-{i}" for i in range(120)] == users
        assert all(d["encrypted"] for d in from_stream if d["kind"] == "event")

    def test_central_copy_holds_no_plaintext(self, shipped):
        client = boto3.client("logs", endpoint_url=shipped["url"], region_name=REGION)
        messages = [e["message"] for s in client.describe_log_streams(
            logGroupName=shipped["group"])["logStreams"]
            for e in client.get_log_events(logGroupName=shipped["group"],
                                           logStreamName=s["logStreamName"],
                                           startFromHead=True, limit=10_000)["events"]]
        assert len(messages) > 120
        assert not [m for m in messages if shipped["plant"] in m]

    def test_forged_event_is_refused_and_fails_the_run(self, shipped, keys, capsysbinary):
        """Someone with write access to the group appends a line: refused, exit 1."""
        client = boto3.client("logs", endpoint_url=shipped["url"], region_name=REGION)
        stream = client.describe_log_streams(
            logGroupName=shipped["group"])["logStreams"][0]["logStreamName"]
        last = client.get_log_events(logGroupName=shipped["group"], logStreamName=stream,
                                     startFromHead=False, limit=1)["events"][-1]
        original = json.loads(last["message"])
        seq = original["seq"]
        message = last["message"].replace(f'"seq":{seq},', f'"seq":{seq + 1},')
        assert message != last["message"]  # the same line, one sequence number on
        client.put_log_events(logGroupName=shipped["group"], logStreamName=stream, logEvents=[
            {"timestamp": last["timestamp"], "message": message}])
        code, lines = decrypt(capsysbinary, *stream_args(shipped, keys["auditor"]))
        assert 1 == code
        assert seq + 1 not in {d["seq"] for d in lines if d["log"] == original["log"]}

    def test_host_keyring_cannot_decrypt(self, shipped, keys, capsysbinary):
        code, lines = decrypt(capsysbinary, *stream_args(shipped, keys["host"]))
        assert 4 == code
        assert not [d for d in lines if d["kind"] == "event"]

    @pytest.mark.parametrize("extra", [[], ["some/path"]])
    def test_usage_needs_paths_or_a_group_not_both(self, keys, capsys, extra):
        args = ["decrypt", "--keyring", str(keys["auditor"]), *extra]
        if extra:
            args += ["--cloudwatch", "g"]
        assert 2 == main(args)
        assert "give log paths, or --cloudwatch GROUP" in capsys.readouterr().err



@pytest.fixture
def logs(monkeypatch):
    """moto in process: a logs client with the group /app/audit."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", REGION)):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("logs", region_name=REGION)
        client.create_log_group(logGroupName="/app/audit")
        yield client


class TestVirtualFileNames:
    """Each window of each log is its own virtual file, whatever the streams are called."""

    @staticmethod
    def ship(client, ring, stream, users, tmp_path):
        handler = CloudWatchHandler("/app/audit", stream, keyring=ring, encrypt="auditor",
                                    client_factory=lambda: client, send_interval=0.05,
                                    spill_dir=str(tmp_path / f"spill-{secrets.token_hex(3)}"))
        logger = logging.getLogger(f"tests.names.{secrets.token_hex(6)}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        for user in users:
            logger.info("m", extra={"audit": {"event_type": "auth.login", "user_id": user,
                                              "status": "success"}})
        assert handler.close(10)
        logger.removeHandler(handler)

    @staticmethod
    def shown(run) -> list[str]:
        return sorted(json.loads(item.body)["user_id"] for item in run
                      if isinstance(item, DecryptedLine) and item.kind == "event")

    def test_two_logs_in_one_stream_both_decrypt(self, logs, tmp_path):
        """A fixed stream name and a restart: two logs whose first windows both start at 0."""
        ring = Keyring.generate()
        self.ship(logs, ring, "myhost", ["a0", "a1"], tmp_path)
        self.ship(logs, ring, "myhost", ["b0", "b1"], tmp_path)
        assert 0 == verify_cloudwatch("/app/audit", None, ring, client=logs).exit_code
        run = decrypt_cloudwatch("/app/audit", None, ring, client=logs)
        assert ["a0", "a1", "b0", "b1"] == self.shown(run)
        assert 0 == run.exit_code

    def test_a_stream_named_like_a_window_cannot_displace_it(self, logs, tmp_path):
        """Write access alone: a junk event in a stream named after a window's old name."""
        ring = Keyring.generate()
        self.ship(logs, ring, "web-1", ["u0", "u1", "u2"], tmp_path)
        logs.create_log_stream(logGroupName="/app/audit", logStreamName="web-1@0")
        logs.put_log_events(logGroupName="/app/audit", logStreamName="web-1@0",
                            logEvents=[{"timestamp": int(time.time() * 1000),
                                        "message": "junk"}])
        run = decrypt_cloudwatch("/app/audit", None, ring, client=logs)
        assert ["u0", "u1", "u2"] == self.shown(run)  # the real log verified: shown
        assert 0 != run.exit_code  # and the junk still fails the run


class TestCommandLine:
    @pytest.mark.parametrize("command", ["verify", "decrypt"])
    def test_an_unreadable_group_is_cannot_verify_not_usage(self, keys, capsys, command):
        """Nothing could be read, so nothing was checked: exit 4 (never 0, and not 'usage')."""
        code = main([command, "--cloudwatch", "/no/such/group", "--keyring", str(keys["host"]),
                     "--endpoint-url", "http://127.0.0.1:9", "--region", REGION])
        assert 4 == code
        assert "cannot read CloudWatch group" in capsys.readouterr().err

    def test_a_missing_stream_is_named_not_the_group(self, shipped, keys, capsys):
        """--stream naming no stream of an existing group: said so (exit 4)."""
        code = main(["verify", *stream_args(shipped, keys["host"]), "--stream", "no-such"])
        err = capsys.readouterr().err
        assert 4 == code
        assert f"CloudWatch group '{shipped['group']}' has no stream 'no-such'" in err

    def test_the_auditor_key_may_be_given_as_a_source(self, shipped, keys, tmp_path):
        """decrypt_cloudwatch(auditor_key=PATH), as ``--auditor-key PATH``."""
        full = Keyring.from_json(keys["auditor"].read_text(), source="test")
        assert full.auditor_key is not None
        full.auditor_key.save(tmp_path / "auditor.json")
        run = decrypt_cloudwatch(shipped["group"], None, f"file:{keys['host']}",
                                 auditor_key=str(tmp_path / "auditor.json"),
                                 endpoint_url=shipped["url"], region=REGION)
        shown = [i for i in run if isinstance(i, DecryptedLine) and i.encrypted]
        assert 120 == len(shown)
        assert 0 == run.exit_code

    @pytest.mark.parametrize("command", ["verify", "decrypt"])
    @pytest.mark.parametrize("option", [["--stream", "s"], ["--region", REGION],
                                        ["--endpoint-url", "http://x"], ["--profile", "p"]])
    def test_cloudwatch_options_without_a_group_are_usage_errors(self, keys, tmp_path, capsys,
                                                                 command, option):
        """Given but not used would be silently ignored: refused instead (exit 2)."""
        code = main([command, str(tmp_path), "--keyring", str(keys["host"]), *option])
        assert 2 == code
        assert f"{option[0]} needs --cloudwatch GROUP" in capsys.readouterr().err

    @pytest.mark.parametrize("command", ["verify", "decrypt"])
    @pytest.mark.parametrize("option", [["--profile", "no-such-profile"],
                                        ["--endpoint-url", "not a url"]])
    def test_bad_aws_settings_are_cannot_verify_without_a_traceback(self, keys, capsys,
                                                                    command, option):
        code = main([command, "--cloudwatch", "/g", "--keyring", str(keys["host"]),
                     "--region", REGION, *option])
        err = capsys.readouterr().err
        assert 4 == code
        assert "cannot read CloudWatch group" in err
        assert "Traceback" not in err


class TestNewerVersionLines:
    """Lines in an unknown format version are placed where they claim to belong."""

    def test_an_appended_line_in_an_unknown_version_is_tampering(self, logs, tmp_path):
        """Write access only: a line 'from a newer release' after a log's end is no release's."""
        ring = Keyring.generate()
        TestVirtualFileNames.ship(logs, ring, "web-1", ["u0", "u1"], tmp_path)
        events = logs.get_log_events(logGroupName="/app/audit", logStreamName="web-1",
                                     startFromHead=True)["events"]
        last = json.loads(events[-1]["message"])
        forged = events[-2]["message"].replace('"v":2,', '"v":3,').replace(
            f'"seq":{last["seq"] - 1},', f'"seq":{last["seq"] + 1},')
        logs.put_log_events(logGroupName="/app/audit", logStreamName="web-1", logEvents=[
            {"timestamp": events[-1]["timestamp"], "message": forged}])
        report = verify_cloudwatch("/app/audit", None, ring, client=logs)
        assert 1 == report.exit_code
        assert any(f.verdict.value == "tampered" for f in report.findings)
