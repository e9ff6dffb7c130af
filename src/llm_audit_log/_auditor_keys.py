"""
The auditor's X25519 private key (:class:`AuditorKey`) and :func:`load_auditor_key`.

The private half belongs off the log host, in its own file written by
``llm-audit keygen --auditor-out PATH``; a :class:`~llm_audit_log.keys.Keyring` holds the
public half (and, unless it was split off, the private one too).
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from llm_audit_log._key_files import (
    _KID_RE,
    AUDITOR_ALG,
    AUDITOR_KEY_FORMAT,
    KEY_BYTES,
    KEYRING_FORMAT,
    KEYRING_VERSION,
    _b64,
    _new_kid,
    _path_from_env,
    _read_key_file,
    _save_secret,
    _unb64,
    expand_path,
)
from llm_audit_log.errors import KeyringError

__all__ = ["AuditorKey", "load_auditor_key"]


def _x25519_private_bytes(key: X25519PrivateKey) -> bytes:
    return key.private_bytes_raw()


def _x25519_public_bytes(key: X25519PublicKey) -> bytes:
    return key.public_bytes_raw()


class AuditorKey:
    """
    The auditor's X25519 private key: it unwraps the data keys of encrypted log files.

    It belongs off the log host. The key never leaves this object: callers get the
    Diffie-Hellman result for a file's ephemeral public key (:meth:`exchange`), and only
    :meth:`unsafe_export_json` serialises the secret.
    """

    __slots__ = ("_private", "kid", "public_key")

    def __init__(self, *, kid: str, private_key: bytes) -> None:
        if not _KID_RE.match(kid):
            raise KeyringError("auditor key: key id must match [A-Za-z0-9_-]{1,64}")
        if len(private_key) != KEY_BYTES:
            raise KeyringError(f"auditor key: the private key must be {KEY_BYTES} bytes")
        self.kid = kid
        self._private = X25519PrivateKey.from_private_bytes(private_key)
        #: The raw 32-byte public half (not secret).
        self.public_key = _x25519_public_bytes(self._private.public_key())

    def __repr__(self) -> str:
        return f"AuditorKey(kid={self.kid!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("an AuditorKey holds a secret and cannot be pickled")

    @classmethod
    def generate(cls) -> AuditorKey:
        """A fresh auditor key pair."""
        return cls(kid=_new_kid("a"), private_key=_x25519_private_bytes(
            X25519PrivateKey.generate()))

    def exchange(self, peer_public_key: bytes) -> bytes:
        """
        X25519 with a file's ephemeral public key (the input to the wrap key's HKDF).

        Raises:
            ValueError: the peer key is malformed or of low order.

        """
        return self._private.exchange(X25519PublicKey.from_public_bytes(peer_public_key))

    def unsafe_export_entry(self) -> dict[str, str]:
        """``{"kid", "alg", "public", "private"}`` *with the secret*. Never log the result."""
        return {"kid": self.kid, "alg": AUDITOR_ALG, "public": _b64(self.public_key),
                "private": _b64(_x25519_private_bytes(self._private))}

    def unsafe_export_json(self) -> str:
        """Serialise *with the secret*, for the auditor's key file. Never log the result."""
        return json.dumps({"format": AUDITOR_KEY_FORMAT, "version": KEYRING_VERSION,
                           **self.unsafe_export_entry()}, indent=2, sort_keys=True)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the auditor key file atomically with mode 0600."""
        return _save_secret(Path(path), self.unsafe_export_json(), overwrite=overwrite,
                            what="auditor key")

    @classmethod
    def from_json(cls, text: str, *, source: str) -> AuditorKey:
        """
        Parse an auditor key file, or a keyring that still holds the private half.

        Raises:
            KeyringError: naming the problem, never key bytes.

        """
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            raise KeyringError(f"auditor key {source}: not valid JSON") from None
        if isinstance(doc, dict) and doc.get("format") == KEYRING_FORMAT:
            doc = doc.get("auditor")
        elif not isinstance(doc, dict) or doc.get("format") != AUDITOR_KEY_FORMAT:
            raise KeyringError(f"auditor key {source}: not an llm-audit-log auditor key file")
        elif doc.get("version") != KEYRING_VERSION:
            raise KeyringError(f"auditor key {source}: unsupported version")
        key = _auditor_from_entry(doc, source)[1] if isinstance(doc, dict) else None
        if key is None:
            raise KeyringError(f"auditor key {source}: holds no auditor private key (a keyring "
                               "written with --auditor-out keeps only the public half)")
        return key


def _auditor_from_entry(entry: Mapping[str, Any],
                        source: str) -> tuple[tuple[str, bytes], AuditorKey | None]:
    """Parse ``{"kid", "alg", "public", "private"?}``; the private half must match."""
    kid = entry.get("kid")
    if not isinstance(kid, str):
        raise KeyringError(f"keyring {source}: the auditor key needs a 'kid'")
    if entry.get("alg", AUDITOR_ALG) != AUDITOR_ALG:
        raise KeyringError(f"keyring {source}: auditor key names an unsupported algorithm")
    public = _unb64(entry.get("public"), "auditor public key")
    private = None
    if entry.get("private") is not None:
        private = AuditorKey(kid=kid, private_key=_unb64(entry.get("private"),
                                                         "auditor private key"))
        if not hmac.compare_digest(private.public_key, public):
            raise KeyringError(f"keyring {source}: auditor private and public keys differ")
    elif not _KID_RE.match(kid):
        raise KeyringError(f"keyring {source}: auditor key id must match [A-Za-z0-9_-]{{1,64}}")
    return (kid, public), private


def load_auditor_key(source: str | os.PathLike[str] | AuditorKey) -> AuditorKey:
    """
    Load the auditor's private key: ``file:PATH`` or a path, ``env:VAR`` or ``env-inline:VAR``.

    The file may be an auditor key file (``llm-audit keygen --auditor-out``) or a keyring
    that still holds the private half.

    Raises:
        KeyringError: missing, unreadable or malformed; never quotes key bytes.

    """
    if isinstance(source, AuditorKey):
        return source
    spec = os.fspath(source)
    if spec.startswith("env-inline:"):
        value = os.environ.get(spec[len("env-inline:"):])
        if not value:
            raise KeyringError(f"auditor key {spec}: environment variable is not set")
        return AuditorKey.from_json(value, source=spec)
    if spec.startswith("env:"):
        value = os.environ.get(spec[4:])
        if not value:
            raise KeyringError(f"auditor key {spec}: environment variable {spec[4:]} is not set")
        path = _path_from_env(spec[4:], value, "auditor key")
    else:
        spec = spec.removeprefix("file:")
        if not spec:
            raise KeyringError("auditor key: empty key source")
        path = expand_path(spec, f"auditor key file:{spec}")
        spec = f"file:{spec}"
    text, _ = _read_key_file(path, spec, "auditor key", missing_hint=(
        "it is the private half `llm-audit keygen --auditor-out` wrote when the logs were "
        "made; a new key cannot decrypt them"))
    return AuditorKey.from_json(text, source=spec)
