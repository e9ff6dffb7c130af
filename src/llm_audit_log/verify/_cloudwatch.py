"""
Verifying CloudWatch Logs streams: read back, reassemble chunks, walk like files.

Nothing is written to disk. The service orders events by timestamp, never by our chain,
so each log's lines are put in sequence order first; byte-identical duplicates (retried
puts) are dropped as benign, while the same sequence number with other bytes stays in
for the walk to report (FORK, or TAMPERED if its MAC fails). Each log is then cut into
virtual files at its header lines and walked by the same checks as files.

``cross_check`` compares a stream's (log, seq, line hash) set with local files': the
same line bytes went to both sinks, so a line on one side only is a loss on the other.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from llm_audit_log.keys import Keyring
from llm_audit_log.seal import LineKind, MalformedLineError, UnsupportedVersionError, parse_line
from llm_audit_log.sinks._batching import CHUNK_PREFIX, parse_chunk
from llm_audit_log.verify._checks import verify_sources
from llm_audit_log.verify._reader import collect_files, iter_lines
from llm_audit_log.verify.verdicts import Finding, Report, Verdict

__all__ = ["StreamLines", "cross_check", "read_streams", "stream_sources", "verify_streams"]


@dataclass
class StreamLines:
    """The complete lines read back from one stream, and what could not be reassembled."""

    group: str
    stream: str
    lines: list[bytes] = field(default_factory=list)
    events: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def name(self) -> str:
        """How findings name this stream."""
        return f"cloudwatch:{self.group}/{self.stream}"


def list_streams(client: Any, group: str) -> list[str]:
    """Every stream of ``group`` (paginated)."""
    names: list[str] = []
    for page in client.get_paginator("describe_log_streams").paginate(logGroupName=group):
        names.extend(s["logStreamName"] for s in page.get("logStreams", []))
    return names


def _events(client: Any, group: str, stream: str) -> Iterator[str]:
    """Every message of a stream, from the head, until the forward token repeats."""
    token: str | None = None
    while True:
        args: dict[str, Any] = {"logGroupName": group, "logStreamName": stream,
                                "startFromHead": True}
        if token is not None:
            args["nextToken"] = token
        page = client.get_log_events(**args)
        for event in page.get("events", []):
            yield event["message"]
        following = page.get("nextForwardToken")
        if following is None or following == token:
            return
        token = following


def read_stream(client: Any, group: str, stream: str) -> StreamLines:
    """Read one stream back and reassemble chunked lines (checked against their hash)."""
    out = StreamLines(group, stream)
    chunks: dict[str, dict[int, bytes]] = defaultdict(dict)
    totals: dict[str, tuple[int, int]] = {}
    for message in _events(client, group, stream):
        out.events += 1
        data = message.encode("utf-8", "surrogateescape")
        if not data.startswith(CHUNK_PREFIX):
            out.lines.append(data)
            continue
        parsed = parse_chunk(data)
        if parsed is None:
            out.findings.append(Finding(Verdict.TAMPERED, out.name,
                                        "malformed chunk event", line=out.events))
            continue
        header, piece = parsed
        known = totals.setdefault(header.sha256, (header.total, header.seq))
        if known != (header.total, header.seq):
            out.findings.append(Finding(Verdict.TAMPERED, out.name,
                                        "chunks of one line disagree on their count or seq",
                                        seq=header.seq))
            continue
        if chunks[header.sha256].setdefault(header.position, piece) != piece:
            out.findings.append(Finding(Verdict.FORK, out.name,
                                        "two different chunks claim one position",
                                        seq=header.seq))
    for digest, pieces in chunks.items():
        total, seq = totals[digest]
        if len(pieces) != total:
            out.findings.append(Finding(Verdict.GAP, out.name,
                                        f"chunked line incomplete: {len(pieces)} of {total} "
                                        "chunks", seq=seq))
            continue
        line = b"".join(pieces[i] for i in range(1, total + 1))
        if hashlib.sha256(line).hexdigest() != digest:
            out.findings.append(Finding(Verdict.TAMPERED, out.name,
                                        "reassembled chunks do not match their line hash",
                                        seq=seq))
            continue
        out.lines.append(line)
    return out


def read_streams(client: Any, group: str, streams: Sequence[str] | None) -> list[StreamLines]:
    """Read the named streams (default: every stream of the group)."""
    names = list(streams) if streams else list_streams(client, group)
    read = []
    for name in names:
        try:
            read.append(read_stream(client, group, name))
        except Exception as exc:
            if _not_found(exc) and _group_exists(client, group):
                raise StreamNotFoundError(name) from None  # the stream is missing, not the group
            raise
    return read


def _not_found(exc: Exception) -> bool:
    return bool(getattr(exc, "response", {}).get("Error", {}).get("Code")
                == "ResourceNotFoundException")


def _group_exists(client: Any, group: str) -> bool:
    """Whether ``group`` exists (the service says "not found" for a group or a stream alike)."""
    try:
        client.describe_log_streams(logGroupName=group, limit=1)
    except Exception as exc:
        if _not_found(exc):
            return False
        raise
    return True


class StreamNotFoundError(LookupError):
    """A stream named with ``--stream`` is not in the group."""


def stream_sources(streams: list[StreamLines]) -> list[tuple[str, list[bytes]]]:
    """Virtual files: each log's lines in sequence order, cut at header lines."""
    by_log: dict[str, list[tuple[int, int, bytes, str, bool]]] = defaultdict(list)
    unplaced: list[tuple[str, list[bytes]]] = []
    order = 0
    for stream in streams:
        stray: list[bytes] = []
        for raw in stream.lines:
            try:
                line = parse_line(raw)
            except UnsupportedVersionError as exc:
                # Placed where it claims to be: a newer release's window reads as one, an
                # edit inside a window as tampering (the walk decides, as for files).
                order += 1
                if exc.log_id is None or exc.seq is None:
                    stray.append(raw)
                else:
                    by_log[exc.log_id].append((exc.seq, order, raw, stream.name,
                                               exc.file_index is not None))
                continue
            except MalformedLineError:
                stray.append(raw)
                continue
            order += 1
            by_log[line.log_id].append((line.seq, order, raw, stream.name,
                                        line.kind == LineKind.HEADER))
        if stray:
            unplaced.append((f"{stream.name}:unplaced", stray))
    sources: list[tuple[str, list[bytes]]] = []
    for number, (_log_id, items) in enumerate(sorted(by_log.items()), 1):
        items.sort(key=lambda item: (item[0], item[1]))
        current: list[bytes] | None = None
        previous: tuple[int, bytes] | None = None
        for seq, _order, raw, name, is_header in items:
            if previous == (seq, raw):
                continue  # the same bytes again: a retried put, benign
            previous = (seq, raw)
            if current is None or is_header:
                current = []
                sources.append((f"{name}:log{number}:{seq}", current))
            current.append(raw)
    return _unique_names(sources + unplaced)


