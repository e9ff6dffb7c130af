"""
The verifier's walk over files, lines and chain.

Anchor every file, order each log's files by their chain position, then check every
line's MAC, chain fields, file boundaries and the log's two ends.

Every line carries its own MAC, sequence number and previous hash, so the walk
re-synchronises after damage and keeps going; gaps are reported only at the end, once
lines found later in the wrong place have had the chance to fill them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from llm_audit_log.keys import MAC_ALG, Keyring
from llm_audit_log.seal import (
    GENESIS_PREV,
    MAX_LINE_BYTES,
    LineKind,
    MalformedLineError,
    ParsedLine,
    UnsupportedVersionError,
    parse_line,
)
from llm_audit_log.verify._encryption import EncryptionCheck
from llm_audit_log.verify._reader import RawLine, iter_lines
from llm_audit_log.verify.verdicts import Finding, LogSummary, Report, Severity, Verdict

__all__ = ["verify_files", "verify_sources"]

#: Threads stamp records before they take the handler's lock, so neighbouring lines may be
#: a little out of time order; only larger backward steps are reported.
CLOCK_TOLERANCE = 1.0
_ANCHOR_SEARCH = 64  # lines read per file, at most, to place it in its log
_SEEN_WINDOW = 200_000  # recent (seq -> hash) kept to tell duplicates from forks
REJECTED_EVENT_TYPE = "audit.rejected"

Progress = Callable[[int], None]


@dataclass
class _FileInfo:
    path: str
    anchor: ParsedLine | None = None
    size: int = 0
    lines: list[bytes] | None = None  # a virtual file (a CloudWatch stream's lines), not a path


def _iter_source(info: _FileInfo) -> Iterator[RawLine]:
    """The lines of a file, or of a virtual file (complete lines; offsets as if written out)."""
    if info.lines is None:
        yield from iter_lines(info.path)
        return
    offset = 0
    for number, data in enumerate(info.lines, 1):
        oversized = len(data) > MAX_LINE_BYTES
        yield RawLine(offset, number, b"" if oversized else data, terminated=True,
                      oversized=oversized)
        offset += len(data) + 1


@dataclass
class _FileEnd:
    """How a walked file ended: what the next file's header must be consistent with."""

    path: str
    index: int
    footer: ParsedLine | None
    last: ParsedLine | None
    good_end: int
    torn: bytes
    virtual: bool = False


@dataclass
class _Gap:
    start: int
    end: int
    missing: int
    file: str
    line: int
    offset: int


@dataclass
class _Classified:
    line: ParsedLine | None
    verified: bool


