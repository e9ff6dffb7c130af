r"""
CloudWatch Logs batch building within every PutLogEvents limit, and chunking of big lines.

Neither botocore nor moto enforces these limits, so the sender does, and tests check
every batch it builds with :func:`batch_problems`.

A line too big for one event is split into *chunks*: each chunk is one event whose
message is a JSON header, a newline, then a slice of the line's bytes cut on a UTF-8
boundary::

    {"chunk":1,"of":3,"seq":42,"sha256":"<hex of the whole line>"}\n<slice>

Sealed lines start with ``{"alg":`` and never hold a raw newline, so a reader tells the
two apart at once; the reassembled line is checked against ``sha256`` and then verified
like any other (its own MAC covers every byte), so a chunk needs no MAC of its own.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable
from typing import Final, NamedTuple

__all__ = [
    "CHUNK_PREFIX",
    "EVENT_OVERHEAD",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "MAX_BATCH_SPAN_MS",
    "MAX_EVENT_BYTES",
    "BatchBuilder",
    "Event",
    "batch_problems",
    "event_size",
    "split_line",
]

#: PutLogEvents limits (CloudWatch Logs quotas, April 2025).
MAX_BATCH_EVENTS: Final = 10_000
MAX_BATCH_BYTES: Final = 1_048_576  # UTF-8 message bytes + EVENT_OVERHEAD per event
EVENT_OVERHEAD: Final = 26
MAX_EVENT_BYTES: Final = 1_048_576  # one event, overhead included
MAX_BATCH_SPAN_MS: Final = 24 * 3600 * 1000  # first to last event of one batch
#: Chunk payload size: well under an event, so a chunk and its header always fit.
CHUNK_DATA_BYTES: Final = 512 * 1024
CHUNK_PREFIX: Final = b'{"chunk":'


class Event(NamedTuple):
    """One CloudWatch event as the sender holds it: timestamp (ms) and UTF-8 message bytes."""

    ts_ms: int
    message: bytes


def event_size(event: Event) -> int:
    """Bytes an event counts against a batch."""
    return len(event.message) + EVENT_OVERHEAD


def _utf8_cut(data: bytes, at: int) -> int:
    """The largest cut position <= ``at`` that does not split a UTF-8 sequence."""
    if at >= len(data):
        return len(data)
    while at > 0 and (data[at] & 0xC0) == 0x80:
        at -= 1
    return at


def split_line(line: bytes, seq: int, ts_ms: int) -> list[Event]:
    """
    The events for one sealed line (without its newline): itself, or its chunks.

    Never truncates: a line over :data:`MAX_EVENT_BYTES` becomes ``n`` chunk events that
    carry the whole line's SHA-256 and their position ``i`` of ``n``.
    """
    if len(line) + EVENT_OVERHEAD <= MAX_EVENT_BYTES:
        return [Event(ts_ms, line)]
    pieces: list[bytes] = []
    start = 0
    while start < len(line):
        end = _utf8_cut(line, start + CHUNK_DATA_BYTES)
        if end <= start:  # not UTF-8 at all; a cut anywhere is as good
            end = min(len(line), start + CHUNK_DATA_BYTES)
        pieces.append(line[start:end])
        start = end
    digest = hashlib.sha256(line).hexdigest()
    total = len(pieces)
    return [Event(ts_ms, b'{"chunk":%d,"of":%d,"seq":%d,"sha256":"%s"}\n%s'
                  % (i, total, seq, digest.encode("ascii"), piece))
            for i, piece in enumerate(pieces, 1)]


class ChunkHeader(NamedTuple):
    """The parsed header of a chunk event."""

    position: int
    total: int
    seq: int
    sha256: str


def parse_chunk(message: bytes) -> tuple[ChunkHeader, bytes] | None:
    """Split a chunk event into its header and data, or None if it is not a valid chunk."""
    head, sep, data = message.partition(b"\n")
    if not sep or not head.startswith(CHUNK_PREFIX):
        return None
    try:
        doc = json.loads(head)
    except ValueError:
        return None
    if not isinstance(doc, dict) or set(doc) != {"chunk", "of", "seq", "sha256"}:
        return None
    index, total, seq, digest = doc["chunk"], doc["of"], doc["seq"], doc["sha256"]
    if not all(type(v) is int for v in (index, total, seq)) or not isinstance(digest, str):
        return None
    if not 1 <= index <= total or total > 4096 or len(digest) != 64:
        return None
    return ChunkHeader(index, total, seq, digest), data


class BatchBuilder:
    """
    Collects events into one PutLogEvents batch, refusing any event that would break a limit.

    Events are kept in arrival order and sorted by timestamp (stably) in :meth:`take`,
    because threads stamp records before they take the handler's lock.
    """

    __slots__ = ("_bytes", "_events", "_max_ts", "_min_ts")

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._bytes = 0
        self._min_ts = 0
        self._max_ts = 0

    def __len__(self) -> int:
        return len(self._events)

    def add(self, event: Event) -> bool:
        """Add ``event`` if the batch stays within every limit; False if it would not."""
        size = len(event.message) + EVENT_OVERHEAD
        events = self._events
        if not events:
            self._min_ts = self._max_ts = event.ts_ms
        else:
            if len(events) >= MAX_BATCH_EVENTS or self._bytes + size > MAX_BATCH_BYTES:
                return False
            low = min(self._min_ts, event.ts_ms)
            high = max(self._max_ts, event.ts_ms)
            if high - low > MAX_BATCH_SPAN_MS:
                return False
            self._min_ts, self._max_ts = low, high
        events.append(event)
        self._bytes += size
        return True

    def take(self) -> list[Event]:
        """The batch in timestamp order; the builder is empty afterwards."""
        events = self._events
        self._events = []
        self._bytes = 0
        events.sort(key=_ts)
        return events


def _ts(event: Event) -> int:
    return event.ts_ms


def batch_problems(events: Iterable[Event]) -> list[str]:
    """Every PutLogEvents limit a batch breaks (empty when it is valid): for tests and asserts."""
    batch = list(events)
    problems: list[str] = []
    if not batch:
        return ["empty batch"]
    if len(batch) > MAX_BATCH_EVENTS:
        problems.append(f"{len(batch)} events > {MAX_BATCH_EVENTS}")
    total = sum(event_size(e) for e in batch)
    if total > MAX_BATCH_BYTES:
        problems.append(f"{total} bytes > {MAX_BATCH_BYTES}")
    if any(event_size(e) > MAX_EVENT_BYTES for e in batch):
        problems.append("an event is over the 1 MB event limit")
    if any(a.ts_ms > b.ts_ms for a, b in itertools.pairwise(batch)):
        problems.append("events not in timestamp order")
    if batch[-1].ts_ms - batch[0].ts_ms > MAX_BATCH_SPAN_MS:
        problems.append("batch spans more than 24 hours")
    try:
        for e in batch:
            e.message.decode("utf-8")
    except UnicodeDecodeError:
        problems.append("a message is not valid UTF-8")
    return problems
