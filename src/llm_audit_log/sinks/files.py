"""
``AuditFileHandler``: sealed, chained JSON lines in rotating local files.

Layout on disk (``filename="audit-logs/audit.jsonl"``)::

    audit-logs/            0700
      audit-000001.jsonl   0600  header, events..., footer
      audit-000002.jsonl   0600  header (links to the footer above), events...

Files are never renamed or rewritten: every file starts with a header linking it to
the previous file's last line and ends, on rotation or clean close, with a footer.
Order comes from headers, not names. After a crash the next start opens a new file
whose header links to the last good line and whose ``resume`` line acknowledges the
torn tail (offset, length, SHA-256). Retention deletes the oldest files only after a
signed ``prune`` line says which ones.

With ``encrypt`` set, every file gets a fresh data key, wrapped in its header for the
auditor (X25519) or by AWS KMS, and every event body is AES-256-GCM encrypted before it is
sealed (stage 5, :mod:`llm_audit_log.encrypt`). The key is erased when the file ends.

The handler's file machinery is inherited: creating, claiming and continuing files from
``_recovery``, retention from ``_retention``, rotation of files and keys from ``_rotation``;
writing and the clock stay here.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from llm_audit_log.context import format_timestamp, utc_now
from llm_audit_log.errors import ConfigurationError, DataKeyError
from llm_audit_log.filter import STATE_ATTR, AuditFilter
from llm_audit_log.formatter import AuditFormatter, format_body
from llm_audit_log.keys import DEFAULT_KEYRING_SOURCE, Keyring, load_keyring
from llm_audit_log.seal import (
    GENESIS_PREV,
    MAX_BODY_BYTES,
    Chain,
    LineKind,
    dumps_canonical,
)
from llm_audit_log.sinks._encryption import FileEncryption, build_encryption
from llm_audit_log.sinks._recovery import RecoveryMixin
from llm_audit_log.sinks._retention import RETENTION_CLASSES, RetentionMixin, _retention_days
from llm_audit_log.sinks._rotation import (
    _ENVELOPE_RESERVE,
    _FOOTER_RESERVE,
    _WHEN_SECONDS,
    RotationMixin,
)
from llm_audit_log.sinks._sender import close_when_a_process_child_exits, is_ignored
from llm_audit_log.sinks._stderr import report_on_stderr

__all__ = ["RETENTION_CLASSES", "AuditFileHandler"]


_live_handlers: weakref.WeakSet[AuditFileHandler] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for handler in list(_live_handlers):
        handler._forget_after_fork()  # noqa: SLF001 - the module's own fork hook
        close_when_a_process_child_exits(handler)  # a footer, and no queued line lost


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _fsync_policy(value: str | int) -> int:
    """0 = on rotation/close only, 1 = every line, N = every N lines."""
    if value == "rotate":
        return 0
    if value == "always":
        return 1
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ConfigurationError("fsync must be 'always', 'rotate' or a positive integer N")


class AuditFileHandler(RecoveryMixin, RetentionMixin, RotationMixin, logging.Handler):
    """
    Write audit records as sealed, chained lines to rotating files.

    Args:
        filename: base path; files are ``<stem>-<index:06d><suffix>`` beside it.
        maxBytes: rotate before a file would exceed this size (0: no size rotation).
        when / interval: time rotation as in :class:`~logging.handlers.TimedRotatingFileHandler`
            (``S``, ``M``, ``H``, ``D``, ``midnight``); always UTC.
        utc: must be true (kept for the stdlib spelling).
        delay: open files on the first record instead of now.
        keyring: key source for signing (``env:VAR``, ``env-inline:VAR``, ``file:PATH``).
        retention: days, or ``6_months`` / ``1_year`` / ``6_years`` / ``7_years``.
        fsync: ``"rotate"`` (on rotation and close), ``"always"``, or every N lines.
        encrypt: ``None`` (clear), ``"auditor"`` (data keys wrapped for the keyring's
            auditor public key) or ``"kms"`` (data keys from AWS KMS ``kms_key_id``).
        clear_fields: body fields also kept in clear for search (default ``event_type``,
            ``timestamp``, ``status``); only with ``encrypt``.
        kms_key_id: KMS key id, ARN or alias, for ``encrypt="kms"``.
        kms_region / kms_endpoint_url: for the boto3 client (default: the AWS chain).
        kms_client_factory: instead of the two above, a callable returning a KMS client.
        cloudwatch: options of a :class:`~llm_audit_log.sinks.cloudwatch.CloudWatchSink`
            (``log_group`` required) that receives every line written, byte for byte.
        backupCount: not accepted (files go by ``retention``); given, it fails with a
            message saying so.

    .. versionadded:: 0.2 *encrypt*, *clear_fields*, *kms_key_id*, *kms_region*,
       *kms_endpoint_url*, *kms_client_factory*
    .. versionadded:: 0.3 *cloudwatch*

    """

    def __init__(
        self,
        filename: str | os.PathLike[str],
        maxBytes: int = 0,
        when: str | None = None,
        interval: int = 1,
        utc: bool = True,
        delay: bool = False,
        *,
        keyring: str | Keyring = DEFAULT_KEYRING_SOURCE,
        retention: int | str | None = None,
        fsync: str | int = "rotate",
        level: int | str = logging.NOTSET,
        encrypt: str | None = None,
        clear_fields: Sequence[str] | None = None,
        kms_key_id: str | None = None,
        kms_region: str | None = None,
        kms_endpoint_url: str | None = None,
        kms_client_factory: Callable[[], Any] | None = None,
        cloudwatch: Mapping[str, Any] | None = None,
        backupCount: int | None = None,  # the stdlib spelling: refused, with what to use
    ) -> None:
        super().__init__(level)
        # What close() and flush() read, set first: logging keeps even a handler whose
        # configuration fails below, and calls close() on it at the next dictConfig or exit.
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._sinks: list[Any] = []
        self._encryption: FileEncryption | None = None
        if backupCount is not None:
            raise ConfigurationError(
                "backupCount: audit files are never deleted by count; use retention (days, "
                "or a retention class such as '1_year'), which signs what it deletes")
        if os.fspath(filename).endswith(("/", os.sep)) or os.path.isdir(filename):
            raise ConfigurationError(
                f"filename {os.fspath(filename)!r} names a directory; give a file name in it "
                "(e.g. audit-logs/audit.jsonl: files are audit-000001.jsonl and so on)")
        if not isinstance(maxBytes, int) or maxBytes < 0:
            raise ConfigurationError("maxBytes must be a non-negative integer")
        if maxBytes and maxBytes < 4096:
            raise ConfigurationError("maxBytes must be 0 or at least 4096")
        if not isinstance(utc, bool) or not isinstance(delay, bool):
            raise ConfigurationError("utc and delay must be true or false")
        if not utc:
            raise ConfigurationError("utc must be true: audit files rotate on UTC time")
        self.when = when.upper() if when else None
        if self.when is not None and self.when not in (*_WHEN_SECONDS, "MIDNIGHT"):
            raise ConfigurationError("when must be one of S, M, H, D, midnight")
        if not isinstance(interval, int) or interval <= 0:
            raise ConfigurationError("interval must be a positive integer")
        self.baseFilename = os.path.abspath(os.fspath(filename))
        self.maxBytes = maxBytes
        # Past this many bytes (plus the next body) a rotation check is due.
        self._size_limit = (maxBytes - _ENVELOPE_RESERVE - _FOOTER_RESERVE if maxBytes
                            else sys.maxsize)
        self.interval = interval
        self.utc = True
        self.delay = delay
        self.retention_days = _retention_days(retention)
        self._fsync_every = _fsync_policy(fsync)
        self._keyring = load_keyring(keyring)
        self._encryption = build_encryption(
            encrypt, self._keyring, kms_key_id=kms_key_id, clear_fields=clear_fields,
            kms_region=kms_region, kms_endpoint_url=kms_endpoint_url,
            kms_client_factory_=kms_client_factory)
        self._roll_hold_until = 0.0
        self._fallback = AuditFilter(keyring=self._keyring)
        self.formatter = AuditFormatter()
        self.namer: Callable[[str], str] | None = None
        directory, base = os.path.split(self.baseFilename)
        stem, suffix = os.path.splitext(base)
        self._dir = directory
        self._stem = stem
        self._suffix = suffix or ".jsonl"
        self._log_name = stem
        self._chain: Chain | None = None
        self._file_index = 0
        self._path = ""
        self._size = 0
        self._lines = 0
        self._unsynced = 0
        self._lost = 0
        self._abandoned: list[dict[str, Any]] = []
        self._mirror_starts: list[str] = []
        self._rollover_at: float | None = None
        self._header_seq = 0
        self._header_prev = GENESIS_PREV
        if cloudwatch is not None:
            from llm_audit_log.sinks import cloudwatch as cw  # noqa: PLC0415 - only when asked

            sink, drain = cw.sink_from_config(cloudwatch, logger_name=stem, default_spill_dir=(
                os.path.join(directory, ".cloudwatch-spill")))
            self._sinks.append(sink)
            if drain:
                cw.install_sigterm_drain(sink.flush)
        _live_handlers.add(self)
        if not delay:
            with self.lock:  # type: ignore[union-attr]
                try:
                    self._open()
                except BaseException:
                    self._release_name()  # e.g. KMS refused the first data key
                    raise

    def __repr__(self) -> str:
        kid = self._chain.kid if self._chain else self._keyring.active_kid
        level = logging.getLevelName(self.level)
        enc = f" enc={self._encryption.recipient.describe()}" if self._encryption else ""
        return f"<{type(self).__name__} {self.baseFilename} kid={kid}{enc} ({level})>"

    # -- stdlib surface -----------------------------------------------------------------------
    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        """Only :class:`AuditFormatter` (or a subclass) produces bodies we can seal."""
        if fmt is not None and not isinstance(fmt, AuditFormatter):
            raise ConfigurationError(
                "AuditFileHandler needs an AuditFormatter (or subclass) as its formatter")
        super().setFormatter(fmt or AuditFormatter())

    def rotation_filename(self, default_name: str) -> str:
        """Honour ``namer`` as the stdlib rotating handlers do."""
        return default_name if not callable(self.namer) else self.namer(default_name)

    def _mirror_names(self) -> list[str]:
        """The sinks as file headers name them (``cloudwatch:<log group>``)."""
        return [f"cloudwatch:{sink.log_group}" for sink in self._sinks]

    @property
    def sinks(self) -> tuple[Any, ...]:
        """The remote sinks (CloudWatch) that receive every line written."""
        return tuple(self._sinks)

    def emit(self, record: logging.LogRecord) -> None:
        """Process (if no AuditFilter ran), format, seal and write one line."""
        state = record.__dict__.get(STATE_ATTR)
        formatter = self.formatter
        rollover_at = self._rollover_at
        if state is not None and type(formatter) is AuditFormatter \
                and not formatter.static_fields and not self._sinks \
                and self._encryption is None and self._fd is not None \
                and not (record.exc_info or record.exc_text or record.stack_info) \
                and (rollover_at is None or time.time() < rollover_at):
            # The common case, formatted here as AuditFormatter.format_body would (a call
            # less per record; test_handler_formats_like_the_formatter holds them together).
            data = state.body
            message = record.msg
            data["message"] = message if type(message) is str and not record.args \
                else record.getMessage()
            data["logger"] = record.name
            data["level"] = record.levelname
            try:
                body = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
            except TypeError:
                pass  # lone surrogates: the formatter's fallback, below
            else:
                if len(body) <= MAX_BODY_BYTES and self._size + len(body) <= self._size_limit:
                    try:
                        self._write(LineKind.EVENT, body, data.get("timestamp"))
                    except RecursionError:
                        raise
                    except Exception as exc:
                        self._record_loss(record, exc)
                        self.handleError(record)
                    return
        if self._sinks and is_ignored(record.name):
            return  # botocore's own logging must not feed the sender
        try:
            if STATE_ATTR not in record.__dict__ and not self._fallback.filter(record):
                return
            source: dict[str, Any] | None = None
            try:
                body = format_body(self, record)
            except Exception as exc:
                source = self._fallback.rejected_body(
                    record, [("", f"formatting failed ({type(exc).__name__})")])
                body = dumps_canonical(source).encode()
            if len(body) > MAX_BODY_BYTES:
                source = self._fallback.rejected_body(
                    record, [("", f"record too large to seal ({len(body)} bytes)")])
                body = dumps_canonical(source).encode()
            if self._fd is None:
                self._open()
            if self._sinks:
                self._write_sink_gaps()
            state_body = record.__dict__[STATE_ATTR].body
            if self._encryption is not None:
                self._emit_encrypted(body, source, state_body)
                return
            if (self._size + len(body) > self._size_limit or self._rollover_at is not None) \
                    and self._should_roll(len(body)):
                self.doRollover()
            self._write(LineKind.EVENT, body, state_body.get("timestamp"))
        except RecursionError:
            raise
        except Exception as exc:
            self._record_loss(record, exc)
            self.handleError(record)

    def _record_loss(self, record: logging.LogRecord, exc: Exception) -> None:
        """
        A record could not be written: leave a signed trace of it.

        In the current file if it still takes lines (a rejected record naming the error
        type), else counted for the next start's resume record.
        """
        if self._fd is not None and self._chain is not None:
            try:
                body = self._fallback.rejected_body(
                    record, [("", f"could not be written ({type(exc).__name__})")])
                text: str | bytes = dumps_canonical(body)
                if self._encryption is not None:  # encrypted files take encrypted events only
                    text = self._encryption.event_body(text, body, {}, self._chain,
                                                       body["timestamp"])
                self._write(LineKind.EVENT, text, body["timestamp"])
            except Exception:  # noqa: S110 - counted below, acknowledged on the next start
                pass
            else:
                return
        self._lost += 1

    def _emit_encrypted(self, body: bytes, rejected: dict[str, Any] | None,
                        state_body: Mapping[str, Any]) -> None:
        """Encrypt the body for its exact chain position (after any rotation), then write."""
        encryption = self._encryption
        assert encryption is not None
        ts = state_body.get("timestamp") or format_timestamp(time.time())
        if rejected is None:
            source: Mapping[str, Any] = state_body
            static: Mapping[str, Any] = getattr(self.formatter, "static_fields", None) or {}
        else:
            source, static = rejected, {}
        assert self._chain is not None
        line_body = encryption.event_body(body, source, static, self._chain, ts)
        if (self._size + len(line_body) > self._size_limit or self._rollover_at is not None) \
                and self._should_roll(len(line_body)) and self._roll_or_hold():
            # A new file: a new data key and a new chain position, so encrypt again.
            line_body = encryption.event_body(body, source, static, self._chain, ts)
        self._write(LineKind.EVENT, line_body, ts)

    def _report(self, message: str) -> None:
        report_on_stderr(f"{type(self).__name__}({self.baseFilename})", message)

    def flush(self) -> None:
        """Lines are written unbuffered; flush makes them durable (fsync)."""
        with self.lock:  # type: ignore[union-attr]
            if self._fd is not None:
                os.fsync(self._fd)
                self._unsynced = 0
            for sink in self._sinks:
                sink.flush(0)  # send now, without waiting (sink.flush(timeout) waits)

    def close(self) -> None:
        """Write the closing footer, fsync and release; safe to call twice."""
        with self.lock:  # type: ignore[union-attr]
            started = time.monotonic()
            try:
                if self._fd is not None:
                    try:
                        # Deliver first (within half the time), so that what the service
                        # rejects now is still sealed as a gap line before the footer.
                        for sink in self._sinks:
                            sink.flush(sink.close_timeout / 2)
                        self._write_sink_gaps()
                        self._write_footer("close", None)
                    finally:
                        self._close_fd(sync=True)
                if self._encryption is not None:
                    self._encryption.erase()
                self._release_name()
            finally:
                for sink in self._sinks:
                    # Delivers or spills everything in the time left; never raises.
                    sink.close(max(0.0, sink.close_timeout - (time.monotonic() - started)))
                super().close()

    def handle(self, record: logging.LogRecord) -> bool:
        """
        As :meth:`logging.Handler.handle`; without handler-level filters, straight to emit.

        The stdlib's version runs an empty filter loop and two lock method calls per
        record; holding the (same) lock directly does the same work in C.
        """
        if self.filters or self.lock is None:
            return bool(super().handle(record))
        with self.lock:
            self.emit(record)
        return True

    def handleError(self, record: logging.LogRecord) -> None:
        """Report a failure on stderr without the record's message, args or payload."""
        if not logging.raiseExceptions or sys.stderr is None:
            return
        exc = sys.exc_info()[1]
        detail = type(exc).__name__ if exc else "unknown error"
        if isinstance(exc, OSError) and exc.strerror:
            detail += f" ({exc.strerror})"
        elif isinstance(exc, DataKeyError):
            detail += f" ({exc})"  # names the KMS error code, never key material
        try:
            sys.stderr.write(f"llm-audit-log: {type(self).__name__}({self.baseFilename}) "
                             f"could not write a record from logger {record.name!r}: {detail}\n")
        except Exception:  # noqa: S110 - stderr itself is gone; nowhere left to report
            pass

    # -- writing ----------------------------------------------------------------------------
    def _write(self, kind: str, body: str | bytes, ts: str | None = None) -> None:
        """Seal and write one line; ``ts`` is the record's own time (now if not given)."""
        chain = self._chain
        fd = self._fd
        assert chain is not None
        assert fd is not None
        line, line_hash = chain.seal(kind, body, ts or format_timestamp(time.time()))
        size = len(line)
        try:
            written = os.write(fd, line)
            while written < size:  # only on errors such as a full disk
                written += os.write(fd, line[written:])
        except OSError:
            self._abandon_file()
            raise
        chain.advance(line_hash)  # the line is written: only now does the chain advance
        if self._sinks:
            for sink in self._sinks:  # the same bytes, after the file has them
                sink.submit(line, chain.next_seq - 1, int(time.time() * 1000))
        self._size += size
        self._lines += 1
        if self._fsync_every:
            self._unsynced += 1
            if self._unsynced >= self._fsync_every:
                os.fsync(fd)
                self._unsynced = 0

    def _write_body(self, kind: str, body: dict[str, Any]) -> None:
        body.setdefault("timestamp", utc_now())
        self._write(kind, dumps_canonical(body))

    def _write_sink_gaps(self) -> None:
        """Seal the sinks' reports of lines the service rejected as signed ``gap`` lines."""
        for sink in self._sinks:
            if sink.has_gap_reports:
                for report in sink.take_gap_reports():
                    self._write_body(LineKind.GAP, report)

    def _now(self) -> float:
        """The wall clock for the mixins, read through this module's ``time``."""
        return time.time()
