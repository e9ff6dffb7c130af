"""
Retention: deleting a log's oldest files, after a signed ``prune`` line says which.

The named retention classes and the validation of the ``retention`` option live here
too; :class:`~llm_audit_log.sinks.files.AuditFileHandler` inherits :class:`RetentionMixin`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Final

from llm_audit_log.context import format_timestamp
from llm_audit_log.errors import ConfigurationError
from llm_audit_log.keys import Keyring
from llm_audit_log.seal import Chain, LineKind, ParsedLine
from llm_audit_log.sinks._tail import read_tail

__all__ = ["RETENTION_CLASSES", "RetentionMixin"]

#: Named retention classes (days), from the regimes in compliance-and-schema.md.
RETENTION_CLASSES: Final = {
    "6_months": 183,  # EU AI Act Art. 19 minimum
    "1_year": 366,  # PCI DSS 10.5.1
    "6_years": 2192,  # HIPAA 164.316(b)(2)
    "7_years": 2557,  # SOX practice
}


def _retention_days(value: int | str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigurationError("retention must be days (int) or a class name")
    if isinstance(value, int):
        if value <= 0:
            raise ConfigurationError("retention must be a positive number of days")
        return value
    if isinstance(value, str) and value in RETENTION_CLASSES:
        return RETENTION_CLASSES[value]
    raise ConfigurationError(
        f"retention must be days or one of {sorted(RETENTION_CLASSES)}, not {value!r}")


class RetentionMixin:
    """Prune whole files past ``retention_days``, oldest first, never costing a record."""

    # Set by AuditFileHandler.__init__ and as files are written.
    retention_days: int | None
    _keyring: Keyring
    _chain: Chain | None
    _fd: int | None
    _path: str
    _file_index: int
    _header_seq: int
    _header_prev: str

    if TYPE_CHECKING:  # provided by AuditFileHandler and RecoveryMixin
        def _now(self) -> float: ...
        def _report(self, message: str) -> None: ...
        def _write_body(self, kind: str, body: dict[str, Any]) -> None: ...
        def _our_files(self) -> list[tuple[ParsedLine, str]]: ...
        def _fsync_dir(self) -> None: ...

    def _apply_retention(self) -> None:
        """Retention never costs a record: failures are reported, and tried again later."""
        try:
            self._prune()
        except Exception as exc:
            self._report(f"retention could not finish ({type(exc).__name__}); "
                         "it is tried again at the next rotation")

    def _prune(self) -> None:
        """Delete whole files past retention, oldest first, after a signed prune line."""
        if self.retention_days is None or self._chain is None or self._fd is None:
            return
        cutoff = format_timestamp(self._now() - self.retention_days * 86400)
        files = sorted(
            ((int(h.body.get("file_index", 0)), h, p) for h, p in self._our_files()
             if h.log_id == self._chain.log_id and p != self._path),
            key=lambda f: f[0])
        pruned: list[dict[str, Any]] = []
        paths: list[str] = []
        for index, _header, path in files:
            tail = read_tail(path, self._keyring, self._chain.log_id)
            last = tail.last
            # Every file but the current one is finished (closed, rotated, or ended by a
            # crash and acknowledged by the next file's resume record); its age is the
            # time of the last line it verifiably holds.
            if last is None or last.ts >= cutoff:
                break
            pruned.append({"file_index": index, "name": os.path.basename(path),
                           "last_seq": last.seq, "last_hash": last.hash})
            paths.append(path)
        if not pruned:
            return
        kept = [f for f in files if f[0] > pruned[-1]["file_index"]]
        first_kept = kept[0][1] if kept else None
        self._write_body(LineKind.PRUNE, {
            "retention_days": self.retention_days, "pruned": pruned,
            "first_kept_file_index": (int(first_kept.body["file_index"]) if first_kept
                                      else self._file_index),
            "first_kept_seq": first_kept.seq if first_kept else self._header_seq,
            "first_kept_prev": first_kept.prev if first_kept else self._header_prev})
        os.fsync(self._fd)  # the prune line must be durable before anything is deleted
        failed = 0
        for path in paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError:
                failed += 1  # still on disk: verifies as before; pruned again next time
        self._fsync_dir()
        if failed:
            self._report(f"retention could not delete {failed} file(s); they stay and verify")
