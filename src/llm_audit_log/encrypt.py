"""
Stage 5, encrypt: AES-256-GCM record bodies and per-file data keys wrapped for a recipient.

Encrypt-then-MAC. With encryption on, an event line's body becomes::

    {"enc":{"ct":"<b64>","dk":"<data key id>","n":"<b64 nonce>"},<clear index fields>}

``ct`` is AES-256-GCM, under the file's data key and a fresh random 96-bit nonce, of the
plaintext body exactly as the formatter produced it, so decryption gives back those bytes.
The clear fields are copies kept for search (which ones is configuration). The associated
data pins the ciphertext to its line and authenticates the clear copies::

    llm-audit-log/v1 NUL log NUL seq NUL prev NUL kid NUL t NUL ts NUL dk NUL <clear as JSON>

The seal stage then MACs the whole line as before, so integrity, chain and completeness are
checked with the signing key alone, by an auditor who cannot read the content.

Every file has its own random data key. The header names it and carries it wrapped for one
recipient, never in clear:

* :class:`AuditorRecipient` - X25519 ephemeral-static: a fresh key pair per file, HKDF-SHA256
  over the shared secret with the log id, file index and both public keys, then AES-256-GCM
  over the data key. The host holds only the auditor's public key, so once a file's data key
  is erased at rotation nothing on the host can decrypt that file again.
* :class:`KmsRecipient` - AWS KMS ``GenerateDataKey`` / ``Decrypt`` with an encryption
  context naming the log and the file.

Every decryption failure raises the same opaque :class:`~llm_audit_log.errors.DecryptionError`.
The module is free of ``logging``: the handler in ``sinks/`` is the adapter. The line format
(event bodies, header declarations, base64) is in ``_encrypted_lines`` and re-exported here.
"""

from __future__ import annotations

import binascii
import os
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from llm_audit_log._encrypted_lines import (
    _AAD_LABEL,
    _DK_ID_RE,
    BODY_ALG,
    ENC_FIELD,
    NONCE_BYTES,
    TAG_BYTES,
    EncryptionInfo,
    _b64,
    _unb64,
    clear_json,
    decrypt_event_body,
    enc_reference,
    encrypt_event_body,
    event_aad,
    parse_encryption_info,
)
from llm_audit_log.errors import DataKeyError, DecryptionError
from llm_audit_log.keys import AuditorKey

__all__ = [
    "BODY_ALG",
    "ENC_FIELD",
    "NONCE_BYTES",
    "WRAP_KMS",
    "WRAP_X25519",
    "AuditorRecipient",
    "DataKey",
    "EncryptionInfo",
    "KmsRecipient",
    "Recipient",
    "clear_json",
    "decrypt_event_body",
    "enc_reference",
    "encrypt_event_body",
    "event_aad",
    "kms_client_factory",
    "kms_encryption_context",
    "parse_encryption_info",
    "unwrap_data_key",
]

_ENC_FIELD_BYTES: Final = ENC_FIELD.encode()

WRAP_X25519: Final = "X25519-HKDF-SHA256-A256GCM"
WRAP_KMS: Final = "aws-kms"
DATA_KEY_BYTES: Final = 32
_WRAP_INFO: Final = b"llm-audit-log/v1/x25519-wrap\x00"
_WRAP_AAD: Final = b"llm-audit-log/v1/data-key\x00"


class _ErasedCipher:
    """Stands in for the AESGCM object of an erased data key."""

    def encrypt(self, _nonce: bytes, _data: bytes, _aad: bytes | None) -> bytes:
        raise DataKeyError("this file's data key was erased (the file was rotated or closed)")

    def decrypt(self, _nonce: bytes, _data: bytes, _aad: bytes | None) -> bytes:
        raise DecryptionError


_ERASED: Final = _ErasedCipher()


