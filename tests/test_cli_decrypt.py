"""``llm-audit keygen --auditor-out`` and ``llm-audit decrypt``, run as users run them."""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from llm_audit_log import AuditFileHandler, load_keyring


def cli(*args: str | os.PathLike[str], cwd: Path,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llm_audit_log", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})})


def write_log(directory: Path, keyring: Path, *, secret: str, events: int = 3,
              files: int = 2, encrypt: str | None = "auditor") -> Path:
    handler = AuditFileHandler(directory / "audit.jsonl", keyring=f"file:{keyring}",
                               encrypt=encrypt)
    logger = logging.getLogger(f"cli.decrypt.{secrets.token_hex(6)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    for index in range(files):
        if index:
            handler.doRollover()
        for number in range(events):
            logger.info("event %d", number, extra={"audit": {
                "event_type": "auth.login", "user_id": f"{secret}-{index}-{number}",
                "status": "success"}})
    handler.close()
    logger.removeHandler(handler)
    return directory


@pytest.fixture
def split_keys(tmp_path: Path) -> tuple[Path, Path]:
    """`keygen --auditor-out`: the host keyring and the auditor's private key, apart."""
    result = cli("keygen", "--out", "host.json", "--auditor-out", "auditor.json", cwd=tmp_path)
    assert 0 == result.returncode, result.stderr
    return tmp_path / "host.json", tmp_path / "auditor.json"


class TestKeygenAuditorOut:
    def test_halves_go_to_separate_private_files(self, split_keys, tmp_path):
        """The keyring keeps the public half only; the auditor file holds the private half."""
        host, auditor = split_keys
        host_doc, auditor_doc = json.loads(host.read_text()), json.loads(auditor.read_text())
        assert {"kid", "alg", "public"} == set(host_doc["auditor"])
        assert "llm-audit-log/auditor-key" == auditor_doc["format"]
        assert host_doc["auditor"]["public"] == auditor_doc["public"]
        assert host_doc["auditor"]["kid"] == auditor_doc["kid"]
        for path in (host, auditor):
            assert 0o600 == stat.S_IMODE(path.stat().st_mode)
        assert load_keyring(host).auditor_key is None

    def test_nothing_secret_is_printed(self, tmp_path):
        """keygen prints paths and advice, never key bytes."""
        result = cli("keygen", "--out", "k.json", "--auditor-out", "a.json", cwd=tmp_path)
        secret = json.loads((tmp_path / "a.json").read_text())["private"]
        assert secret not in result.stdout + result.stderr
        assert "a.json" in result.stdout

    def test_default_keeps_both_halves_in_the_keyring(self, tmp_path):
        """Without --auditor-out the keyring holds the whole auditor pair."""
        assert 0 == cli("keygen", "--out", "k.json", cwd=tmp_path).returncode
        assert "private" in json.loads((tmp_path / "k.json").read_text())["auditor"]

    @pytest.mark.parametrize("args", [
        ("--out", "k.json", "--auditor-out", "k.json"),
        ("--out", "k.json", "--auditor-out", "a.json", "--rotate"),
    ], ids=["same file", "with rotate"])
    def test_usage_errors_exit_2(self, tmp_path, args):
        """Same path for both halves, or --auditor-out with --rotate, is a usage error."""
        cli("keygen", "--out", "k.json", cwd=tmp_path)
        assert 2 == cli("keygen", *args, cwd=tmp_path).returncode

    def test_refuses_to_overwrite_either_file(self, split_keys, tmp_path):
        """A second run never overwrites the keyring or the auditor key."""
        before = split_keys[1].read_bytes()
        assert 2 == cli("keygen", "--out", "host.json", "--auditor-out", "other.json",
                        cwd=tmp_path).returncode
        assert 2 == cli("keygen", "--out", "new.json", "--auditor-out", "auditor.json",
                        cwd=tmp_path).returncode
        assert before == split_keys[1].read_bytes()
        assert not (tmp_path / "other.json").exists()


class TestKeygenAddAuditor:
    def test_adds_a_pair_to_an_old_keyring_keeping_signing_keys(self, tmp_path):
        """--add-auditor upgrades a keyring from before encryption; its signing keys stay."""
        assert 0 == cli("keygen", "--out", "k.json", cwd=tmp_path).returncode
        doc = json.loads((tmp_path / "k.json").read_text())
        del doc["auditor"]
        (tmp_path / "k.json").write_text(json.dumps(doc))
        result = cli("keygen", "--out", "k.json", "--add-auditor", "--auditor-out", "a.json",
                     cwd=tmp_path)
        assert 0 == result.returncode, result.stderr
        after = json.loads((tmp_path / "k.json").read_text())
        assert doc["keys"] == after["keys"]
        assert {"kid", "alg", "public"} == set(after["auditor"])
        assert after["auditor"]["kid"] == json.loads((tmp_path / "a.json").read_text())["kid"]
        assert 0o600 == stat.S_IMODE((tmp_path / "k.json").stat().st_mode)

    def test_refuses_to_replace_an_auditor_key_without_force(self, tmp_path):
        """A keyring that already names an auditor key keeps it unless --force is given."""
        cli("keygen", "--out", "k.json", cwd=tmp_path)
        before = (tmp_path / "k.json").read_bytes()
        assert 2 == cli("keygen", "--out", "k.json", "--add-auditor", cwd=tmp_path).returncode
        assert before == (tmp_path / "k.json").read_bytes()
        assert 2 == cli("keygen", "--out", "k.json", "--add-auditor", "--rotate",
                        cwd=tmp_path).returncode


class TestDecrypt:
    def test_prints_every_line_in_chain_order_decrypted(self, split_keys, tmp_path):
        """Exit 0; one canonical JSON line per log line; event bodies are the plaintext."""
        host, auditor = split_keys
        directory = write_log(tmp_path / "logs", host, secret="s3cr3t")

        result = cli("decrypt", "--keyring", host, "--auditor-key", auditor, directory,
                     cwd=tmp_path)

        assert 0 == result.returncode, result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert ["header", "event", "event", "event", "footer"] * 2 == [x["kind"] for x in lines]
        assert list(range(10)) == [x["seq"] for x in lines]
        assert [f"s3cr3t-{f}-{n}" for f in range(2) for n in range(3)] == [
            x["body"]["user_id"] for x in lines if x["kind"] == "event"]
        assert all(x["encrypted"] == (x["kind"] == "event") for x in lines)
        assert {"body", "encrypted", "file", "kid", "kind", "line", "log", "seq", "ts"} == set(
            lines[0])
        for raw in result.stdout.splitlines():
            assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False)

    def test_without_the_auditor_key_exits_4_and_says_what_is_missing(self, split_keys,
                                                                      tmp_path):
        """The host keyring alone verifies but cannot decrypt: exit 4, events refused."""
        host, _auditor = split_keys
        directory = write_log(tmp_path / "logs", host, secret="s3cr3t")

        result = cli("decrypt", "--keyring", host, directory, cwd=tmp_path)

        assert 4 == result.returncode
        assert "--auditor-key" in result.stderr
        assert "s3cr3t" not in result.stdout + result.stderr
        assert 0 == cli("verify", "--keyring", host, directory, cwd=tmp_path).returncode

    def test_tampered_line_is_refused_by_name_without_content(self, split_keys, tmp_path):
        """A flipped ciphertext: exit 1; stderr names file:line and reason, never the content."""
        host, auditor = split_keys
        directory = write_log(tmp_path / "logs", host, secret="s3cr3t")
        first = min(directory.glob("*.jsonl"))
        lines = first.read_bytes().split(b"\n")
        lines[2] = lines[2].replace(b'"ct":"', b'"ct":"A', 1)
        first.write_bytes(b"\n".join(lines))

        result = cli("decrypt", "--keyring", host, "--auditor-key", auditor, directory,
                     cwd=tmp_path)

        assert 1 == result.returncode
        assert f"refused {first}:3 (seq 2): tampered:" in result.stderr
        shown = [json.loads(line) for line in result.stdout.splitlines()]
        assert 2 not in [x["seq"] for x in shown]
        assert "s3cr3t-0-1" not in result.stdout + result.stderr
        assert 5 == sum(1 for x in shown if x["kind"] == "event")

    def test_clear_logs_decrypt_to_themselves(self, split_keys, tmp_path):
        """Logs written without encryption are printed as they are (exit 0)."""
        host, _auditor = split_keys
        directory = write_log(tmp_path / "logs", host, secret="plain", encrypt=None)

        result = cli("decrypt", "--keyring", host, directory, cwd=tmp_path)

        assert 0 == result.returncode, result.stderr
        events = [json.loads(x) for x in result.stdout.splitlines()]
        assert not any(x["encrypted"] for x in events)
        assert "plain-1-2" == events[-2]["body"]["user_id"]

    def test_usage_and_key_errors(self, split_keys, tmp_path):
        """A missing path is exit 2; an unreadable auditor key file is exit 4."""
        host, _auditor = split_keys
        assert 2 == cli("decrypt", "--keyring", host, "nowhere", cwd=tmp_path).returncode
        (tmp_path / "logs").mkdir()
        result = cli("decrypt", "--keyring", host, "--auditor-key", "missing.json", "logs",
                     cwd=tmp_path)
        assert 4 == result.returncode
        assert "missing.json" in result.stderr
