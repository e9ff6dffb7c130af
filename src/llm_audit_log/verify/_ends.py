"""
The log's two ends, checked once every file has been walked.

Its first header (genesis, or a prefix a signed prune accounts for), its last file
(sealed, torn, or rotated into a missing file), and the gaps still open.
"""

from __future__ import annotations

import os

from llm_audit_log.seal import GENESIS_PREV, ParsedLine
from llm_audit_log.verify._walk import _ChainWalk
from llm_audit_log.verify.verdicts import Finding, Verdict


class _LogEnds(_ChainWalk):
    """The end-of-walk checks: gaps, the log's beginning and its end."""

    #: The CloudWatch log group these lines were read from (None: local files), the only
    #: copy a signed ``mirror_starts`` can excuse for lacking the log's beginning.
    remote_group: str | None = None

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
    def finish(self, stray_files: frozenset[str],
               newer_files: frozenset[tuple[int, int | None, str]] = frozenset(),
               unreadable_files: frozenset[str] = frozenset()) -> None:
        """
        Check the log's beginning (genesis or accounted prune) and its end.

        ``newer_files``: indexes of this log's files in a format version this verifier
        cannot read; a log that was rotated into one goes on there (cannot verify, not lost).
        ``unreadable_files``: names of files that could not be read; a log rotated into one
        of them goes on there too (cannot verify, not lost).
        """
        # A newer release's file placed at or before what this verifier read of the log:
        # versions only go up, so the claim is false (a forged file, not a newer format).
        last_index = self.prev_file.index if self.prev_file is not None else None
        last_seq = self.summary.last_seq
        for claimed_index, claimed_seq, claimed_path in sorted(newer_files, key=repr):
            if (last_index is not None and claimed_index <= last_index) or (
                    claimed_seq is not None and last_seq is not None
                    and claimed_seq <= last_seq):
                self.report.add(Finding(Verdict.TAMPERED, claimed_path,
                                        f"claims file {claimed_index} (seq {claimed_seq}) of a "
                                        "log whose later lines are in a version this verifier "
                                        "reads: versions only go up"))
        newer_paths = {i: path for i, seq, path in newer_files
                       if last_seq is None or seq is None or seq > last_seq}
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
            source = self.summary.files[0] if self.summary.files else None
            if accounted:
                self.find(Verdict.PRUNED, source,
                          "older files were deleted by retention after a signed prune record")
            elif source is not None and _mirror_begins(first, self.remote_group):
                self.find(Verdict.MIRROR_START, source,
                          f"this copy begins at seq {first.seq} (file index {index}): its "
                          "signed header says the log was mirrored here from then on; the "
                          "lines before are in the writer's local files")
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
            next_index = end.footer.body.get("next_file_index")
            if type(next_index) is int and next_index in newer_paths:
                self.report.add(Finding(
                    Verdict.CANNOT_VERIFY, end.path,
                    f"the log goes on in {os.path.basename(newer_paths[next_index])} (file "
                    f"{next_index}), in a format version this verifier cannot read; if that "
                    "file is not genuine, the newest file(s) were deleted"))
            elif end.footer.body.get("next_file") in unreadable_files:
                self.report.add(Finding(
                    Verdict.CANNOT_VERIFY, end.path,
                    f"the log goes on in {end.footer.body['next_file']}, which could not be "
                    "read"))
            elif end.footer.body.get("next_file") in stray_files:
                self.report.add(Finding(Verdict.INCOMPLETE_TAIL, end.path,
                                        "rotation did not finish (crash while opening the next "
                                        "file)"))
            else:
                self.report.add(Finding(Verdict.FILE_MISSING, end.path,
                                        "the log was rotated into a file that is missing: the "
                                        "newest file was deleted"))
        else:
            self.summary.closed = True


def _mirror_begins(first: ParsedLine, remote_group: str | None) -> bool:
    """
    Whether the first header says mirroring to exactly ``remote_group`` began there.

    Only a remote copy is excused (``remote_group`` None: the writer's files, which must
    always start at genesis or at a signed prune).
    """
    starts = first.body.get("mirror_starts")
    return remote_group is not None and isinstance(starts, list) \
        and f"cloudwatch:{remote_group}" in starts


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
