"""
AuditFileHandler under failure: nothing accepted is lost without a signed trace, and the
verifier's verdicts stay honest (regressions found by an independent review).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import ClassVar

import pytest

from llm_audit_log import AuditFileHandler, AuditFilter, Keyring, Verdict, verify_paths
from llm_audit_log.errors import AuditLogWarning, ConfigurationError
from llm_audit_log.seal import Chain, parse_line
from llm_audit_log.sinks import files as files_module

EVENT = {"event_type": "auth.login", "user_id": "u-1", "status": "success"}


@pytest.fixture
def make(tmp_path, request):
    """Fresh logger + handler factory writing to tmp_path/logs; all closed afterwards."""
    made: list[tuple[logging.Logger, AuditFileHandler]] = []

    def build(ring: Keyring, *, scrubbing: bool = True, **options):
        logger = logging.getLogger(f"audit.hard.{request.node.name}.{len(made)}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handler = AuditFileHandler(tmp_path / "logs" / "audit.jsonl", keyring=ring, **options)
        handler.addFilter(AuditFilter(keyring=ring, scrubbing=scrubbing))
        logger.addHandler(handler)
        made.append((logger, handler))
        return logger, handler

    yield build
    for logger, handler in made:
        logger.removeHandler(handler)
        handler.close()


def files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "logs").glob("*.jsonl"))


def shift_clock(monkeypatch, seconds: float) -> None:
    real = time.time
    monkeypatch.setattr(files_module.time, "time", lambda: real() + seconds)


class TestRetiredKeys:
    def test_old_key_cannot_forge_the_end_after_a_rotation(self, make, tmp_path):
        """After a key rotation, lines signed with the retired key are tampering."""
        old = Keyring.generate()
        logger, handler = make(old)
        for _ in range(3):
            logger.info("before", extra={"audit": dict(EVENT)})
        new = old.rotated()
        handler.rotate_key(new)
        logger.info("after", extra={"audit": dict(EVENT)})
        handler.close()
        (path,) = files(tmp_path)
        lines = path.read_bytes().split(b"\n")[:-1]
        cut = [json.loads(raw)["t"] for raw in lines].index("key_rotation") + 1
        last = parse_line(lines[cut - 1])
        chain = Chain(log_id=last.log_id, next_seq=last.seq + 1, prev_hash=last.hash,
                      kid=old.active_kid, mac=old.mac_function(old.active_kid))
        forged, _digest = chain.seal("event", '{"event_type":"auth.login","user_id":"x"}',
                                    last.ts)
        path.write_bytes(b"\n".join(lines[:cut]) + b"\n" + forged)
        report = verify_paths([tmp_path / "logs"], new)
        assert 1 == report.exit_code
        assert any(f.verdict is Verdict.TAMPERED and "retired key" in f.detail
                   for f in report.findings)


class TestNothingLostSilently:
    def test_retention_that_cannot_delete_costs_no_record(self, make, tmp_path, monkeypatch,
                                                          capsys):
        """Deleting old files fails (EPERM): every record is still written; stderr says so."""
        ring = Keyring.generate()
        logger, _handler = make(ring, maxBytes=4096, retention=30)
        for i in range(30):
            logger.info("old %d", i, extra={"audit": dict(EVENT)})
        shift_clock(monkeypatch, 400 * 86400)
        real_unlink = os.unlink

        def refuse(path, *args, **kwargs):
            if str(path).endswith(".jsonl"):
                raise PermissionError(1, "Operation not permitted")
            return real_unlink(path, *args, **kwargs)

        monkeypatch.setattr(files_module.os, "unlink", refuse)
        for i in range(30):
            logger.info("later %d", i, extra={"audit": dict(EVENT)})
        monkeypatch.setattr(files_module.os, "unlink", real_unlink)
        _handler.close()
        messages = [json.loads(raw)["body"].get("message")
                    for p in files(tmp_path) for raw in p.read_bytes().split(b"\n") if raw]
        assert 30 == sum(1 for m in messages if m and m.startswith("later"))
        assert "retention could not delete" in capsys.readouterr().err
        assert 0 == verify_paths([tmp_path / "logs"], ring).exit_code

    def test_oversized_record_becomes_a_rejected_record(self, make, tmp_path):
        """A record whose sealed line would pass the format's limit is written as rejected."""
        ring = Keyring.generate()
        logger, handler = make(ring, scrubbing=False)  # scrubbing would cap the message
        huge = "\u2603" * 400_000  # 1.2 MB of UTF-8 in the message
        logger.info(huge, extra={"audit": dict(EVENT)})
        handler.close()
        report = verify_paths([tmp_path / "logs"], ring)
        assert 0 == report.exit_code, report.findings
        text = b"".join(p.read_bytes() for p in files(tmp_path)).decode()
        assert "record too large to seal" in text


