"""
Stage 5's line format: the encrypted event body and the header's ``encryption`` declaration.

:mod:`llm_audit_log.encrypt` keeps the keys (per-file data keys and their wrapping for a
recipient) and re-exports the names here. This module holds what an encrypted line looks
like and how its parts are checked: the ``{"enc": ...}`` body with its associated data and
clear copies, the declaration a file header makes, and strict base64. It builds no cipher:
a :class:`~llm_audit_log.encrypt.DataKey` encrypts and decrypts.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from llm_audit_log.errors import DecryptionError

if TYPE_CHECKING:
    from llm_audit_log.encrypt import DataKey

__all__ = [
    "BODY_ALG",
    "ENC_FIELD",
    "NONCE_BYTES",
    "TAG_BYTES",
    "EncryptionInfo",
    "clear_json",
    "decrypt_event_body",
    "enc_reference",
    "encrypt_event_body",
    "event_aad",
    "parse_encryption_info",
]

#: The body cipher named in every encrypted file's header.
BODY_ALG: Final = "A256GCM"
#: The body key of an encrypted event line; never allowed as a clear field.
ENC_FIELD: Final = "enc"
#: 96-bit nonces, the size GCM is specified for (NIST SP 800-38D).
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
_AAD_LABEL: Final = "llm-audit-log/v1"
_DK_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_ENC_KEYS: Final = frozenset({"ct", "dk", "n"})


def _b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


def _has_strict_base64() -> bool:
    try:
        binascii.a2b_base64(b"", strict_mode=True)  # type: ignore[call-arg,unused-ignore]
    except TypeError:  # Python 3.10
        return False
    return True


_STRICT_BASE64: Final = _has_strict_base64()


def _unb64(text: object) -> bytes:
    """Strict standard base64 (no stray characters), or DecryptionError."""
    if not isinstance(text, str):
        raise DecryptionError
    try:
        raw = text.encode("ascii")
        if _STRICT_BASE64:
            return binascii.a2b_base64(raw, strict_mode=True)  # type: ignore[call-arg,unused-ignore]
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise DecryptionError from None


# -- header declarations --------------------------------------------------------------------

@dataclass(frozen=True)
class EncryptionInfo:
    """What a file header declares about encryption (public facts only)."""

    dk: str
    clear: frozenset[str]
    wrap_alg: str
    wrap: Mapping[str, Any]


class UnknownCipherError(ValueError):
    """A well-formed declaration of a cipher this release does not know: cannot verify."""


def parse_encryption_info(header_body: Mapping[str, Any]) -> EncryptionInfo | None:
    """
    The header's ``encryption`` declaration, or None for a file written in clear.

    Raises:
        ValueError: the declaration is present but malformed or names another cipher.

    """
    enc = header_body.get("encryption")
    if enc is None:
        return None
    if not isinstance(enc, dict) or set(enc) != {"alg", "clear", "dk", "wrap"}:
        raise ValueError("encryption declaration is malformed")
    if enc["alg"] != BODY_ALG:
        raise UnknownCipherError("encryption declaration names an unknown cipher")
    dk, clear, wrap = enc["dk"], enc["clear"], enc["wrap"]
    if not isinstance(dk, str) or not _DK_ID_RE.match(dk):
        raise ValueError("encryption declaration has no valid data key id")
    if not isinstance(clear, list) or not all(isinstance(c, str) for c in clear) \
            or ENC_FIELD in clear:
        raise ValueError("encryption declaration has a malformed clear-field list")
    if not isinstance(wrap, dict) or not isinstance(wrap.get("alg"), str):
        raise ValueError("encryption declaration has no wrapped data key")  # noqa: TRY004
    return EncryptionInfo(dk=dk, clear=frozenset(clear), wrap_alg=wrap["alg"], wrap=wrap)


# -- event bodies ---------------------------------------------------------------------------

# Built once: json.dumps with options constructs a new encoder on every call.
_CANONICAL_ASCII: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"),
                                           ensure_ascii=True, allow_nan=False).encode


def clear_json(fields: Mapping[str, Any]) -> bytes:
    """
    Canonical JSON of the clear fields (sorted keys, compact, UTF-8).

    Writer and reader both call this, on the writer's values and on the values parsed back
    from the line, so they produce the same bytes. Text orjson refuses (lone surrogates)
    falls back to ASCII escapes, as the formatter does.
    """
    try:
        return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return _CANONICAL_ASCII(fields).encode("ascii")


def event_aad(dk_id: str, clear: bytes, *, log_id: str, seq: int, prev: str, kid: str,
              ts: str, kind: str = "event") -> bytes:
    """The associated data pinning an event's ciphertext to its line and clear fields."""
    return (f"{_AAD_LABEL}\x00{log_id}\x00{seq}\x00{prev}\x00{kid}\x00{kind}\x00{ts}\x00"
            f"{dk_id}\x00").encode() + clear


def encrypt_event_body(dk: DataKey, body: str | bytes, clear: Mapping[str, Any], *, log_id: str,
                       seq: int, prev: str, kid: str, ts: str) -> str:
    """
    The encrypted line body for the plaintext ``body`` at this chain position.

    ``{"enc":{"ct":<b64>,"dk":<id>,"n":<b64>}`` first, then the ``clear`` copies in sorted
    order. The AAD is :func:`event_aad` of those clear fields.
    """
    return dk.encrypt_event(body, clear, log_id, seq, prev, kid, ts).decode("utf-8")


def enc_reference(body: Mapping[str, Any]) -> tuple[str, bytes] | None:
    """
    ``(data key id, nonce)`` of a well-formed encrypted body, else None.

    Checks the shape only (what a verifier without the key can check).
    """
    enc = body.get(ENC_FIELD)
    if not isinstance(enc, dict) or enc.keys() != _ENC_KEYS:
        return None
    dk = enc["dk"]
    try:
        nonce = _unb64(enc["n"])
        ct = _unb64(enc["ct"])
    except DecryptionError:
        return None
    if not isinstance(dk, str) or len(nonce) != NONCE_BYTES or len(ct) < TAG_BYTES:
        return None
    return dk, nonce


def _clear_copies_match(plain: bytes, clear: Mapping[str, Any]) -> bool:
    """Whether the plaintext body holds exactly the clear copies' values."""
    expected = clear_json(clear)
    for loads in (orjson.loads, json.loads):  # json: integers beyond 64 bits, lone surrogates
        try:
            doc = loads(plain)
        except ValueError:
            continue
        if isinstance(doc, dict) and all(k in doc for k in clear) \
                and clear_json({k: doc[k] for k in clear}) == expected:
            return True
    return False


def decrypt_event_body(dk: DataKey, body: Mapping[str, Any], *, log_id: str, seq: int,
                       prev: str, kid: str, ts: str) -> bytes:
    """
    The exact plaintext body of an encrypted event line (MAC already verified).

    The clear copies must also equal the plaintext's own fields.

    Raises:
        DecryptionError: wrong key, altered or moved ciphertext, or clear fields that
            disagree with the plaintext.

    """
    enc = body.get(ENC_FIELD)
    if not isinstance(enc, dict) or enc.keys() != _ENC_KEYS or enc["dk"] != dk.dk_id:
        raise DecryptionError
    clear = {k: v for k, v in body.items() if k != ENC_FIELD}
    aad = event_aad(dk.dk_id, clear_json(clear), log_id=log_id, seq=seq, prev=prev, kid=kid,
                    ts=ts)
    plain = dk.decrypt_body(enc["n"], enc["ct"], aad)
    if clear and not _clear_copies_match(plain, clear):
        raise DecryptionError
    return plain
