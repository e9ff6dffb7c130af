# Copyright 2026 llm-audit-log developers
# SPDX-License-Identifier: Apache-2.0
"""
The attack checklist of threat-model.md, run against real logs.

Every test writes a log with the real ``AuditFileHandler`` into ``tmp_path``, attacks the
bytes on disk the way the checklist item describes, and checks both the verdicts and the
exit code of ``verify_paths`` (and, for a representative subset, of ``llm-audit verify``).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import llm_audit_log
from llm_audit_log import AuditFileHandler, Keyring, Verdict, verify_paths
from llm_audit_log import context as context_module
from llm_audit_log._cli import main as cli_main
from llm_audit_log.errors import SourceUnreadableError
from llm_audit_log.seal import seal_line
from llm_audit_log.sinks import files as files_module
from llm_audit_log.verify import Finding, Report, Severity
from llm_audit_log.verify._cloudwatch import StreamLines, verify_streams

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from tests.conftest import AuditLoggerFactory, PayloadFactory

# -- byte-level helpers ---------------------------------------------------------------------


def read_lines(path: Path) -> list[bytes]:
    """The lines of a file, split on b"\\n" only, without their newlines."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), f"{path.name} does not end with a newline"
    return data[:-1].split(b"\n")


def write_lines(path: Path, lines: list[bytes]) -> None:
    """Write lines back, each with its newline."""
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def flip_byte(data: bytes, index: int) -> bytes:
    """``data`` with the byte at ``index`` XOR-ed with 0x01."""
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


def replace_once(line: bytes, old: bytes, new: bytes) -> bytes:
    """Replace the first occurrence of ``old``, insisting it is there."""
    assert old in line, f"{old!r} not found in the line"
    return line.replace(old, new, 1)


def offset_of(lines: list[bytes], index: int) -> int:
    """Byte offset at which ``lines[index]`` starts in the file."""
    return sum(len(line) + 1 for line in lines[:index])


def line_hash(line: bytes) -> str:
    """What the next line's ``prev`` carries: SHA-256 of its signed part (of the whole line in v1)."""
    if envelope(line)["v"] == 1:
        return hashlib.sha256(line).hexdigest()
    return hashlib.sha256(line[:line.rindex(b',"mac":"')]).hexdigest()


def envelope(line: bytes) -> dict[str, Any]:
    """The decoded line (for reading fields; checks always run on the bytes)."""
    doc: dict[str, Any] = json.loads(line)
    return doc


def raw_body(line: bytes) -> bytes:
    """The body exactly as written: between ``"body":`` and the envelope's ``,"kid":"``."""
    start = line.index(b'"body":') + len(b'"body":')
    return line[start:line.rindex(b',"kid":"')]


def reseal(line: bytes, keyring: Keyring, **changes: Any) -> bytes:
    """
    Rebuild a line with some envelope fields changed and a MAC that verifies.

    What only the key holder can do (the verifier holds the key, so tests may): used to
    isolate one property, e.g. an unknown version with an otherwise valid line.
    """
    doc = envelope(line)
    fields = {"alg": doc["alg"], "body": raw_body(line).decode(), "kid": doc["kid"],
              "log": doc["log"], "prev": doc["prev"], "seq": doc["seq"], "t": doc["t"],
              "ts": doc["ts"], "v": doc["v"]}
    fields.update(changes)
    signed = (
        f'{{"alg":"{fields["alg"]}","body":{fields["body"]},"kid":"{fields["kid"]}",'
        f'"log":"{fields["log"]}","prev":"{fields["prev"]}","seq":{fields["seq"]},'
        f'"t":"{fields["t"]}","ts":"{fields["ts"]}","v":{fields["v"]}'
    ).encode()
    mac_input = signed if fields["v"] == 1 else hashlib.sha256(signed).digest()
    mac = keyring.mac_function(doc["kid"])(mac_input)
    return signed + b',"mac":"' + mac.encode() + b'"}'


def rechain(lines: list[bytes], keyring: Keyring, start: int) -> list[bytes]:
    """Re-seal ``lines[start:]`` so each ``prev`` names the line before it."""
    out = list(lines)
    for index in range(max(start, 1), len(out)):
        out[index] = reseal(out[index], keyring, prev=line_hash(out[index - 1]))
    return out


def reorder_keys(line: bytes) -> bytes:
    """The same JSON value with the envelope keys (all but the trailing ``mac``) reversed."""
    doc = envelope(line)
    mac = doc.pop("mac")
    reordered = dict(reversed(list(doc.items())))
    reordered["mac"] = mac
    return json.dumps(reordered, separators=(",", ":"), ensure_ascii=False).encode()


def log_files(directory: Path) -> list[Path]:
    """The visible files of a log directory, by name."""
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))


# -- building logs --------------------------------------------------------------------------


def handler_of(logger: logging.Logger) -> AuditFileHandler:
    return next(h for h in logger.handlers if isinstance(h, AuditFileHandler))


def log_events(logger: logging.Logger, payload: PayloadFactory, count: int,
               event_type: str = "auth.login", **fields: Any) -> None:
    for number in range(count):
        logger.info("event %d", number, extra={"audit": payload(event_type, **fields)})


def write_log(logger: logging.Logger, payload: PayloadFactory, *, events: int = 5,
              files: int = 1, close: bool = True) -> Path:
    """Log ``events`` events into each of ``files`` files; returns the log directory."""
    handler = handler_of(logger)
    for index in range(files):
        if index:
            handler.doRollover()
        log_events(logger, payload, events)
    if close:
        handler.close()
    return Path(handler.baseFilename).parent


# -- reading reports ------------------------------------------------------------------------


def verdicts(report: Report) -> set[Verdict]:
    return {f.verdict for f in report.findings}


def found(report: Report, verdict: Verdict) -> list[Finding]:
    return [f for f in report.findings if f.verdict is verdict]


def damage(report: Report) -> list[Finding]:
    return [f for f in report.findings if f.verdict.severity is Severity.DAMAGE]


def located(findings: list[Finding]) -> list[tuple[Verdict, int | None, int | None, int | None]]:
    """(verdict, line, offset, seq) of each finding, for exact comparisons."""
    return [(f.verdict, f.line, f.offset, f.seq) for f in findings]


class ShiftedClock:
    """Stands in for the ``time`` module where the library reads the wall clock."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def time(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ShiftedClock:
    """A wall clock the test can move; the library's timestamps and retention read it."""
    shifted = ShiftedClock()
    monkeypatch.setattr(context_module, "time", shifted)
    monkeypatch.setattr(files_module, "time", shifted)
    return shifted


def run_cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llm_audit_log", "verify", *map(str, args)],
                          capture_output=True, text=True, timeout=60, check=False)


# -- tests ----------------------------------------------------------------------------------


class TestUntouchedLog:
    """Logs nobody touched verify cleanly."""

    def test_single_file_verifies(self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
                                  keyring: Keyring) -> None:
        """A closed single-file log verifies with exit 0 and no findings."""
        directory = write_log(audit_logger(), payload, events=6)

        report = verify_paths([directory], keyring)

        assert [] == report.findings
        assert 0 == report.exit_code
        assert 6 == report.logs[0].events
        assert 0 == report.logs[0].rejected

    def test_rotated_log_verifies(self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
                                  keyring: Keyring) -> None:
        """A log rotated into three files verifies with exit 0; every line is checked."""
        directory = write_log(audit_logger(), payload, events=4, files=3)
        lines = sum(len(read_lines(p)) for p in log_files(directory))

        report = verify_paths([directory], keyring)

        assert 3 == len(log_files(directory))
        assert [] == report.findings
        assert 0 == report.exit_code
        assert lines == report.lines_verified

    def test_reseal_helper_reproduces_the_writer(self, audit_logger: AuditLoggerFactory,
                                                 payload: PayloadFactory,
                                                 keyring: Keyring) -> None:
        """The tests' ``reseal`` rebuilds an unchanged line byte for byte (so crafted lines differ only where intended)."""
        directory = write_log(audit_logger(), payload, events=3)
        lines = read_lines(log_files(directory)[0])

        assert lines == [reseal(line, keyring) for line in lines]