class TestHonestVerdicts:
    def test_deleted_newest_file_is_not_excused_by_any_empty_file(self, make, tmp_path):
        """Only the exact file a rotation footer names can stand for an unfinished rotation."""
        ring = Keyring.generate()
        logger, handler = make(ring)
        logger.info("a", extra={"audit": dict(EVENT)})
        handler.doRollover()
        logger.info("b", extra={"audit": dict(EVENT)})
        handler.close()
        files(tmp_path)[-1].unlink()
        (tmp_path / "logs" / "unrelated.jsonl").write_bytes(b"")
        assert 1 == verify_paths([tmp_path / "logs"], ring).exit_code

    def test_an_empty_file_beside_a_log_is_never_verified(self, make, tmp_path):
        """An empty file next to a complete log (a crash while creating it) is exit 3, never 0."""
        ring = Keyring.generate()
        logger, handler = make(ring)
        logger.info("a", extra={"audit": dict(EVENT)})
        handler.close()
        (tmp_path / "logs" / "audit.pid1-000001.jsonl").write_bytes(b"")
        assert 3 == verify_paths([tmp_path / "logs"], ring).exit_code

    def test_crash_in_the_middle_of_retention_is_not_a_missing_prefix(self, make, tmp_path,
                                                                        monkeypatch):
        """The prune record lists every file; a half-done deletion still verifies as pruned."""
        ring = Keyring.generate()
        logger, handler = make(ring, maxBytes=4096)
        for i in range(40):
            logger.info("e %d", i, extra={"audit": dict(EVENT)})
        handler.close()
        shift_clock(monkeypatch, 400 * 86400)
        real_unlink = os.unlink
        calls = []

        class Crash(BaseException):
            pass

        def crash_on_second(path, *args, **kwargs):
            calls.append(path)
            if len(calls) == 2:
                raise Crash
            return real_unlink(path, *args, **kwargs)

        monkeypatch.setattr(files_module.os, "unlink", crash_on_second)
        with pytest.raises(Crash):
            make(ring, maxBytes=4096, retention=30)
        monkeypatch.setattr(files_module.os, "unlink", real_unlink)
        report = verify_paths([tmp_path / "logs"], ring)
        assert Verdict.MISSING_PREFIX not in {f.verdict for f in report.findings}
        assert any(f.verdict is Verdict.PRUNED for f in report.findings)
        assert report.exit_code in (0, 3)

    def test_retention_still_prunes_after_a_crash(self, make, tmp_path, monkeypatch):
        """A file ended by a crash (no footer) no longer blocks retention for good."""
        ring = Keyring.generate()
        logger, handler = make(ring, maxBytes=4096)
        for i in range(5):
            logger.info("e %d", i, extra={"audit": dict(EVENT)})
        handler._abandon_file()  # a crash: no footer
        os.close(handler._lock_fd)
        handler._lock_fd = None
        logger2, handler2 = make(ring, maxBytes=4096)
        for i in range(40):
            logger2.info("e %d", i, extra={"audit": dict(EVENT)})
        handler2.close()
        before = len(files(tmp_path))
        shift_clock(monkeypatch, 400 * 86400)
        logger3, handler3 = make(ring, maxBytes=4096, retention=30)
        logger3.info("later", extra={"audit": dict(EVENT)})
        handler3.close()
        assert before > 5
        assert 1 == len(files(tmp_path))
        report = verify_paths([tmp_path / "logs"], ring)
        assert 0 == report.exit_code, report.findings

    def test_a_lost_record_is_reported_as_loss(self, make, tmp_path, monkeypatch):
        """A write that fails leaves a count the next start signs; verify reports the loss."""
        ring = Keyring.generate()
        logger, handler = make(ring)
        logger.info("a", extra={"audit": dict(EVENT)})

        def full(fd, data):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(files_module.os, "write", full)
        logger.info("lost", extra={"audit": dict(EVENT)})
        monkeypatch.undo()
        logger.info("c", extra={"audit": dict(EVENT)})
        handler.close()
        report = verify_paths([tmp_path / "logs"], ring)
        assert [Verdict.TRUNCATED] == [f.verdict for f in report.findings
                                       if f.verdict.severity.name == "DAMAGE"]
        assert "1 record(s)" in next(f.detail for f in report.findings
                                     if f.verdict is Verdict.TRUNCATED)


