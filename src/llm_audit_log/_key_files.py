"""
Keyring and auditor-key files: their formats, field encodings, and safe reading and writing.

Shared by :mod:`llm_audit_log.keys` (keyrings) and ``_auditor_keys`` (the auditor's
private key): files are written atomically with mode 0600, never overwritten by accident,
and errors name the problem without echoing key material.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import re
import secrets
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llm_audit_log._private_dirs import make_private_dirs
from llm_audit_log.errors import AuditLogWarning, KeyringError

KEYRING_FORMAT = "llm-audit-log/keyring"
AUDITOR_KEY_FORMAT = "llm-audit-log/auditor-key"
AUDITOR_ALG = "X25519"
KEYRING_VERSION = 1
KEY_BYTES = 32
_KID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_kid(prefix: str) -> str:
    return f"{prefix}{dt.datetime.now(dt.timezone.utc):%Y%m%d}-{secrets.token_hex(4)}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise KeyringError(f"keyring: {what} must be a base64 string")
    try:
        raw = base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise KeyringError(f"keyring: {what} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyringError(f"keyring: {what} must be {KEY_BYTES} bytes")
    return raw


def _optional_str(entry: Mapping[str, Any], name: str) -> str | None:
    value = entry.get(name)
    if value is None or isinstance(value, str):
        return value
    raise KeyringError(f"keyring: {name} must be a string or null")


def _save_secret(target: Path, text: str, *, overwrite: bool, what: str) -> Path:
    """
    Write ``text`` to ``target`` atomically, mode 0600, refusing to overwrite keys.

    Without ``overwrite`` the file appears by a hard link, which fails if the name exists:
    two writers racing for one name cannot both succeed (an exists-check then a rename
    would let the second replace the first's keys).
    """
    refused = KeyringError(f"{what}: {target} exists (refusing to overwrite keys)")
    if target.exists() and not overwrite:
        raise refused
    make_private_dirs(target.parent)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise refused from None
            except OSError:  # no hard links here (some network or FUSE filesystems)
                if target.exists():
                    raise refused from None
                os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _path_from_env(var: str, value: str, what: str) -> Path:
    """
    The path an ``env:VAR`` source names.

    Anything that is not a plausible path, such as key material put in the variable by
    mistake, is refused without echoing it.
    """
    if value.lstrip().startswith("{") or "\n" in value or len(value) > 1024:
        raise KeyringError(
            f"{what} env:{var}: the environment variable holds key material, not a file "
            f"path; use the source env-inline:{var} for that (the value is not shown)")
    return expand_path(value, f"{what} env:{var}")


def expand_path(text: str, where: str) -> Path:
    """``~`` expanded; an unknown user is a KeyringError (the text is not shown)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        raise KeyringError(f"{where}: cannot expand '~' in the path (no such user or "
                           "home directory)") from None


def _read_key_file(path: Path, source: str, what: str, *,
                   missing_hint: str = "create one with `llm-audit keygen --out PATH`",
                   ) -> tuple[str, os.stat_result]:
    """
    Read a key file (text and stat).

    Errors name the path only for ``file:`` sources: an ``env:`` variable may hold key
    material by mistake, and its value is never shown.
    """
    shown = "the file it names" if source.startswith("env:") else f"file {path}"
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyringError(f"{what} {source}: {shown} does not exist ({missing_hint})") from None
    except OSError as exc:
        raise KeyringError(f"{what} {source}: cannot read {shown}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyringError(f"{what} {source}: {shown} is not a regular file")
    if st.st_mode & 0o077:
        warnings.warn(f"{what} file {path} is readable by group or others; chmod 600 it",
                      AuditLogWarning, stacklevel=4)
    try:
        return path.read_text(encoding="utf-8"), st
    except (OSError, UnicodeDecodeError):
        raise KeyringError(f"{what} {source}: cannot read {shown}") from None

