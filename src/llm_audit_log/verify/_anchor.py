"""
Placing a file in its log: the first line that verifies, read from a file or a stream.

Also the framing repair (a trailing CR, a leading BOM) that both anchoring and the
per-line checks try before calling a line malformed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from llm_audit_log.keys import MAC_ALG, Keyring
from llm_audit_log.seal import (
    MAX_LINE_BYTES,
    MalformedLineError,
    ParsedLine,
    UnsupportedVersionError,
    parse_line,
)
from llm_audit_log.verify._reader import RawLine, iter_lines

_ANCHOR_SEARCH = 64  # lines read per file, at most, to place it in its log


@dataclass
class _FileInfo:
    path: str
    anchor: ParsedLine | None = None
    size: int = 0
    lines: list[bytes] | None = None  # a virtual file (a CloudWatch stream's lines), not a path
    #: (log id, file index) its first line claims, when that line is a header in a format
    #: version this verifier cannot read (a newer release's file); unverified.
    newer: tuple[str, int, int | None] | None = None
    #: Why the file could not be opened or read (nothing of it was checked), else None.
    unreadable: str | None = None


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


_BOM = b"\xef\xbb\xbf"


def _reframed(data: bytes) -> bytes | None:
    """The line without a trailing CR or leading BOM, if it had either."""
    out = data.removeprefix(_BOM).removesuffix(b"\r")
    return out if len(out) != len(data) else None


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
        except OSError as exc:
            info.unreadable = exc.strerror or type(exc).__name__
            return info
    for raw in _iter_source(info):
        # A file that claims to be a newer release's is read to its end: one line in a
        # version this verifier reads makes it no release's file (rule: versions only go up),
        # so it must not be skipped as "cannot verify" (the walk reports it).
        if raw.number > _ANCHOR_SEARCH and info.newer is None:
            break
        if raw.oversized or not raw.terminated:
            continue
        try:
            line = parse_line(raw.data)
        except UnsupportedVersionError as exc:
            if raw.number == 1 and exc.log_id is not None and exc.file_index is not None:
                info.newer = (exc.log_id, exc.file_index, exc.seq)
            continue
        except MalformedLineError:
            reframed = _reframed(raw.data)
            if reframed is None:
                continue
            try:
                line = parse_line(reframed)
            except MalformedLineError:
                continue
        info.newer = None  # a readable line: not a newer release's file
        if keyring.verify_mac(line.kid, line.mac_input, line.mac) and line.alg == MAC_ALG:
            info.anchor = line
            break
        if raw.number > _ANCHOR_SEARCH:
            break
    return info
