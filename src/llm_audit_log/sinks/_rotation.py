"""
Rotation: when a file ends and the next begins, and the signing key's switch.

:class:`~llm_audit_log.sinks.files.AuditFileHandler` inherits :class:`RotationMixin`:
the stdlib rotation surface (``shouldRollover``, ``doRollover``), the size and time
triggers with the hold after a failed data-key request, the header that starts a file and
the footer that ends one, and key rotation, itself a signed line. Writing stays in ``files.py``.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any, Final

from llm_audit_log.context import host_name
from llm_audit_log.encrypt import AuditorRecipient
from llm_audit_log.errors import DataKeyError
from llm_audit_log.keys import Keyring, load_keyring
from llm_audit_log.seal import Chain, LineKind
from llm_audit_log.sinks._encryption import FileEncryption

if TYPE_CHECKING:
    import threading

__all__ = ["RotationMixin"]

_WHEN_SECONDS: Final = {"S": 1, "M": 60, "H": 3600, "D": 86400}
# Room kept free in a file for the envelope of one line and for the footer.
_ENVELOPE_RESERVE: Final = 320
_FOOTER_RESERVE: Final = 512
_LIBRARY: Final = "llm-audit-log/1"
#: After a failed data-key request (KMS unreachable), rotation waits this long to retry.
_KEY_RETRY_SECONDS: Final = 60.0


class RotationMixin:
    """File rotation on size or time (header and footer at each boundary), and key rotation."""

    # Set by AuditFileHandler.__init__ and as files are written.
    lock: threading.RLock | None  # logging.Handler's
    maxBytes: int  # noqa: N815 - the stdlib RotatingFileHandler's spelling
    when: str | None
    interval: int
    _keyring: Keyring
    _encryption: FileEncryption | None
    _log_name: str
    _fd: int | None
    _chain: Chain | None
    _file_index: int
    _path: str
    _size: int
    _size_limit: int
    _lines: int
    _unsynced: int
    _abandoned: list[dict[str, Any]]
    _rollover_at: float | None
    _roll_hold_until: float
    _header_seq: int
    _header_prev: str
    _mirror_starts: list[str]

    if TYPE_CHECKING:  # provided by logging.Handler, AuditFileHandler and the other mixins
        def format(self, record: logging.LogRecord) -> str: ...
        def _report(self, message: str) -> None: ...
        def _write_body(self, kind: str, body: dict[str, Any]) -> None: ...
        def _open(self) -> None: ...
        def _create_file(self, index: int) -> tuple[int, str]: ...
        def _close_fd(self, *, sync: bool) -> None: ...
        def _fsync_dir(self) -> None: ...
        def _apply_retention(self) -> None: ...
        def _mirror_names(self) -> list[str]: ...

    # -- stdlib surface -----------------------------------------------------------------------
    def shouldRollover(self, record: logging.LogRecord) -> bool:
        """Whether writing ``record`` now would rotate first (stdlib spelling)."""
        with self.lock:  # type: ignore[union-attr]
            try:
                size = len(self.format(record))
            except Exception:
                size = 0
            return self._should_roll(size)

    def doRollover(self) -> None:
        """Close the current file with a footer and continue in a new one."""
        with self.lock:  # type: ignore[union-attr]
            if self._fd is None:
                self._open()
                return
            old = self._file_index
            if self._encryption is not None and self._chain is not None:
                # The next data key first (it may need KMS): failing here changes nothing.
                self._encryption.prepare(self._chain.log_id, old + 1)
            # Create the next file before sealing this one: a crash in between then leaves
            # an empty next file (an unfinished rotation), never a log that looks cut short.
            fd, path = self._create_file(old + 1)
            try:
                self._write_footer("rotate", old + 1, path)
                self._close_fd(sync=True)
            except BaseException:
                os.close(fd)
                raise
            self._start_file(fd, path, old + 1, "rotate", old)
            self._apply_retention()

    # -- when to rotate -----------------------------------------------------------------------
    def _roll_or_hold(self) -> bool:
        """
        Rotate before writing; if the next file's data key cannot be had, keep this file.

        Losing audit records to a KMS outage would be worse than a file that grows past
        its size or time limit; the rotation is retried after ``_KEY_RETRY_SECONDS``.
        """
        try:
            self.doRollover()
        except DataKeyError as exc:
            if self._fd is None:
                raise
            self._roll_hold_until = time.time() + _KEY_RETRY_SECONDS
            self._report(f"cannot start the next file ({exc}); writing on in the current "
                         f"file and retrying in {_KEY_RETRY_SECONDS:g} s")
            return False
        return True

    def _should_roll(self, body_len: int) -> bool:
        if self._lines <= 1:
            return False
        if self._roll_hold_until and time.time() < self._roll_hold_until:
            return False
        if self._rollover_at is not None and time.time() >= self._rollover_at:
            return True
        return self._size + body_len > self._size_limit  # sys.maxsize without maxBytes

    def _next_rollover(self, now: float) -> float | None:
        if self.when is None:
            return None
        if self.when == "MIDNIGHT":
            return float((int(now) // 86400 + self.interval) * 86400)
        return now + _WHEN_SECONDS[self.when] * self.interval

    # -- file boundaries ----------------------------------------------------------------------
    def _new_file(self, index: int, reason: str, prev_index: int | None) -> None:
        if self._encryption is not None and self._chain is not None:
            self._encryption.prepare(self._chain.log_id, index)
        fd, path = self._create_file(index)
        self._start_file(fd, path, index, reason, prev_index)

    def _start_file(self, fd: int, path: str, index: int, reason: str,
                    prev_index: int | None) -> None:
        self._fd = fd
        self._path = path
        self._file_index = index
        self._size = 0
        self._lines = 0
        self._unsynced = 0
        self._fsync_dir()
        assert self._chain is not None
        self._header_seq = self._chain.next_seq
        self._header_prev = self._chain.prev_hash
        header: dict[str, Any] = {
            "file_index": index, "name": self._log_name, "reason": reason,
            "prev_file_index": prev_index, "host": host_name(), "pid": os.getpid(),
            "library": _LIBRARY}
        if self._encryption is not None:
            header["encryption"] = self._encryption.activate(self._chain.log_id, index)
        if self._abandoned:  # torn files a crash left while creating them
            header["abandoned"] = self._abandoned
            self._abandoned = []
        # Where this file's lines also go (none: []), so that a later start that adds a
        # sink can say its copy begins there, and a cross-check knows what to expect.
        header["mirrored_to"] = self._mirror_names()
        if self._mirror_starts:  # a copy that begins with this file: the log ran before it
            header["mirror_starts"] = self._mirror_starts
            self._mirror_starts = []
        self._write_body(LineKind.HEADER, header)
        self._rollover_at = self._next_rollover(time.time())

    def _write_footer(self, reason: str, next_index: int | None,
                      next_file: str | None = None) -> None:
        body: dict[str, Any] = {"file_index": self._file_index, "reason": reason,
                                "next_file_index": next_index, "lines": self._lines + 1}
        if next_file is not None:  # lets a verifier excuse exactly this file if left empty
            body["next_file"] = os.path.basename(next_file)
        self._write_body(LineKind.FOOTER, body)

    # -- keys ---------------------------------------------------------------------------------
    def _rotate_key(self, new_kid: str) -> None:
        chain = self._chain
        assert chain is not None
        self._write_body(LineKind.KEY_ROTATION, {
            "old_kid": chain.kid, "new_kid": new_kid,
            "new_key_proof": self._keyring.rotation_proof(new_kid, chain.log_id,
                                                          chain.next_seq)})
        chain.rekey(new_kid, self._keyring.mac_function(new_kid))

    def rotate_key(self, keyring: str | Keyring | None = None) -> None:
        """Switch to the keyring's active key now; the switch is itself a signed line."""
        with self.lock:  # type: ignore[union-attr]
            if keyring is not None:
                self._keyring = load_keyring(keyring)
                encryption = self._encryption
                public, akid = self._keyring.auditor_public_key, self._keyring.auditor_kid
                if encryption is not None and isinstance(encryption.recipient, AuditorRecipient) \
                        and public is not None and akid is not None:
                    # A new auditor key applies from the next file on.
                    encryption.set_recipient(AuditorRecipient(public, akid))
            if self._fd is None:
                self._open()
            chain = self._chain
            assert chain is not None
            if chain.kid != self._keyring.active_kid:
                self._rotate_key(self._keyring.active_kid)
