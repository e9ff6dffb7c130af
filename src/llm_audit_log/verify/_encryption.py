"""
Checks of encrypted files that need no decryption key (threat-model items 24-27).

The MAC covers every byte, ciphertext included, so a flipped or moved ciphertext already
fails its MAC. These checks add what a holder of the signing key could still forge: once a
file's header declares encryption, every event line in that file must be encrypted under
that file's data key, carry no clear field the header did not declare, and use a nonce
not used before under that key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_audit_log._encrypted_lines import UnknownCipherError
from llm_audit_log.encrypt import ENC_FIELD, EncryptionInfo, enc_reference, parse_encryption_info
from llm_audit_log.verify.verdicts import Verdict

__all__ = ["EncryptionCheck"]

Problem = tuple[Verdict, str]

_STRIPPED = "event in clear in a file whose header declares encryption (encryption stripped)"
_UNDECLARED = ("encrypted event in a file whose header declares no encryption (declaration "
               "stripped)")
_MOVED = "ciphertext under another data key than this file's (moved from another file)"


class EncryptionCheck:
    """Encryption state of one log while its files are walked in order."""

    __slots__ = ("_data_keys", "_file", "_header_seen", "_nonces", "encrypted_events")

    def __init__(self) -> None:
        self._data_keys: dict[str, str] = {}  # data key id -> the file that declared it
        self._file: EncryptionInfo | None = None
        self._header_seen = False
        self._nonces: dict[str, set[bytes]] = {}
        self.encrypted_events = 0

    def start_file(self) -> None:
        """A new file: nothing is known until its header verifies."""
        self._file = None
        self._header_seen = False
        self._nonces = {}

    def on_header(self, body: Mapping[str, Any], path: str) -> Problem | None:
        """Read the verified header's encryption declaration."""
        self._header_seen = True
        try:
            info = parse_encryption_info(body)
        except UnknownCipherError as exc:
            return Verdict.CANNOT_VERIFY, str(exc)
        except ValueError as exc:
            return Verdict.TAMPERED, str(exc)
        self._file = info
        if info is None:
            return None
        first = self._data_keys.setdefault(info.dk, path)
        if first != path:
            return Verdict.TAMPERED, f"data key id already declared by {first}"
        return None

    def on_event(self, body: Mapping[str, Any]) -> Problem | None:
        """Check one accepted event line of the current file."""
        info = self._file
        ref = enc_reference(body)
        if self._header_seen and info is None:
            if ref is not None:
                return Verdict.TAMPERED, _UNDECLARED
            return None  # a file written in clear
        if ref is None:
            if info is None:
                return None  # header unverifiable (reported already); nothing to hold it to
            if ENC_FIELD in body:
                return Verdict.TAMPERED, "malformed encrypted body"
            return Verdict.TAMPERED, _STRIPPED
        dk, nonce = ref
        self.encrypted_events += 1
        seen = self._nonces.setdefault(dk, set())
        if nonce in seen:
            return Verdict.TAMPERED, "nonce reused under one data key"
        seen.add(nonce)
        if info is None:
            return None
        if dk != info.dk:
            return Verdict.TAMPERED, _MOVED
        if len(body) > 1 and not (body.keys() - {ENC_FIELD}) <= info.clear:
            return Verdict.TAMPERED, "field in clear that the header does not declare clear"
        return None
