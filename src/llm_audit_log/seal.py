"""
Stage 4, seal: the line format, chain fields and HMAC.

Every line is one JSON object, written once and never rewritten::

    {"alg":"HS256","body":{...},"kid":K,"log":L,"prev":P,"seq":N,"t":KIND,"ts":T,"v":2,"mac":M}

Keys are sorted except ``mac``, which is always last. The *signed part* is every byte
before ``,"mac":"``; its SHA-256 is the line's hash, ``mac`` is the HMAC-SHA256 (key
``kid``) of that hash, and the next line's ``prev`` is that hash, so lines form one chain
per log across all files and one pass over the bytes serves both. ``seq`` counts lines
from 0. Verifiers check MACs over the raw bytes and never re-serialise.

Version 1 lines (still verified, no longer written) MAC the signed bytes themselves, and
their hash is the SHA-256 of the whole line without its newline. A log may hold both: a
version-1 log resumed by this library goes on in version 2, and each line's hash follows
its own version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "FORMAT_VERSION",
    "GENESIS_PREV",
    "MAX_LINE_BYTES",
    "Chain",
    "LineKind",
    "ParsedLine",
    "parse_line",
    "seal_line",
]

#: Written in every line as ``"v"``; verifiers refuse versions they do not know.
FORMAT_VERSION: Final = 2
#: Versions this library verifies.
READABLE_VERSIONS: Final = frozenset({1, 2})
MAC_ALG: Final = "HS256"
#: ``prev`` of the very first line of a log.
GENESIS_PREV: Final = "0" * 64
#: Longest line a writer produces or a verifier reads (bounded memory either way).
MAX_LINE_BYTES: Final = 1 << 20
#: Largest body a writer seals as is; room is left for the envelope, and for base64 when
#: encrypting. A larger record becomes a rejected record saying so.
MAX_BODY_BYTES: Final = (MAX_LINE_BYTES - 4096) * 3 // 4


class LineKind:
    """Values of the ``t`` field."""

    HEADER: Final = "header"  # first line of every file
    FOOTER: Final = "footer"  # last line of a file closed cleanly or rotated
    EVENT: Final = "event"  # an audit record (accepted or audit.rejected)
    RESUME: Final = "resume"  # after a crash: acknowledges the torn tail
    PRUNE: Final = "prune"  # retention is about to delete the oldest files
    KEY_ROTATION: Final = "key_rotation"  # the next line is signed by a new key
    GAP: Final = "gap"  # a remote sink (CloudWatch) rejected these lines: a delivery gap


_MAC_SUFFIX_RE: Final = re.compile(rb',"mac":"([0-9a-f]{64})"\}\Z')
_HEX64_RE: Final = re.compile(r"[0-9a-f]{64}\Z")
_ENVELOPE_KEYS: Final = frozenset({"alg", "body", "kid", "log", "prev", "seq", "t", "ts", "v",
                                   "mac"})


def seal_line(
    *,
    kind: str,
    body: str,
    log_id: str,
    seq: int,
    prev: str,
    kid: str,
    ts: str,
    mac: Callable[[bytes], str],
) -> tuple[bytes, str]:
    """
    Build one sealed line.

    ``body`` must be canonical JSON of an object; ``log_id``, ``kid``, ``kind`` and ``ts``
    are plain ASCII tokens checked by their producers, so no escaping is needed here.

    Returns:
        The line bytes *with* its trailing newline, and its hash (hex SHA-256 of the
        signed part), which the next line's ``prev`` must carry.

    """
    signed = (
        f'{{"alg":"{MAC_ALG}","body":{body},"kid":"{kid}","log":"{log_id}","prev":"{prev}",'
        f'"seq":{seq},"t":"{kind}","ts":"{ts}","v":{FORMAT_VERSION}'
    ).encode()
    digest = hashlib.sha256(signed).digest()
    return b'%s,"mac":"%s"}\n' % (signed, mac(digest).encode("ascii")), digest.hex()


class Chain:
    """
    Chain state of one log: the next sequence number, previous hash and signing key.

    Not thread-safe on purpose: the handler's lock guards it. ``seal`` does not advance
    the state; call :meth:`advance` only once the line is safely written, so a failed
    write never leaves a hole in the chain.
    """

    __slots__ = ("_mac", "_middle", "kid", "log_id", "next_seq", "prev_hash")

    _head: Final = f'{{"alg":"{MAC_ALG}","body":'.encode()
    _END: Final = f'","v":{FORMAT_VERSION}'

    def __init__(self, *, log_id: str, next_seq: int, prev_hash: str, kid: str,
                 mac: Callable[[bytes], str]) -> None:
        self.log_id = log_id
        self.next_seq = next_seq
        self.prev_hash = prev_hash
        self.kid = kid
        self._mac = mac
        self._middle = f',"kid":"{kid}","log":"{log_id}","prev":"'

    def __repr__(self) -> str:
        return f"Chain(log_id={self.log_id!r}, next_seq={self.next_seq}, kid={self.kid!r})"

    def rekey(self, kid: str, mac: Callable[[bytes], str]) -> None:
        """Sign from now on with ``kid`` (after a key-rotation line was written)."""
        self.kid = kid
        self._mac = mac
        self._middle = f',"kid":"{kid}","log":"{self.log_id}","prev":"'

    def seal(self, kind: str, body: str | bytes, ts: str) -> tuple[bytes, str]:
        """
        Seal ``body`` (text or its UTF-8 bytes) as the next line.

        Returns (line with newline, its hash): the bytes :func:`seal_line` gives, with the
        constant envelope parts precomputed.
        """
        if not isinstance(body, bytes):
            body = body.encode()
        signed = b"%s%s%s" % (self._head, body, (
            f'{self._middle}{self.prev_hash}","seq":{self.next_seq},"t":"{kind}",'
            f'"ts":"{ts}{self._END}').encode())
        digest = hashlib.sha256(signed).digest()
        return b'%s,"mac":"%s"}\n' % (signed, self._mac(digest).encode("ascii")), digest.hex()

    def advance(self, line_hash: str) -> None:
        """Record that the line just sealed was written."""
        self.next_seq += 1
        self.prev_hash = line_hash


def dumps_canonical(obj: Any) -> str:
    """Canonical JSON: sorted keys, compact, UTF-8 text, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


