"""
Reading encrypted logs: verify first, then stream every line in chain order, decrypted.

Nothing is shown that did not verify. A line whose MAC fails, that the verifier flagged
(tampered, duplicate, foreign, reordered ...), or whose ciphertext does not decrypt at its
position is *refused*: the caller gets a :class:`Refusal` naming the file, line and reason,
never the line's content.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from llm_audit_log.encrypt import (
    ENC_FIELD,
    WRAP_KMS,
    WRAP_X25519,
    DataKey,
    EncryptionInfo,
    decrypt_event_body,
    parse_encryption_info,
    unwrap_data_key,
)
from llm_audit_log.errors import DecryptionError
from llm_audit_log.keys import AuditorKey, Keyring
from llm_audit_log.seal import LineKind, MalformedLineError, ParsedLine, parse_line
from llm_audit_log.verify._anchor import _FileInfo, _iter_source
from llm_audit_log.verify._reader import RawLine
from llm_audit_log.verify.verdicts import (
    Report,
    Severity,
    Verdict,
    exit_code_for,
)

__all__ = ["DecryptedLine", "Decryption", "Refusal"]

#: Verdicts about a line itself (as opposed to loss around it): such lines are refused.
_LINE_VERDICTS = frozenset({
    Verdict.TAMPERED, Verdict.MALFORMED, Verdict.REORDERED, Verdict.DUPLICATE, Verdict.FORK,
    Verdict.FOREIGN, Verdict.KEY_INVALID, Verdict.CANNOT_VERIFY,
})
_BODY_START = len(b'{"alg":"HS256","body":')


@dataclass(frozen=True)
class DecryptedLine:
    """
    One verified line with its plaintext body.

    ``body`` is the exact body bytes: for an encrypted event the plaintext that was
    encrypted (byte for byte what the formatter produced), otherwise the body as written.
    """

    file: str
    line: int
    log_id: str
    seq: int
    kind: str
    kid: str
    ts: str
    body: bytes
    encrypted: bool

    def to_json(self) -> str:
        """
        The output line of ``llm-audit decrypt``: canonical JSON, the body embedded verbatim.

        ``{"body":{...},"encrypted":B,"file":F,"kid":K,"kind":T,"line":N,"log":L,"seq":S,"ts":TS}``
        """
        # A path that is not valid UTF-8 (surrogate escapes) is shown with backslash escapes.
        shown = os.fsencode(self.file).decode("utf-8", "backslashreplace")
        rest = orjson.dumps({"encrypted": self.encrypted, "file": shown, "kid": self.kid,
                             "kind": self.kind, "line": self.line, "log": self.log_id,
                             "seq": self.seq, "ts": self.ts}, option=orjson.OPT_SORT_KEYS)
        return '{"body":' + self.body.decode("utf-8") + "," + rest[1:].decode("utf-8")


@dataclass(frozen=True)
class Refusal:
    """A line (or a whole file, ``line`` None) that is not shown, and why (never its content)."""

    file: str
    line: int | None
    seq: int | None
    verdict: Verdict
    reason: str

    def describe(self) -> str:
        """``file:line (seq N): reason`` for messages."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.seq is not None:
            where += f" (seq {self.seq})"
        return f"{where}: {self.verdict.value}: {self.reason}"


class _FileKey:
    """The data key of the file being read, or why there is none."""

    def __init__(self, key: DataKey | None, problem: Refusal | None) -> None:
        self.key = key
        self.problem = problem


