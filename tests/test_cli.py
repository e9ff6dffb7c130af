"""The llm-audit command: keygen, verify and demo, run as users run them."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llm_audit_log", *args], cwd=cwd, check=False,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


class TestKeygen:
    def test_keygen_writes_a_private_keyring(self, tmp_path):
        """keygen --out writes mode 0600 and prints no key material."""
        result = cli("keygen", "--out", "k.json", cwd=tmp_path)
        assert 0 == result.returncode, result.stderr
        doc = json.loads((tmp_path / "k.json").read_text())
        assert 0o600 == stat.S_IMODE((tmp_path / "k.json").stat().st_mode)
        assert doc["keys"][0]["key"] not in result.stdout + result.stderr

    def test_keygen_refuses_to_overwrite(self, tmp_path):
        """A second keygen on the same path is a usage error (exit 2)."""
        cli("keygen", "--out", "k.json", cwd=tmp_path)
        assert 2 == cli("keygen", "--out", "k.json", cwd=tmp_path).returncode

    def test_keygen_rotate_adds_an_active_key(self, tmp_path):
        """--rotate keeps old keys and switches the active one."""
        cli("keygen", "--out", "k.json", cwd=tmp_path)
        before = json.loads((tmp_path / "k.json").read_text())
        assert 0 == cli("keygen", "--out", "k.json", "--rotate", cwd=tmp_path).returncode
        after = json.loads((tmp_path / "k.json").read_text())
        assert 2 == len(after["keys"])
        assert before["active_kid"] != after["active_kid"]


    def test_keygen_cannot_write_is_a_message_not_a_traceback(self, tmp_path):
        """A file where a directory should be: exit 2, said plainly."""
        (tmp_path / "afile").write_text("x")
        result = cli("keygen", "--out", "afile/k.json", cwd=tmp_path)
        assert 2 == result.returncode
        assert "cannot write" in result.stderr and "Traceback" not in result.stderr

    def test_retire_old_after_is_checked(self, tmp_path):
        """Not a UTC time, or without --rotate: exit 2; a past time is accepted with a note."""
        cli("keygen", "--out", "k.json", cwd=tmp_path)
        bad = cli("keygen", "--out", "k.json", "--rotate", "--retire-old-after", "yesterday",
                  cwd=tmp_path)
        alone = cli("keygen", "--out", "k.json", "--retire-old-after",
                    "2031-01-01T00:00:00Z", cwd=tmp_path)
        past = cli("keygen", "--out", "k.json", "--rotate", "--retire-old-after",
                   "2020-01-01T00:00:00Z", cwd=tmp_path)
        assert (2, 2, 0) == (bad.returncode, alone.returncode, past.returncode)
        assert "expected a UTC time" in bad.stderr
        assert "applies with --rotate" in alone.stderr
        assert "KEY_INVALID" in past.stdout


class TestDemo:
    def test_demo_refuses_bad_options_plainly(self, tmp_path):
        """--rounds below 1 and a missing --config are usage errors, without a traceback."""
        for args in (("--rounds", "0"), ("--config", "missing.json")):
            result = cli("demo", *args, cwd=tmp_path, env={"LLM_AUDIT_KEYRING": ""})
            assert 2 == result.returncode, args
            assert "Traceback" not in result.stderr

    def test_demo_takes_a_yaml_config(self, tmp_path):
        shutil.copytree(ROOT / "logging_configs", tmp_path / "logging_configs")
        result = cli("demo", "--config", "logging_configs/local.yaml", cwd=tmp_path,
                     env={"LLM_AUDIT_KEYRING": ""})
        assert 0 == result.returncode, result.stdout + result.stderr
        assert "VERIFIED" in result.stdout

    def test_demo_runs_from_a_fresh_directory_and_verifies(self, tmp_path):
        """The README's first command: demo logs every category and verifies (exit 0)."""
        shutil.copytree(ROOT / "logging_configs", tmp_path / "logging_configs")
        env = {"LLM_AUDIT_KEYRING": ""}
        result = cli("demo", cwd=tmp_path, env=env)
        assert 0 == result.returncode, result.stdout + result.stderr
        assert "VERIFIED" in result.stdout
        again = cli("demo", "--rounds", "2", cwd=tmp_path, env=env)
        assert 0 == again.returncode, again.stdout + again.stderr
        files = sorted((tmp_path / "audit-logs").glob("*.jsonl"))
        assert 2 == len(files)
        text = "".join(p.read_text() for p in files)
        assert "Summarise the refund policy" not in text
        for category in ("auth.login", "llm.completion", "rag.query", "tool.call",
                         "guardrail.block", '"error"', "admin.config_change", "audit.rejected"):
            assert category in text