class MalformedLineError(ValueError):
    """A line is not a well-formed line of a known version; ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsupportedVersionError(MalformedLineError):
    """
    The line names a format version this library cannot check.

    ``log_id``, ``seq`` and ``file_index`` (of a header) say where the line claims to
    belong, when its envelope still reads as such (None otherwise), so a verifier can place
    it: tell "the log goes on in a newer format" from "a file is missing", or see an edit
    inside a file. Nothing in them is verified.
    """

    def __init__(self, reason: str, log_id: str | None = None, seq: int | None = None,
                 file_index: int | None = None) -> None:
        super().__init__(reason)
        self.log_id = log_id
        self.seq = seq
        self.file_index = file_index


@dataclass(frozen=True)
class ParsedLine:
    """A structurally valid line; its MAC has *not* been checked yet."""

    signed: bytes
    mac: str
    alg: str
    body: dict[str, Any]
    kid: str
    log_id: str
    prev: str
    seq: int
    kind: str
    ts: str
    hash: str
    #: The format version (``v``).
    version: int
    #: What ``mac`` is the HMAC of: the SHA-256 of ``signed`` (v2), or ``signed`` (v1).
    mac_input: bytes


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedLineError("duplicate JSON key")
        result[key] = value
    return result


def _reject_constant(_name: str) -> Any:
    raise MalformedLineError("NaN or Infinity in JSON")


def parse_line(raw: bytes) -> ParsedLine:
    """
    Parse one line (without its newline) strictly.

    Duplicate keys, unknown envelope keys, wrong types, non-UTF-8 bytes and anything but
    the exact ``,"mac":"<64 hex>"}`` ending are rejected.

    Raises:
        MalformedLineError: with a reason that never quotes the line.
        UnsupportedVersionError: the line is well formed but names another version.

    """
    if len(raw) > MAX_LINE_BYTES:
        raise MalformedLineError("line longer than the format allows")
    match = _MAC_SUFFIX_RE.search(raw)
    if match is None:
        raise MalformedLineError("line does not end with a MAC field")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedLineError("not valid UTF-8") from None
    try:
        doc = json.loads(text, object_pairs_hook=_reject_duplicates,
                         parse_constant=_reject_constant)
    except MalformedLineError:
        raise
    except RecursionError:
        raise MalformedLineError("JSON nested too deeply") from None
    except ValueError:
        raise MalformedLineError("not valid JSON") from None
    if not isinstance(doc, dict):
        raise MalformedLineError("not a JSON object")
    if set(doc) != _ENVELOPE_KEYS:
        raise MalformedLineError("unexpected or missing envelope fields")
    version = doc["v"]
    if type(version) is not int:
        raise MalformedLineError("format version is not an integer")
    if version not in READABLE_VERSIONS:
        body, log_id, seq = doc["body"], doc["log"], doc["seq"]
        index = body.get("file_index") if isinstance(body, dict) and doc["t"] == "header" \
            else None
        raise UnsupportedVersionError(
            "unknown format version", log_id if isinstance(log_id, str) else None,
            seq if type(seq) is int and seq >= 0 else None,
            index if type(index) is int else None)
    seq = doc["seq"]
    for name in ("alg", "kid", "log", "prev", "t", "ts"):
        if not isinstance(doc[name], str):
            raise MalformedLineError(f"field {name} is not a string")
    if type(seq) is not int or seq < 0:
        raise MalformedLineError("seq is not a non-negative integer")
    if not isinstance(doc["body"], dict):
        raise MalformedLineError("body is not an object")
    if not _HEX64_RE.match(doc["prev"]):
        raise MalformedLineError("prev is not a SHA-256 hex digest")
    signed = raw[: match.start()]
    if version == 1:
        mac_input, line_hash = signed, hashlib.sha256(raw).hexdigest()
    else:
        mac_input = hashlib.sha256(signed).digest()
        line_hash = mac_input.hex()
    return ParsedLine(
        signed=signed,
        mac=match.group(1).decode("ascii"),
        alg=doc["alg"],
        body=doc["body"],
        kid=doc["kid"],
        log_id=doc["log"],
        prev=doc["prev"],
        seq=seq,
        kind=doc["t"],
        ts=doc["ts"],
        hash=line_hash,
        version=version,
        mac_input=mac_input,
    )
