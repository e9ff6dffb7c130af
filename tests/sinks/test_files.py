"""AuditFileHandler: files on disk, rotation, restart, crash recovery, retention, threads."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_audit_log import (
    AuditFileHandler,
    AuditFilter,
    AuditFormatter,
    ConfigurationError,
    Keyring,
    Verdict,
    verify_paths,
)
from llm_audit_log.seal import GENESIS_PREV, parse_line
from llm_audit_log.sinks import files as files_module

EVENT = {"event_type": "auth.login", "user_id": "u-1", "status": "success", "method": "oidc"}


def lines_of(path: Path) -> list[dict]:
    return [json.loads(raw) for raw in path.read_bytes().split(b"\n") if raw]


def simulate_crash(handler: AuditFileHandler) -> None:
    """Drop the handler's files as a killed process would: no footer, name lock released."""
    handler._abandon_file()
    if handler._lock_fd is not None:
        os.close(handler._lock_fd)
        handler._lock_fd = None


def log_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))


@pytest.fixture
def ring() -> Keyring:
    return Keyring.generate()


@pytest.fixture
def make_logger(tmp_path, ring, request):
    """Build a fresh logger with an AuditFileHandler; everything is closed afterwards."""
    made: list[tuple[logging.Logger, logging.Handler]] = []

    def make(name: str = "audit.test", directory: Path | None = None, **options):
        directory = directory or tmp_path / "logs"
        logger = logging.getLogger(f"{name}.{request.node.name}.{len(made)}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handler = AuditFileHandler(directory / "audit.jsonl", keyring=ring, **options)
        logger.addHandler(handler)
        made.append((logger, handler))
        return logger, handler

    yield make
    for logger, handler in made:
        logger.removeHandler(handler)
        handler.close()


class TestFilesOnDisk:
    def test_files_are_0600_and_directory_0700(self, make_logger, tmp_path):
        """Key-adjacent data stays private: log files 0600, the directory 0700."""
        logger, handler = make_logger()
        logger.info("hi", extra={"audit": EVENT})
        handler.close()
        directory = tmp_path / "logs"
        assert 0o700 == stat.S_IMODE(directory.stat().st_mode)
        for path in directory.iterdir():
            assert 0o600 == stat.S_IMODE(path.stat().st_mode)

    def test_file_starts_with_header_and_ends_with_footer_on_close(self, make_logger, tmp_path):
        """A cleanly closed file is header, events, footer; the footer counts the lines."""
        logger, handler = make_logger()
        for _ in range(3):
            logger.info("hi", extra={"audit": EVENT})
        handler.close()
        (path,) = log_files(tmp_path / "logs")
        lines = lines_of(path)
        assert ["header", "event", "event", "event", "footer"] == [x["t"] for x in lines]
        assert "genesis" == lines[0]["body"]["reason"]
        assert {"reason": "close", "lines": 5, "next_file_index": None} == {
            k: lines[-1]["body"][k] for k in ("reason", "lines", "next_file_index")}
        assert list(range(5)) == [x["seq"] for x in lines]

    def test_every_line_is_one_write(self, make_logger, monkeypatch):
        """Each line reaches the OS in a single write call, so a crash tears at most one."""
        logger, _handler = make_logger()
        calls: list[bytes] = []
        real_write = os.write

        def spy(fd, data):
            calls.append(bytes(data))
            return real_write(fd, data)

        monkeypatch.setattr(files_module.os, "write", spy)
        logger.info("hi", extra={"audit": EVENT})
        assert 1 == len(calls)
        assert calls[0].endswith(b"\n") and 1 == calls[0].count(b"\n")


class TestRotation:
    def test_size_rotation_links_files_and_verifies(self, make_logger, tmp_path, ring):
        """Rotating on size gives several files, each within maxBytes, one verifying chain."""
        logger, handler = make_logger(maxBytes=8192)
        for i in range(200):
            logger.info("event %d", i, extra={"audit": EVENT})
        handler.close()
        paths = log_files(tmp_path / "logs")
        assert len(paths) > 3
        assert all(p.stat().st_size <= 8192 for p in paths)
        report = verify_paths([tmp_path / "logs"], ring)
        assert 0 == report.exit_code, report.findings
        assert 200 == report.logs[0].events

    def test_rotation_footer_names_next_file_and_header_links_back(self, make_logger, tmp_path):
        """Footer says 'rotate' and the next index; the next header's prev is the footer's hash."""
        logger, handler = make_logger()
        logger.info("a", extra={"audit": EVENT})
        handler.doRollover()
        logger.info("b", extra={"audit": EVENT})
        handler.close()
        first, second = log_files(tmp_path / "logs")
        footer_raw = first.read_bytes().split(b"\n")[-2]
        header = lines_of(second)[0]
        assert "rotate" == lines_of(first)[-1]["body"]["reason"]
        assert 2 == lines_of(first)[-1]["body"]["next_file_index"]
        assert parse_line(footer_raw).hash == header["prev"]
        assert ("rotate", 2, 1) == (header["body"]["reason"], header["body"]["file_index"],
                                    header["body"]["prev_file_index"])

    def test_time_rotation(self, make_logger, tmp_path, ring, monkeypatch):
        """when='S' rotates once the interval has passed (UTC clock)."""
        now = [time.time()]
        monkeypatch.setattr(files_module.time, "time", lambda: now[0])
        logger, handler = make_logger(when="S", interval=5)
        logger.info("a", extra={"audit": EVENT})
        logger.info("b", extra={"audit": EVENT})
        now[0] += 6
        logger.info("c", extra={"audit": EVENT})
        handler.close()
        assert 2 == len(log_files(tmp_path / "logs"))
        assert 0 == verify_paths([tmp_path / "logs"], ring).exit_code

    def test_namer_is_honoured(self, make_logger, tmp_path, ring):
        """A stdlib-style namer renames files; order still comes from headers."""
        logger, handler = make_logger(delay=True)
        handler.namer = lambda name: name.replace(".jsonl", ".audit")
        logger.info("a", extra={"audit": EVENT})
        handler.doRollover()
        handler.close()
        assert all(p.suffix == ".audit" for p in log_files(tmp_path / "logs"))
        assert 0 == verify_paths([tmp_path / "logs"], ring).exit_code


class TestRestart:
    def test_restart_after_clean_close_continues_the_chain(self, make_logger, tmp_path, ring):
        """A new handler on the same path continues the same log in a new file."""
        logger, handler = make_logger()
        logger.info("a", extra={"audit": EVENT})
        handler.close()
        logger2, handler2 = make_logger()
        logger2.info("b", extra={"audit": EVENT})
        handler2.close()
        first, second = log_files(tmp_path / "logs")
        assert lines_of(first)[0]["log"] == lines_of(second)[0]["log"]
        assert "restart" == lines_of(second)[0]["body"]["reason"]
        report = verify_paths([tmp_path / "logs"], ring)
        assert 0 == report.exit_code, report.findings

    def test_crash_of_a_real_process_then_resume(self, tmp_path, ring):
        """SIGKILL mid-stream: verify says 3 (never 0); the next start acknowledges and verifies."""
        keyring_path = tmp_path / "keyring.json"
        ring.save(keyring_path)
        script = textwrap.dedent(f"""
            import logging, sys
            from llm_audit_log import AuditFileHandler
            h = AuditFileHandler({str(tmp_path / 'logs' / 'audit.jsonl')!r},
                                 keyring={str(keyring_path)!r})
            log = logging.getLogger("audit"); log.addHandler(h); log.setLevel("INFO")
            ev = {{"event_type": "auth.login", "user_id": "u", "status": "success"}}
            i = 0
            while True:
                log.info("e %d", i, extra={{"audit": ev}})
                i += 1
                if i == 2000:
                    print("ready", flush=True)
        """)
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        assert b"ready" in proc.stdout.readline()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        crashed = verify_paths([tmp_path / "logs"], ring)
        assert crashed.exit_code == 3, crashed.findings
        assert any(f.verdict in (Verdict.UNSEALED, Verdict.INCOMPLETE_TAIL)
                   for f in crashed.findings)
        handler = AuditFileHandler(tmp_path / "logs" / "audit.jsonl", keyring=ring)
        handler.close()
        report = verify_paths([tmp_path / "logs"], ring)
        assert 0 == report.exit_code, report.findings
        assert any(f.verdict is Verdict.RESUMED for f in report.findings)

    def test_torn_tail_is_acknowledged_with_length_and_hash(self, make_logger, tmp_path, ring):
        """The resume record states the torn tail's offset, length and SHA-256."""
        logger, handler = make_logger()
        logger.info("a", extra={"audit": EVENT})
        path = log_files(tmp_path / "logs")[0]
        simulate_crash(handler)
        with path.open("ab") as fh:
            fh.write(b'{"alg":"HS256","body":{"ev')
        size = path.stat().st_size
        _logger2, handler2 = make_logger()
        handler2.close()
        resume = next(x for x in lines_of(log_files(tmp_path / "logs")[1]) if x["t"] == "resume")
        import hashlib

        assert 26 == resume["body"]["torn_length"]
        assert size - 26 == resume["body"]["torn_offset"]
        assert hashlib.sha256(b'{"alg":"HS256","body":{"ev').hexdigest() == \
            resume["body"]["torn_sha256"]
        assert 0 == verify_paths([tmp_path / "logs"], ring).exit_code


class TestHandle:
    def test_handler_filters_still_decide(self, make_logger, tmp_path, ring):
        """With a handler-level filter, handle() takes the stdlib path: a rejected record is not written."""
        logger, handler = make_logger()
        handler.addFilter(lambda record: record.getMessage() != "drop me")
        logger.info("keep me", extra={"audit": EVENT})
        logger.info("drop me", extra={"audit": EVENT})
        handler.close()
        events = [x for x in lines_of(log_files(tmp_path / "logs")[0]) if x["t"] == "event"]
        assert ["keep me"] == [x["body"]["message"] for x in events]
        assert 0 == verify_paths([tmp_path / "logs"], ring).exit_code

    def test_without_filters_handle_emits_under_the_handler_lock(self, make_logger, monkeypatch):
        """The fast path holds the handler's own lock while it emits (threads stay one chain)."""
        logger, handler = make_logger()
        held = []
        real_emit = handler.emit
        monkeypatch.setattr(handler, "emit", lambda record: (
            held.append(handler.lock._is_owned()), real_emit(record)))
        assert handler.handle(logger.makeRecord(logger.name, logging.INFO, "f", 1, "m", None,
                                                None, extra={"audit": EVENT})) is True
        assert [True] == held


class TestFormatUpgrade:
    def test_a_version_1_log_goes_on_in_version_2_and_verifies_as_one_log(
            self, make_logger, tmp_path, ring):
        """After an upgrade the handler continues an old log; each line hashes by its version."""
        logger, handler = make_logger()
        logger.info("before", extra={"audit": EVENT})
        handler.close()
        (old,) = log_files(tmp_path / "logs")
        mac = ring.mac_function(ring.active_kid)
        prev, rewritten = GENESIS_PREV, []
        for raw in old.read_bytes().splitlines():  # as the previous release wrote it
            line = parse_line(raw)
            signed = line.signed.replace(b'"v":2', b'"v":1').replace(line.prev.encode(),
                                                                     prev.encode())
            rewritten.append(signed + b',"mac":"' + mac(signed).encode() + b'"}')
            prev = hashlib.sha256(rewritten[-1]).hexdigest()
        old.write_bytes(b"".join(raw + b"\n" for raw in rewritten))
        assert {1} == {parse_line(raw).version for raw in rewritten}
        assert 0 == verify_paths([tmp_path / "logs"], ring).exit_code

        logger, handler = make_logger()
        logger.info("after", extra={"audit": EVENT})
        handler.close()
        assert old == log_files(tmp_path / "logs")[0]
        second = log_files(tmp_path / "logs")[1]
        assert {2} == {parse_line(raw).version for raw in second.read_bytes().splitlines()}
        assert parse_line(second.read_bytes().splitlines()[0]).prev == prev
        report = verify_paths([tmp_path / "logs"], ring)
        assert (0, 1, 2) == (report.exit_code, len(report.logs), len(report.logs[0].files))


class TestThreads:
    def test_eight_threads_make_one_chain_with_nothing_missing(self, make_logger, tmp_path, ring):
        """Records from 8 threads at once form one consistent chain; none is missing."""
        logger, handler = make_logger(maxBytes=256 * 1024)
        per_thread = 500

        def work(t: int) -> None:
            for i in range(per_thread):
                logger.info("t%d-%d", t, i, extra={"audit": dict(EVENT, user_id=f"t{t}")})

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        handler.close()
        report = verify_paths([tmp_path / "logs"], ring)
        assert 0 == report.exit_code, report.findings[:5]
        assert 8 * per_thread == report.logs[0].events
        messages = set()
        for path in log_files(tmp_path / "logs"):
            messages |= {x["body"].get("message") for x in lines_of(path) if x["t"] == "event"}
        assert {f"t{t}-{i}" for t in range(8) for i in range(per_thread)} == messages


class TestRetention:
    def test_old_files_are_deleted_only_after_a_signed_prune_record(
            self, make_logger, tmp_path, ring, monkeypatch):
        """Retention removes whole old files after a prune line; the log still verifies."""
        now = [time.time() - 10 * 86400]
        monkeypatch.setattr(files_module.time, "time", lambda: now[0])
        monkeypatch.setattr("llm_audit_log.context.time.time", lambda: now[0])
        logger, handler = make_logger(retention=3)
        for _ in range(3):
            logger.info("old", extra={"audit": EVENT})
            handler.doRollover()
        assert 4 == len(log_files(tmp_path / "logs"))
        now[0] += 10 * 86400
        logger.info("new", extra={"audit": EVENT})
        handler.doRollover()
        handler.close()
        remaining = log_files(tmp_path / "logs")
        assert 2 == len(remaining)
        prune = [x for p in remaining for x in lines_of(p) if x["t"] == "prune"]
        assert 1 == len(prune)
        assert [1, 2, 3] == [f["file_index"] for f in prune[0]["body"]["pruned"]]
        report = verify_paths([tmp_path / "logs"], ring)
        assert 0 == report.exit_code, report.findings
        assert any(f.verdict is Verdict.PRUNED for f in report.findings)

    def test_retention_classes(self):
        """Named classes map to days that meet each regime."""
        assert 2192 == files_module._retention_days("6_years")
        assert 2557 == files_module._retention_days("7_years")
        with pytest.raises(ConfigurationError):
            files_module._retention_days("forever")


class TestFailures:
    def test_write_failure_is_reported_without_payload_and_acknowledged_later(
            self, make_logger, tmp_path, ring, monkeypatch, capsys):
        """A failed write prints no payload; the next line's resume record counts the loss."""
        logger, handler = make_logger()
        logger.info("first", extra={"audit": EVENT})
        real_write = os.write
        secret = "very-private-user-4711"

        def full_disk(fd, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(files_module.os, "write", full_disk)
        logger.info("second %s", secret, extra={"audit": dict(EVENT, user_id=secret)})
        monkeypatch.setattr(files_module.os, "write", real_write)
        err = capsys.readouterr().err
        assert "No space left on device" in err
        assert secret not in err
        logger.info("third", extra={"audit": EVENT})
        handler.close()
        report = verify_paths([tmp_path / "logs"], ring)
        assert any(f.verdict is Verdict.TRUNCATED and "1 record" in f.detail
                   for f in report.findings)
        assert 1 == report.exit_code

    @pytest.mark.parametrize("options", [
        {"maxBytes": -1}, {"maxBytes": 100}, {"when": "fortnight"}, {"interval": 0},
        {"utc": False}, {"fsync": "sometimes"}, {"fsync": 0}, {"retention": 0},
        {"utc": "false"},
    ])
    def test_bad_options_fail_configuration(self, tmp_path, ring, options):
        """Every option is validated at construction with a ConfigurationError."""
        with pytest.raises(ConfigurationError):
            AuditFileHandler(tmp_path / "a.jsonl", keyring=ring, delay=True, **options)

    def test_only_audit_formatters_are_accepted(self, tmp_path, ring):
        """A plain Formatter would produce bodies that cannot be sealed."""
        handler = AuditFileHandler(tmp_path / "a.jsonl", keyring=ring, delay=True)
        with pytest.raises(ConfigurationError):
            handler.setFormatter(logging.Formatter("%(message)s"))

    def test_repr_names_path_and_key_id_only(self, tmp_path, ring):
        """The repr shows the path and key id, never key bytes."""
        handler = AuditFileHandler(tmp_path / "a.jsonl", keyring=ring, delay=True)
        text = repr(handler)
        assert ring.active_kid in text
        assert "a.jsonl" in text
        assert ring.unsafe_export_json().split('"key": "')[1][:20] not in text


class TestProcesses:
    def test_second_process_on_the_same_name_gets_its_own_log(self, tmp_path, ring):
        """Two writers never fork one chain: the second takes a pid-named log of its own."""
        keyring_path = tmp_path / "keyring.json"
        ring.save(keyring_path)
        first = AuditFileHandler(tmp_path / "logs" / "audit.jsonl", keyring=ring)
        script = textwrap.dedent(f"""
            import logging
            from llm_audit_log import AuditFileHandler
            h = AuditFileHandler({str(tmp_path / 'logs' / 'audit.jsonl')!r},
                                 keyring={str(keyring_path)!r})
            log = logging.getLogger("audit"); log.addHandler(h); log.setLevel("INFO")
            log.info("x", extra={{"audit": {{"event_type": "auth.login", "user_id": "u",
                                             "status": "success"}}}})
            h.close()
        """)
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
        first.close()
        names = [p.name for p in log_files(tmp_path / "logs")]
        assert any(".pid" in n for n in names)
        report = verify_paths([tmp_path / "logs"], ring)
        assert 0 == report.exit_code, report.findings
        assert 2 == len(report.logs)

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
    def test_forked_child_starts_its_own_log(self, make_logger, tmp_path, ring):
        """After fork the child never continues the parent's chain."""
        logger, handler = make_logger()
        logger.info("parent", extra={"audit": EVENT})
        pid = os.fork()
        if pid == 0:  # child
            try:
                logger.info("child", extra={"audit": EVENT})
                handler.close()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        logger.info("parent again", extra={"audit": EVENT})
        handler.close()
        report = verify_paths([tmp_path / "logs"], ring)
        assert 0 == report.exit_code, report.findings
        assert 2 == len(report.logs)


class TestFastEmit:
    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(message=st.text(max_size=40), args=st.booleans(), user=st.text(min_size=1, max_size=12),
           static=st.booleans())
    def test_handler_formats_like_the_formatter(self, tmp_path_factory, ring, message, args,
                                                user, static):
        """The handler's one-call path writes exactly the body AuditFormatter would."""
        directory = tmp_path_factory.mktemp("fast")
        handler = AuditFileHandler(directory / "audit.jsonl", keyring=ring)
        if static:
            handler.setFormatter(AuditFormatter(static_fields={"team": "x"}))
        audit = AuditFilter(keyring=ring)
        logger = logging.getLogger("tests.fast")
        record = logger.makeRecord("tests.fast", logging.INFO, __file__, 1,
                                   "%s!" if args else message, (message,) if args else None,
                                   None, extra={"audit": {"event_type": "auth.login",
                                                          "user_id": user, "status": "success"}})
        try:
            assert audit.filter(record)
            handler.handle(record)
        finally:
            handler.close()
        line = next(raw for raw in log_files(directory)[0].read_bytes().split(b"\n")
                    if b'"t":"event"' in raw)
        written = line[len(b'{"alg":"HS256","body":'):line.rindex(b',"kid":"')]
        assert handler.formatter.format_body(record) == written