class TestOneFileAttacks:
    """Checklist items 1-6 and 9-12: edits inside one file."""

    def test_edited_field_value_is_tampered(self, audit_logger: AuditLoggerFactory,
                                            payload: PayloadFactory, keyring: Keyring) -> None:
        """Item 1: editing one field value gives TAMPERED at exactly that line (exit 1)."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        lines[3] = replace_once(lines[3], b'"status":"success"', b'"status":"failure"')
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        assert [(Verdict.TAMPERED, 4, offset_of(lines, 3), 3)] == located(damage(report))
        assert 1 == report.exit_code

    def test_flipped_byte_anywhere_in_a_line_is_tampered(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 1: flipping any single byte of an event line is never accepted (exit 1)."""
        path = log_files(write_log(audit_logger(), payload, events=3))[0]
        original = read_lines(path)
        for index in range(0, len(original[2]), 7):
            lines = list(original)
            lines[2] = flip_byte(lines[2], index)
            write_lines(path, lines)

            report = verify_paths([path.parent], keyring)

            assert 1 == report.exit_code, f"flip at byte {index} was not detected"

    def test_edit_with_recomputed_prev_hash_is_tampered(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 2: editing a value and recomputing the next line's unkeyed prev hash is still TAMPERED."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        lines[2] = replace_once(lines[2], b'"status":"success"', b'"status":"failure"')
        old_prev = envelope(lines[3])["prev"].encode()
        lines[3] = replace_once(lines[3], old_prev, line_hash(lines[2]).encode())
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        assert (Verdict.TAMPERED, 3, offset_of(lines, 2), 2) in located(damage(report))
        assert 1 == report.exit_code

    @pytest.mark.parametrize(("edit", "why"), [
        (lambda line: replace_once(line, b'{"alg":"HS256"', b'{"alg": "HS256"'), "space"),
        (lambda line: line.replace(b",", b", "), "spaces everywhere"),
        (lambda line: line + b" ", "trailing space"),
        (lambda line: replace_once(line, b'"status":"success"', b'"status":"succ\\u0065ss"'),
         "escape"),
        (lambda line: replace_once(line, b'"tokens_input":120', b'"tokens_input":1.2e2'),
         "number format"),
        (lambda line: replace_once(line, b'"tokens_input":120', b'"tokens_input":120.0'),
         "number format .0"),
        (reorder_keys, "key order"),
        (lambda line: replace_once(line, envelope(line)["mac"].encode(),
                                   envelope(line)["mac"].upper().encode()), "MAC hex case"),
    ], ids=lambda v: v if isinstance(v, str) else None)
    def test_format_only_change_is_tampered(self, audit_logger: AuditLoggerFactory,
                                            payload: PayloadFactory, keyring: Keyring,
                                            edit: Callable[[bytes], bytes], why: str) -> None:
        """Item 3: whitespace, key order, escapes or number format changed (same JSON value) is TAMPERED."""
        logger = audit_logger()
        log_events(logger, payload, 4, "llm.completion", tokens_input=120)
        handler_of(logger).close()
        path = log_files(Path(handler_of(logger).baseFilename).parent)[0]
        lines = read_lines(path)
        edited = edit(lines[2])
        assert edited != lines[2]
        if why not in ("trailing space", "MAC hex case"):
            assert envelope(lines[2]) == envelope(edited), "the edit must keep the JSON value"
        lines[2] = edited
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        assert [(Verdict.TAMPERED, 3, offset_of(lines, 2))] == [
            (f.verdict, f.line, f.offset) for f in damage(report)]
        assert 1 == report.exit_code

    @pytest.mark.parametrize(("old", "new"), [
        (b'"status":"success"', b'"status":"failure","status":"success"'),
        (b'"seq":2,', b'"seq":7,"seq":2,'),
        (b'{"alg":"HS256"', b'{"kid":"x","alg":"HS256"'),
    ], ids=["body", "envelope seq", "envelope kid"])
    def test_duplicate_key_is_tampered(self, audit_logger: AuditLoggerFactory,
                                       payload: PayloadFactory, keyring: Keyring,
                                       old: bytes, new: bytes) -> None:
        """Item 4: a duplicate JSON key placed before the real one is TAMPERED at that line."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        lines[2] = replace_once(lines[2], old, new)
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        assert [(Verdict.TAMPERED, 3, offset_of(lines, 2))] == [
            (f.verdict, f.line, f.offset) for f in damage(report)]
        assert 1 == report.exit_code

    def test_crlf_on_one_line_is_tampered(self, audit_logger: AuditLoggerFactory,
                                          payload: PayloadFactory, keyring: Keyring) -> None:
        """Item 5: one line ending in CR LF instead of LF is TAMPERED at that line."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        lines[3] += b"\r"
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        assert [(Verdict.TAMPERED, 4, offset_of(lines, 3))] == [
            (f.verdict, f.line, f.offset) for f in damage(report)]
        assert 1 == report.exit_code

    def test_crlf_over_a_whole_file_is_tampered(self, audit_logger: AuditLoggerFactory,
                                                payload: PayloadFactory,
                                                keyring: Keyring) -> None:
        """Item 5: converting the newest file of a rotated log to CR LF is TAMPERED (exit 1)."""
        directory = write_log(audit_logger(), payload, events=3, files=2)
        newest = log_files(directory)[-1]
        newest.write_bytes(newest.read_bytes().replace(b"\n", b"\r\n"))

        report = verify_paths([directory], keyring)

        assert Verdict.TAMPERED in verdicts(report)
        assert 1 == report.exit_code

    def test_byte_order_mark_is_tampered(self, audit_logger: AuditLoggerFactory,
                                         payload: PayloadFactory, keyring: Keyring) -> None:
        """Item 5: a UTF-8 BOM added at the start of a file is TAMPERED at line 1."""
        path = log_files(write_log(audit_logger(), payload))[0]
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())

        report = verify_paths([path.parent], keyring)

        assert (Verdict.TAMPERED, 1, 0) in [(f.verdict, f.line, f.offset) for f in damage(report)]
        assert 1 == report.exit_code

    @pytest.mark.parametrize(("start", "count"), [(2, 1), (2, 3), (5, 1)])
    def test_deleted_lines_are_a_located_gap(self, audit_logger: AuditLoggerFactory,
                                             payload: PayloadFactory, keyring: Keyring,
                                             start: int, count: int) -> None:
        """Item 6: deleting a middle line or a block gives GAP with the count, at the next line and seq."""
        path = log_files(write_log(audit_logger(), payload, events=6))[0]
        lines = read_lines(path)
        next_seq = envelope(lines[start + count])["seq"]
        del lines[start:start + count]
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        gaps = found(report, Verdict.GAP)
        assert [(Verdict.GAP, start + 1, offset_of(lines, start), next_seq)] == located(gaps)
        assert f"{count} line(s) missing" in gaps[0].detail
        assert 1 == report.exit_code

    @pytest.mark.parametrize("cut", [1, 2, 4])
    @pytest.mark.parametrize("files", [1, 2])
    def test_deleted_last_lines_are_never_verified(self, audit_logger: AuditLoggerFactory,
                                                   payload: PayloadFactory, keyring: Keyring,
                                                   cut: int, files: int) -> None:
        """Item 7: deleting the last K lines gives exit 1, or exit 3 with UNSEALED counting every line after the last footer."""
        directory = write_log(audit_logger(), payload, events=4, files=files)
        newest = log_files(directory)[-1]
        lines = read_lines(newest)[:-cut]
        write_lines(newest, lines)

        report = verify_paths([directory], keyring)

        assert report.exit_code in (1, 3)
        if report.exit_code == 3:
            assert [len(lines)] == [f.count for f in found(report, Verdict.UNSEALED)]

    def test_swapped_lines_are_reordered(self, audit_logger: AuditLoggerFactory,
                                         payload: PayloadFactory, keyring: Keyring) -> None:
        """Item 9: swapping two lines breaks the chain: REORDERED (exit 1)."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        lines[2], lines[3] = lines[3], lines[2]
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        assert [(Verdict.REORDERED, 4, 2)] == [
            (f.verdict, f.line, f.seq) for f in found(report, Verdict.REORDERED)]
        assert 1 == report.exit_code

    @pytest.mark.parametrize("target", [3, 5], ids=["next to itself", "elsewhere"])
    def test_repeated_line_is_duplicate(self, audit_logger: AuditLoggerFactory,
                                        payload: PayloadFactory, keyring: Keyring,
                                        target: int) -> None:
        """Item 9: a line duplicated in place, or copied further down, is DUPLICATE at the copy."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        lines.insert(target, lines[2])
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        assert [(Verdict.DUPLICATE, target + 1, offset_of(lines, target), 2)] == located(
            found(report, Verdict.DUPLICATE))
        assert 1 == report.exit_code

    def test_line_copied_into_a_later_file_is_duplicate(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 9: a line of the first file copied into the second file is DUPLICATE at the copy."""
        directory = write_log(audit_logger(), payload, events=3, files=2)
        first, second = log_files(directory)
        copied = read_lines(first)[2]
        lines = read_lines(second)
        lines.insert(2, copied)
        write_lines(second, lines)

        report = verify_paths([directory], keyring)

        assert [(Verdict.DUPLICATE, 3, offset_of(lines, 2), envelope(copied)["seq"])] == located(
            found(report, Verdict.DUPLICATE))
        assert 1 == report.exit_code

    @pytest.mark.parametrize("same_kid", [True, False], ids=["same kid", "attacker kid"])
    def test_fabricated_line_is_tampered(self, audit_logger: AuditLoggerFactory,
                                         payload: PayloadFactory, keyring: Keyring,
                                         same_kid: bool) -> None:
        """Item 10: a well-formed, correctly chained line sealed without our key is TAMPERED."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        model = envelope(lines[2])
        forger = Keyring.generate()
        fake, _ = seal_line(kind="event", body=raw_body(lines[2]).decode().replace(
            "success", "failure"), log_id=model["log"], seq=model["seq"] + 1,
            prev=line_hash(lines[2]), kid=model["kid"] if same_kid else forger.active_kid,
            ts=model["ts"], mac=forger.mac_function(forger.active_kid))
        lines.insert(3, fake.rstrip(b"\n"))
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        assert [(Verdict.TAMPERED, 4, offset_of(lines, 3))] == [
            (f.verdict, f.line, f.offset) for f in damage(report)]
        assert 1 == report.exit_code

    def test_line_from_another_log_with_the_same_key_is_foreign(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory, keyring: Keyring,
            tmp_path: Path) -> None:
        """Item 11: splicing in a valid line from another log signed with the same key is FOREIGN."""
        path = log_files(write_log(audit_logger(), payload))[0]
        other = log_files(write_log(audit_logger(tmp_path / "other"), payload))[0]
        lines = read_lines(path)
        lines.insert(3, read_lines(other)[3])
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        assert [(Verdict.FOREIGN, 4, offset_of(lines, 3), 3)] == located(damage(report))
        assert 1 == report.exit_code

    def test_consistently_renumbered_sequence_is_tampered(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 12: renumbering every sequence number from a line on makes each of those lines TAMPERED."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        for index in range(2, len(lines)):
            lines[index] = replace_once(lines[index], b'"seq":%d,' % index,
                                        b'"seq":%d,' % (index + 100))
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        tampered = found(report, Verdict.TAMPERED)
        assert len(lines) - 2 == sum(f.count for f in tampered)
        assert 3 == tampered[0].line
        assert 1 == report.exit_code


class TestKeyAttacks:
    """Checklist items 15 and 16: key ids, algorithms and MACs."""

    @pytest.mark.parametrize("edit", [
        "other valid kid", "unknown kid", "alg none", "alg HS512 with valid MAC",
        "mac removed", "mac null", "mac empty",
    ])
    def test_key_and_mac_fields_fail_closed(self, audit_logger: AuditLoggerFactory,
                                            payload: PayloadFactory, keyring: Keyring,
                                            edit: str) -> None:
        """Item 15: kid swapped (valid or unknown), alg downgraded, MAC removed or null: TAMPERED, never skipped."""
        verifier_ring = keyring.rotated()  # holds the writer's key and a second valid one
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        line = lines[3]
        doc = envelope(line)
        kid, mac = doc["kid"].encode(), doc["mac"].encode()
        if edit == "other valid kid":
            line = replace_once(line, kid, verifier_ring.active_kid.encode())
        elif edit == "unknown kid":
            line = replace_once(line, kid, b"k20200101-" + secrets.token_hex(4).encode())
        elif edit == "alg none":
            line = replace_once(line, b'"alg":"HS256"', b'"alg":"none"')
        elif edit == "alg HS512 with valid MAC":
            line = reseal(line, keyring, alg="HS512")
        elif edit == "mac removed":
            line = replace_once(line, b',"mac":"' + mac + b'"', b"")
        elif edit == "mac null":
            line = replace_once(line, b'"' + mac + b'"', b"null")
        else:
            line = replace_once(line, mac, b"")
        lines[3] = line
        write_lines(path, lines)

        report = verify_paths([path.parent], verifier_ring)

        assert [(Verdict.TAMPERED, 4, offset_of(lines, 3))] == [
            (f.verdict, f.line, f.offset) for f in damage(report)]
        assert 1 == report.exit_code

    def test_unknown_kid_on_the_first_line_is_not_skipped(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 15: an unknown key id on a log's first line is never skipped; the log fails (exit 1)."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        kid = envelope(lines[0])["kid"].encode()
        lines[0] = replace_once(lines[0], kid, b"k20200101-" + secrets.token_hex(4).encode())
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        assert 1 == report.exit_code

    def test_key_retired_before_the_log_is_key_invalid(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 16: every line signed with a key whose validity window closed earlier is KEY_INVALID."""
        directory = write_log(audit_logger(), payload, events=3)
        retired = keyring.rotated(retire_old_after="2020-01-01T00:00:00.000000Z")

        report = verify_paths([directory], retired)

        lines = read_lines(log_files(directory)[0])
        assert len(lines) == sum(f.count for f in found(report, Verdict.KEY_INVALID))
        assert 1 == report.exit_code

    def test_lines_signed_after_retirement_are_key_invalid(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 16: only the lines sealed after the old key's window closed are KEY_INVALID."""
        directory = write_log(audit_logger(), payload, events=6)
        lines = read_lines(log_files(directory)[0])
        cutoff = envelope(lines[3])["ts"]
        late = [n + 1 for n, line in enumerate(lines) if envelope(line)["ts"] > cutoff]
        retired = keyring.rotated(retire_old_after=cutoff)

        report = verify_paths([directory], retired)

        flagged = [f.line + i for f in found(report, Verdict.KEY_INVALID)
                   for i in range(f.count) if f.line is not None]
        assert late == flagged
        assert 1 == report.exit_code


class TestRotatedFileAttacks:
    """Checklist items 19-23: whole files deleted, renamed, replaced, joined or split."""

    def test_deleted_middle_file_is_file_missing(self, audit_logger: AuditLoggerFactory,
                                                 payload: PayloadFactory,
                                                 keyring: Keyring) -> None:
        """Item 19: deleting a middle file gives FILE_MISSING at the next file (exit 1)."""
        directory = write_log(audit_logger(), payload, events=3, files=3)
        _, middle, last = log_files(directory)
        middle.unlink()

        report = verify_paths([directory], keyring)

        assert [(Verdict.FILE_MISSING, str(last))] == [
            (f.verdict, f.file) for f in damage(report)]
        assert 1 == report.exit_code

    def test_deleted_newest_file_is_detected(self, audit_logger: AuditLoggerFactory,
                                             payload: PayloadFactory, keyring: Keyring) -> None:
        """Item 19: deleting the newest file is detected from the rotation footer before it (exit 1)."""
        directory = write_log(audit_logger(), payload, events=3, files=3)
        log_files(directory)[-1].unlink()

        report = verify_paths([directory], keyring)

        assert Verdict.FILE_MISSING in verdicts(report)
        assert 1 == report.exit_code

    @pytest.mark.parametrize("deleted", [1, 2])
    def test_deleted_oldest_files_without_prune_record_is_missing_prefix(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory, keyring: Keyring,
            deleted: int) -> None:
        """Item 20: deleting the oldest files with no prune record gives MISSING_PREFIX (exit 1)."""
        directory = write_log(audit_logger(), payload, events=3, files=4)
        for path in log_files(directory)[:deleted]:
            path.unlink()

        report = verify_paths([directory], keyring)

        assert [Verdict.MISSING_PREFIX] == [f.verdict for f in damage(report)]
        assert 1 == report.exit_code

    def _pruned_log(self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
                    clock: ShiftedClock) -> Path:
        """Files 1-2 written ten days ago, 3-4 now; retention (1 day) has pruned 1-2."""
        clock.offset = -10 * 86400
        logger = audit_logger(retention=1)
        handler = handler_of(logger)
        log_events(logger, payload, 3)
        handler.doRollover()
        log_events(logger, payload, 3)
        handler.doRollover()
        clock.offset = 0
        log_events(logger, payload, 3)
        handler.doRollover()
        log_events(logger, payload, 3)
        handler.close()
        return Path(handler.baseFilename).parent

    def test_retention_with_prune_record_is_accepted(self, audit_logger: AuditLoggerFactory,
                                                     payload: PayloadFactory, keyring: Keyring,
                                                     clock: ShiftedClock) -> None:
        """Item 20: oldest files deleted by our retention after its signed prune record verify (exit 0, PRUNED)."""
        directory = self._pruned_log(audit_logger, payload, clock)

        report = verify_paths([directory], keyring)

        assert ["audit-000003.jsonl", "audit-000004.jsonl"] == [
            p.name for p in log_files(directory)]
        assert [Verdict.PRUNED] == [f.verdict for f in report.findings]
        assert 0 == report.exit_code

    def test_deleting_more_than_the_prune_record_names_is_missing_prefix(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory, keyring: Keyring,
            clock: ShiftedClock) -> None:
        """Item 20: deleting one more file than retention pruned gives MISSING_PREFIX (exit 1)."""
        directory = self._pruned_log(audit_logger, payload, clock)
        log_files(directory)[0].unlink()

        report = verify_paths([directory], keyring)

        assert Verdict.MISSING_PREFIX in verdicts(report)
        assert 1 == report.exit_code

    def test_renamed_files_verify(self, audit_logger: AuditLoggerFactory,
                                  payload: PayloadFactory, keyring: Keyring) -> None:
        """Item 21: reversing the file names, or any names at all, raises no alarm (order from headers)."""
        directory = write_log(audit_logger(), payload, events=3, files=3)
        paths = log_files(directory)
        for path in paths:
            path.rename(path.with_name(path.name + ".tmp"))
        for path, target in zip(paths, reversed(paths)):
            path.with_name(path.name + ".tmp").rename(target)
        odd = directory / "zzz-first.log"
        log_files(directory)[1].rename(odd)

        report = verify_paths([directory], keyring)

        assert [] == report.findings
        assert 0 == report.exit_code

    def test_file_replaced_by_its_older_copy_is_detected(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory, keyring: Keyring,
            tmp_path: Path) -> None:
        """Item 22: putting back an older copy of a file (taken while it was written) is detected (exit 1)."""
        logger = audit_logger()
        handler = handler_of(logger)
        log_events(logger, payload, 3)
        handler.doRollover()
        log_events(logger, payload, 2)
        snapshot = tmp_path / "snapshot"
        shutil.copyfile(handler._path, snapshot)
        log_events(logger, payload, 3)
        handler.doRollover()
        log_events(logger, payload, 3)
        handler.close()
        directory = Path(handler.baseFilename).parent
        shutil.copyfile(snapshot, log_files(directory)[1])

        report = verify_paths([directory], keyring)

        assert damage(report)
        assert 1 == report.exit_code

    def test_file_from_another_log_is_detected(self, audit_logger: AuditLoggerFactory,
                                               payload: PayloadFactory, keyring: Keyring,
                                               tmp_path: Path) -> None:
        """Item 22: dropping in a file from another log with the same key is detected (exit 1)."""
        directory = write_log(audit_logger(), payload, events=3, files=2)
        other = write_log(audit_logger(tmp_path / "other"), payload, events=3, files=3)
        shutil.copyfile(log_files(other)[1], directory / "audit-000003.jsonl")

        report = verify_paths([directory], keyring)

        assert damage(report)
        assert 1 == report.exit_code

    def test_file_from_a_forked_copy_of_the_log_is_fork(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory, keyring: Keyring,
            tmp_path: Path) -> None:
        """Item 22: a file from a copy of the log that went on separately (same log id) is FORK (exit 1)."""
        directory = write_log(audit_logger(), payload, events=3, files=2)
        copy = tmp_path / "copy"
        shutil.copytree(directory, copy, ignore=shutil.ignore_patterns(".*"))
        write_log(audit_logger(), payload, events=3)
        write_log(audit_logger(copy), payload, events=3)
        shutil.copyfile(log_files(copy)[-1], directory / "audit-000003.from-copy.jsonl")

        report = verify_paths([directory], keyring)

        assert Verdict.FORK in verdicts(report)
        assert 1 == report.exit_code

    def test_file_copied_under_another_index_is_duplicate(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 22: a copy of a file under another index is DUPLICATE (exit 1)."""
        directory = write_log(audit_logger(), payload, events=3, files=3)
        shutil.copyfile(log_files(directory)[1], directory / "audit-000009.jsonl")

        report = verify_paths([directory], keyring)

        assert Verdict.DUPLICATE in verdicts(report)
        assert 1 == report.exit_code

    def test_concatenated_files_are_detected(self, audit_logger: AuditLoggerFactory,
                                             payload: PayloadFactory, keyring: Keyring) -> None:
        """Item 22: two files joined into one are detected: a header inside a file (exit 1)."""
        directory = write_log(audit_logger(), payload, events=3, files=3)
        first, second, _ = log_files(directory)
        first.write_bytes(first.read_bytes() + second.read_bytes())
        second.unlink()

        report = verify_paths([directory], keyring)

        assert Verdict.TAMPERED in verdicts(report)
        assert 1 == report.exit_code

    def test_split_file_is_detected(self, audit_logger: AuditLoggerFactory,
                                    payload: PayloadFactory, keyring: Keyring) -> None:
        """Item 22: one file split in two is detected: a file without header, one without footer (exit 1)."""
        directory = write_log(audit_logger(), payload, events=4, files=2)
        first = log_files(directory)[0]
        lines = read_lines(first)
        write_lines(first, lines[:3])
        write_lines(directory / "audit-000001b.jsonl", lines[3:])

        report = verify_paths([directory], keyring)

        assert Verdict.TAMPERED in verdicts(report)
        assert 1 == report.exit_code

    def test_header_only_newest_file_is_incomplete(self, audit_logger: AuditLoggerFactory,
                                                   payload: PayloadFactory,
                                                   keyring: Keyring) -> None:
        """Item 23: a crash right after rotation leaves a header-only file: UNSEALED, exit 3, not tampering."""
        directory = write_log(audit_logger(), payload, events=3, files=2)
        newest = log_files(directory)[-1]
        write_lines(newest, read_lines(newest)[:1])

        report = verify_paths([directory], keyring)

        assert [] == damage(report)
        assert [1] == [f.count for f in found(report, Verdict.UNSEALED)]
        assert 3 == report.exit_code

    def test_newest_file_without_footer_is_incomplete(self, audit_logger: AuditLoggerFactory,
                                                      payload: PayloadFactory,
                                                      keyring: Keyring) -> None:
        """Item 23: a rotated log whose newest file has no footer is a warning (exit 3), not tampering."""
        directory = write_log(audit_logger(), payload, events=3, files=2)
        newest = log_files(directory)[-1]
        write_lines(newest, read_lines(newest)[:-1])

        report = verify_paths([directory], keyring)

        assert [] == damage(report)
        assert 3 == report.exit_code

    def test_empty_file_created_by_rotation_is_incomplete(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 23: a crash after creating the next file but before its header: exit 3, not tampering."""
        directory = write_log(audit_logger(), payload, events=3, files=2)
        log_files(directory)[-1].write_bytes(b"")

        report = verify_paths([directory], keyring)

        assert [] == damage(report)
        assert 3 == report.exit_code

    def test_torn_header_of_the_next_file_is_incomplete(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 23: a crash while writing the next file's header (torn first line): exit 3, not 1 or 4."""
        directory = write_log(audit_logger(), payload, events=3, files=2)
        newest = log_files(directory)[-1]
        header = read_lines(newest)[0]
        newest.write_bytes(header[: len(header) // 2])

        report = verify_paths([directory], keyring)

        assert [] == damage(report)
        assert Verdict.INCOMPLETE_TAIL in verdicts(report)
        assert 3 == report.exit_code


class TestCrashAndRestart:
    """Checklist items 33-37: benign crash, restart, clock and key-rotation cases."""

    @pytest.mark.parametrize("tail", ["partial line", "NUL bytes", "partial line and NULs"])
    def test_torn_tail_is_incomplete_then_acknowledged_by_restart(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory, keyring: Keyring,
            tail: str) -> None:
        """Item 33: a torn last line or trailing NULs is INCOMPLETE_TAIL (exit 3); after a restart's resume record, exit 0."""
        directory = write_log(audit_logger(), payload, events=4)
        path = log_files(directory)[0]
        lines = read_lines(path)
        garbage = {"partial line": lines[2][:57], "NUL bytes": b"\0" * 4096,
                   "partial line and NULs": lines[2][:80] + b"\0" * 300}[tail]
        path.write_bytes(b"".join(line + b"\n" for line in lines[:-1]) + garbage)

        crashed = verify_paths([directory], keyring)

        assert [] == damage(crashed)
        assert Verdict.INCOMPLETE_TAIL in verdicts(crashed)
        assert 3 == crashed.exit_code

        restarted = audit_logger()
        log_events(restarted, payload, 2)
        handler_of(restarted).close()

        resumed = verify_paths([directory], keyring)

        assert 2 == len(log_files(directory))
        assert [Verdict.RESUMED] == [f.verdict for f in resumed.findings]
        assert 0 == resumed.exit_code

    @pytest.mark.parametrize("attack", ["torn bytes changed", "last good line deleted"])
    def test_acknowledged_tail_changed_after_restart_is_tampered(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory, keyring: Keyring,
            attack: str) -> None:
        """Item 33: once a resume record acknowledged a torn tail, changing that tail or the lines before it is TAMPERED."""
        directory = write_log(audit_logger(), payload, events=4)
        path = log_files(directory)[0]
        lines = read_lines(path)
        path.write_bytes(b"".join(line + b"\n" for line in lines[:-1]) + lines[2][:70])
        write_log(audit_logger(), payload, events=2)
        if attack == "torn bytes changed":
            path.write_bytes(flip_byte(path.read_bytes(), path.stat().st_size - 10))
        else:
            path.write_bytes(b"".join(line + b"\n" for line in lines[:-2]) + lines[2][:70])

        report = verify_paths([directory], keyring)

        assert Verdict.TAMPERED in verdicts(report)
        assert 1 == report.exit_code

    @pytest.mark.parametrize("joined", [False, True], ids=["own line", "joined to next"])
    def test_partial_line_followed_by_valid_lines_is_tampered(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory, keyring: Keyring,
            joined: bool) -> None:
        """Item 34: a partial line with valid lines after it and no resume record is TAMPERED-class damage (exit 1)."""
        path = log_files(write_log(audit_logger(), payload, events=5))[0]
        lines = read_lines(path)
        partial = lines[3][:60]
        if joined:
            lines[3:5] = [partial + lines[4]]
        else:
            lines[3] = partial
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        assert (Verdict.TAMPERED, 4) in [(f.verdict, f.line) for f in damage(report)]
        assert 1 == report.exit_code

    def test_partial_line_after_a_rotation_footer_is_tampered(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 34: unterminated bytes after a middle file's footer, with valid files after it and no resume record, are TAMPERED (exit 1)."""
        directory = write_log(audit_logger(), payload, events=3, files=2)
        first = log_files(directory)[0]
        size = first.stat().st_size
        first.write_bytes(first.read_bytes() + b'{"forged":"partial line"')

        report = verify_paths([directory], keyring)

        assert [(Verdict.TAMPERED, str(first), size)] == [
            (f.verdict, f.file, f.offset) for f in damage(report)]
        assert 1 == report.exit_code

    def test_partial_line_after_the_footer_of_a_rotated_key_file_is_tampered(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 34: bytes after a footer are caught even in a file that also holds benign findings (a key rotation)."""
        logger = audit_logger()
        handler = handler_of(logger)
        log_events(logger, payload, 2)
        rotated = keyring.rotated()
        handler.rotate_key(rotated)
        log_events(logger, payload, 2)
        handler.doRollover()
        log_events(logger, payload, 2)
        handler.close()
        directory = Path(handler.baseFilename).parent
        first = log_files(directory)[0]
        first.write_bytes(first.read_bytes() + b'{"forged":"partial line"')

        report = verify_paths([directory], rotated)

        assert Verdict.TAMPERED in verdicts(report)
        assert 1 == report.exit_code

    def test_partial_line_after_a_close_footer_is_tampered(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 34: unterminated bytes after a close footer cannot be a crash tail (the writer never writes there): TAMPERED (exit 1)."""
        path = log_files(write_log(audit_logger(), payload, events=3))[0]
        size = path.stat().st_size
        path.write_bytes(path.read_bytes() + b'{"forged":"partial line"')

        report = verify_paths([path.parent], keyring)

        assert (Verdict.TAMPERED, size) in [(f.verdict, f.offset) for f in damage(report)]
        assert 1 == report.exit_code

    def test_restart_after_clean_close_verifies(self, audit_logger: AuditLoggerFactory,
                                                payload: PayloadFactory,
                                                keyring: Keyring) -> None:
        """Item 35: a process restart continues the chain in a new 'restart' file (exit 0)."""
        directory = write_log(audit_logger(), payload, events=3)
        write_log(audit_logger(), payload, events=3)

        report = verify_paths([directory], keyring)

        newest = log_files(directory)[-1]
        assert "restart" == envelope(read_lines(newest)[0])["body"]["reason"]
        assert [] == report.findings
        assert 0 == report.exit_code
        assert 1 == len(report.logs)

    def test_clock_stepping_back_is_a_warning_only(self, audit_logger: AuditLoggerFactory,
                                                   payload: PayloadFactory, keyring: Keyring,
                                                   clock: ShiftedClock) -> None:
        """Item 36: the wall clock stepping back two seconds gives CLOCK_STEP info only (exit 0)."""
        logger = audit_logger()
        log_events(logger, payload, 3)
        clock.offset = -2.0
        log_events(logger, payload, 3)
        handler_of(logger).close()

        report = verify_paths([Path(handler_of(logger).baseFilename).parent], keyring)

        assert [Verdict.CLOCK_STEP] == [f.verdict for f in report.findings]
        assert 0 == report.exit_code

    def test_planned_key_rotation_verifies(self, audit_logger: AuditLoggerFactory,
                                           payload: PayloadFactory, keyring: Keyring) -> None:
        """Item 37: rotate_key writes a rotation record under both keys; the rotated keyring verifies all (exit 0)."""
        logger = audit_logger()
        handler = handler_of(logger)
        log_events(logger, payload, 3)
        rotated = keyring.rotated()
        handler.rotate_key(rotated)
        log_events(logger, payload, 2)
        handler.doRollover()
        log_events(logger, payload, 2)
        handler.close()
        directory = Path(handler.baseFilename).parent

        report = verify_paths([directory], rotated)

        assert [Verdict.KEY_ROTATED] == [f.verdict for f in report.findings]
        assert 0 == report.exit_code
        kids = {envelope(line)["kid"] for p in log_files(directory) for line in read_lines(p)}
        assert {keyring.active_kid, rotated.active_kid} == kids


class TestVerifierRobustness:
    """Checklist items 38 and 39: hostile bytes and awkward Unicode."""

    def _insert(self, path: Path, index: int, junk: bytes) -> int:
        lines = read_lines(path)
        lines.insert(index, junk)
        write_lines(path, lines)
        return offset_of(lines, index)

    @pytest.mark.parametrize("junk", [
        "5 MB line", "100k-deep arrays", "100k-deep objects", "invalid UTF-8", "NUL line",
        "NULs inside a line",
    ])
    def test_hostile_line_is_malformed_without_crash(self, audit_logger: AuditLoggerFactory,
                                                     payload: PayloadFactory, keyring: Keyring,
                                                     junk: str) -> None:
        """Item 38: huge, deeply nested, non-UTF-8 or NUL-filled lines are MALFORMED/TAMPERED, quickly and without a crash."""
        path = log_files(write_log(audit_logger(), payload, events=4))[0]
        lines = read_lines(path)
        suffix = b',"mac":"' + b"0" * 64 + b'"}'
        data = {
            "5 MB line": b'{"alg":"HS256","body":"' + b"x" * (5 << 20) + b'"' + suffix,
            "100k-deep arrays": b'{"body":' + b"[" * 100_000 + b"]" * 100_000 + suffix,
            "100k-deep objects": b'{"body":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000
                                 + suffix,
            "invalid UTF-8": replace_once(lines[2], b'"status":"success"',
                                          b'"status":"succ\xff\xfess"'),
            "NUL line": b"\0" * 500,
            "NULs inside a line": lines[2][:40] + b"\0" * 20 + lines[2][60:],
        }[junk]
        offset = self._insert(path, 3, data)

        started = time.monotonic()
        report = verify_paths([path.parent], keyring)
        elapsed = time.monotonic() - started

        bad = [(f.line, f.offset) for f in report.findings
               if f.verdict in (Verdict.MALFORMED, Verdict.TAMPERED)]
        assert (4, offset) in bad
        assert 1 == report.exit_code
        assert elapsed < 10

    def test_huge_line_is_read_in_bounded_memory(self, audit_logger: AuditLoggerFactory,
                                                 payload: PayloadFactory,
                                                 keyring: Keyring) -> None:
        """Item 38: a 32 MB line never sits in memory whole: the verifier's peak stays far below it."""
        path = log_files(write_log(audit_logger(), payload, events=2))[0]
        self._insert(path, 2, b"y" * (32 << 20))

        tracemalloc.start()
        try:
            report = verify_paths([path.parent], keyring)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

        assert [(Verdict.MALFORMED, 3)] == [(f.verdict, f.line) for f in damage(report)]
        assert peak < 8 << 20

    def test_unicode_line_separators_raise_no_alarm(self, audit_logger: AuditLoggerFactory,
                                                    payload: PayloadFactory,
                                                    keyring: Keyring) -> None:
        """Item 39: U+2028, U+2029 and U+0085 inside strings are written raw and verify (exit 0)."""
        separators = "one\u2028two\u2029three\u0085four"
        logger = audit_logger()
        for _ in range(3):
            logger.info("said: %s", separators, extra={"audit": payload(
                action=separators, metadata={"note": separators, "list": [separators]})})
        handler_of(logger).close()
        path = log_files(Path(handler_of(logger).baseFilename).parent)[0]
        data = path.read_bytes()

        report = verify_paths([path.parent], keyring)

        assert "\u2028".encode() in data
        assert "\u0085".encode() in data
        assert 5 == data.count(b"\n")
        assert len(data.decode().splitlines()) > 5
        assert [] == report.findings
        assert 0 == report.exit_code
        assert 3 == report.logs[0].events


class TestCannotVerify:
    """Checklist item 40: what the verifier cannot check is CANNOT_VERIFY (exit 4), never 0."""

    def test_a_newer_release_s_file_is_cannot_verify_not_missing(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 40: the log goes on in a file a newer release wrote (version 3): exit 4, no loss."""
        first, second = log_files(write_log(audit_logger(), payload, files=2))
        lines = read_lines(second)
        write_lines(second, rechain([reseal(line, keyring, v=3) for line in lines], keyring, 1))

        report = verify_paths([first.parent], keyring)

        assert not damage(report)
        assert {str(first), str(second)} == {f.file for f in report.findings
                                             if f.verdict is Verdict.CANNOT_VERIFY}
        assert 4 == report.exit_code

    def test_an_unreadable_newest_file_is_cannot_verify_not_missing(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring, monkeypatch: pytest.MonkeyPatch) -> None:
        """A file we may not open is named as unreadable (exit 4): not 'empty', not 'missing'."""
        files = log_files(write_log(audit_logger(), payload, events=3, files=3))
        real_open = open

        def guarded(path: Any, *args: Any, **kwargs: Any) -> Any:
            if str(path) == str(files[-1]):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr("builtins.open", guarded)
        report = verify_paths([files[0].parent], keyring)
        monkeypatch.undo()

        assert not damage(report)
        assert 4 == report.exit_code
        details = {f.file: f.detail for f in found(report, Verdict.CANNOT_VERIFY)}
        assert "could not be read (Permission denied)" in details[str(files[-1])]
        assert f"goes on in {files[-1].name}, which could not be read" in details[str(files[-2])]
        assert not found(report, Verdict.EMPTY_FILE)

    def test_an_empty_directory_beside_a_log_is_named(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring, tmp_path: Path) -> None:
        """Asked to check a directory that holds nothing: exit 4 and named, even beside a log."""
        directory = write_log(audit_logger(), payload)
        (tmp_path / "empty").mkdir()

        report = verify_paths([directory, tmp_path / "empty"], keyring)

        assert 4 == report.exit_code
        assert [str(tmp_path / "empty")] == [f.file for f in found(report,
                                                                   Verdict.CANNOT_VERIFY)]

    def test_an_unlistable_directory_is_exit_4_without_a_traceback(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        """Permission denied on the directory: nothing checked, so 4 (the CLI, no traceback)."""
        directory = write_log(audit_logger(), payload)
        keyring.save(tmp_path / "ring.json")

        def denied(path: Any) -> Any:
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr("os.scandir", denied)
        with pytest.raises(SourceUnreadableError, match="Permission denied"):
            verify_paths([directory], keyring)
        code = cli_main(["verify", "--keyring", str(tmp_path / "ring.json"), str(directory)])
        err = capsys.readouterr().err

        assert 4 == code
        assert "cannot read" in err and "Permission denied" in err
        assert "Traceback" not in err

    def test_a_huge_stray_file_is_read_bounded_and_not_a_torn_header(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """
        Beside a log whose restart signed for a torn file, a stray file with no newline and
        larger than any line: read bounded, and not an audit file (4), not a torn header.
        """
        logger = audit_logger()
        handler = handler_of(logger)
        log_events(logger, payload, 2)
        handler.doRollover()
        handler._abandon_file()  # the process dies while writing the new file's header
        os.close(handler._lock_fd)
        handler._lock_fd = None
        torn = log_files(Path(handler.baseFilename).parent)[-1]
        torn.write_bytes(torn.read_bytes()[:30])
        restarted = audit_logger()
        log_events(restarted, payload, 1)
        handler_of(restarted).close()
        directory = torn.parent
        assert 0 == verify_paths([directory], keyring).exit_code
        (directory / "zz-blob.bin").write_bytes(b'{"alg":"' + b"x" * (16 << 20))

        tracemalloc.start()
        report = verify_paths([directory], keyring)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

        assert 4 == report.exit_code
        assert ["not an llm-audit-log file (no line in the audit format)"] == [
            f.detail for f in found(report, Verdict.CANNOT_VERIFY)]
        assert peak < (6 << 20)

    @staticmethod
    def claimed_newer(line: bytes, **changes: Any) -> bytes:
        """A line rewritten WITHOUT the key: version 99, envelope fields as claimed."""
        doc = envelope(line)
        doc["v"] = 99
        doc.update(changes)
        doc["mac"] = doc.pop("mac")  # still last
        return json.dumps(doc, separators=(",", ":")).encode()

    def test_a_deleted_newest_file_behind_a_fake_newer_one_is_named(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """The item-40 trade-off: without the key a forged 'newer' file cannot be told from a
        real one, so the end is exit 4 (never 0), and the report names that file."""
        files = log_files(write_log(audit_logger(), payload, events=3, files=3))
        newest = read_lines(files[-1])
        files[-1].unlink()
        fake = files[0].parent / "audit.next.jsonl"
        fake.write_bytes(self.claimed_newer(newest[0]) + b"\n")

        report = verify_paths([files[0].parent], keyring)

        assert not damage(report)
        assert 4 == report.exit_code
        assert any("audit.next.jsonl" in f.detail and "deleted" in f.detail
                   for f in report.findings)

    def test_a_fake_newer_file_before_readable_ones_is_tampering(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """A 'newer' file claiming an index the log already has: versions only go up."""
        files = log_files(write_log(audit_logger(), payload, events=3, files=3))
        forged = files[0].parent / "zz-forged.jsonl"
        forged.write_bytes(b"".join(self.claimed_newer(line) + b"\n"
                                    for line in read_lines(files[1])))

        report = verify_paths([files[0].parent], keyring)

        assert (Verdict.TAMPERED, str(forged)) in [(f.verdict, f.file) for f in damage(report)]
        assert 1 == report.exit_code

    @pytest.mark.parametrize("window", ["last", "middle"])
    def test_fake_newer_lines_cannot_bury_a_stream_s_end(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring, window: str) -> None:
        """Write access to a stream only: a fake 'newer' header and 63 pads claiming one seq
        (past the anchor search) must not hide the real lines after it, nor a forged one."""
        files = log_files(write_log(audit_logger(), payload, events=5, files=3))
        lines = [line for path in files for line in read_lines(path)]
        headers = [line for line in lines if envelope(line)["t"] == "header"]
        header = headers[-1] if window == "last" else headers[1]
        seq = envelope(header)["seq"] + 1
        fakes = [self.claimed_newer(header, seq=seq)] + [
            self.claimed_newer(lines[-3], seq=seq, mac=f"{i:064x}") for i in range(63)]
        forged = lines[-3].replace(b'"status":"success"', b'"status":"failure"')
        assert forged != lines[-3]

        report = verify_streams([StreamLines("g", "s", lines=[*lines, *fakes, forged])],
                                keyring)

        assert damage(report)
        assert 1 == report.exit_code

    def test_an_edit_at_the_end_cannot_pass_for_a_newer_version(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """The last lines of a file set to version 3: writers change version only with a new file."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        for index in range(len(lines) - 2, len(lines)):
            lines[index] = replace_once(lines[index], b'"v":2,', b'"v":3,')
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        assert (Verdict.TAMPERED, len(lines) - 1) in [(f.verdict, f.line) for f in damage(report)]
        assert 1 == report.exit_code

    @pytest.mark.parametrize("how", ["edited", "resealed"])
    def test_unknown_version_inside_the_log_is_tampering(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring, how: str) -> None:
        """Item 40 cannot hide an edit: an unknown version followed by lines this verifier reads
        comes from no writer (versions only go up), so the line is TAMPERED (exit 1)."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        if how == "edited":  # content changed, version bumped to pass as "a newer format"
            lines[3] = replace_once(lines[3], b'"v":2,', b'"v":3,')
        else:
            lines[3] = reseal(lines[3], keyring, v=3)
            lines = rechain(lines, keyring, 4)
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        assert (Verdict.TAMPERED, 4) in [(f.verdict, f.line) for f in report.findings]
        assert 1 == report.exit_code

    def test_a_header_set_to_an_unknown_version_is_tampering(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """A file's first line in version 3 and the rest in version 2: no writer does that."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        lines[0] = replace_once(lines[0], b'"v":2,', b'"v":3,')
        write_lines(path, lines)

        report = verify_paths([path.parent], keyring)

        assert (Verdict.TAMPERED, 1) in [(f.verdict, f.line) for f in damage(report)]
        assert 1 == report.exit_code

    def test_version_going_down_is_tampering(self, audit_logger: AuditLoggerFactory,
                                             payload: PayloadFactory, keyring: Keyring) -> None:
        """A validly sealed version-1 line after version-2 lines of the same log: no writer does that."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        lines[3] = reseal(lines[3], keyring, v=1)
        write_lines(path, rechain(lines, keyring, 4))

        report = verify_paths([path.parent], keyring)

        assert [(Verdict.TAMPERED, 4)] == [(f.verdict, f.line) for f in damage(report)]
        assert 1 == report.exit_code

    def test_unknown_record_type_is_cannot_verify(self, audit_logger: AuditLoggerFactory,
                                                  payload: PayloadFactory,
                                                  keyring: Keyring) -> None:
        """Item 40: a validly sealed, correctly chained line of an unknown kind is CANNOT_VERIFY (exit 4)."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        lines[3] = reseal(lines[3], keyring, t="checkpoint")
        write_lines(path, rechain(lines, keyring, 4))

        report = verify_paths([path.parent], keyring)

        assert [(Verdict.CANNOT_VERIFY, 4)] == [(f.verdict, f.line) for f in report.findings]
        assert 4 == report.exit_code

    def test_missing_key_is_cannot_verify(self, audit_logger: AuditLoggerFactory,
                                          payload: PayloadFactory, keyring: Keyring) -> None:
        """Item 40: verifying with a keyring that lacks the signing key is CANNOT_VERIFY (exit 4)."""
        directory = write_log(audit_logger(), payload, events=3, files=2)

        report = verify_paths([directory], Keyring.generate())

        assert Verdict.CANNOT_VERIFY in verdicts(report)
        assert [] == damage(report)
        assert 4 == report.exit_code

    def test_rotated_key_missing_from_the_keyring_is_cannot_verify(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 40: after a signed rotation to a key the verifier lacks, the rest is CANNOT_VERIFY (exit 4), not tampering."""
        logger = audit_logger()
        handler = handler_of(logger)
        log_events(logger, payload, 3)
        handler.rotate_key(keyring.rotated())
        log_events(logger, payload, 3)
        handler.close()

        report = verify_paths([Path(handler.baseFilename).parent], keyring)

        assert Verdict.CANNOT_VERIFY in verdicts(report)
        assert [] == damage(report)
        assert 4 == report.exit_code

    def test_log_older_than_the_keyring_is_cannot_verify(
            self, audit_logger: AuditLoggerFactory, payload: PayloadFactory,
            keyring: Keyring) -> None:
        """Item 40: a keyring holding only the key rotated to cannot check the earlier lines: exit 4, not tampering."""
        logger = audit_logger()
        handler = handler_of(logger)
        log_events(logger, payload, 3)
        rotated = keyring.rotated()
        handler.rotate_key(rotated)
        log_events(logger, payload, 3)
        handler.close()
        exported = json.loads(rotated.unsafe_export_json())
        exported["keys"] = [k for k in exported["keys"] if k["kid"] == rotated.active_kid]
        only_new = Keyring.from_json(json.dumps(exported), source="test")

        report = verify_paths([Path(handler.baseFilename).parent], only_new)

        assert Verdict.CANNOT_VERIFY in verdicts(report)
        assert [] == damage(report)
        assert 4 == report.exit_code

    @pytest.mark.parametrize("content", [
        b"operator notes, not a log\n", b'{"level":"info","msg":"some other logger"}\n',
        bytes(range(256)) * 4,
    ], ids=["text", "json lines", "binary"])
    def test_non_log_file_is_cannot_verify(self, audit_logger: AuditLoggerFactory,
                                           payload: PayloadFactory, keyring: Keyring,
                                           content: bytes) -> None:
        """Item 40: a file in the directory that is not an audit log is CANNOT_VERIFY (exit 4)."""
        directory = write_log(audit_logger(), payload, events=3)
        (directory / "notes.txt").write_bytes(content)

        report = verify_paths([directory], keyring)

        assert [(Verdict.CANNOT_VERIFY, str(directory / "notes.txt"))] == [
            (f.verdict, f.file) for f in report.findings]
        assert 4 == report.exit_code


CRASHING_WRITER = """
import logging, os, sys
import llm_audit_log

directory, keyring, events, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
handler = llm_audit_log.AuditFileHandler(os.path.join(directory, "audit.jsonl"),
                                         keyring=keyring, fsync="always")
logger = logging.getLogger("crashing.writer")
logger.addHandler(handler)
logger.setLevel(logging.INFO)
for index in range(files):
    if index:
        handler.doRollover()
    for number in range(events):
        logger.info("event", extra={"audit": {"event_type": "auth.login",
                                              "user_id": f"u{number}", "status": "success"}})
os._exit(0)  # die without closing: no footer, as in a kill -9 or power loss
"""


class TestAcceptanceRule:
    """A log whose newest file ends without a footer is never reported as verified."""

    @pytest.mark.parametrize("files", [1, 3])
    def test_killed_writer_leaves_an_unsealed_log(self, keyring_path: Path, tmp_path: Path,
                                                  files: int) -> None:
        """A writer killed mid-run: exit 3 with UNSEALED counting every line after the last footer."""
        directory = tmp_path / "logs"
        subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(directory),
                        str(keyring_path), "4", str(files)], check=True, timeout=60)
        newest = log_files(directory)[-1]

        report = verify_paths([directory], llm_audit_log.load_keyring(keyring_path))

        assert files == len(log_files(directory))
        assert [] == damage(report)
        assert [len(read_lines(newest))] == [f.count for f in found(report, Verdict.UNSEALED)]
        assert 3 == report.exit_code

    def test_restart_after_kill_verifies(self, keyring_path: Path, tmp_path: Path,
                                         audit_logger: AuditLoggerFactory,
                                         payload: PayloadFactory, keyring: Keyring) -> None:
        """After a kill, the next start resumes the chain and the whole log verifies (exit 0)."""
        directory = tmp_path / "logs"
        subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(directory),
                        str(keyring_path), "4", "2"], check=True, timeout=60)
        write_log(audit_logger(directory), payload, events=2)

        report = verify_paths([directory], keyring)

        assert [Verdict.RESUMED] == [f.verdict for f in report.findings]
        assert 0 == report.exit_code


class TestCommandLine:
    """``python -m llm_audit_log verify``: the same verdicts as exit codes and JSON."""

    def test_untouched_log_exits_0(self, audit_logger: AuditLoggerFactory,
                                   payload: PayloadFactory, keyring_path: Path) -> None:
        """An untouched rotated log: exit 0, and --json reports ok with no findings."""
        directory = write_log(audit_logger(), payload, events=3, files=2)

        text = run_cli("--keyring", keyring_path, directory)
        machine = run_cli("--keyring", keyring_path, "--json", directory)

        assert 0 == text.returncode
        assert text.stdout.startswith("VERIFIED")
        assert 0 == machine.returncode
        assert {"ok": True, "exit_code": 0, "findings": []} == {
            k: v for k, v in json.loads(machine.stdout).items()
            if k in ("ok", "exit_code", "findings")}

    def test_edited_line_exits_1(self, audit_logger: AuditLoggerFactory,
                                 payload: PayloadFactory, keyring_path: Path) -> None:
        """Item 1 through the CLI: exit 1, and --json names the tampered line."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        lines[2] = replace_once(lines[2], b'"status":"success"', b'"status":"failure"')
        write_lines(path, lines)

        result = run_cli("--keyring", keyring_path, "--json", path.parent)

        doc = json.loads(result.stdout)
        assert 1 == result.returncode
        assert 1 == doc["exit_code"]
        assert [("tampered", 3)] == [(f["verdict"], f["line"]) for f in doc["findings"]
                                     if f["severity"] == "damage"]

    def test_deleted_middle_file_exits_1(self, audit_logger: AuditLoggerFactory,
                                         payload: PayloadFactory, keyring_path: Path) -> None:
        """Item 19 through the CLI: exit 1 with a file_missing finding."""
        directory = write_log(audit_logger(), payload, events=3, files=3)
        log_files(directory)[1].unlink()

        result = run_cli("--keyring", keyring_path, "--json", directory)

        assert 1 == result.returncode
        assert "file_missing" in {f["verdict"] for f in json.loads(result.stdout)["findings"]}

    def test_torn_tail_exits_3(self, audit_logger: AuditLoggerFactory,
                               payload: PayloadFactory, keyring_path: Path) -> None:
        """Item 33 through the CLI: exit 3 with an incomplete_tail finding."""
        path = log_files(write_log(audit_logger(), payload))[0]
        lines = read_lines(path)
        path.write_bytes(b"".join(line + b"\n" for line in lines[:-1]) + lines[1][:50])

        result = run_cli("--keyring", keyring_path, "--json", path.parent)

        assert 3 == result.returncode
        assert "incomplete_tail" in {f["verdict"] for f in json.loads(result.stdout)["findings"]}

    def test_missing_key_exits_4(self, audit_logger: AuditLoggerFactory,
                                 payload: PayloadFactory, tmp_path: Path) -> None:
        """Item 40 through the CLI: a keyring without the signing key gives exit 4."""
        directory = write_log(audit_logger(), payload, events=3)
        other = Keyring.generate().save(tmp_path / "other-keyring.json")

        result = run_cli("--keyring", other, "--json", directory)

        assert 4 == result.returncode
        assert 4 == json.loads(result.stdout)["exit_code"]

    def test_missing_path_exits_2(self, keyring_path: Path, tmp_path: Path) -> None:
        """A path that does not exist is a usage error: exit 2."""
        result = run_cli("--keyring", keyring_path, tmp_path / "nowhere")

        assert 2 == result.returncode