class TestTornFileCreation:
    def test_a_file_torn_while_created_is_acknowledged_by_the_next_start(self, make, tmp_path):
        """A crash mid-header: exit 3 until the restart signs for the torn file, then 0."""
        ring = Keyring.generate()
        logger, handler = make(ring)
        logger.info("a", extra={"audit": dict(EVENT)})
        handler.doRollover()
        handler._abandon_file()  # the process dies here...
        os.close(handler._lock_fd)
        handler._lock_fd = None
        newest = files(tmp_path)[-1]
        torn = newest.read_bytes()[:30]
        newest.write_bytes(torn)  # ...with half a header on disk
        assert 3 == verify_paths([tmp_path / "logs"], ring).exit_code
        _logger2, handler2 = make(ring)
        handler2.close()
        report = verify_paths([tmp_path / "logs"], ring)
        assert 0 == report.exit_code, report.findings
        assert any(f.verdict is Verdict.RESUMED and f.file == str(newest)
                   for f in report.findings)
        assert torn == newest.read_bytes()  # never rewritten

    def test_a_torn_file_nobody_signed_for_is_never_excused(self, make, tmp_path):
        """Someone cutting a file to a fragment is not mistaken for an acknowledged crash."""
        ring = Keyring.generate()
        logger, handler = make(ring)
        logger.info("a", extra={"audit": dict(EVENT)})
        handler.close()
        (tmp_path / "logs" / "audit-000009.jsonl").write_bytes(b'{"alg":"HS')
        assert 3 == verify_paths([tmp_path / "logs"], ring).exit_code


class TestAnotherKeyring:
    def test_a_log_written_with_another_keyring_is_not_passed_over_silently(self, tmp_path,
                                                                              capsys):
        """Keyring B on a directory keyring A wrote: warned and said on stderr, kept apart."""
        first, second = Keyring.generate(), Keyring.generate()
        path = tmp_path / "logs" / "audit.jsonl"
        AuditFileHandler(path, keyring=first).close()
        capsys.readouterr()
        with pytest.warns(AuditLogWarning, match="cannot verify"):
            other = AuditFileHandler(path, keyring=second)
        other.close()
        assert "written with another keyring?" in capsys.readouterr().err
        report = verify_paths([tmp_path / "logs"], first)
        assert 2 == len(list((tmp_path / "logs").glob("*.jsonl")))
        assert 4 == report.exit_code  # the other keyring's log cannot be checked with this one


class TestFailedConfiguration:
    @pytest.mark.parametrize("bad", [{"when": "daily"}, {"maxBytes": -1}, {"fsync": "never"},
                                     {"encrypt": "rot13"}])
    def test_a_half_built_handler_closes_quietly(self, tmp_path, bad):
        """
        logging keeps a handler whose constructor raised and closes it at the next
        dictConfig or at exit: that must not raise (it broke every later reconfiguration).
        """

        class Probe(AuditFileHandler):
            made: ClassVar[list[AuditFileHandler]] = []

            def __init__(self, *args, **kwargs) -> None:
                Probe.made.append(self)
                super().__init__(*args, **kwargs)

        with pytest.raises(ConfigurationError):
            Probe(tmp_path / "logs" / "audit.jsonl", keyring=Keyring.generate(), **bad)
        half = Probe.made[0]
        half.flush()
        half.close()
        assert not (tmp_path / "logs").exists()


    @pytest.mark.parametrize(("options", "says"), [
        ({"backupCount": 5}, "use retention"),
        ({"filename": "DIR/"}, "names a directory"),
        ({"filename": "DIR"}, "names a directory"),
    ])
    def test_stdlib_habits_get_a_message_that_says_what_to_do(self, tmp_path, options, says):
        (tmp_path / "DIR").mkdir()
        options = {"filename": str(tmp_path / "logs" / "audit.jsonl"), **options}
        if options["filename"].startswith("DIR"):
            options["filename"] = str(tmp_path) + "/" + options["filename"]
        with pytest.raises(ConfigurationError, match=says):
            AuditFileHandler(keyring=Keyring.generate(), **options)
        assert [tmp_path / "DIR"] == list(tmp_path.iterdir())


