"""Reading log files line by line in binary, in bounded memory; split on newline bytes only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from llm_audit_log.seal import MAX_LINE_BYTES

__all__ = ["RawLine", "collect_files", "iter_lines"]


@dataclass(frozen=True)
class RawLine:
    """One line as stored: where it starts, its bytes (no newline), and its shape."""

    offset: int
    number: int
    data: bytes
    terminated: bool
    oversized: bool

    @property
    def end(self) -> int:
        """Offset just past this line's newline."""
        return self.offset + len(self.data) + (1 if self.terminated else 0)


def iter_lines(path: str) -> Iterator[RawLine]:
    """Yield every line; an over-long line is skipped (not held in memory) and flagged."""
    with open(path, "rb") as fh:
        offset = 0
        number = 0
        while True:
            chunk = fh.readline(MAX_LINE_BYTES + 1)
            if not chunk:
                return
            number += 1
            if chunk.endswith(b"\n"):
                yield RawLine(offset, number, chunk[:-1], terminated=True, oversized=False)
                offset += len(chunk)
            elif len(chunk) <= MAX_LINE_BYTES:
                yield RawLine(offset, number, chunk, terminated=False, oversized=False)
                offset += len(chunk)
            else:
                total = len(chunk)
                terminated = False
                while True:
                    more = fh.readline(MAX_LINE_BYTES)
                    total += len(more)
                    if not more or more.endswith(b"\n"):
                        terminated = more.endswith(b"\n")
                        break
                yield RawLine(offset, number, b"", terminated=terminated, oversized=True)
                offset += total


def collect_files(paths: list[str]) -> list[str]:
    """
    Expand directories (non-recursively) into their regular, non-hidden files.

    Raises:
        FileNotFoundError: a path does not exist.
        OSError: a directory cannot be listed (permission denied, for example).

    """
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            files.extend(
                entry.path for entry in sorted(os.scandir(path), key=lambda e: e.name)
                if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False))
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(path)
    seen: set[str] = set()
    unique = []
    for f in files:
        real = os.path.realpath(f)
        if real not in seen:
            seen.add(real)
            unique.append(f)
    return unique
