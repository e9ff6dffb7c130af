"""
The CloudWatch sender's durable spill: events not yet delivered, on local disk, in order.

One append-only file per sender (``<pid>-<random>.spill``, mode 0600, in a 0700
directory), locked with ``flock`` while its sender lives. Each line is one JSON object
``{"g": group, "s": stream, "t": ts_ms, "m": message}``; messages are sealed lines (or
chunks of them), so with encryption on the spill holds only ciphertext bodies. A file
no live sender holds (after a crash or SIGTERM) is an orphan: the next sender started
with the same directory replays it, then deletes it. Replaying a batch twice (a crash
between the put and the bookkeeping) only produces byte-identical duplicates, which
the verifier treats as benign.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from typing import IO

from llm_audit_log._private_dirs import make_private_dirs
from llm_audit_log.sinks._batching import BatchBuilder, Event

__all__ = ["Spill", "SpillBatch"]

_SUFFIX = ".spill"


@dataclass
class SpillBatch:
    """Events read back from a spill file, all for one stream, and where they end."""

    group: str
    stream: str
    events: list[Event]
    source: _SpillFile
    end: int


@dataclass
class _SpillFile:
    path: str
    fd: int | None  # the lock (and, for our own file, the append descriptor)
    read_pos: int = 0
    reader: IO[bytes] | None = field(default=None, repr=False)

    def size(self) -> int:
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def read_batch(self) -> SpillBatch | None:
        if self.reader is None:
            self.reader = open(self.path, "rb")  # noqa: SIM115 - kept open across batches
        self.reader.seek(self.read_pos)
        builder = BatchBuilder()
        target: tuple[str, str] | None = None
        end = self.read_pos
        while True:
            raw = self.reader.readline()
            if not raw.endswith(b"\n"):
                break  # end of file, or a torn last line from a crash: never complete
            try:
                doc = json.loads(raw)
                key = (doc["g"], doc["s"])
                event = Event(int(doc["t"]), doc["m"].encode("utf-8"))
            except (ValueError, KeyError, TypeError, AttributeError):
                end += len(raw)  # unreadable entry: skipped (cannot be delivered anyway)
                continue
            if target is None:
                target = key
            elif key != target:
                break
            if not builder.add(event):
                break
            end += len(raw)
        if target is None or not len(builder):
            self.read_pos = max(self.read_pos, end)
            return None
        return SpillBatch(target[0], target[1], builder.take(), self, end)

    def close(self, *, remove: bool) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if remove:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


class Spill:
    """
    The spill directory as one sender sees it: its own file plus any orphans to replay.

    Thread-safe: the sender thread and (with ``on_full="spill"``) callers append.
    """

    def __init__(self, directory: str, destination: str = "") -> None:
        self.directory = os.path.abspath(directory)
        #: Which service this sender delivers to (a short hash of endpoint, region, profile
        #: and group), in every file name: a spill directory shared by two handlers must
        #: never replay one's lines to the other's account, region or group.
        self.destination = destination
        self._lock = threading.Lock()
        self._own: _SpillFile | None = None
        self._orphans: list[_SpillFile] = []
        self._scanned = False
        self.appended = 0

    def __repr__(self) -> str:
        return f"<Spill {self.directory} pending={self.pending}>"

    def _ensure_dir(self) -> None:
        make_private_dirs(self.directory)

    def adopt_orphans(self) -> int:
        """Take over spill files no live sender holds (oldest first); returns how many."""
        with self._lock:
            if self._scanned:
                return len(self._orphans)
            self._scanned = True
            try:
                entries = sorted(
                    (e for e in os.scandir(self.directory)
                     if self._ours(e.name) and e.is_file(follow_symlinks=False)),
                    key=lambda e: (e.stat().st_mtime, e.name))
            except FileNotFoundError:
                return 0
            own = self._own.path if self._own else None
            for entry in entries:
                if entry.path == own:
                    continue
                fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    os.close(fd)
                    if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                        continue  # a live sender's file
                    raise
                self._orphans.append(_SpillFile(entry.path, fd))
            return len(self._orphans)

    def _ours(self, name: str) -> bool:
        """A spill file for this destination (or from a release that named none)."""
        if not name.endswith(_SUFFIX):
            return False
        stem = name[:-len(_SUFFIX)]
        return "." not in stem or stem.rpartition(".")[2] == self.destination

    def _own_file(self) -> _SpillFile:
        if self._own is None:
            self._ensure_dir()
            path = os.path.join(self.directory,
                                f"{os.getpid()}-{secrets.token_hex(4)}"
                                f"{'.' + self.destination if self.destination else ''}{_SUFFIX}")
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | getattr(
                os, "O_CLOEXEC", 0)
            fd = os.open(path, flags, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._own = _SpillFile(path, fd)
        return self._own

    def append(self, group: str, stream: str, events: list[Event]) -> None:
        """
        Write events durably (one write, then fsync) for a later replay.

        Raises:
            OSError: the spill could not be written (the caller counts the events lost).

        """
        if not events:
            return
        data = b"".join(
            json.dumps({"g": group, "s": stream, "t": e.ts_ms,
                        "m": e.message.decode("utf-8")}, separators=(",", ":")).encode() + b"\n"
            for e in events)
        with self._lock:
            own = self._own_file()
            assert own.fd is not None
            view = memoryview(data)
            while view:
                written = os.write(own.fd, view)
                view = view[written:]
            os.fsync(own.fd)
            self.appended += len(events)

    @property
    def pending(self) -> bool:
        """Whether any spilled event still waits for delivery."""
        with self._lock:
            if self._orphans:
                return True
            own = self._own
            return own is not None and own.size() > own.read_pos

    def next_batch(self) -> SpillBatch | None:
        """The oldest spilled events (orphans first), as one valid batch, or None."""
        with self._lock:
            while self._orphans:
                orphan = self._orphans[0]
                batch = orphan.read_batch()
                if batch is not None:
                    return batch
                orphan.close(remove=True)  # fully replayed
                self._orphans.pop(0)
            own = self._own
            if own is None:
                return None
            batch = own.read_batch()
            if batch is None and own.read_pos >= own.size():
                self._reset_own()
            return batch

    def ack(self, batch: SpillBatch) -> None:
        """The batch was delivered: move past it (and empty the file once all is delivered)."""
        with self._lock:
            batch.source.read_pos = batch.end
            if batch.source is self._own and batch.end >= self._own.size():
                self._reset_own()

    def _reset_own(self) -> None:
        own = self._own
        if own is None or own.fd is None:
            return
        os.ftruncate(own.fd, 0)
        own.read_pos = 0
        if own.reader is not None:
            own.reader.close()
            own.reader = None

    def close(self) -> None:
        """Release the files; an empty own file is removed, a non-empty one stays for replay."""
        with self._lock:
            own, self._own = self._own, None
            if own is not None:
                own.close(remove=own.size() <= own.read_pos)
            for orphan in self._orphans:
                orphan.close(remove=False)
            self._orphans = []

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's files and locks stay the parent's."""
        self._lock = threading.Lock()
        for item in ([self._own] if self._own else []) + self._orphans:
            if item.reader is not None:
                with contextlib.suppress(OSError):
                    item.reader.close()
            if item.fd is not None:
                with contextlib.suppress(OSError):
                    os.close(item.fd)  # the flock stays with the parent's descriptor
        self._own = None
        self._orphans = []
        self._scanned = True  # the parent replays what it adopted