class TestVerify:
    @pytest.fixture
    def logged(self, tmp_path):
        shutil.copytree(ROOT / "logging_configs", tmp_path / "logging_configs")
        assert 0 == cli("demo", cwd=tmp_path, env={"LLM_AUDIT_KEYRING": ""}).returncode
        return tmp_path

    def test_json_report(self, logged):
        """--json prints a machine-readable report with the exit code in it."""
        result = cli("verify", "--json", "--keyring", "audit-demo/keyring.json", "audit-logs",
                     cwd=logged)
        report = json.loads(result.stdout)
        assert (0, True) == (result.returncode, report["ok"])

    def test_keyring_from_environment(self, logged):
        """Without --keyring the file named by LLM_AUDIT_KEYRING is used."""
        result = cli("verify", "audit-logs", cwd=logged,
                     env={"LLM_AUDIT_KEYRING": str(logged / "audit-demo/keyring.json")})
        assert 0 == result.returncode, result.stdout

    def test_missing_key_is_cannot_verify(self, logged):
        """No keyring at all: exit 4, never 0."""
        result = cli("verify", "audit-logs", cwd=logged, env={"LLM_AUDIT_KEYRING": ""})
        assert 4 == result.returncode

    def test_usage_errors_exit_2(self, logged):
        """A path that does not exist, or no path at all, is a usage error."""
        assert 2 == cli("verify", "--keyring", "audit-demo/keyring.json", "nope",
                        cwd=logged).returncode
        assert 2 == cli("verify", cwd=logged).returncode

    def test_empty_directory_is_cannot_verify(self, logged):
        """Nothing to check is not 'verified', and the report says why."""
        (logged / "empty").mkdir()
        result = cli("verify", "--keyring", "audit-demo/keyring.json", "empty", cwd=logged)
        assert 4 == result.returncode
        assert "CANNOT_VERIFY empty: no log files here" in result.stdout

    def test_a_reader_that_goes_away_ends_quietly(self, logged):
        """verify | head: no BrokenPipeError traceback; the exit code is still the verdict."""
        result = subprocess.run(
            f"{sys.executable} -m llm_audit_log verify --keyring audit-demo/keyring.json "
            "audit-logs | head -c 0; exit ${PIPESTATUS[0]}", shell=True, executable="/bin/bash",
            cwd=logged, capture_output=True, text=True, timeout=120, check=False)
        assert 0 == result.returncode
        assert "Traceback" not in result.stderr

    def test_decrypt_shows_a_path_that_is_not_utf8(self, logged):
        """A directory name that is not UTF-8: shown escaped, not a TypeError."""
        odd = os.fsdecode(b"logs-\xff")
        shutil.copytree(logged / "audit-logs", logged / odd)
        result = cli("decrypt", "--keyring", "audit-demo/keyring.json", odd, cwd=logged)
        assert 0 == result.returncode, result.stderr
        assert all('"file":"logs-\\\\xff/' in line for line in result.stdout.splitlines())

    def test_console_script_is_installed(self, logged):
        """llm-audit is on PATH next to the interpreter."""
        exe = Path(sys.executable).with_name("llm-audit")
        result = subprocess.run([str(exe), "verify", "--keyring", "audit-demo/keyring.json",
                                 "audit-logs"], cwd=logged, capture_output=True, text=True,
                                timeout=60, check=False)
        assert 0 == result.returncode, result.stdout + result.stderr
