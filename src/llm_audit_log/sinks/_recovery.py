"""
The files of a log on disk: creating, claiming, finding and continuing them.

:class:`~llm_audit_log.sinks.files.AuditFileHandler` inherits this machinery: creating
each file (0600, never overwriting), the lock that gives one process a log name, and
the start that continues the log already in the directory after a restart, a crash or a
fork. Writing and timing stay in ``files.py``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import secrets
import warnings
from typing import TYPE_CHECKING, Any, Final

from llm_audit_log._private_dirs import make_private_dirs
from llm_audit_log.errors import AuditLogWarning
from llm_audit_log.keys import Keyring
from llm_audit_log.seal import GENESIS_PREV, MAX_LINE_BYTES, Chain, LineKind, ParsedLine
from llm_audit_log.sinks._encryption import FileEncryption
from llm_audit_log.sinks._tail import read_header, read_tail

__all__ = ["RecoveryMixin"]

#: How every line starts; a file holding a prefix of it was torn while being created.
_LINE_START: Final = b'{"alg":"'
_FLAGS: Final = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


class RecoveryMixin:
    """File creation, the log-name lock, and the start after a restart, crash or fork."""

    # Set by AuditFileHandler.__init__.
    baseFilename: str  # noqa: N815 - the stdlib FileHandler's spelling
    _dir: str
    _stem: str
    _suffix: str
    _log_name: str
    _fd: int | None
    _lock_fd: int | None
    _chain: Chain | None
    _keyring: Keyring
    _encryption: FileEncryption | None
    _lost: int
    _abandoned: list[dict[str, Any]]
    _mirror_starts: list[str]

    if TYPE_CHECKING:  # provided by AuditFileHandler, RetentionMixin and RotationMixin
        def rotation_filename(self, default_name: str) -> str: ...
        def _new_file(self, index: int, reason: str, prev_index: int | None) -> None: ...
        def _write_body(self, kind: str, body: dict[str, Any]) -> None: ...
        def _rotate_key(self, new_kid: str) -> None: ...
        def _apply_retention(self) -> None: ...
        def _report(self, message: str) -> None: ...
        def _mirror_names(self) -> list[str]: ...

    def _file_path(self, index: int) -> str:
        default = os.path.join(self._dir, f"{self._log_name}-{index:06d}{self._suffix}")
        return self.rotation_filename(default)

    def _close_fd(self, *, sync: bool) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def _abandon_file(self) -> None:
        """After a failed write: drop the file unsealed; the next record resumes cleanly."""
        fd, self._fd = self._fd, None
        self._chain = None
        if self._encryption is not None:
            self._encryption.erase()
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _create_file(self, index: int) -> tuple[int, str]:
        """Create the file for ``index`` (0600), never overwriting anything but an empty file."""
        path = self._file_path(index)
        for _attempt in range(6):
            try:
                return os.open(path, _FLAGS, 0o600), path
            except FileExistsError:
                # Left empty by a crash during rotation: ours, and holds no bytes to rewrite.
                if os.path.isfile(path) and not os.path.islink(path) \
                        and os.path.getsize(path) == 0:
                    return os.open(path, _FLAGS & ~(os.O_CREAT | os.O_EXCL)), path
                self._note_abandoned(path)
                # A stray file holds the name: never touch it, pick another name.
                stem, suffix = os.path.splitext(self._file_path(index))
                path = f"{stem}.{secrets.token_hex(3)}{suffix}"
        raise FileExistsError(errno.EEXIST, "no free file name", path)

    def _note_abandoned(self, path: str) -> None:
        """
        A file holding only a torn first line was left by a crash while it was created.

        It is never rewritten; the next header acknowledges it (name, length, SHA-256), so
        the verifier can tell it from a file someone cut.
        """
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_LINE_BYTES + 1)
        except OSError:
            return
        if data and b"\n" not in data and len(data) <= MAX_LINE_BYTES and (
                data.startswith(_LINE_START) or _LINE_START.startswith(data)):
            self._abandoned.append({"name": os.path.basename(path), "length": len(data),
                                    "sha256": hashlib.sha256(data).hexdigest()})

    def _fsync_dir(self) -> None:
        try:
            dfd = os.open(self._dir, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)

    def _claim_name(self) -> None:
        """One process per log name: a second writer gets a log of its own."""
        if self._lock_fd is not None:
            return
        lock_path = os.path.join(self._dir, f".{self._stem}.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            self._log_name = f"{self._stem}.pid{os.getpid()}"
            return
        self._lock_fd = fd

    def _release_name(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)

    def _our_files(self) -> list[tuple[ParsedLine, str]]:
        found: list[tuple[ParsedLine, str]] = []
        try:
            entries = list(os.scandir(self._dir))
        except FileNotFoundError:
            return found
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            header = read_header(entry.path, self._keyring)
            if header is not None and header.body.get("name") == self._log_name:
                found.append((header, entry.path))
        return found

    def _open(self) -> None:
        """Start a log, or continue the one in the directory after a restart or crash."""
        make_private_dirs(self._dir)
        self._claim_name()
        files = self._our_files()
        keyring = self._keyring
        active = keyring.active_kid
        if not files and self._unreadable_log_here():
            message = ("the directory holds a log under this name that this keyring cannot "
                       "verify (written with another keyring?); starting a separate log beside "
                       "it: verify each with the keyring that wrote it")
            warnings.warn(f"{self.baseFilename}: {message}", AuditLogWarning, stacklevel=2)
            self._report(message)
        if files:
            newest_log = max(files, key=lambda f: f[0].ts)[0].log_id
            ours = [f for f in files if f[0].log_id == newest_log]
            header, path = max(ours, key=lambda f: int(f[0].body.get("file_index", 0)))
            index = int(header.body.get("file_index", 0))
            tail = read_tail(path, keyring, newest_log)
            last = tail.last
            if last is not None and last.kid in keyring.kids:
                self._chain = Chain(log_id=newest_log, next_seq=last.seq + 1,
                                    prev_hash=last.hash, kid=last.kid,
                                    mac=keyring.mac_function(last.kid))
                clean = last.kind == LineKind.FOOTER and not self._lost
                # Sinks the log was not mirrored to until now: their copy begins here. Only
                # when the last header says where it was mirrored (headers of earlier
                # releases do not): an excuse the log cannot back must never be signed.
                before = header.body.get("mirrored_to")
                self._mirror_starts = [name for name in self._mirror_names()
                                       if isinstance(before, list) and name not in before]
                self._new_file(index + 1, "restart" if clean else "resume", index)
                if not clean:
                    self._write_body(LineKind.RESUME, {
                        "file_index": index, "last_seq": last.seq, "last_hash": last.hash,
                        "torn_offset": tail.good_end, "torn_length": len(tail.torn),
                        "torn_sha256": hashlib.sha256(tail.torn).hexdigest(),
                        "lost_records": self._lost})
                    self._lost = 0
                if last.kid != active:
                    self._rotate_key(active)
                self._apply_retention()
                return
            warnings.warn(f"{self.baseFilename}: the existing log cannot be continued with "
                          "this keyring; starting a new log beside it", AuditLogWarning,
                          stacklevel=2)
        self._chain = Chain(log_id=f"L{secrets.token_hex(10)}", next_seq=0,
                            prev_hash=GENESIS_PREV, kid=active, mac=keyring.mac_function(active))
        self._new_file(1, "genesis", None)

    def _unreadable_log_here(self) -> bool:
        """Whether files named as this log's exist (none of which verified as ours)."""
        prefix = f"{self._log_name}-"
        try:
            return any(entry.name.startswith(prefix) and entry.name.endswith(self._suffix)
                       and entry.is_file(follow_symlinks=False) and entry.stat().st_size > 0
                       for entry in os.scandir(self._dir))
        except OSError:
            return False

    def _forget_after_fork(self) -> None:
        """In a forked child: never continue the parent's chain; start a log of our own."""
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None
        self._chain = None
        if self._encryption is not None:
            self._encryption.erase()  # the child writes a log of its own, with its own keys
            self._encryption.recipient.forget_after_fork()  # and its own KMS client
        if self._lock_fd is not None:
            try:
                os.close(self._lock_fd)  # the parent's own descriptor keeps the lock
            except OSError:
                pass
        self._lock_fd = None
        self._log_name = f"{self._stem}.pid{os.getpid()}"