class DataKey:
    """
    One file's AES-256-GCM data key, with the cipher object reused for every line.

    The raw key is kept in a bytearray that :meth:`erase` zeroes; the cipher object (whose
    OpenSSL context is cleansed when freed) is dropped at the same time. Python cannot
    promise that no other copy ever existed: erasing is best effort, as in any Python code.
    """

    __slots__ = ("_aead", "_key", "dk_id")

    def __init__(self, key: bytes | bytearray, dk_id: str) -> None:
        if len(key) != DATA_KEY_BYTES:
            raise ValueError(f"a data key is {DATA_KEY_BYTES} bytes")
        if not _DK_ID_RE.match(dk_id):
            raise ValueError("a data key id must match [A-Za-z0-9_-]{1,64}")
        self.dk_id = dk_id
        self._key = bytearray(key)
        self._aead: AESGCM | _ErasedCipher = AESGCM(self._key)

    @classmethod
    def generate(cls) -> DataKey:
        """A fresh random data key with a fresh id."""
        return cls(os.urandom(DATA_KEY_BYTES), new_data_key_id())

    def __repr__(self) -> str:
        state = " erased" if self.erased else ""
        return f"DataKey(dk_id={self.dk_id!r}{state})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a DataKey holds a secret and cannot be pickled")

    @property
    def erased(self) -> bool:
        """Whether :meth:`erase` ran."""
        return self._aead is _ERASED

    def erase(self) -> None:
        """Zero the key bytes and drop the cipher; encrypting afterwards raises."""
        self._key[:] = bytes(len(self._key))
        self._aead = _ERASED

    def encrypt_body(self, plain: bytes, aad: bytes) -> tuple[str, str]:
        """
        Encrypt under a fresh random nonce.

        Returns:
            ``(nonce, ciphertext)``, both standard base64 (the ciphertext ends in the tag).

        """
        nonce = os.urandom(NONCE_BYTES)
        ct = self._aead.encrypt(nonce, plain, aad)
        return (binascii.b2a_base64(nonce, newline=False).decode("ascii"),
                binascii.b2a_base64(ct, newline=False).decode("ascii"))

    def encrypt_event(self, body: str | bytes, clear: Mapping[str, Any], log_id: str, seq: int,
                      prev: str, kid: str, ts: str) -> bytes:
        """
        The encrypted line body (UTF-8 bytes) for the plaintext ``body`` at this position.

        ``{"enc":{"ct":..,"dk":..,"n":..}`` first, then the clear fields in sorted order.
        The hot path of an encrypting handler: one AAD format, the reused cipher, one
        ``os.urandom`` call, ``binascii`` base64, and bytes throughout (the sealer takes
        bytes, so nothing is decoded to be encoded again).
        """
        cj = clear_json(clear)
        nonce = os.urandom(NONCE_BYTES)
        plain = body if isinstance(body, bytes) else body.encode()
        ct = self._aead.encrypt(nonce, plain, b"%s%s" % ((
            f"{_AAD_LABEL}\x00{log_id}\x00{seq}\x00{prev}\x00{kid}\x00event\x00{ts}\x00"
            f"{self.dk_id}\x00").encode(), cj))
        rest = b"}" if len(cj) == 2 else b"," + cj[1:]  # cj == b"{}": no clear fields
        return b'{"%s":{"ct":"%s","dk":"%s","n":"%s"}%s' % (
            _ENC_FIELD_BYTES, binascii.b2a_base64(ct, newline=False), self.dk_id.encode(),
            binascii.b2a_base64(nonce, newline=False), rest)

    def decrypt_body(self, nonce_b64: object, ct_b64: object, aad: bytes) -> bytes:
        """The plaintext, or :class:`DecryptionError` for anything wrong (opaque on purpose)."""
        nonce = _unb64(nonce_b64)
        ct = _unb64(ct_b64)
        if len(nonce) != NONCE_BYTES or len(ct) < TAG_BYTES:
            raise DecryptionError
        try:
            return self._aead.decrypt(nonce, ct, aad)
        except DecryptionError:
            raise
        except Exception:
            raise DecryptionError from None

    def wrap(self, cipher: AESGCM, nonce: bytes, aad: bytes) -> bytes:
        """The key, encrypted under ``cipher`` (the recipient's key-wrapping key)."""
        if self.erased:
            raise DataKeyError("this data key was erased")
        return cipher.encrypt(nonce, self._key, aad)