class _LogWalk:
    """Chain state of one log while its files are walked in order."""

    def __init__(self, report: Report, keyring: Keyring, log_id: str) -> None:
        self.report = report
        self.keyring = keyring
        self.log_id = log_id
        self.summary = LogSummary(log_id=log_id)
        self.next_seq: int | None = None
        self.prev_hash = ""
        self.kid: str | None = None
        self.pending_kid: str | None = None
        self.after_bad = 0
        self.skip_gap = False
        self.gaps: list[_Gap] = []
        self.seen: OrderedDict[int, str] = OrderedDict()
        self.last_ts = ""
        self.first_header: ParsedLine | None = None
        self.prev_file: _FileEnd | None = None
        self.expect_resume: _FileEnd | None = None
        self.prunes: list[ParsedLine] = []
        self.hidden_prefix: list[ParsedLine] = []
        self.resume_of_pruned = False
        self.first_header_verified = True
        self.since_footer = 0
        self.anchors: dict[tuple[int, str], str] = {}
        self.delivery_gaps: list[ParsedLine] = []
        self.encryption = EncryptionCheck()

    def find(self, verdict: Verdict, path: str | None, detail: str, raw: RawLine | None = None,
             seq: int | None = None) -> None:
        self.report.add(Finding(verdict, path, detail,
                                raw.offset if raw else None, raw.number if raw else None, seq))

    # -- one line ---------------------------------------------------------------------------
    def classify(self, raw: RawLine, path: str) -> _Classified:
        """Parse and MAC-check one line, reporting what is wrong with it."""
        if raw.oversized:
            self.find(Verdict.MALFORMED, path, "line longer than the format allows", raw)
            return _Classified(None, verified=False)
        try:
            line = parse_line(raw.data)
        except UnsupportedVersionError:
            self.find(Verdict.CANNOT_VERIFY, path, "unknown format version", raw)
            return _Classified(None, verified=False)
        except MalformedLineError as exc:
            reframed = _reframed(raw.data)
            if reframed is not None:
                try:
                    line = parse_line(reframed)
                except MalformedLineError:
                    pass
                else:
                    if self.keyring.verify_mac(line.kid, line.signed, line.mac):
                        # Authentic content with altered framing (CRLF, BOM): tampering,
                        # but the line still holds its place in the chain.
                        self.find(Verdict.TAMPERED, path,
                                  "format altered (line ending or byte-order mark changed)",
                                  raw, line.seq)
                        return _Classified(line, verified=True)
            self.find(Verdict.TAMPERED, path, f"malformed line: {exc.reason}", raw)
            return _Classified(None, verified=False)
        if line.alg != MAC_ALG:
            self.find(Verdict.TAMPERED, path, "MAC algorithm is not the pinned HS256", raw,
                      line.seq)
            return _Classified(line, verified=False)
        if self.keyring.info(line.kid) is None:
            if self.kid is None or line.kid in (self.kid, self.pending_kid):
                self.find(Verdict.CANNOT_VERIFY, path, "signing key id not in the keyring", raw,
                          line.seq)
            else:
                self.find(Verdict.TAMPERED, path, "key id changed to one the keyring lacks",
                          raw, line.seq)
            return _Classified(line, verified=False)
        if not self.keyring.verify_mac(line.kid, line.signed, line.mac):
            self.find(Verdict.TAMPERED, path, "MAC does not match: line altered", raw, line.seq)
            return _Classified(line, verified=False)
        return _Classified(line, verified=True)

    def note_unverifiable(self, line: ParsedLine) -> None:
        """Keep the lines a missing key hides at the start of a log, to check their links."""
        if self.next_seq is None and len(self.hidden_prefix) < _SEEN_WINDOW:
            self.hidden_prefix.append(line)

    def _adopt_hidden_prefix(self, first: ParsedLine) -> None:
        """
        Lines before the first verifiable one could not be checked (missing key).

        If their hashes chain into the first verified line and start at a genesis header,
        the log is complete but partly unverifiable (already reported); otherwise the
        prefix check in ``finish`` reports what is missing.
        """
        run = [p for p in self.hidden_prefix if p.log_id == self.log_id]
        self.hidden_prefix = []
        if not run:
            return
        links = all(a.hash == b.prev and a.seq + 1 == b.seq for a, b in itertools.pairwise(run))
        if links and run[-1].hash == first.prev and run[-1].seq + 1 == first.seq \
                and run[0].kind == LineKind.HEADER:
            self.first_header = run[0]
            self.first_header_verified = False

    def chain(self, line: ParsedLine, raw: RawLine, path: str) -> bool:
        """Check key continuity and chain fields; returns whether the line was accepted."""
        if self.next_seq is None and self.hidden_prefix:
            self._adopt_hidden_prefix(line)
        if line.log_id != self.log_id:
            self.find(Verdict.FOREIGN, path, "line belongs to another log", raw, line.seq)
            self.after_bad += 1
            return False
        if self.kid is None:
            self.kid = line.kid
        elif self.pending_kid is not None:
            # A verified rotation retires the old key at once: the next line, and every
            # later one, must be signed with the new key (else the old key could forge
            # the log's end, which is what rotating a leaked key must prevent).
            if line.kid != self.pending_kid:
                self.find(Verdict.TAMPERED, path,
                          "signed with the retired key after a key rotation", raw, line.seq)
                self.after_bad += 1
                return False
            self.find(Verdict.KEY_ROTATED, path, "signing key rotated by a signed record",
                      raw, line.seq)
            self.kid = line.kid
            self.pending_kid = None
        elif line.kid != self.kid:
            self.find(Verdict.TAMPERED, path,
                      "signed with another key and no rotation record announced it",
                      raw, line.seq)
            self.after_bad += 1
            return False
        info = self.keyring.info(line.kid)
        if info is not None and not info.valid_at(line.ts):
            self.find(Verdict.KEY_INVALID, path, "signed with a key outside its validity window",
                      raw, line.seq)
        seq = line.seq
        expected = self.next_seq
        if expected is not None and seq < expected:
            known = self.seen.get(seq)
            if known is not None:
                if known == line.hash:
                    self.find(Verdict.DUPLICATE, path, "line repeated", raw, seq)
                else:
                    self.find(Verdict.FORK, path,
                              "two different lines carry the same sequence number", raw, seq)
                return False
            for gap in self.gaps:
                if gap.start <= seq <= gap.end and gap.missing > 0:
                    gap.missing -= 1
                    self.find(Verdict.REORDERED, path, "line appears out of its chain position",
                              raw, seq)
                    return False
            self.find(Verdict.TAMPERED, path, "sequence number goes backwards", raw, seq)
            return False
        if expected is not None and seq > expected:
            missing = seq - expected - self.after_bad
            if missing > 0 and not self.skip_gap:
                self.gaps.append(_Gap(expected, seq - 1, missing, path, raw.number, raw.offset))
        elif expected is not None and line.prev != self.prev_hash and not self.after_bad:
            self.find(Verdict.TAMPERED, path, "previous-line hash does not match: chain broken",
                      raw, seq)
        if line.ts < self.last_ts and _seconds_between(line.ts, self.last_ts) > CLOCK_TOLERANCE:
            self.find(Verdict.CLOCK_STEP, path,
                      f"timestamp more than {CLOCK_TOLERANCE:g} s earlier than the previous "
                      "line's (the clock stepped back; order comes from sequence numbers)",
                      raw, seq)
        self.last_ts = line.ts
        self.next_seq = seq + 1
        self.prev_hash = line.hash
        self.after_bad = 0
        self.skip_gap = False
        self.seen[seq] = line.hash
        if len(self.seen) > _SEEN_WINDOW:
            self.seen.popitem(last=False)
        summary = self.summary
        summary.lines += 1
        if summary.first_seq is None:
            summary.first_seq = seq
        summary.last_seq = seq
        return True

    # -- file boundaries ---------------------------------------------------------------------
    def on_header(self, line: ParsedLine, raw: RawLine, path: str) -> None:
        """Check that a file's header is consistent with how the previous file ended."""
        body = line.body
        index = body.get("file_index")
        reason = body.get("reason")
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
        lost = body.get("lost_records")
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
            if footer is not None:
                self.find(Verdict.TAMPERED, path, "line after the file's footer", raw, line.seq)
            if raw.number == 1:
                if line.kind == LineKind.HEADER:
                    fi = line.body.get("file_index")
                    header_index = fi if type(fi) is int else None
                    self.on_header(line, raw, path)
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
        return sum(1 for f in self.report.findings if f.verdict.severity is Severity.DAMAGE)

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

    def _undelivered_seqs(self) -> set[int]:
        """Sequence numbers that signed ``gap`` lines of this log declare undelivered."""
        seqs: set[int] = set()
        for gap_line in self.delivery_gaps:
            listed = gap_line.body.get("lines")
            for item in listed if isinstance(listed, list) else []:
                if isinstance(item, dict) and type(item.get("seq")) is int \
                        and item.get("log") in (None, self.log_id):
                    seqs.add(item["seq"])
        return seqs

    # -- the two ends ------------------------------------------------------------------------
    def finish(self, stray_files: frozenset[str]) -> None:
        """Check the log's beginning (genesis or accounted prune) and its end."""
        excused = self._undelivered_seqs()
        for gap in self.gaps:
            covered = sum(1 for s in excused if gap.start <= s <= gap.end)
            if covered and gap.missing > 0:
                self.report.add(Finding(Verdict.DELIVERY_GAP, gap.file,
                                        f"{min(covered, gap.missing)} line(s) before this line "
                                        "were rejected by the remote sink, as its signed gap "
                                        "record says", gap.offset, gap.line, gap.end + 1))
                gap.missing -= covered
            if gap.missing > 0:
                self.report.add(Finding(Verdict.GAP, gap.file,
                                        f"{gap.missing} line(s) missing before this line "
                                        f"(seq {gap.start}..{gap.end})",
                                        gap.offset, gap.line, gap.end + 1))
        first = self.first_header
        if first is None:
            self.find(Verdict.MISSING_PREFIX, None, "the log has no readable first header")
        elif not self.first_header_verified:
            pass  # its lines could not be checked; CANNOT_VERIFY findings say so already
        elif not (first.body.get("reason") == "genesis" and first.seq == 0
                  and first.prev == GENESIS_PREV):
            index = first.body.get("file_index")
            accounted = any(
                (p.body.get("first_kept_file_index") == index
                 and p.body.get("first_kept_seq") == first.seq
                 and p.body.get("first_kept_prev") == first.prev)
                or _pruned_successor(p, index, first) for p in self.prunes)
            if accounted:
                self.find(Verdict.PRUNED, self.summary.files[0] if self.summary.files else None,
                          "older files were deleted by retention after a signed prune record")
            else:
                self.find(Verdict.MISSING_PREFIX,
                          self.summary.files[0] if self.summary.files else None,
                          f"the log starts at seq {first.seq} (file index {index}) and no prune "
                          "record accounts for what came before")
        end = self.prev_file
        if end is None:
            return
        if end.torn and end.footer is not None:
            pass  # reported while walking: bytes after a footer are never a crash tail
        elif end.torn:
            self.report.add(Finding(Verdict.INCOMPLETE_TAIL, end.path,
                                    f"partial last line ({len(end.torn)} bytes): a crash while "
                                    "writing, not yet acknowledged by a restart",
                                    end.good_end))
        if end.footer is None and self.since_footer == 0 and not end.torn:
            pass  # nothing of this file was accepted; its damage is reported already
        elif end.footer is None:
            self.report.add(Finding(
                Verdict.UNSEALED, end.path,
                f"{self.since_footer} line(s) after the last footer are not sealed: the writer "
                "is running or crashed, or lines were cut from the end", end.good_end,
                count=max(self.since_footer, 1)))
        elif end.footer.body.get("reason") == "rotate":
            if end.footer.body.get("next_file") in stray_files:
                self.report.add(Finding(Verdict.INCOMPLETE_TAIL, end.path,
                                        "rotation did not finish (crash while opening the next "
                                        "file)"))
            else:
                self.report.add(Finding(Verdict.FILE_MISSING, end.path,
                                        "the log was rotated into a file that is missing: the "
                                        "newest file was deleted"))
        else:
            self.summary.closed = True


