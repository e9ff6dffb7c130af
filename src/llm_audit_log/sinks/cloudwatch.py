"""
Shipping sealed lines to CloudWatch Logs, without ever losing one silently.

Two ways to use it, both from dictConfig:

* ``CloudWatchHandler``: CloudWatch only. The handler owns its chain, exactly as
  :class:`~llm_audit_log.sinks.files.AuditFileHandler` does: a ``header`` line starts every
  stream, events follow, a ``footer`` ends it on a clean close. With ``encrypt``, bodies
  are encrypted as in files, under a data key per time window (``key_window``): each window
  is closed by a ``footer`` and opened by a ``header`` that carries the next wrapped key,
  so a stream reads like a rotated set of files and the key of a past window is erased.
* ``AuditFileHandler(..., cloudwatch={...})``: one chain, two sinks. Every line written to
  the files is also submitted to a :class:`CloudWatchSink`, byte for byte, so each copy
  verifies on its own and the two can be cross-checked (``llm-audit verify --against``).

``emit`` only seals and queues; a background thread batches within every service limit,
spills to a local file through throttling and outages, and replays in order. Events the
service rejects become signed ``gap`` lines. The counters (``submitted``, ``sent``,
``calls``, ``retried``, ``spilled``, ``rejected``, ``dropped``, ``chunked``) are exposed.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any, Final

from llm_audit_log.context import format_timestamp, host_name, utc_now
from llm_audit_log.errors import ConfigurationError, DataKeyError
from llm_audit_log.filter import STATE_ATTR, AuditFilter
from llm_audit_log.formatter import AuditFormatter, format_body
from llm_audit_log.keys import DEFAULT_KEYRING_SOURCE, Keyring, load_keyring
from llm_audit_log.seal import GENESIS_PREV, MAX_BODY_BYTES, Chain, LineKind, dumps_canonical
from llm_audit_log.sinks._encryption import FileEncryption, build_encryption
from llm_audit_log.sinks._retention import _retention_days
from llm_audit_log.sinks._sender import (
    CloudWatchSink,
    close_when_a_process_child_exits,
    is_ignored,
)
from llm_audit_log.sinks._stderr import report_on_stderr

__all__ = ["CloudWatchHandler", "CloudWatchSink", "install_sigterm_drain", "sink_from_config"]

_LIBRARY: Final = "llm-audit-log/1"
_SINK_OPTIONS: Final = frozenset({
    "log_group", "stream_name", "region", "endpoint_url", "profile", "client_factory",
    "create_group", "create_stream", "retention", "kms_key_id", "queue_size", "on_full",
    "block_timeout", "send_interval", "spill_dir", "max_backoff", "flush_timeout",
    "close_timeout", "drain_on_sigterm"})

#: Default life of one data key on a stream (seconds), and the wait before retrying a
#: key the recipient (KMS) could not give: the current key stays in use meanwhile.
_KEY_WINDOW: Final = 3600.0
_MIN_KEY_WINDOW: Final = 60.0
_KEY_RETRY_SECONDS: Final = 60.0

_live_handlers: weakref.WeakSet[CloudWatchHandler] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for handler in list(_live_handlers):
        handler._chain = None  # noqa: SLF001 - the child starts a log of its own
        if handler._encryption is not None:  # noqa: SLF001
            handler._encryption.erase()  # noqa: SLF001 - and never uses the parent's key
            handler._encryption.recipient.forget_after_fork()  # noqa: SLF001 - or KMS client
        # The parent's window thread is not here; its event may have been copied mid-use.
        handler._window_stop = threading.Event()  # noqa: SLF001
        handler._window_thread = None  # noqa: SLF001
        close_when_a_process_child_exits(handler)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def sink_from_config(options: Mapping[str, Any], *, logger_name: str,
                     default_spill_dir: str | None = None) -> tuple[CloudWatchSink, bool]:
    """
    Build a sink from a (dictConfig) mapping, copied item by item; returns it and drain_on_sigterm.

    Raises:
        ConfigurationError: an unknown or bad option.

    """
    config = {key: options[key] for key in list(options)}  # ConvertingDict: resolve ext://
    unknown = set(config) - _SINK_OPTIONS
    if unknown:
        raise ConfigurationError(f"cloudwatch: unknown option(s) {sorted(unknown)}; expected "
                                 f"some of {sorted(_SINK_OPTIONS)}")
    if "log_group" not in config:
        raise ConfigurationError("cloudwatch: log_group is required")
    drain = config.pop("drain_on_sigterm", False)
    if not isinstance(drain, bool):
        raise ConfigurationError("cloudwatch: drain_on_sigterm must be true or false")
    config["retention_days"] = _retention_days(config.pop("retention", None))
    if default_spill_dir is not None:
        config.setdefault("spill_dir", default_spill_dir)
    return CloudWatchSink(logger_name=logger_name, **config), drain


def install_sigterm_drain(drain: Callable[[], object]) -> bool:
    """
    On SIGTERM, run ``drain`` first, then whatever handled SIGTERM before.

    With the default action before, the process exits through ``SystemExit`` (143), so
    ``atexit`` and ``logging.shutdown`` still close every handler. Only the main thread can
    install signal handlers; elsewhere nothing is installed and False is returned.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        try:
            drain()
        finally:
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    return True