def _unique_names(sources: list[tuple[str, list[bytes]]]) -> list[tuple[str, list[bytes]]]:
    """
    Make every virtual file's name unique: readers (decrypt) find its lines by name.

    A stream name cannot hold ":" (CloudWatch refuses it), so no stream can pose as a
    virtual file of another stream; a counter parts the rest (a forked header, a stream
    named twice).
    """
    taken: set[str] = set()
    out = []
    for name, lines in sources:
        unique, again = name, 1
        while unique in taken:
            again += 1
            unique = f"{name}#{again}"
        taken.add(unique)
        out.append((unique, lines))
    return out


def verify_streams(streams: list[StreamLines], keyring: Keyring,
                   sources: list[tuple[str, list[bytes]]] | None = None) -> Report:
    """
    Verify streams read back: every log they hold, as the file verifier would.

    ``sources`` are :func:`stream_sources` of ``streams`` if the caller made them already.
    """
    report = Report()
    for stream in streams:
        for finding in stream.findings:
            report.add(finding)
    if not any(s.lines for s in streams) and not report.findings:
        report.add(Finding(Verdict.CANNOT_VERIFY, None, "no events in the stream(s)"))
        return report
    groups = {s.group for s in streams}
    return verify_sources(stream_sources(streams) if sources is None else sources, keyring,
                          report, groups.pop() if len(groups) == 1 else None)