def _pruned_successor(prune: ParsedLine, index: object, first: ParsedLine) -> bool:
    """
    Whether retention was interrupted right before deleting ``first``.

    ``first`` is then a file the prune record meant to delete, and the file before it
    (deleted) is listed with the hash and sequence number that ``first`` links to.
    """
    pruned = prune.body.get("pruned")
    if not isinstance(pruned, list):
        return False
    before = {e.get("file_index"): e for e in pruned if isinstance(e, dict)}
    entry = before.get(index - 1) if type(index) is int else None
    return index in before and entry is not None and entry.get("last_hash") == first.prev \
        and entry.get("last_seq") == first.seq - 1


_BOM = b"\xef\xbb\xbf"


def _reframed(data: bytes) -> bytes | None:
    """The line without a trailing CR or leading BOM, if it had either."""
    out = data.removeprefix(_BOM).removesuffix(b"\r")
    return out if len(out) != len(data) else None


def _seconds_between(earlier: str, later: str) -> float:
    """Seconds from ``earlier`` to ``later`` (our ISO-8601 Z form); inf if unparsable."""
    try:
        a = dt.datetime.strptime(earlier, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
        b = dt.datetime.strptime(later, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return math.inf
    return (b - a).total_seconds()


def _anchor(path: str, keyring: Keyring, lines: list[bytes] | None = None) -> _FileInfo:
    """Find the first line that verifies, which places the file in its log."""
    info = _FileInfo(path, lines=lines)
    if lines is not None:
        info.size = sum(len(line) + 1 for line in lines)
    else:
        try:
            with open(path, "rb") as fh:
                fh.seek(0, 2)
                info.size = fh.tell()
        except OSError:
            return info
    for raw in _iter_source(info):
        if raw.number > _ANCHOR_SEARCH:
            break
        if raw.oversized or not raw.terminated:
            continue
        try:
            line = parse_line(raw.data)
        except MalformedLineError:
            reframed = _reframed(raw.data)
            if reframed is None:
                continue
            try:
                line = parse_line(reframed)
            except MalformedLineError:
                continue
        if keyring.verify_mac(line.kid, line.signed, line.mac) and line.alg == MAC_ALG:
            info.anchor = line
            break
    return info


_LINE_START = b'{"alg":"'


def _unanchored(info: _FileInfo, keyring: Keyring, report: Report) -> bool:
    """
    Report a file none of whose lines could be placed in a log.

    Returns True when the file looks like an unfinished rotation (empty, or one torn
    first line), which can explain a log that ends in a rotation footer.
    """
    if info.size == 0:
        report.add(Finding(Verdict.EMPTY_FILE, info.path, "empty file"))
        return True
    walk = _LogWalk(report, keyring, "")
    any_envelope = False
    before = len(report.findings)
    for raw in _iter_source(info):
        report.lines_checked += 1
        if not raw.terminated:
            if raw.number == 1 and (raw.data.startswith(_LINE_START)
                                    or _LINE_START.startswith(raw.data)):
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
                   report: Report | None = None) -> Report:
    """
    Verify virtual files, each a name and its complete lines (without newlines), like files.

    CloudWatch streams arrive this way, split at their header lines (see ``_cloudwatch``).
    """
    return _verify_infos([_anchor(name, keyring, lines) for name, lines in sources], keyring,
                         None, report)


def _verify_infos(infos: list[_FileInfo], keyring: Keyring,
                  progress: Callable[[int], None] | None,
                  report: Report | None = None) -> Report:
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
    for info in infos:
        if info.anchor is None:
            if _unanchored(info, keyring, report):
                stray.add(info.path)
            done += info.size
            continue
        logs.setdefault(info.anchor.log_id, []).append(info)
    for log_id, members in sorted(logs.items()):
        members.sort(key=lambda i: (i.anchor.seq if i.anchor else -1, i.path))
        walk = _LogWalk(report, keyring, log_id)
        for info in members:
            walk.walk_file(info, advance(info.size))
            done += info.size
        walk.finish(stray_files=frozenset(os.path.basename(p) for p in stray))
        walk.summary.encrypted = walk.encryption.encrypted_events
        report.logs.append(walk.summary)
    return report

