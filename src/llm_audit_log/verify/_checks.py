"""
The verifier's walk over files, lines and chain.

Anchor every file, order each log's files by their chain position, then check every
line's MAC, chain fields, file boundaries and the log's two ends.

Every line carries its own MAC, sequence number and previous hash, so the walk
re-synchronises after damage and keeps going; gaps are reported only at the end, once
lines found later in the wrong place have had the chance to fill them.

This module walks the files and checks their boundaries; placing a file in its log is
``_anchor``, the per-line and chain checks are ``_walk``, and the log's two ends ``_ends``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from llm_audit_log.keys import Keyring
from llm_audit_log.seal import MAX_LINE_BYTES, LineKind, ParsedLine
from llm_audit_log.verify._anchor import _anchor, _FileInfo, _iter_source
from llm_audit_log.verify._ends import _LogEnds
from llm_audit_log.verify._reader import RawLine
from llm_audit_log.verify._walk import _FileEnd
from llm_audit_log.verify.verdicts import Finding, Report, Verdict

__all__ = ["verify_files", "verify_sources"]

REJECTED_EVENT_TYPE = "audit.rejected"

Progress = Callable[[int], None]


class _LogWalk(_LogEnds):
    """Chain state of one log while its files are walked in order."""

    # -- file boundaries ---------------------------------------------------------------------
    def on_header(self, line: ParsedLine, raw: RawLine, path: str) -> None:
        """Check that a file's header is consistent with how the previous file ended."""
        body = line.body
        index = body.get("file_index")
        reason = body.get("reason")
        abandoned = body.get("abandoned")
        for entry in abandoned if isinstance(abandoned, list) else ():
            if isinstance(entry, dict):  # a signed acknowledgement of a torn file
                self.abandoned.add((entry.get("name"), entry.get("length"),
                                    entry.get("sha256")))
        if type(index) is not int:
            self.find(Verdict.TAMPERED, path, "header has no file index", raw, line.seq)
            return
        previous = self.prev_file
        if previous is None:
            if self.first_header is None:
                self.first_header = line
            # The file this one resumes from was pruned: its resume record cannot be
            # matched (the prefix check in finish() decides whether the pruning was ours).
            self.resume_of_pruned = reason == "resume"
            return
        if index > previous.index + 1:
            self.find(Verdict.FILE_MISSING, path,
                      f"{index - previous.index - 1} file(s) missing before this one "
                      f"(file index {previous.index + 1}..{index - 1})", raw, line.seq)
            self.skip_gap = True
            return
        if index <= previous.index:
            self.find(Verdict.TAMPERED, path, "file index does not follow the previous file",
                      raw, line.seq)
            return
        footer = previous.footer
        if reason == "resume":
            self.expect_resume = previous  # its resume record must match the tail exactly
        elif reason in ("rotate", "restart"):
            if footer is None:
                self.find(Verdict.TRUNCATED, path, "the previous file ends without its footer: "
                          "lines were cut from its end", raw, line.seq)
            elif reason == "rotate" and footer.body.get("reason") != "rotate":
                self.find(Verdict.TAMPERED, path, "rotation header after a close footer",
                          raw, line.seq)
        else:
            self.find(Verdict.TAMPERED, path, "unexpected header reason in the middle of a log",
                      raw, line.seq)

    def on_resume(self, line: ParsedLine, raw: RawLine, path: str) -> None:
        """A resume record must acknowledge exactly what the previous file left behind."""
        previous, self.expect_resume = self.expect_resume, None
        body = line.body
        if previous is None and self.resume_of_pruned:
            self.resume_of_pruned = False
            self.find(Verdict.RESUMED, path, "writer restarted after an unclean stop; the file "
                      "it acknowledges was later removed by retention", raw, line.seq)
            return
        if previous is None:
            self.find(Verdict.TAMPERED, path, "resume record where none was expected",
                      raw, line.seq)
            return
        last = previous.last
        expected = {
            "file_index": previous.index,
            "last_seq": last.seq if last else None,
            "last_hash": last.hash if last else None,
            "torn_offset": previous.good_end,
            "torn_length": len(previous.torn),
            "torn_sha256": hashlib.sha256(previous.torn).hexdigest(),
        }
        if previous.virtual:  # a stream holds whole lines only: no torn bytes to compare
            for key in ("torn_offset", "torn_length", "torn_sha256"):
                del expected[key]
        if any(body.get(k) != v for k, v in expected.items()):
            self.find(Verdict.TAMPERED, path,
                      "resume record does not match the tail the previous file really has",
                      raw, line.seq)
            return
        torn = len(previous.torn)
        self.find(Verdict.RESUMED, path,
                  f"writer restarted after an unclean stop; {torn} torn byte(s) acknowledged",
                  raw, line.seq)
        self._report_lost(line, raw, path)

    def _report_lost(self, line: ParsedLine, raw: RawLine, path: str) -> None:
        """A resume record or a new log's header declaring records the writer could not take."""
        lost = line.body.get("lost_records")
        if type(lost) is int and lost > 0:
            self.find(Verdict.TRUNCATED, path,
                      f"the writer reports {lost} record(s) it could not write", raw, line.seq)

    # -- one file ----------------------------------------------------------------------------
    def walk_file(self, info: _FileInfo, progress: Progress | None) -> None:
        """Walk every line of one file of this log."""
        path = info.path
        anchor = info.anchor
        if anchor is not None:
            key = (anchor.seq, anchor.hash)
            if key in self.anchors:
                self.find(Verdict.DUPLICATE, path,
                          f"file is a copy of {self.anchors[key]}", None, anchor.seq)
                return
            self.anchors[key] = path
        self.summary.files.append(path)
        footer: ParsedLine | None = None
        last: ParsedLine | None = None
        good_end = 0
        torn = b""
        header_index: int | None = None
        damage_before = self._damage_count()
        gaps_before = len(self.gaps)
        physical = 0
        encryption = self.encryption
        encryption.start_file()
        self.file_has_verified = False
        for raw in _iter_source(info):
            physical += 1
            self.report.lines_checked += 1
            if progress is not None and raw.number % 4096 == 0:
                progress(raw.offset)
            if not raw.terminated:
                torn = raw.data
                if footer is not None:
                    self.find(Verdict.TAMPERED, path, "bytes after the file's footer", raw)
                break
            result = self.classify(raw, path)
            line = result.line
            if not result.verified or line is None:
                self.after_bad += 1
                if line is not None and self.keyring.info(line.kid) is None:
                    self.note_unverifiable(line)
                continue
            self.report.lines_verified += 1
            self.file_has_verified = True
            if footer is not None:
                self.find(Verdict.TAMPERED, path, "line after the file's footer", raw, line.seq)
            if raw.number == 1:
                if line.kind == LineKind.HEADER:
                    fi = line.body.get("file_index")
                    header_index = fi if type(fi) is int else None
                    self.on_header(line, raw, path)
                    self._report_lost(line, raw, path)
                    problem = encryption.on_header(line.body, path)
                    if problem is not None:
                        self.find(problem[0], path, problem[1], raw, line.seq)
                else:
                    self.find(Verdict.TAMPERED, path, "file does not start with a header",
                              raw, line.seq)
            elif line.kind == LineKind.HEADER:
                self.find(Verdict.TAMPERED, path, "header inside a file (files joined?)",
                          raw, line.seq)
            elif self.expect_resume is not None and line.kind != LineKind.RESUME:
                self.find(Verdict.TAMPERED, path, "resume header without its resume record",
                          raw, line.seq)
                self.expect_resume = None
            accepted = self.chain(line, raw, path)
            if not accepted:
                continue
            self.since_footer += 1
            kind = line.kind
            if kind == LineKind.FOOTER:
                footer = line
                self.since_footer = 0
            elif kind == LineKind.RESUME:
                self.on_resume(line, raw, path)
            elif kind == LineKind.PRUNE:
                self.prunes.append(line)
            elif kind == LineKind.KEY_ROTATION:
                self.on_rotation(line, raw, path)
            elif kind == LineKind.GAP:
                self.delivery_gaps.append(line)
            elif kind == LineKind.EVENT:
                self.summary.events += 1
                if line.body.get("event_type") == REJECTED_EVENT_TYPE:
                    self.summary.rejected += 1
                problem = encryption.on_event(line.body)
                if problem is not None:
                    self.find(problem[0], path, problem[1], raw, line.seq)
            elif kind != LineKind.HEADER:
                self.find(Verdict.CANNOT_VERIFY, path, "unknown line kind", raw, line.seq)
            last = line
            good_end = raw.end
        if progress is not None:
            progress(info.size)
        if footer is not None and self._damage_count() == damage_before \
                and len(self.gaps) == gaps_before:
            declared = footer.body.get("lines")
            if declared != physical:
                self.find(Verdict.TRUNCATED, path,
                          f"file holds {physical} lines but its footer declares {declared}")
        self.prev_file = _FileEnd(path=path, index=header_index if header_index is not None
                                  else (self.prev_file.index + 1 if self.prev_file else 0),
                                  footer=footer, last=last, good_end=good_end, torn=torn,
                                  virtual=info.lines is not None)

    def _damage_count(self) -> int:
        return self.report.damage_added

    def on_rotation(self, line: ParsedLine, raw: RawLine, path: str) -> None:
        """A key rotation is signed by the old key and proven by the new one."""
        new_kid = line.body.get("new_kid")
        proof = line.body.get("new_key_proof")
        if not isinstance(new_kid, str) or not isinstance(proof, str):
            self.find(Verdict.TAMPERED, path, "key rotation record is incomplete", raw, line.seq)
            return
        if self.keyring.info(new_kid) is None:
            self.find(Verdict.CANNOT_VERIFY, path, "rotation to a key the keyring lacks",
                      raw, line.seq)
            self.pending_kid = new_kid
            return
        if not self.keyring.verify_rotation_proof(new_kid, line.log_id, line.seq, proof):
            self.find(Verdict.TAMPERED, path, "key rotation proof does not verify", raw, line.seq)
            return
        self.pending_kid = new_kid


