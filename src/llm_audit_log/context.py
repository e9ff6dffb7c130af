"""
Stage 1, context: who, when and where a record comes from.

Fills the provenance that no caller may set: a time-ordered unique ``event_id``
(UUIDv7), a UTC ``timestamp`` with microseconds, the host, and configured
``environment`` / ``app_version`` / ``service``. Plain functions, no logging.
"""

from __future__ import annotations

import os
import random
import socket
import time

__all__ = ["format_timestamp", "host_name", "new_event_id", "utc_now"]

_ts_cache: tuple[int, str] = (-1, "")


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


def utc_now() -> str:
    """The current time in :func:`format_timestamp` form."""
    return format_timestamp(time.time())


_rng = random.Random()  # noqa: S311 - uniqueness, not secrecy; reseeded after fork


def _reseed() -> None:
    _rng.seed(os.urandom(16))


_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_event_id() -> str:
    """
    A UUIDv7 string: sortable by creation time (milliseconds), unique everywhere.

    74 random bits per id make a collision among a billion ids in one millisecond
    vanishingly unlikely; order within a log comes from the chain's sequence numbers.
    """
    ms = time.time_ns() // 1_000_000
    rand = _rng.getrandbits(74)
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & _LOW62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_LOW62 = (1 << 62) - 1
_host: str | None = None


def host_name() -> str:
    """Host name of this machine, looked up once."""
    global _host  # noqa: PLW0603 - looked up once per process
    if _host is None:
        _host = socket.gethostname() or "unknown"
    return _host