def _line_keys(lines: Iterator[bytes], keyring: Keyring) -> dict[str, dict[int, str]]:
    """(log -> seq -> line hash) of every line whose MAC verifies."""
    keys: dict[str, dict[int, str]] = defaultdict(dict)
    for raw in lines:
        try:
            line = parse_line(raw)
        except MalformedLineError:
            continue
        if keyring.verify_mac(line.kid, line.mac_input, line.mac):
            keys[line.log_id].setdefault(line.seq, line.hash)
    return keys


def _unmirrored_local(paths: Sequence[str], keyring: Keyring,
                      name: str) -> dict[str, set[int]]:
    """
    (log -> seqs) of local lines never sent to ``name``.

    They are the lines of files whose verified header lists where the file was mirrored
    (``mirrored_to``) without ``name``; a header without the list (an earlier release's)
    excuses nothing.
    """
    skip: dict[str, set[int]] = defaultdict(set)
    for path in collect_files(list(paths)):
        excused = False
        for raw in iter_lines(path):
            if not raw.terminated or raw.oversized:
                continue
            try:
                line = parse_line(raw.data)
            except MalformedLineError:
                continue
            if line.kind == LineKind.HEADER:
                listed = line.body.get("mirrored_to")
                excused = isinstance(listed, list) and name not in listed \
                    and keyring.verify_mac(line.kid, line.mac_input, line.mac)
            if excused:
                skip[line.log_id].add(line.seq)
    return skip


def _ranges(seqs: list[int], limit: int = 5) -> str:
    runs: list[str] = []
    start = prev = seqs[0]
    for s in [*seqs[1:], None]:
        if s is not None and s == prev + 1:
            prev = s
            continue
        runs.append(f"{start}" if start == prev else f"{start}..{prev}")
        if s is not None:
            start = prev = s
    shown = ", ".join(runs[:limit])
    return shown + (f", and {len(runs) - limit} more run(s)" if len(runs) > limit else "")


def _local_lines(paths: Sequence[str]) -> Iterator[bytes]:
    for path in collect_files(list(paths)):
        for raw in iter_lines(path):
            if raw.terminated and not raw.oversized:
                yield raw.data


def cross_check(report: Report, streams: list[StreamLines], paths: Sequence[str],
                keyring: Keyring) -> None:
    """
    Add findings for lines present on one side only, or different on the two sides.

    Raises:
        FileNotFoundError: a local path does not exist.

    """
    remote = _line_keys((raw for s in streams for raw in s.lines), keyring)
    local = _line_keys(_local_lines(paths), keyring)
    groups = {s.group for s in streams}
    unmirrored = (_unmirrored_local(paths, keyring, f"cloudwatch:{groups.pop()}")
                  if len(groups) == 1 else {})
    where = ", ".join(s.name for s in streams) or "cloudwatch"
    for log_id in sorted(set(remote) | set(local)):
        ours, theirs = local.get(log_id, {}), remote.get(log_id, {})
        if not ours:
            report.add(Finding(Verdict.FILE_MISSING, None,
                               f"log {log_id} is in CloudWatch ({len(theirs)} line(s)) but in "
                               "none of the local files"))
            continue
        if not theirs:
            report.add(Finding(Verdict.GAP, where,
                               f"log {log_id} is in the local files ({len(ours)} line(s)) but "
                               "not in the stream(s)"))
            continue
        # Lines of files whose signed header says they were not mirrored to this group
        # were never sent; the files alone hold them.
        skip = unmirrored.get(log_id, set())
        only_local = sorted(seq for seq in set(ours) - set(theirs) if seq not in skip)
        only_remote = sorted(set(theirs) - set(ours))
        differ = sorted(s for s in set(ours) & set(theirs) if ours[s] != theirs[s])
        if only_local:
            report.add(Finding(Verdict.GAP, where,
                               f"{len(only_local)} line(s) of log {log_id} in the local files "
                               f"are missing from CloudWatch (seq {_ranges(only_local)})",
                               seq=only_local[0]))
        if only_remote:
            report.add(Finding(Verdict.GAP, None,
                               f"{len(only_remote)} line(s) of log {log_id} in CloudWatch are "
                               f"missing from the local files (seq {_ranges(only_remote)})",
                               seq=only_remote[0]))
        if differ:
            report.add(Finding(Verdict.FORK, where,
                               f"{len(differ)} line(s) of log {log_id} differ between CloudWatch "
                               f"and the local files (seq {_ranges(differ)})", seq=differ[0]))