_LINE_START = b'{"alg":"'
#: A file torn while it was created holds at most part of its first line.
_TORN_FILE_MAX = MAX_LINE_BYTES


def _unanchored(info: _FileInfo, keyring: Keyring, report: Report) -> bool:
    """
    Report a file none of whose lines could be placed in a log.

    Returns True when the file looks like an unfinished rotation (empty, or one torn
    first line), which can explain a log that ends in a rotation footer.
    """
    if info.unreadable is not None:
        report.add(Finding(Verdict.CANNOT_VERIFY, info.path,
                           f"could not be read ({info.unreadable}); nothing in it was checked"))
        return False
    if info.size == 0:
        report.add(Finding(Verdict.EMPTY_FILE, info.path, "empty file"))
        return True
    walk = _LogWalk(report, keyring, "")
    any_envelope = False
    before = len(report.findings)
    for raw in _iter_source(info):
        report.lines_checked += 1
        if not raw.terminated:
            if raw.number == 1 and raw.data and not raw.oversized and (
                    raw.data.startswith(_LINE_START) or _LINE_START.startswith(raw.data)):
                report.add(Finding(Verdict.INCOMPLETE_TAIL, info.path,
                                   "the file holds only a partial first line (a crash while "
                                   "it was created)", raw.offset, raw.number))
                return True
            break
        result = walk.classify(raw, info.path)
        any_envelope = any_envelope or result.line is not None
    if not any_envelope:
        del report.findings[before:]
        report.add(Finding(Verdict.CANNOT_VERIFY, info.path,
                           "not an llm-audit-log file (no line in the audit format)"))
    return False


