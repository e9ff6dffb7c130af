"""
``CloudWatchSink``: a bounded queue and a background sender that never loses a line silently.

Callers ``submit`` sealed lines (under their handler's lock) and return at once. One
daemon thread builds batches within every PutLogEvents limit (:mod:`._batching`) and
puts them. A failed put (throttling, network, 5xx, missing stream) moves the batch to
the durable spill (:mod:`._spill`); while anything is spilled, newer batches are
spilled behind it and the spill is replayed, oldest first, with exponential backoff
and jitter. Events the service rejects (too old, too new, expired) become *gap
reports* that the owning handler turns into signed ``gap`` lines.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

from llm_audit_log.errors import ConfigurationError
from llm_audit_log.sinks._batching import BatchBuilder, Event, parse_chunk, split_line
from llm_audit_log.sinks._delivery import Delivery, Outcome, render_stream_name
from llm_audit_log.sinks._spill import Spill

__all__ = ["IGNORED_LOGGERS", "CloudWatchSink", "is_ignored"]

#: Records from these loggers never reach our handlers (they would feed the sender itself).
IGNORED_LOGGERS: Final = ("botocore", "boto3", "urllib3", "s3transfer", "moto", "werkzeug")
ON_FULL_POLICIES: Final = ("block", "spill")
DEFAULT_SPILL_DIR: Final = "audit-logs/.cloudwatch-spill"
_WAKE_AT: Final = 1024  # queued lines that wake the sender before its interval
_MAX_GAP_LINES: Final = 1000  # rejected lines listed one by one in a gap report
#: How long close() waits for the sender past its deadline before spilling what it holds.
_JOIN_SLACK: Final = 1.0

_local = threading.local()
_live: weakref.WeakSet[CloudWatchSink] = weakref.WeakSet()


class _Abandoned(BaseException):  # a signal to the sender thread, not an error
    """Raised in the sender thread when close() gave up on it: it must stop at once."""


def is_ignored(name: str) -> bool:
    """Whether a record must not reach a handler with a CloudWatch sink (recursion guard)."""
    if getattr(_local, "sending", False):
        return True
    return name.startswith(IGNORED_LOGGERS) and (
        name.partition(".")[0] in IGNORED_LOGGERS)


def _after_fork_in_child() -> None:
    for sink in list(_live):
        sink._forget_after_fork()  # noqa: SLF001 - the module's own fork hook


def close_when_a_process_child_exits(handler: logging.Handler) -> None:
    """
    In a forked child: close ``handler`` when a ``multiprocessing`` child ends.

    Such children leave by ``os._exit``: no atexit hook and no ``logging.shutdown`` runs,
    so queued lines would be lost. multiprocessing runs its own finalizers first; they are
    cleared at the child's start, so one is registered from its after-fork callbacks. For
    a plain ``os.fork()`` child nothing happens here (it exits through atexit as usual).
    """
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.register_after_fork(handler, _close_at_exit)


def _close_at_exit(handler: logging.Handler) -> None:
    import multiprocessing.util  # noqa: PLC0415 - loaded already: this runs from it

    multiprocessing.util.Finalize(handler, handler.close, exitpriority=0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
            value == 0 and not allow_zero):
        raise ConfigurationError(f"{name} must be a positive number")
    return float(value)


class CloudWatchSink:
    """
    Ship sealed lines to one CloudWatch Logs stream from a background thread.

    Args:
        log_group: the log group name.
        stream_name: template with ``{host}``, ``{pid}``, ``{date}`` (UTC), ``{logger}``
            and ``{rand}``; rendered again in a forked child.
        region / endpoint_url / profile: for the boto3 client (default: the AWS chain).
        client_factory: instead of the three above, a callable returning a ``logs`` client.
        create_group / create_stream: create them if missing (the group with
            ``retention_days`` and ``kms_key_id``); otherwise they must exist.
        queue_size: lines held in memory; past it ``on_full`` applies.
        on_full: ``"block"`` (wait up to ``block_timeout`` s for room, then spill) or
            ``"spill"`` (write to the spill at once). Nothing is dropped silently.
        send_interval: the longest a line waits in memory before its batch is sent (s).
        spill_dir: directory of the durable spill (0700; files 0600).
        max_backoff: the longest wait between retries (s); retries start at 0.1 s.
        flush_timeout / close_timeout: defaults for :meth:`flush` and :meth:`close` (s).
        logger_name: the ``{logger}`` of the template.

    """

    def __init__(
        self,
        log_group: str,
        stream_name: str = "{host}-{date}-{pid}-{rand}",
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
        client_factory: Callable[[], Any] | None = None,
        create_group: bool = False,
        create_stream: bool = True,
        retention_days: int | None = None,
        kms_key_id: str | None = None,
        queue_size: int = 100_000,
        on_full: str = "block",
        block_timeout: float = 1.0,
        send_interval: float = 1.0,
        spill_dir: str | os.PathLike[str] = DEFAULT_SPILL_DIR,
        max_backoff: float = 20.0,
        flush_timeout: float = 10.0,
        close_timeout: float = 10.0,
        logger_name: str = "audit",
    ) -> None:
        if not isinstance(log_group, str) or not 1 <= len(log_group) <= 512:
            raise ConfigurationError("log_group must be a CloudWatch log group name")
        if not isinstance(stream_name, str) or not stream_name:
            raise ConfigurationError("stream_name must be a non-empty template string")
        if client_factory is not None and (region or endpoint_url or profile):
            raise ConfigurationError("give client_factory or region/endpoint_url/profile, "
                                     "not both")
        if client_factory is not None and not callable(client_factory):
            raise ConfigurationError("client_factory must be callable")
        if on_full not in ON_FULL_POLICIES:
            raise ConfigurationError(f"on_full must be one of {ON_FULL_POLICIES}, not "
                                     f"{on_full!r}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigurationError("queue_size must be a positive integer")
        self.log_group = log_group
        self.stream_template = stream_name
        self.logger_name = logger_name
        self.queue_size = queue_size
        self.on_full = on_full
        self.block_timeout = _positive("block_timeout", block_timeout, allow_zero=True)
        self.send_interval = _positive("send_interval", send_interval)
        self.max_backoff = _positive("max_backoff", max_backoff)
        self.flush_timeout = _positive("flush_timeout", flush_timeout, allow_zero=True)
        self.close_timeout = _positive("close_timeout", close_timeout, allow_zero=True)
        self.spill_dir = os.path.abspath(os.fspath(spill_dir))
        self._destination = hashlib.sha256(
            f"{endpoint_url or ''}\0{region or ''}\0{profile or ''}\0{log_group}\0"
            f"{'factory' if client_factory else ''}".encode()).hexdigest()[:12]
        self._delivery = Delivery(
            log_group, region=region, endpoint_url=endpoint_url, profile=profile,
            client_factory=client_factory, create_group=create_group,
            create_stream=create_stream, retention_days=retention_days, kms_key_id=kms_key_id,
            report=self._report)
        self.counters: dict[str, int] = {}
        self._reset_state()
        _live.add(self)
        self._start()

    def _reset_state(self) -> None:
        self.stream_name = render_stream_name(self.stream_template, self.logger_name)
        self.counters = dict.fromkeys(
            ("submitted", "sent", "calls", "retried", "spilled", "rejected", "dropped",
             "chunked"), 0)
        self._q: deque[tuple[bytes, int, int]] = deque()
        self._wake = threading.Event()
        self._space = threading.Event()
        self._cv = threading.Condition(threading.Lock())
        self._busy = False
        self._stopping = False
        self._closed = False
        self._flush_requested = False
        self._deadline = float("inf")
        self._backoff = 0.0
        self._retry_at = 0.0
        self._thread: threading.Thread | None = None
        self._builder = BatchBuilder()
        #: The batch a put is sending now, unless it came from the spill (it is still there).
        self._inflight: list[Event] | None = None
        #: The rest of a line whose events did not fit the batch now in flight.
        self._pending: list[Event] = []
        self._abandoned = False
        self._spill = Spill(self.spill_dir, self._destination)
        self._gaps: list[dict[str, Any]] = []
        self._reported: set[str] = set()

    def __repr__(self) -> str:
        return f"<CloudWatchSink {self.log_group}/{self.stream_name}>"

    # -- the caller's side ---------------------------------------------------------------------
    def submit(self, line: bytes, seq: int, ts_ms: int) -> None:
        """Queue one sealed line (newline optional); never raises, never drops silently."""
        if line.endswith(b"\n"):
            line = line[:-1]
        if self._thread is None:
            if self._closed:
                self._overflow((line, seq, ts_ms), spill_now=True)
                return
            self._start()
        q = self._q
        self.counters["submitted"] += 1
        if len(q) >= self.queue_size:
            self._overflow((line, seq, ts_ms), spill_now=self.on_full == "spill")
            return
        q.append((line, seq, ts_ms))
        if len(q) == _WAKE_AT:
            self._wake.set()

    def _overflow(self, item: tuple[bytes, int, int], *, spill_now: bool) -> None:
        if not spill_now and self._thread is not None:
            deadline = time.monotonic() + self.block_timeout
            while len(self._q) >= self.queue_size:
                self._space.clear()
                self._wake.set()
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._space.wait(min(left, 0.05))
            if len(self._q) < self.queue_size:
                self._q.append(item)
                return
        events = split_line(*item)
        try:
            self._spill.append(self.log_group, self.stream_name, events)
        except Exception as exc:
            self.counters["dropped"] += 1
            self._report(f"could not spill a line ({type(exc).__name__}); it is lost",
                         key=None)
            return
        self.counters["spilled"] += len(events)

    def take_gap_reports(self) -> list[dict[str, Any]]:
        """Gap reports for the owning handler to seal as ``gap`` lines (and forget)."""
        with self._cv:
            gaps, self._gaps = self._gaps, []
        return gaps

    @property
    def has_gap_reports(self) -> bool:
        """Cheap check for the handler's hot path."""
        return bool(self._gaps)

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything now; True once all lines are delivered, False at ``timeout`` (s)."""
        if self._thread is None:
            return not self._q and not self._spill.pending
        wait = self.flush_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        with self._cv:
            self._flush_requested = True
            self._wake.set()
            while not self._idle():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.1))
                self._wake.set()
            return True

    def close(self, timeout: float | None = None) -> bool:
        """Deliver (or spill) everything, stop the sender; True if all was delivered."""
        if self._closed:
            return self._idle()
        wait = self.close_timeout if timeout is None else timeout
        thread = self._thread
        self._closed = True
        if thread is not None:
            self._deadline = time.monotonic() + wait
            self._stopping = True
            self._wake.set()
            thread.join(wait + _JOIN_SLACK)
            self._thread = None
            if thread.is_alive():  # a put that does not answer: keep its lines in the spill
                self._abandon()
        delivered = self._idle()
        self._spill.close()
        self._delivery.close()
        return delivered

    def _abandon(self) -> None:
        """
        The sender is stuck past the deadline (a put that hangs): spill what it held.

        The batch in flight, the batch being built, the rest of the line that did not fit
        it, and the queue go to the spill in that order, for the next start to replay; if
        the stuck put succeeds after all, the replay repeats lines byte for byte, which the
        verifier takes as a retried put. The thread, when its put returns, stops without
        touching anything (it checks between lines too; a put that returns in the instant
        close() gives up may still leave a line to both, which only repeats it).
        """
        self._abandoned = True
        self._report(f"a PutLogEvents call did not answer within the close timeout; its "
                     f"lines and the {len(self._q)} queued are spilled for the next start",
                     key=None)
        inflight, self._inflight = self._inflight, None
        if inflight:
            self._to_spill(self.log_group, self.stream_name, inflight)
        if len(self._builder):
            self._to_spill(self.log_group, self.stream_name, self._builder.take())
        pending, self._pending = self._pending, []
        events: list[Event] = list(pending)
        while self._q:
            events.extend(split_line(*self._q.popleft()))
        if events:
            self._to_spill(self.log_group, self.stream_name, events)
        self._busy = False

    def _idle(self) -> bool:
        return not self._q and not self._busy and not self._spill.pending

    # -- the sender thread ---------------------------------------------------------------------
    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name=f"llm-audit-cloudwatch-{id(self):x}",
                                  daemon=True)
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        try:
            self._loop()
        except _Abandoned:
            return  # close() spilled what this thread held; touch nothing more

    def _loop(self) -> None:
        _local.sending = True
        builder = self._builder
        started = 0.0
        try:
            self._spill.adopt_orphans()
        except OSError as exc:
            self._report(f"cannot read the spill directory ({type(exc).__name__})")
        while True:
            if not (self._q or self._stopping or self._flush_requested):
                wait = self.send_interval if not len(builder) else max(
                    0.0, started + self.send_interval - time.monotonic())
                if self._spill.pending:
                    wait = min(wait, max(0.0, self._retry_at - time.monotonic()))
                self._wake.wait(wait)
            self._wake.clear()
            with self._cv:
                self._busy = True
                force = self._flush_requested or self._stopping
                self._flush_requested = False
            try:
                q = self._q
                while q:
                    self._stop_if_abandoned()
                    line, seq, ts_ms = q.popleft()
                    events = split_line(line, seq, ts_ms)
                    if len(events) > 1:
                        self.counters["chunked"] += 1
                    for index, event in enumerate(events):
                        if not len(builder):
                            started = time.monotonic()
                        if not builder.add(event):
                            # Held only here while the full batch goes out: close() must be
                            # able to spill them if that put hangs.
                            self._pending = events[index:]
                            self._deliver(builder.take())
                            self._pending = []
                            started = time.monotonic()
                            builder.add(event)
                    if len(q) < self.queue_size:
                        self._space.set()
                self._space.set()
                if len(builder) and (force or time.monotonic() - started >= self.send_interval):
                    self._deliver(builder.take())
                self._replay()
            except Exception as exc:  # never let the thread die: report and go on
                self._report(f"sender error ({type(exc).__name__})")
            with self._cv:
                self._busy = bool(len(builder))
                self._cv.notify_all()
            if self._stopping and not self._q and not len(builder):
                if not self._spill.pending or time.monotonic() >= self._deadline - 1.0 \
                        or self._retry_at > self._deadline:
                    return
                time.sleep(min(0.05, max(0.0, self._retry_at - time.monotonic())))

    def _stop_if_abandoned(self) -> None:
        if self._abandoned:  # close() has spilled what this thread held
            raise _Abandoned

    def _near_deadline(self) -> bool:
        return self._stopping and time.monotonic() >= self._deadline - 1.0

    def _deliver(self, events: list[Event]) -> None:
        """Put a batch, or spill it (behind anything already spilled, to keep order)."""
        if self._spill.pending or time.monotonic() < self._retry_at or self._near_deadline():
            self._to_spill(self.log_group, self.stream_name, events)
            return
        self._inflight = events
        sent = self._put(self.log_group, self.stream_name, events)
        self._inflight = None
        if not sent:
            self._to_spill(self.log_group, self.stream_name, events)

    def _replay(self) -> None:
        """Send spilled batches, oldest first, until one fails or the spill is empty."""
        while time.monotonic() >= self._retry_at and not self._near_deadline():
            batch = self._spill.next_batch()
            if batch is None:
                return
            if not self._put(batch.group, batch.stream, batch.events):
                return
            self._spill.ack(batch)

    def _to_spill(self, group: str, stream: str, events: list[Event]) -> None:
        try:
            self._spill.append(group, stream, events)
        except Exception as exc:
            self.counters["dropped"] += len(events)
            self._report(f"could not spill {len(events)} event(s) ({type(exc).__name__}); "
                         "they are lost", key=None)
            return
        self.counters["spilled"] += len(events)

    def _put(self, group: str, stream: str, events: list[Event]) -> bool:
        """One PutLogEvents call; True when the batch is settled (stored or reported rejected)."""
        self.counters["calls"] += 1
        result = self._delivery.put(group, stream, events)
        self._stop_if_abandoned()
        if result.outcome is Outcome.RETRY:
            self.counters["retried"] += 1
            self._backoff = min(self.max_backoff, self._backoff * 2 if self._backoff else 0.1)
            half = self._backoff / 2
            self._retry_at = time.monotonic() + half + random.uniform(0, half)  # noqa: S311
            self._report(f"PutLogEvents failed ({result.detail}); spilling and retrying "
                         "with backoff", key=result.detail)
            return False
        self._backoff = 0.0
        self._retry_at = 0.0
        rejected = result.rejected
        self.counters["sent"] += len(events) - sum(len(v) for v in rejected.values())
        if rejected:
            self._note_rejected(group, stream, events, rejected)
        return True

    def _note_rejected(self, group: str, stream: str, events: list[Event],
                       rejected: Mapping[str, list[int]]) -> None:
        for reason, indexes in rejected.items():
            self.counters["rejected"] += len(indexes)
            listed = [_describe(events[i].message) for i in indexes[:_MAX_GAP_LINES]]
            report = {"sink": "cloudwatch", "log_group": group, "log_stream": stream,
                      "reason": reason, "count": len(indexes), "lines": listed}
            with self._cv:
                self._gaps.append(report)
        self._report(f"CloudWatch rejected {sum(len(v) for v in rejected.values())} "
                     "event(s); a signed gap record will say which", key=None)

    def _report(self, message: str, key: str | None = "") -> None:
        """One line on stderr, without payload; repeated messages are shown once."""
        if key is not None:
            if key in self._reported:
                return
            self._reported.add(key or message)
        if sys.stderr is None:
            return
        with contextlib.suppress(Exception):
            sys.stderr.write(f"llm-audit-log: CloudWatch {self.log_group}/{self.stream_name}: "
                             f"{message}\n")

    def _forget_after_fork(self) -> None:
        """In a forked child: own client, queue, thread, spill file and stream name."""
        self._spill.forget_after_fork()
        self._delivery.forget_after_fork()
        self._reset_state()
        self._thread = None  # started by the child's first submit


def _describe(message: bytes) -> dict[str, Any]:
    """Which line a rejected event held: log id, seq and the line's SHA-256."""
    import hashlib  # noqa: PLC0415 - only on this rare path

    chunk = parse_chunk(message)
    if chunk is not None:
        header, _ = chunk
        return {"seq": header.seq, "sha256": header.sha256, "chunk": header.position}
    seq_at = message.rfind(b',"seq":')
    log_at = message.rfind(b',"log":"')
    seq: int | None = None
    log: str | None = None
    if seq_at != -1:
        end = message.find(b",", seq_at + 7)
        with contextlib.suppress(ValueError):
            seq = int(message[seq_at + 7:end])
    if log_at != -1:
        end = message.find(b'"', log_at + 8)
        log = message[log_at + 8:end].decode("ascii", "replace")
    return {"log": log, "seq": seq, "sha256": hashlib.sha256(message).hexdigest()}

