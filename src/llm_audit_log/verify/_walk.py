"""
One line at a time: parse and MAC-check it, then check key continuity and chain fields.

:class:`_ChainWalk` holds the chain state of one log; the file boundaries and the log's
two ends are checked by its subclasses (``_ends.py``, ``_checks.py``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
from collections import OrderedDict
from dataclasses import dataclass

from llm_audit_log.keys import MAC_ALG, Keyring
from llm_audit_log.seal import (
    LineKind,
    MalformedLineError,
    ParsedLine,
    UnsupportedVersionError,
    parse_line,
)
from llm_audit_log.verify._anchor import _reframed
from llm_audit_log.verify._encryption import EncryptionCheck
from llm_audit_log.verify._reader import RawLine
from llm_audit_log.verify.verdicts import Finding, LogSummary, Report, Verdict

#: Threads stamp records before they take the handler's lock, so neighbouring lines may be
#: a little out of time order; only larger backward steps are reported.
CLOCK_TOLERANCE = 1.0
_SEEN_WINDOW = 200_000  # recent (seq -> hash) kept to tell duplicates from forks


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


class _ChainWalk:
    """Chain state of one log, and the checks of each line against it."""

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
        self.gap_starts: list[int] = []  # parallel to gaps, for bisect
        self.seen: OrderedDict[int, str] = OrderedDict()
        self.last_ts = ""
        self.first_header: ParsedLine | None = None
        self.prev_file: _FileEnd | None = None
        self.expect_resume: _FileEnd | None = None
        self.prunes: list[ParsedLine] = []
        self.hidden_prefix: list[ParsedLine] = []
        self.resume_of_pruned = False
        self.abandoned: set[tuple[object, object, object]] = set()
        self.first_header_verified = True
        self.since_footer = 0
        self.anchors: dict[tuple[int, str], str] = {}
        self.delivery_gaps: list[ParsedLine] = []
        self.encryption = EncryptionCheck()
        #: Lines in a version this verifier does not know, and the newest version seen:
        #: within one log versions only go up (a writer cannot resume a log it cannot read).
        self.unknown_versions: list[tuple[str, RawLine]] = []
        self.version = 0
        #: Whether a line of the file being walked verified already: a writer changes
        #: version only when it starts a new file (a restart always opens one).
        self.file_has_verified = False

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
            if self.file_has_verified:
                self.find(Verdict.TAMPERED, path, "format version changed inside a file: no "
                          "writer does that (versions change only with a new file)", raw)
            else:
                self.find(Verdict.CANNOT_VERIFY, path, "unknown format version", raw)
                self.unknown_versions.append((path, raw))
            return _Classified(None, verified=False)
        except MalformedLineError as exc:
            reframed = _reframed(raw.data)
            if reframed is not None:
                try:
                    line = parse_line(reframed)
                except MalformedLineError:
                    pass
                else:
                    if self.keyring.verify_mac(line.kid, line.mac_input, line.mac):
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
        if not self.keyring.verify_mac(line.kid, line.mac_input, line.mac):
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

    def _check_version(self, line: ParsedLine, raw: RawLine, path: str) -> None:
        """
        Report a version going down, or one this verifier reads after one it does not.

        No writer does either, so the version field was edited: the line is tampering, not
        merely something a newer verifier could check.
        """
        for unknown_path, unknown in self.unknown_versions:
            self.find(Verdict.TAMPERED, unknown_path, "format version altered: a later line "
                      "of this log is in a version this verifier reads", unknown)
        self.unknown_versions = []
        if line.version < self.version:
            self.find(Verdict.TAMPERED, path, "format version went down within the log", raw,
                      line.seq)
        self.version = max(self.version, line.version)

    def chain(self, line: ParsedLine, raw: RawLine, path: str) -> bool:
        """Check key continuity and chain fields; returns whether the line was accepted."""
        if self.next_seq is None and self.hidden_prefix:
            self._adopt_hidden_prefix(line)
        if line.log_id != self.log_id:
            self.find(Verdict.FOREIGN, path, "line belongs to another log", raw, line.seq)
            self.after_bad += 1
            return False
        self._check_version(line, raw, path)
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
            # Gaps open in increasing, disjoint ranges: find the one that could hold seq.
            at = bisect.bisect_right(self.gap_starts, seq) - 1
            gap = self.gaps[at] if at >= 0 else None
            if gap is not None and seq <= gap.end and gap.missing > 0:
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
                self.gap_starts.append(expected)
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


def _seconds_between(earlier: str, later: str) -> float:
    """Seconds from ``earlier`` to ``later`` (our ISO-8601 Z form); inf if unparsable."""
    try:
        a = dt.datetime.strptime(earlier, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
        b = dt.datetime.strptime(later, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return math.inf
    return (b - a).total_seconds()