class TestSmallerFindings:
    def test_logger_names_are_scrubbed(self, make, tmp_path):
        """A logger name built from data cannot carry an email into the file."""
        ring = Keyring.generate()
        _logger, handler = make(ring)
        mail = "jane.roe.4711@example.org"
        named = logging.getLogger(f"audit.hard.user.{mail}")
        named.propagate = False
        named.setLevel(logging.INFO)
        named.addHandler(handler)
        try:
            named.info("hi", extra={"audit": dict(EVENT)})
        finally:
            named.removeHandler(handler)
        handler.close()
        data = b"".join(p.read_bytes() for p in files(tmp_path))
        assert mail.encode() not in data
        assert b"[REDACTED:EMAIL:" in data

    def test_raw_prompt_none_is_rejected_on_every_path(self, make, tmp_path):
        """prompt=None is named as a problem, with or without an exception attached."""
        ring = Keyring.generate()
        logger, handler = make(ring)
        event = {"event_type": "llm.completion", "user_id": "u", "status": "success",
                 "model": "m", "prompt": None}
        logger.info("plain", extra={"audit": dict(event)})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("with traceback", extra={"audit": dict(event)})
        handler.close()
        bodies = [json.loads(raw)["body"] for p in files(tmp_path)
                  for raw in p.read_bytes().split(b"\n") if raw and b'"t":"event"' in raw]
        assert 2 == len(bodies)
        for body in bodies:
            assert "audit.rejected" == body["event_type"]
            assert {"field": "/prompt", "reason": "expected string"} in body["problems"]

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
    def test_a_forked_child_does_not_keep_the_parents_log_name(self, make, tmp_path):
        """While a child lives, the parent can close and reopen its own log name."""
        ring = Keyring.generate()
        logger, handler = make(ring)
        logger.info("a", extra={"audit": dict(EVENT)})
        read_end, write_end = os.pipe()
        ready_read, ready_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # fork hooks have run: say so, wait until the parent is done, leave
            os.close(write_end)
            os.write(ready_write, b"r")
            os.read(read_end, 1)
            os._exit(0)
        os.close(read_end)
        os.close(ready_write)
        os.read(ready_read, 1)
        os.close(ready_read)
        try:
            handler.close()
            logger.info("b", extra={"audit": dict(EVENT)})  # reopens under the lock
            handler.close()
        finally:
            os.write(write_end, b"x")
            os.close(write_end)
            os.waitpid(pid, 0)
        assert all(".pid" not in p.name for p in files(tmp_path))
        assert 0 == verify_paths([tmp_path / "logs"], ring).exit_code


class TestLossInEncryptedFiles:
    def test_a_record_lost_in_an_encrypted_file_leaves_an_encrypted_trace(
            self, make, tmp_path, monkeypatch):
        """Rotation fails (EMFILE): the record becomes an encrypted rejected record, in place."""
        ring = Keyring.generate()
        logger, handler = make(ring, encrypt="auditor")
        logger.info("a", extra={"audit": dict(EVENT)})

        def no_descriptors(index):
            raise OSError(24, "Too many open files")

        monkeypatch.setattr(handler, "_create_file", no_descriptors)
        monkeypatch.setattr(handler, "_size_limit", 0)  # the next record rotates first
        monkeypatch.setattr(handler, "_should_roll", lambda size: True)
        logger.info("lost", extra={"audit": dict(EVENT)})
        monkeypatch.undo()
        handler.close()
        report = verify_paths([tmp_path / "logs"], ring)
        assert 0 == report.exit_code, report.findings
        assert 2 == report.logs[0].events
        assert 1 == report.logs[0].rejected