class CloudWatchHandler(logging.Handler):
    """
    Seal audit records and ship them to CloudWatch Logs (no local files).

    Each handler (and each forked child) writes one log, with its own log id, into one
    stream: a ``header`` line first, a ``footer`` on :meth:`close`. Stream order is never
    trusted: every line carries its sequence number and the previous line's hash.

    Args:
        log_group: the log group name.
        stream_name: template with ``{host}``, ``{pid}``, ``{date}``, ``{logger}``, ``{rand}``.
        keyring: key source for signing (``env:VAR``, ``file:PATH``...).
        retention: days or a retention class, applied when ``create_group`` creates the group
            (rounded up to a value CloudWatch allows).
        drain_on_sigterm: on SIGTERM, deliver (or spill) what is queued, then chain to the
            previous SIGTERM handler.
        encrypt: ``None`` (clear), ``"auditor"`` or ``"kms"``, as for
            :class:`~llm_audit_log.AuditFileHandler`; the spill file then holds ciphertext too.
        clear_fields: body fields also kept in clear (default ``event_type``, ``timestamp``,
            ``status``); only with ``encrypt``.
        encrypt_kms_key_id: the KMS key for ``encrypt="kms"`` data keys (``kms_key_id`` is the
            log group's own encryption key, applied when ``create_group`` creates it).
        kms_region / kms_endpoint_url / kms_client_factory: the KMS client, as for files.
        key_window: seconds one data key is used before the next window's key (default 3600).
        Other keywords go to :class:`CloudWatchSink` (client, limits, queue, spill, timeouts).

    .. versionadded:: 0.3
    .. versionadded:: 0.4 *encrypt*, *clear_fields*, *encrypt_kms_key_id*, *kms_region*,
       *kms_endpoint_url*, *kms_client_factory*, *key_window*

    """

    def __init__(
        self,
        log_group: str,
        stream_name: str = "{host}-{date}-{pid}-{rand}",
        *,
        keyring: str | Keyring = DEFAULT_KEYRING_SOURCE,
        level: int | str = logging.NOTSET,
        retention: int | str | None = None,
        drain_on_sigterm: bool = False,
        logger_name: str = "audit",
        encrypt: str | None = None,
        clear_fields: Sequence[str] | None = None,
        encrypt_kms_key_id: str | None = None,
        kms_region: str | None = None,
        kms_endpoint_url: str | None = None,
        kms_client_factory: Callable[[], Any] | None = None,
        key_window: float = _KEY_WINDOW,
        **sink_options: Any,
    ) -> None:
        super().__init__(level)
        unknown = set(sink_options) - _SINK_OPTIONS
        if unknown:
            raise ConfigurationError(f"CloudWatchHandler: unknown option(s) {sorted(unknown)}")
        if isinstance(key_window, bool) or not isinstance(key_window, (int, float)) \
                or not _MIN_KEY_WINDOW <= key_window <= 7 * 86400:
            raise ConfigurationError("CloudWatchHandler: key_window must be seconds, at least 60 "
                                     "and at most 604800 (a week)")
        self._keyring = load_keyring(keyring)
        self._encryption: FileEncryption | None = build_encryption(
            encrypt, self._keyring, kms_key_id=encrypt_kms_key_id, clear_fields=clear_fields,
            kms_region=kms_region, kms_endpoint_url=kms_endpoint_url,
            kms_client_factory_=kms_client_factory)
        self._key_window = float(key_window)
        self._window_end = 0.0  # wall clock (covers suspend) ...
        self._window_deadline = 0.0  # ... and monotonic (a clock stepped back cannot extend it)
        self._window_index = 1
        self._window_thread: threading.Thread | None = None
        self._window_stop = threading.Event()
        self._closed = False
        #: A new log with no data key yet (KMS down, e.g. in a forked child): when to try
        #: again, and how many records were lost meanwhile (declared in the next header).
        self._open_retry_at = 0.0
        self._lost_without_key = 0
        self._fallback = AuditFilter(keyring=self._keyring)
        self.formatter = AuditFormatter()
        self.sink = CloudWatchSink(log_group, stream_name, logger_name=logger_name,
                                   retention_days=_retention_days(retention), **sink_options)
        self._chain: Chain | None = None
        self._lines = 0
        _live_handlers.add(self)
        if drain_on_sigterm:
            install_sigterm_drain(self._drain_for_exit)
        if self._encryption is not None:
            self._open()  # the first data key now: a recipient that fails, fails configuration

    def __repr__(self) -> str:
        kid = self._chain.kid if self._chain else self._keyring.active_kid
        return (f"<{type(self).__name__} {self.sink.log_group}/{self.sink.stream_name} "
                f"kid={kid} ({logging.getLevelName(self.level)})>")

    @property
    def counters(self) -> dict[str, int]:
        """A snapshot of the sink's counters."""
        return dict(self.sink.counters)

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        """Only :class:`AuditFormatter` (or a subclass) produces bodies we can seal."""
        if fmt is not None and not isinstance(fmt, AuditFormatter):
            raise ConfigurationError(
                "CloudWatchHandler needs an AuditFormatter (or subclass) as its formatter")
        super().setFormatter(fmt or AuditFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        """Process (if no AuditFilter ran), format, seal and queue one line."""
        if is_ignored(record.name):
            return
        try:
            if STATE_ATTR not in record.__dict__ and not self._fallback.filter(record):
                return
            source: dict[str, Any] | None = None
            try:
                body: str | bytes = format_body(self, record)
            except Exception as exc:
                source = self._fallback.rejected_body(
                    record, [("", f"formatting failed ({type(exc).__name__})")])
                body = dumps_canonical(source)
            if len(body) > MAX_BODY_BYTES:  # a line the verifier could not read back
                source = self._fallback.rejected_body(
                    record, [("", f"record too large to seal ({len(body)} bytes)")])
                body = dumps_canonical(source)
            if self._chain is None and not self._open_or_count():
                return
            if self.sink.has_gap_reports:
                self._write_gaps()
            state_body = record.__dict__[STATE_ATTR].body
            if self._encryption is not None:
                self._emit_encrypted(body, source, state_body)
                if self._closed:  # no window thread after close: never leave a key alive
                    self._end_log()
                return
            self._write(LineKind.EVENT, body, state_body.get("timestamp"))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _open_or_count(self) -> bool:
        """
        Start a log; without a data key, count the record as lost instead (False).

        Retried at most once per ``_KEY_RETRY_SECONDS``, so an outage costs no KMS call per
        record under the lock; the next log's header declares the count (``lost_records``),
        which the verifier reports as loss.
        """
        if time.monotonic() < self._open_retry_at:
            self._lost_without_key += 1
            self.sink.counters["dropped"] += 1
            return False
        try:
            self._open()
        except DataKeyError as exc:
            self._open_retry_at = time.monotonic() + _KEY_RETRY_SECONDS
            self._lost_without_key += 1
            self.sink.counters["dropped"] += 1
            self._report(f"no data key for a new log ({type(exc).__name__}); records are "
                         f"counted as lost until a retry in {_KEY_RETRY_SECONDS:g} s")
            return False
        return True

    def _emit_encrypted(self, body: str | bytes, rejected: dict[str, Any] | None,
                        state_body: Mapping[str, Any]) -> None:
        """Encrypt for the chain's next position, under the current window's key."""
        encryption = self._encryption
        assert encryption is not None
        chain = self._chain
        assert chain is not None
        if self._window_over():
            # For KMS the window thread fetches the next key outside the lock; until it has,
            # events keep the current key rather than wait on the network (unless no thread
            # is running). A local (auditor) key is made at once.
            thread = self._window_thread
            if not encryption.recipient.remote or thread is None or not thread.is_alive() \
                    or encryption.ready(chain.log_id, self._window_index + 1):
                self._next_window()
        ts = state_body.get("timestamp") or utc_now()
        if rejected is None:
            source: Mapping[str, Any] = state_body
            static: Mapping[str, Any] = getattr(self.formatter, "static_fields", None) or {}
        else:
            source, static = rejected, {}
        self._write(LineKind.EVENT, encryption.event_body(body, source, static, chain, ts), ts)

    def _next_window(self) -> None:
        """Close this key's window (footer) and open the next (header with the new key)."""
        encryption, chain = self._encryption, self._chain
        assert encryption is not None
        assert chain is not None
        index = self._window_index + 1
        try:
            encryption.prepare(chain.log_id, index)  # at once if the window thread fetched it
        except DataKeyError as exc:  # keep the current key rather than lose records
            self._retry_window_later(exc)
            return
        self._write_body(LineKind.FOOTER, {
            "file_index": self._window_index, "reason": "rotate", "next_file_index": index,
            "lines": self._lines + 1})
        self._start_window(index, "rotate", self._window_index)

    def _start_window(self, index: int, reason: str, prev_index: int | None) -> None:
        chain = self._chain
        assert chain is not None
        header: dict[str, Any] = {
            "file_index": index, "name": self.sink.stream_name, "reason": reason,
            "prev_file_index": prev_index, "host": host_name(), "pid": os.getpid(),
            "library": _LIBRARY, "sink": "cloudwatch", "log_group": self.sink.log_group}
        if self._lost_without_key:
            header["lost_records"] = self._lost_without_key
            self._lost_without_key = 0
        if self._encryption is not None:
            header["encryption"] = self._encryption.activate(chain.log_id, index)
            self._window_end = time.time() + self._key_window
            self._window_deadline = time.monotonic() + self._key_window
            self._ensure_window_thread()
        self._window_index = index
        self._lines = 0
        self._write_body(LineKind.HEADER, header)

    def _ensure_window_thread(self) -> None:
        """
        Close windows on time, events or not: a past window's key must not outlive it.

        One daemon thread per handler (started again in a forked child) looks at least
        once a second; it never waits on the handler's lock while holding anything else.
        """
        thread = self._window_thread
        if self._closed or (thread is not None and thread.is_alive()):
            return
        self._window_stop = threading.Event()
        thread = threading.Thread(target=self._window_loop, args=(self._window_stop,),
                                  name="llm-audit-key-window", daemon=True)
        self._window_thread = thread
        thread.start()

    def _window_over(self) -> bool:
        return time.time() >= self._window_end or time.monotonic() >= self._window_deadline

    def _retry_window_later(self, exc: Exception) -> None:
        self._window_end = time.time() + _KEY_RETRY_SECONDS
        self._window_deadline = time.monotonic() + _KEY_RETRY_SECONDS
        self._report(f"cannot get the next data key ({type(exc).__name__}); keeping the "
                     f"current one and retrying in {_KEY_RETRY_SECONDS:g} s")

    def _window_loop(self, stop: threading.Event) -> None:
        """
        End each window on time; fetch the next key first, outside the handler's lock.

        The fetch may be a KMS call: made here, it never holds up a logging call. Only the
        swap (footer, header, erasing the old key) happens under the lock.
        """
        encryption = self._encryption
        assert encryption is not None
        while not stop.wait(min(max(min(self._window_end - time.time(),
                                        self._window_deadline - time.monotonic()), 0.05), 1.0)):
            chain, index = self._chain, self._window_index + 1
            if chain is None or not self._window_over():
                continue
            try:
                key, wrap = encryption.recipient.new_data_key(chain.log_id, index)
            except Exception as exc:  # a KMS outage must not kill the thread
                with self.lock:  # type: ignore[union-attr]
                    self._retry_window_later(exc)
                continue
            with self.lock:  # type: ignore[union-attr]
                if stop.is_set() or self._chain is None:
                    key.erase()
                    return
                if self._chain is not chain or self._window_index + 1 != index \
                        or not self._window_over():
                    key.erase()  # an event got there first
                    continue
                encryption.offer(chain.log_id, index, key, wrap)
                try:
                    self._next_window()
                except Exception as exc:  # never let the thread die silently
                    self._retry_window_later(exc)

    def _report(self, message: str) -> None:
        report_on_stderr(f"{type(self).__name__}({self.sink.log_group})", message)

    def _write(self, kind: str, body: str | bytes, ts: str | None = None) -> None:
        chain = self._chain
        assert chain is not None
        now = time.time()
        line, line_hash = chain.seal(kind, body, ts or format_timestamp(now))
        seq = chain.next_seq
        chain.advance(line_hash)
        self._lines += 1
        self.sink.submit(line, seq, int(now * 1000))

    def _write_body(self, kind: str, body: dict[str, Any]) -> None:
        body.setdefault("timestamp", utc_now())
        self._write(kind, dumps_canonical(body))

    def _open(self) -> None:
        keyring = self._keyring
        active = keyring.active_kid
        chain = Chain(log_id=f"L{secrets.token_hex(10)}", next_seq=0, prev_hash=GENESIS_PREV,
                      kid=active, mac=keyring.mac_function(active))
        if self._encryption is not None:  # may raise DataKeyError: nothing is written then
            self._encryption.prepare(chain.log_id, 1)
        self._chain = chain
        self._start_window(1, "genesis", None)

    def _write_gaps(self) -> None:
        for report in self.sink.take_gap_reports():
            self._write_body(LineKind.GAP, report)

    def flush(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """
        Send what is queued; True once everything is delivered (spill included).

        Returns False after ``timeout`` seconds (default: the sink's ``flush_timeout``).
        """
        return self.sink.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Write the closing footer, deliver or spill everything; safe to call twice."""
        self._closed = True
        self._window_stop.set()
        with self.lock:  # type: ignore[union-attr]
            try:
                # Deliver first (within half the time), so that what the service rejects
                # now is still sealed as a gap line before the footer.
                wait = self.sink.close_timeout if timeout is None else timeout
                started = time.monotonic()
                if self._chain is not None:
                    self.sink.flush(wait / 2)
                self._end_log()
                delivered = self.sink.close(max(0.0, wait - (time.monotonic() - started)))
            finally:
                super().close()
        return delivered

    def _end_log(self) -> None:
        """The closing footer, then every key erased."""
        if self._chain is not None:
            if self.sink.has_gap_reports:
                self._write_gaps()
            self._write_body(LineKind.FOOTER, {
                "file_index": self._window_index, "reason": "close", "next_file_index": None,
                "lines": self._lines + 1})
            self._chain = None
        if self._encryption is not None:
            self._encryption.erase()

    def _drain_for_exit(self) -> None:
        self.sink.flush()

    def handleError(self, record: logging.LogRecord) -> None:
        """Report a failure on stderr without the record's message, args or payload."""
        if not logging.raiseExceptions or sys.stderr is None:
            return
        exc = sys.exc_info()[1]
        detail = type(exc).__name__ if exc else "unknown error"
        try:
            sys.stderr.write(f"llm-audit-log: {type(self).__name__}({self.sink.log_group}) "
                             f"could not ship a record from logger {record.name!r}: {detail}\n")
        except Exception:  # noqa: S110 - stderr itself is gone; nowhere left to report
            pass
