"""
Keyrings: where signing and pseudonymisation keys come from, and the only place they live.

Configs never hold keys; they name a *source*:

* ``env:VAR`` (default ``env:LLM_AUDIT_KEYRING``) - the environment variable holds the
  path of a keyring file written by ``llm-audit keygen``;
* ``env-inline:VAR`` - the environment variable holds the keyring JSON itself (for
  platforms that inject secrets as variables);
* ``file:PATH`` or a plain path - an explicit keyring file.

Key bytes are kept in private attributes, appear in no ``repr``, error or log line,
and a :class:`Keyring` refuses to be pickled.

A keyring may also hold the *auditor* key pair (X25519) used for encryption at rest:
the host needs only the public half to wrap each file's data key; the private half
(:class:`AuditorKey`) belongs off the host, in its own file written by
``llm-audit keygen --auditor-out PATH`` and read by :func:`load_auditor_key`.

:class:`AuditorKey` and :func:`load_auditor_key` live in ``_auditor_keys``, the file formats
and safe key-file reading and writing in ``_key_files``; this module re-exports them.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from llm_audit_log._auditor_keys import AuditorKey, _auditor_from_entry, load_auditor_key
from llm_audit_log._key_files import (
    _KID_RE,
    AUDITOR_ALG,
    AUDITOR_KEY_FORMAT,
    KEY_BYTES,
    KEYRING_FORMAT,
    KEYRING_VERSION,
    _b64,
    _new_kid,
    _now_iso,
    _optional_str,
    _path_from_env,
    _read_key_file,
    _save_secret,
    _unb64,
    expand_path,
)
from llm_audit_log.errors import KeyringError

__all__ = [
    "AUDITOR_KEY_FORMAT",
    "DEFAULT_KEYRING_SOURCE",
    "KEYRING_FORMAT",
    "AuditorKey",
    "KeyInfo",
    "Keyring",
    "load_auditor_key",
    "load_keyring",
]

DEFAULT_KEYRING_SOURCE = "env:LLM_AUDIT_KEYRING"
#: The only MAC algorithm a version-1 line may name; anything else is a downgrade.
MAC_ALG = "HS256"
PSEUDONYM_ALG = "hmac-sha256"
_ROTATION_LABEL = b"llm-audit-log/key-rotation\x00"


@dataclass(frozen=True)
class KeyInfo:
    """Public facts about one signing key: id, algorithm and validity window (no secret)."""

    kid: str
    alg: str
    created: str | None
    not_before: str | None
    not_after: str | None

    def valid_at(self, timestamp: str) -> bool:
        """Whether a line sealed at ``timestamp`` (our ISO-8601 Z form) lies in the window."""
        if self.not_before is not None and timestamp < self.not_before:
            return False
        return not (self.not_after is not None and timestamp > self.not_after)


def _retirement_time(text: str) -> str:
    """
    ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` in the form lines carry, or KeyringError.

    Validity windows are compared as text against line timestamps, so only that form
    compares right: anything else would silently retire nothing, or the wrong lines.
    """
    try:
        when = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ" if "." in text
                                    else "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except (TypeError, ValueError):
        raise KeyringError(f"retire_old_after {text!r}: expected a UTC time such as "
                           "2030-01-31T00:00:00Z") from None
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Keyring:
    """
    Signing keys (by key id) and the pseudonymisation key.

    One key id is *active* and signs new lines; the others still verify old ones.
    Optionally it names the auditor's public key (for encryption at rest) and, unless
    the private half was split off, holds the auditor's private key too.
    """

    __slots__ = ("_auditor", "_auditor_public", "_infos", "_macs", "_pseudonym",
                 "_pseudonym_key", "_pseudonym_prefix", "_secrets", "active_kid", "auditor_kid",
                 "pseudonym_kid", "source")

    def __init__(
        self,
        *,
        active_kid: str,
        keys: Mapping[str, tuple[KeyInfo, bytes]],
        pseudonym_kid: str,
        pseudonym_key: bytes,
        source: str = "<memory>",
        auditor_public: tuple[str, bytes] | None = None,
        auditor_key: AuditorKey | None = None,
    ) -> None:
        if auditor_key is not None:
            if auditor_public is None:
                auditor_public = (auditor_key.kid, auditor_key.public_key)
            elif auditor_public != (auditor_key.kid, auditor_key.public_key):
                raise KeyringError("keyring: auditor private and public keys differ")
        if auditor_public is not None and len(auditor_public[1]) != KEY_BYTES:
            raise KeyringError(f"keyring: the auditor public key must be {KEY_BYTES} bytes")
        if active_kid not in keys:
            raise KeyringError("keyring: the active key id has no key")
        for kid, (info, secret) in keys.items():
            if not _KID_RE.match(kid) or info.kid != kid:
                raise KeyringError("keyring: key ids must match [A-Za-z0-9_-]{1,64}")
            if info.alg != MAC_ALG:
                raise KeyringError(f"keyring: key {kid} names unsupported algorithm")
            if len(secret) != KEY_BYTES:
                raise KeyringError(f"keyring: key {kid} must be {KEY_BYTES} bytes")
        if not _KID_RE.match(pseudonym_kid):
            raise KeyringError("keyring: pseudonym key id must match [A-Za-z0-9_-]{1,64}")
        self.active_kid = active_kid
        self.pseudonym_kid = pseudonym_kid
        self.source = source
        self._infos = {kid: info for kid, (info, _) in keys.items()}
        self._secrets = {kid: secret for kid, (_, secret) in keys.items()}
        # Pre-keyed HMAC objects (cryptography's, the fastest here): copying one is cheaper
        # than keying a new one per line.
        self._macs = {kid: HMAC(secret, hashes.SHA256()) for kid, secret in self._secrets.items()}
        self._pseudonym_key = pseudonym_key
        self._pseudonym = HMAC(pseudonym_key, hashes.SHA256())
        self._pseudonym_prefix = f"{PSEUDONYM_ALG}:{pseudonym_kid}:"
        self.auditor_kid = auditor_public[0] if auditor_public else None
        self._auditor_public = auditor_public[1] if auditor_public else None
        self._auditor = auditor_key

    # -- never leak ---------------------------------------------------------------------
    def __repr__(self) -> str:
        auditor = "" if self.auditor_kid is None else (
            f", auditor_kid={self.auditor_kid!r}"
            f"{'' if self._auditor is not None else ' (public only)'}")
        return (f"Keyring(active_kid={self.active_kid!r}, kids={sorted(self._infos)!r}"
                f"{auditor}, source={self.source!r})")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Keyring holds secrets and cannot be pickled")

    # -- public facts ---------------------------------------------------------------------
    @property
    def kids(self) -> tuple[str, ...]:
        """Every signing key id, sorted."""
        return tuple(sorted(self._infos))

    def info(self, kid: str) -> KeyInfo | None:
        """Public facts about ``kid``, or None if this keyring does not hold it."""
        return self._infos.get(kid)

    @property
    def auditor_public_key(self) -> bytes | None:
        """The auditor's raw X25519 public key (not secret), or None."""
        return self._auditor_public

    @property
    def auditor_key(self) -> AuditorKey | None:
        """The auditor's private key, if this keyring still holds it (not on a split host)."""
        return self._auditor

    def without_auditor_key(self) -> Keyring:
        """A copy that keeps the auditor's public key but not its private half."""
        return self._copy(auditor_key=None)

    def with_auditor_key(self, auditor_key: AuditorKey) -> Keyring:
        """
        A copy holding ``auditor_key`` (a keyring from before encryption, or a new auditor).

        Files already written stay wrapped for the previous auditor key.
        """
        return self._copy(auditor_key=auditor_key, replace_auditor=True)

    def _copy(self, *, keys: Mapping[str, tuple[KeyInfo, bytes]] | None = None,
              active_kid: str | None = None, auditor_key: AuditorKey | None,
              replace_auditor: bool = False) -> Keyring:
        auditor = ((self.auditor_kid, self._auditor_public)
                   if self.auditor_kid is not None and self._auditor_public is not None
                   and not replace_auditor else None)
        return Keyring(
            active_kid=active_kid or self.active_kid,
            keys=keys if keys is not None else {k: (self._infos[k], self._secrets[k])
                                                for k in self._infos},
            pseudonym_kid=self.pseudonym_kid, pseudonym_key=self._pseudonym_key_bytes(),
            source=self.source, auditor_public=auditor, auditor_key=auditor_key)

    # -- MACs -----------------------------------------------------------------------------
    def mac_function(self, kid: str) -> Callable[[bytes], str]:
        """Return ``f(data) -> hex HMAC-SHA256`` for ``kid`` (fast path for the sealer)."""
        base = self._macs[kid]

        def mac(data: bytes) -> str:
            h = base.copy()
            h.update(data)
            return h.finalize().hex()

        return mac

    def verify_mac(self, kid: str, data: bytes, mac_hex: str) -> bool:
        """Constant-time check of a hex MAC; False for an unknown key id."""
        base = self._macs.get(kid)
        if base is None:
            return False
        h = base.copy()
        h.update(data)
        return hmac.compare_digest(h.finalize().hex(), mac_hex)

    def rotation_proof(self, new_kid: str, log_id: str, seq: int) -> str:
        """MAC under the *new* key binding a rotation record to its log and position."""
        base = self._macs[new_kid]
        h = base.copy()
        h.update(_ROTATION_LABEL + f"{log_id}\x00{seq}\x00{new_kid}".encode())
        return h.finalize().hex()

    def verify_rotation_proof(self, new_kid: str, log_id: str, seq: int, proof: str) -> bool:
        """Check a rotation record's proof in constant time."""
        if new_kid not in self._macs:
            return False
        return hmac.compare_digest(self.rotation_proof(new_kid, log_id, seq), proof)

    def pseudonymise(self, text: str) -> str:
        """Keyed hash of raw text, naming algorithm and key id: ``hmac-sha256:<kid>:<hex>``."""
        h = self._pseudonym.copy()
        h.update(text.encode("utf-8", "surrogatepass"))
        return self._pseudonym_prefix + h.finalize().hex()

    # -- lifecycle ------------------------------------------------------------------------
    @classmethod
    def generate(cls) -> Keyring:
        """A fresh keyring: a signing key, a pseudonymisation key and an auditor key pair."""
        kid = _new_kid("k")
        info = KeyInfo(kid=kid, alg=MAC_ALG, created=_now_iso(), not_before=None, not_after=None)
        return cls(active_kid=kid, keys={kid: (info, secrets.token_bytes(KEY_BYTES))},
                   pseudonym_kid=_new_kid("p"), pseudonym_key=secrets.token_bytes(KEY_BYTES),
                   auditor_key=AuditorKey.generate())

    def rotated(self, *, retire_old_after: str | None = None) -> Keyring:
        """
        A copy with a new active signing key; old keys still verify.

        ``retire_old_after`` (ISO-8601 Z) closes the old active key's validity window.
        """
        kid = _new_kid("k")
        keys = {k: (self._infos[k], self._secrets[k]) for k in self._infos}
        if retire_old_after is not None:
            retire_at = _retirement_time(retire_old_after)
            old = self._infos[self.active_kid]
            keys[old.kid] = (KeyInfo(old.kid, old.alg, old.created, old.not_before,
                                     retire_at), self._secrets[old.kid])
        keys[kid] = (KeyInfo(kid, MAC_ALG, _now_iso(), None, None),
                     secrets.token_bytes(KEY_BYTES))
        return self._copy(keys=keys, active_kid=kid, auditor_key=self._auditor)

    def _pseudonym_key_bytes(self) -> bytes:
        return self._pseudonym_key

    def unsafe_export_json(self) -> str:
        """Serialise *with secrets*, for writing a keyring file. Never log the result."""
        doc: dict[str, Any] = {
            "format": KEYRING_FORMAT,
            "version": KEYRING_VERSION,
            "active_kid": self.active_kid,
            "pseudonym": {"kid": self.pseudonym_kid, "key": _b64(self._pseudonym_key_bytes())},
            "keys": [
                {"kid": i.kid, "alg": i.alg, "key": _b64(self._secrets[i.kid]),
                 "created": i.created, "not_before": i.not_before, "not_after": i.not_after}
                for i in sorted(self._infos.values(), key=lambda i: i.kid)
            ],
        }
        if self.auditor_kid is not None and self._auditor_public is not None:
            auditor = {"kid": self.auditor_kid, "alg": AUDITOR_ALG,
                       "public": _b64(self._auditor_public)}
            if self._auditor is not None:
                auditor = self._auditor.unsafe_export_entry()
            doc["auditor"] = auditor
        return json.dumps(doc, indent=2, sort_keys=True)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the keyring file atomically with mode 0600."""
        return _save_secret(Path(path), self.unsafe_export_json(), overwrite=overwrite,
                            what="keyring")

    @classmethod
    def from_json(cls, text: str, *, source: str) -> Keyring:
        """Parse a keyring document; errors name the problem, never key bytes."""
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            raise KeyringError(f"keyring {source}: not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != KEYRING_FORMAT:
            raise KeyringError(f"keyring {source}: not an llm-audit-log keyring")
        if doc.get("version") != KEYRING_VERSION:
            raise KeyringError(f"keyring {source}: unsupported keyring version")
        entries = doc.get("keys")
        pseudo = doc.get("pseudonym")
        if not isinstance(entries, list) or not entries or not isinstance(pseudo, dict):
            raise KeyringError(f"keyring {source}: needs 'keys' and 'pseudonym'")
        keys: dict[str, tuple[KeyInfo, bytes]] = {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                raise KeyringError(f"keyring {source}: every key needs a 'kid'")
            kid = entry["kid"]
            if not _KID_RE.match(kid):  # checked before any message could show it
                raise KeyringError(f"keyring {source}: a key id is malformed (not shown; "
                                   "expected letters, digits, '_' or '-')")
            if kid in keys:
                raise KeyringError(f"keyring {source}: duplicate key id {kid}")
            info = KeyInfo(kid=kid, alg=str(entry.get("alg", "")),
                           created=_optional_str(entry, "created"),
                           not_before=_optional_str(entry, "not_before"),
                           not_after=_optional_str(entry, "not_after"))
            keys[kid] = (info, _unb64(entry.get("key"), f"key {kid}"))
        active = doc.get("active_kid")
        if not isinstance(active, str):
            raise KeyringError(f"keyring {source}: 'active_kid' missing")
        pkid = pseudo.get("kid")
        if not isinstance(pkid, str):
            raise KeyringError(f"keyring {source}: pseudonym key needs a 'kid'")
        auditor_public: tuple[str, bytes] | None = None
        auditor_key: AuditorKey | None = None
        auditor = doc.get("auditor")
        if auditor is not None:
            if not isinstance(auditor, dict):
                raise KeyringError(f"keyring {source}: 'auditor' must be an object")
            auditor_public, auditor_key = _auditor_from_entry(auditor, source)
        return cls(active_kid=active, keys=keys, pseudonym_kid=pkid,
                   pseudonym_key=_unb64(pseudo.get("key"), "pseudonym key"), source=source,
                   auditor_public=auditor_public, auditor_key=auditor_key)


# One parsed keyring per file (the filter and the handler share it); a rotated or
# replaced file replaces its entry, so keys that were rotated out do not linger here.
_CACHE: dict[str, tuple[tuple[int, int], Keyring]] = {}
_CACHE_LOCK = threading.Lock()


def _read_keyring_file(path: Path, source: str) -> Keyring:
    text, st = _read_key_file(path, source, "keyring")
    where, version = str(path.resolve()), (st.st_mtime_ns, st.st_size)
    with _CACHE_LOCK:
        cached = _CACHE.get(where)
    if cached is not None and cached[0] == version:
        return cached[1]
    ring = Keyring.from_json(text, source=source)
    with _CACHE_LOCK:
        _CACHE[where] = (version, ring)
    return ring


def load_keyring(source: str | os.PathLike[str] | Keyring = DEFAULT_KEYRING_SOURCE) -> Keyring:
    """
    Resolve a key source (``env:VAR``, ``env-inline:VAR``, ``file:PATH`` or a path).

    Raises:
        KeyringError: the source is missing or malformed; the message says how to fix it.

    """
    if isinstance(source, Keyring):
        return source
    spec = os.fspath(source)
    if spec.startswith("env:"):
        var = spec[4:]
        value = os.environ.get(var)
        if not value:
            raise KeyringError(
                f"keyring {spec}: environment variable {var} is not set; create a keyring "
                f"with `llm-audit keygen --out PATH` and export {var}=PATH")
        return _read_keyring_file(_path_from_env(var, value, "keyring"), spec)
    if spec.startswith("env-inline:"):
        var = spec[len("env-inline:"):]
        value = os.environ.get(var)
        if not value:
            raise KeyringError(f"keyring {spec}: environment variable {var} is not set")
        return Keyring.from_json(value, source=spec)
    spec = spec.removeprefix("file:")
    if not spec:
        raise KeyringError("keyring: empty key source")
    return _read_keyring_file(expand_path(spec, f"keyring file:{spec}"), f"file:{spec}")
