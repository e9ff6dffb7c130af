"""
Stage 1, context: who, when and where a record comes from.

Fills the provenance that no caller may set: a time-ordered unique ``event_id``
(UUIDv7), a UTC ``timestamp`` with microseconds, the host, and configured
``environment`` / ``app_version`` / ``service``. Plain functions, no logging.
"""

from __future__ import annotations

import itertools
import os
import socket
import time

__all__ = ["format_timestamp", "host_name", "new_event_id", "stamp", "utc_now"]

_ts_cache: tuple[int, str] = (-1, "")
_ms_cache: tuple[int, str] = (-1, "")


def format_timestamp(epoch_seconds: float) -> str:
    """ISO-8601 UTC with exactly six fractional digits and ``Z``; cached per second."""
    global _ts_cache  # noqa: PLW0603 - a one-entry cache, replaced atomically
    sec = int(epoch_seconds)
    micros = int((epoch_seconds - sec) * 1_000_000)
    micros = min(micros, 999_999)
    cached_sec, prefix = _ts_cache
    if cached_sec != sec:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        _ts_cache = (sec, prefix)
    return f"{prefix}.{micros:06d}Z"


def stamp(epoch_seconds: float) -> tuple[str, str]:
    """
    The ``timestamp`` and ``event_id`` of a record created at ``epoch_seconds``.

    :func:`format_timestamp` and :func:`new_event_id` in one call, on the hot path: the
    parts that change once a millisecond (the id's time and random fields, the date and
    time of day) are cached, so a record pays for two short formats.
    """
    global _ts_cache, _ms_cache  # noqa: PLW0603 - one-entry caches, replaced atomically
    sec = int(epoch_seconds)
    micros = min(int((epoch_seconds - sec) * 1_000_000), 999_999)
    ms = sec * 1000 + micros // 1000
    cached_ms, id_prefix = _ms_cache
    if cached_ms != ms:
        id_prefix = _id_prefix(ms)
        _ms_cache = (ms, id_prefix)
    cached_sec, prefix = _ts_cache
    if cached_sec != sec:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        _ts_cache = (sec, prefix)
    return f"{prefix}.{micros:06d}Z", f"{id_prefix}{_ids.counter() & 0xFFFFFFFF:08x}"


def utc_now() -> str:
    """The current time in :func:`format_timestamp` form."""
    return format_timestamp(time.time())


class _IdState:
    """Per-process random parts of event ids, drawn again in every forked child."""

    __slots__ = ("counter", "rand_a", "rand_b")

    def __init__(self) -> None:
        self.draw()

    def draw(self) -> None:
        rand = int.from_bytes(os.urandom(8), "big")
        self.rand_a = f"{rand & 0xFFF:03x}"  # 12 bits
        self.rand_b = f"{0x8000 | (rand >> 12) & 0x3FFF:04x}-{(rand >> 26) & 0xFFFF:04x}"
        self.counter = itertools.count(rand >> 42).__next__


_ids = _IdState()


def _reseed_after_fork() -> None:
    """A forked child draws its own random id parts and forgets the parent's id prefix."""
    global _ms_cache  # noqa: PLW0603 - one-entry cache, replaced atomically
    _ids.draw()
    _ms_cache = (-1, "")


os.register_at_fork(after_in_child=_reseed_after_fork)


def new_event_id(epoch_seconds: float | None = None) -> str:
    """
    A UUIDv7 string: sortable by creation time (milliseconds), unique everywhere.

    Besides the timestamp it holds 42 random bits drawn once per process and a 32-bit
    counter (starting at a random value), so ids never repeat within a process and
    collide across processes only if both of those match in the same millisecond.
    ``epoch_seconds`` (a record's creation time) saves reading the clock again.
    """
    ms = time.time_ns() // 1_000_000 if epoch_seconds is None else int(epoch_seconds * 1000)
    return _id_from_ms(ms)


def _id_prefix(ms: int) -> str:
    """Everything in an event id but the counter (fixed for a millisecond in a process)."""
    state = _ids
    return f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7{state.rand_a}-{state.rand_b}"


def _id_from_ms(ms: int) -> str:
    return f"{_id_prefix(ms)}{_ids.counter() & 0xFFFFFFFF:08x}"


_host: str | None = None


def host_name() -> str:
    """Host name of this machine, looked up once."""
    global _host  # noqa: PLW0603 - looked up once per process
    if _host is None:
        _host = socket.gethostname() or "unknown"
    return _host
