"""Reading the first and last lines of log files, in bounded memory, for restart and retention."""

from __future__ import annotations

import os
from dataclasses import dataclass

from llm_audit_log.keys import Keyring
from llm_audit_log.seal import MAX_LINE_BYTES, MalformedLineError, ParsedLine, parse_line

__all__ = ["Tail", "read_header", "read_tail"]

_TAIL_WINDOW = 4 * MAX_LINE_BYTES


def _verified(raw: bytes, keyring: Keyring, log_id: str | None) -> ParsedLine | None:
    try:
        line = parse_line(raw)
    except MalformedLineError:
        return None
    if log_id is not None and line.log_id != log_id:
        return None
    if not keyring.verify_mac(line.kid, line.mac_input, line.mac):
        return None
    return line


def read_header(path: str, keyring: Keyring) -> ParsedLine | None:
    """The verified header line of ``path``, or None if it has none we can check."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(MAX_LINE_BYTES + 1)
    except OSError:
        return None
    if not first.endswith(b"\n"):
        return None
    line = _verified(first[:-1], keyring, None)
    if line is None or line.kind != "header":
        return None
    return line


@dataclass(frozen=True)
class Tail:
    """The last verifiable line of a file and what follows it (a torn tail after a crash)."""

    last: ParsedLine | None
    good_end: int  # byte offset just after the last good line's newline
    torn: bytes  # whatever follows it (empty after a clean write)
    size: int


def read_tail(path: str, keyring: Keyring, log_id: str) -> Tail:
    """Find the last line of ``log_id`` that verifies, scanning back from the end."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        start = max(0, size - _TAIL_WINDOW)
        fh.seek(start)
        data = fh.read()
    end = len(data)
    pos = data.rfind(b"\n", 0, end)
    while pos != -1:
        line_start = data.rfind(b"\n", 0, pos) + 1
        if line_start == 0 and start > 0:
            break  # the window cut this line; it is older than anything we could use
        line = _verified(data[line_start:pos], keyring, log_id)
        if line is not None:
            good_end = start + pos + 1
            return Tail(last=line, good_end=good_end, torn=data[pos + 1:], size=size)
        pos = line_start - 1 if line_start > 0 else -1
    return Tail(last=None, good_end=0, torn=b"", size=size)