def new_data_key_id() -> str:
    """A random data key id (public: it names the key, and reveals nothing about it)."""
    return f"d{secrets.token_hex(10)}"


def _derive_kek(shared: bytes, log_id: str, file_index: int, epk: bytes, apk: bytes) -> AESGCM:
    if shared == bytes(len(shared)):
        raise DecryptionError  # a low-order point: never derive a key from it
    info = b"%s%s\x00%d\x00%s%s" % (_WRAP_INFO, log_id.encode(), file_index, epk, apk)
    kek = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)
    return AESGCM(kek)


class Recipient:
    """Who can unwrap a file's data key: the base of the two recipient kinds."""

    __slots__ = ()

    #: Whether making a data key calls a remote service (and may be slow or fail).
    remote: bool = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

    def new_data_key(self, log_id: str, file_index: int) -> tuple[DataKey, dict[str, Any]]:
        """A fresh data key and its ``wrap`` header object (no secrets in it)."""
        raise NotImplementedError

    def forget_after_fork(self) -> None:
        """In a forked child: drop anything shared with the parent (a client's sockets)."""

    def describe(self) -> str:
        """A short label for reprs and messages (ids only)."""
        raise NotImplementedError


class AuditorRecipient(Recipient):
    """
    Wrap data keys for the auditor's X25519 public key; the host needs no secret for it.

    Args:
        public_key: the auditor's raw 32-byte X25519 public key.
        kid: the auditor key's id (written into each header so the auditor finds the key).

    Raises:
        ValueError: the public key is malformed or of low order.

    """

    __slots__ = ("_public", "kid", "public_key")

    def __init__(self, public_key: bytes, kid: str) -> None:
        if len(public_key) != 32:
            raise ValueError("an X25519 public key is 32 bytes")
        self.public_key = bytes(public_key)
        self.kid = kid
        self._public = X25519PublicKey.from_public_bytes(self.public_key)
        try:  # refuse a low-order point now, not at the first rotation
            X25519PrivateKey.generate().exchange(self._public)
        except ValueError:
            raise ValueError("the auditor public key is not a usable X25519 key") from None

    def describe(self) -> str:
        """``auditor:<kid>``."""
        return f"auditor:{self.kid}"

    def new_data_key(self, log_id: str, file_index: int) -> tuple[DataKey, dict[str, Any]]:
        """A fresh data key wrapped under a key agreed with a fresh ephemeral key pair."""
        dk = DataKey.generate()
        ephemeral = X25519PrivateKey.generate()
        epk = ephemeral.public_key().public_bytes_raw()
        kek = _derive_kek(ephemeral.exchange(self._public), log_id, file_index, epk,
                          self.public_key)
        del ephemeral  # the ephemeral secret is never stored: only the auditor can agree again
        nonce = os.urandom(NONCE_BYTES)
        wrapped = dk.wrap(kek, nonce, _WRAP_AAD + dk.dk_id.encode())
        return dk, {"alg": WRAP_X25519, "akid": self.kid, "epk": _b64(epk), "n": _b64(nonce),
                    "ct": _b64(wrapped)}


def kms_encryption_context(log_id: str, file_index: int) -> dict[str, str]:
    """The KMS encryption context binding a wrapped data key to its log and file."""
    return {"llm-audit-log": log_id, "file": str(file_index)}


def kms_client_factory(region: str | None = None,
                       endpoint_url: str | None = None) -> Callable[[], Any]:
    """A factory for a boto3 KMS client (credentials from the standard AWS chain)."""

    def make() -> Any:
        import boto3  # type: ignore[import-untyped]  # noqa: PLC0415 - only for KMS users

        return boto3.client("kms", region_name=region, endpoint_url=endpoint_url)

    return make