class Decryption:
    """
    Stream a verified log's lines in chain order with their bodies decrypted.

    Iterate it for :class:`DecryptedLine` and :class:`Refusal` items; afterwards
    :attr:`exit_code` combines the verifier's report with what decryption found.
    Construct it through :func:`llm_audit_log.verify.decrypt_paths` or
    :func:`~llm_audit_log.verify.decrypt_cloudwatch`.
    """

    def __init__(self, report: Report, keyring: Keyring, *, auditor_key: AuditorKey | None,
                 kms_client_factory: Callable[[], Any] | None,
                 sources: Mapping[str, list[bytes]] | None = None) -> None:
        self.report = report
        self._sources = sources  # virtual files (CloudWatch streams) by name, or None: paths
        self._keyring = keyring
        self._auditor = auditor_key
        self._kms_factory = kms_client_factory
        self._kms: Any = None
        self._worst: Severity | None = None
        self.lines_shown = 0
        self.lines_refused = 0

    # -- results ------------------------------------------------------------------------------
    @property
    def exit_code(self) -> int:
        """Worst first: 1 tampering or loss, 4 could not verify or decrypt, 3 incomplete, 0 ok."""
        worst = max((s for s in (self.report.worst, self._worst) if s is not None), default=None)
        return exit_code_for(worst, self.report.lines_verified)

    def _refuse(self, refusal: Refusal) -> Refusal:
        severity = refusal.verdict.severity
        if self._worst is None or severity > self._worst:
            self._worst = severity
        self.lines_refused += 1
        return refusal

    # -- walking ------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[DecryptedLine | Refusal]:
        walked: set[str] = set()
        for log in self.report.logs:
            for path in log.files:
                walked.add(path)
                yield from self._file(path, log.log_id)
        shown_files: set[str] = set()
        for finding in self.report.findings:
            if finding.file is not None and finding.file not in walked \
                    and finding.file not in shown_files:
                shown_files.add(finding.file)
                yield self._refuse(Refusal(finding.file, None, None, finding.verdict,
                                           f"file not read: {finding.detail}"))

    def _flagged(self, path: str) -> dict[int, tuple[Verdict, str]]:
        flagged: dict[int, tuple[Verdict, str]] = {}
        for f in self.report.findings:
            if f.file == path and f.line is not None and f.verdict in _LINE_VERDICTS:
                for number in range(f.line, f.line + f.count):
                    flagged.setdefault(number, (f.verdict, f.detail))
        return flagged

    def _file(self, path: str, log_id: str) -> Iterator[DecryptedLine | Refusal]:
        flagged = self._flagged(path)
        info: EncryptionInfo | None = None
        file_key: _FileKey | None = None
        header_read = False
        try:
            for raw in self._lines(path):
                number = raw.number
                if not raw.terminated:
                    yield self._refuse(Refusal(path, number, None, Verdict.INCOMPLETE_TAIL,
                                               "partial last line (not a complete record)"))
                    break
                line, problem = self._verified(raw.data, path, number, log_id)
                if line is None:
                    assert problem is not None
                    yield self._refuse(problem)
                    continue
                if number in flagged:
                    verdict, detail = flagged[number]
                    yield self._refuse(Refusal(path, number, line.seq, verdict, detail))
                    continue
                if number == 1 and line.kind == LineKind.HEADER:
                    header_read = True
                    try:
                        info = parse_encryption_info(line.body)
                    except ValueError as exc:
                        yield self._refuse(Refusal(path, number, line.seq, Verdict.CANNOT_VERIFY,
                                                   str(exc)))
                        return
                    if info is not None:
                        file_key = self._unwrap(path, line, info)
                if line.kind == LineKind.EVENT and info is not None:
                    yield self._decrypted(path, number, line, file_key)
                    continue
                if line.kind == LineKind.EVENT and not header_read and ENC_FIELD in line.body:
                    yield self._refuse(Refusal(path, number, line.seq, Verdict.CANNOT_VERIFY,
                                               "the file's header was refused, so its data "
                                               "key cannot be trusted"))
                    continue
                self.lines_shown += 1
                yield DecryptedLine(path, number, line.log_id, line.seq, line.kind, line.kid,
                                    line.ts, _raw_body(line.signed), encrypted=False)
        finally:
            if file_key is not None and file_key.key is not None:
                file_key.key.erase()

    def _lines(self, name: str) -> Iterator[RawLine]:
        lines = None if self._sources is None else self._sources.get(name, [])
        return _iter_source(_FileInfo(name, lines=lines))

    def _verified(self, data: bytes, path: str, number: int,
                  log_id: str) -> tuple[ParsedLine | None, Refusal | None]:
        try:
            line = parse_line(data)
        except MalformedLineError as exc:
            return None, Refusal(path, number, None, Verdict.MALFORMED, exc.reason)
        if self._keyring.info(line.kid) is None:
            return None, Refusal(path, number, line.seq, Verdict.CANNOT_VERIFY,
                                 "signing key id not in the keyring")
        if not self._keyring.verify_mac(line.kid, line.mac_input, line.mac):
            return None, Refusal(path, number, line.seq, Verdict.TAMPERED,
                                 "MAC does not match: line altered")
        if line.log_id != log_id:
            return None, Refusal(path, number, line.seq, Verdict.FOREIGN,
                                 "line belongs to another log")
        return line, None

    def _unwrap(self, path: str, header: ParsedLine, info: EncryptionInfo) -> _FileKey:
        def problem(verdict: Verdict, reason: str) -> _FileKey:
            return _FileKey(None, Refusal(path, None, None, verdict, reason))

        if info.wrap_alg == WRAP_X25519:
            wanted = info.wrap.get("akid")
            if self._auditor is None:
                return problem(Verdict.CANNOT_VERIFY, f"no auditor private key given; this "
                               f"file's data key is wrapped for auditor key {wanted} "
                               "(use --auditor-key)")
            if wanted != self._auditor.kid:
                return problem(Verdict.CANNOT_VERIFY, f"this file's data key is wrapped for "
                               f"auditor key {wanted}, not {self._auditor.kid}")
            kms = None
        elif info.wrap_alg == WRAP_KMS:
            try:
                kms = self._kms_client()
            except Exception as exc:
                return problem(Verdict.CANNOT_VERIFY, f"no KMS client ({type(exc).__name__})")
        else:
            return problem(Verdict.CANNOT_VERIFY, "data key wrapped by an unknown method")
        try:
            key = unwrap_data_key(header.body, log_id=header.log_id, auditor_key=self._auditor,
                                  kms_client=kms)
        except DecryptionError:
            if info.wrap_alg == WRAP_KMS:
                return problem(Verdict.CANNOT_VERIFY, "KMS did not decrypt this file's data key "
                               "(no access, wrong region or endpoint, or an altered header)")
            return problem(Verdict.TAMPERED, "the wrapped data key does not open with the "
                           "auditor key it names")
        return _FileKey(key, None)

    def _kms_client(self) -> Any:
        if self._kms is None:
            if self._kms_factory is None:
                raise LookupError("no KMS client factory")
            self._kms = self._kms_factory()
        return self._kms

    def _decrypted(self, path: str, number: int, line: ParsedLine,
                   file_key: _FileKey | None) -> DecryptedLine | Refusal:
        if file_key is None or file_key.key is None:
            base = file_key.problem if file_key is not None else None
            verdict = base.verdict if base is not None else Verdict.CANNOT_VERIFY
            reason = base.reason if base is not None else "the file's data key is unavailable"
            return self._refuse(Refusal(path, number, line.seq, verdict, reason))
        try:
            plain = decrypt_event_body(file_key.key, line.body, log_id=line.log_id,
                                       seq=line.seq, prev=line.prev, kid=line.kid, ts=line.ts)
        except DecryptionError:
            return self._refuse(Refusal(path, number, line.seq, Verdict.TAMPERED,
                                        "ciphertext does not decrypt at this position "
                                        "(altered, moved or re-sealed)"))
        self.lines_shown += 1
        return DecryptedLine(path, number, line.log_id, line.seq, line.kind, line.kid, line.ts,
                             plain, encrypted=True)


def _raw_body(signed: bytes) -> bytes:
    """The body exactly as written: between ``"body":`` and the envelope's ``,"kid":"``."""
    return signed[_BODY_START:signed.rindex(b',"kid":"')]