def verify_files(files: list[str], keyring: Keyring,
                 progress: Callable[[int], None] | None = None) -> Report:
    """Verify the given log files (any order, any names) and return the full report."""
    return _verify_infos([_anchor(path, keyring) for path in files], keyring, progress)


def verify_sources(sources: list[tuple[str, list[bytes]]], keyring: Keyring,
                   report: Report | None = None, remote_group: str | None = None) -> Report:
    """
    Verify virtual files, each a name and its complete lines (without newlines), like files.

    CloudWatch streams arrive this way, split at their header lines (see ``_cloudwatch``);
    ``remote_group`` names their log group.
    """
    return _verify_infos([_anchor(name, keyring, lines) for name, lines in sources], keyring,
                         None, report, remote_group)


def _verify_infos(infos: list[_FileInfo], keyring: Keyring,
                  progress: Callable[[int], None] | None,
                  report: Report | None = None, remote_group: str | None = None) -> Report:
    report = report if report is not None else Report()
    report.files_checked += len(infos)
    done = 0

    def advance(size: int) -> Callable[[int], None] | None:
        if progress is None:
            return None
        base = done
        return lambda offset: progress(base + min(offset, size))

    logs: dict[str, list[_FileInfo]] = {}
    stray: set[str] = set()
    newer: dict[str, set[tuple[int, int | None, str]]] = {}
    for info in infos:
        if info.anchor is None and info.newer is not None:
            log_id, index, seq = info.newer
            newer.setdefault(log_id, set()).add((index, seq, info.path))
            report.add(Finding(Verdict.CANNOT_VERIFY, info.path,
                               f"file {index} of log {log_id} is in a format version this "
                               "verifier cannot read (written by a newer release?)"))
            done += info.size
            continue
        if info.anchor is None:
            if _unanchored(info, keyring, report):
                stray.add(info.path)
            done += info.size
            continue
        logs.setdefault(info.anchor.log_id, []).append(info)
    unreadable = frozenset(os.path.basename(i.path) for i in infos if i.unreadable is not None)
    acknowledged: set[tuple[object, object, object]] = set()
    for log_id, members in sorted(logs.items()):
        members.sort(key=lambda i: (i.anchor.seq if i.anchor else -1, i.path))
        walk = _LogWalk(report, keyring, log_id)
        walk.remote_group = remote_group
        for info in members:
            walk.walk_file(info, advance(info.size))
            done += info.size
        walk.finish(stray_files=frozenset(os.path.basename(p) for p in stray),
                    newer_files=frozenset(newer.get(log_id, ())),
                    unreadable_files=unreadable)
        walk.summary.encrypted = walk.encryption.encrypted_events
        report.logs.append(walk.summary)
        acknowledged |= walk.abandoned
    if acknowledged:
        _excuse_abandoned(report, stray, acknowledged)
    return report


def _excuse_abandoned(report: Report, stray: set[str],
                      acknowledged: set[tuple[object, object, object]]) -> None:
    """A torn file that a later header acknowledges (name, length, hash) was a crash."""
    for path in stray:
        try:
            with open(path, "rb") as fh:
                data = fh.read(_TORN_FILE_MAX + 1)  # torn first lines are short: bounded read
        except OSError:
            continue
        if len(data) > _TORN_FILE_MAX:
            continue
        key = (os.path.basename(path), len(data), hashlib.sha256(data).hexdigest())
        if not data or key not in acknowledged:
            continue
        report.findings[:] = [
            Finding(Verdict.RESUMED, f.file, "left torn by a crash while it was created; "
                    "the next start acknowledged it (name, length, SHA-256)", f.offset, f.line)
            if f.file == path and f.verdict is Verdict.INCOMPLETE_TAIL else f
            for f in report.findings]