def _kms_error(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str):
            return code
    return type(exc).__name__


class KmsRecipient(Recipient):
    """
    Data keys from AWS KMS ``GenerateDataKey`` (AES_256), bound to their log and file.

    Args:
        key_id: KMS key id, ARN or alias (``alias/llm-audit-log``).
        client_factory: returns a boto3 KMS client; called once, on first use.

    """

    __slots__ = ("_client", "_factory", "key_id")

    remote = True

    def __init__(self, key_id: str, client_factory: Callable[[], Any]) -> None:
        self.key_id = key_id
        self._factory = client_factory
        self._client: Any = None

    def forget_after_fork(self) -> None:
        """The parent's client (its pooled connections) is not the child's to use."""
        self._client = None

    def describe(self) -> str:
        """``kms:<key id>``."""
        return f"kms:{self.key_id}"

    def new_data_key(self, log_id: str, file_index: int) -> tuple[DataKey, dict[str, Any]]:
        """
        A data key generated and wrapped by KMS.

        Raises:
            DataKeyError: KMS could not be reached or refused (names the error code only).

        """
        try:
            if self._client is None:
                self._client = self._factory()
            response = self._client.generate_data_key(
                KeyId=self.key_id, KeySpec="AES_256",
                EncryptionContext=kms_encryption_context(log_id, file_index))
            dk = DataKey(response["Plaintext"], new_data_key_id())
            blob = response["CiphertextBlob"]
            arn = response.get("KeyId") or self.key_id
        except Exception as exc:
            raise DataKeyError(f"KMS GenerateDataKey with key {self.key_id} failed: "
                               f"{_kms_error(exc)}") from None
        return dk, {"alg": WRAP_KMS, "key": str(arn), "ct": _b64(blob)}


def unwrap_data_key(
    header_body: Mapping[str, Any],
    *,
    log_id: str,
    auditor_key: AuditorKey | None = None,
    kms_client: Any = None,
) -> DataKey:
    """
    Recover a file's data key from its (verified) header body.

    Args:
        header_body: the ``body`` of the file's header line.
        log_id: the header line's log id (part of what the wrap is bound to).
        auditor_key: the auditor's private key, for X25519-wrapped files.
        kms_client: a boto3 KMS client, for KMS-wrapped files.

    Raises:
        DecryptionError: for every failure: no or wrong key, altered header, KMS refusal.

    """
    try:
        return _unwrap(header_body, log_id, auditor_key, kms_client)
    except DecryptionError:
        raise
    except Exception:
        raise DecryptionError from None


def _unwrap(header_body: Mapping[str, Any], log_id: str, auditor_key: AuditorKey | None,
            kms_client: Any) -> DataKey:
    info = parse_encryption_info(header_body)
    index = header_body.get("file_index")
    if info is None or type(index) is not int:
        raise DecryptionError
    wrap = info.wrap
    if info.wrap_alg == WRAP_X25519:
        if auditor_key is None or wrap.get("akid") != auditor_key.kid:
            raise DecryptionError
        epk = _unb64(wrap.get("epk"))
        kek = _derive_kek(auditor_key.exchange(epk), log_id, index, epk, auditor_key.public_key)
        raw = kek.decrypt(_unb64(wrap.get("n")), _unb64(wrap.get("ct")),
                          _WRAP_AAD + info.dk.encode())
    elif info.wrap_alg == WRAP_KMS:
        if kms_client is None or not isinstance(wrap.get("key"), str):
            raise DecryptionError
        response = kms_client.decrypt(
            CiphertextBlob=_unb64(wrap.get("ct")), KeyId=wrap["key"],
            EncryptionContext=kms_encryption_context(log_id, index))
        raw = response["Plaintext"]
    else:
        raise DecryptionError
    return DataKey(raw, info.dk)
