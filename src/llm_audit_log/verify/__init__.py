"""
Stage 7, verify: check sealed logs without trusting anything the files say about themselves.

``verify_paths`` returns a :class:`Report` of typed :class:`Finding` objects; its
``exit_code`` follows the contract: 0 verified, 1 tampering or loss, 3 only a crash tail
or an unsealed end, 4 could not verify. It never returns 0 for anything unchecked.
Encrypted logs verify the same way, with the signing key alone.

``decrypt_paths`` verifies, then streams the lines in chain order with their bodies
decrypted (:class:`DecryptedLine`), refusing (:class:`Refusal`) every line that failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from llm_audit_log.errors import VerificationError
from llm_audit_log.keys import DEFAULT_KEYRING_SOURCE, AuditorKey, Keyring, load_keyring
from llm_audit_log.verify._checks import verify_files
from llm_audit_log.verify._decrypt import DecryptedLine, Decryption, Refusal
from llm_audit_log.verify._reader import collect_files
from llm_audit_log.verify.verdicts import Finding, LogSummary, Report, Severity, Verdict

__all__ = ["DecryptedLine", "Decryption", "Finding", "LogSummary", "Refusal", "Report",
           "Severity", "Verdict", "decrypt_paths", "verify_paths"]


def verify_paths(
    paths: Sequence[str | os.PathLike[str]],
    keyring: str | Keyring = DEFAULT_KEYRING_SOURCE,
    *,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """
    Verify log files and directories (files in any order and under any names).

    Raises:
        VerificationError: a path does not exist.
        KeyringError: the keyring cannot be loaded.

    """
    ring = load_keyring(keyring)
    try:
        files = collect_files([os.fspath(p) for p in paths])
    except FileNotFoundError as exc:
        raise VerificationError(f"no such file or directory: {exc.args[0]}") from None
    return verify_files(files, ring, progress)


def decrypt_paths(
    paths: Sequence[str | os.PathLike[str]],
    keyring: str | Keyring = DEFAULT_KEYRING_SOURCE,
    *,
    auditor_key: AuditorKey | None = None,
    kms_client_factory: Callable[[], Any] | None = None,
) -> Decryption:
    """
    Verify log files, then return a stream of their lines with bodies decrypted.

    Iterate the result for :class:`DecryptedLine` and :class:`Refusal` items in chain order;
    its ``report`` is the verifier's and its ``exit_code`` (after iterating) the combined one.

    Args:
        paths: log files and directories, in any order and under any names.
        keyring: the signing keys (to verify); if it still holds the auditor's private key,
            that key is used when ``auditor_key`` is not given.
        auditor_key: the auditor's private key, for files wrapped for an auditor.
        kms_client_factory: returns a boto3 KMS client, for files wrapped by KMS.

    Raises:
        VerificationError: a path does not exist.
        KeyringError: the keyring cannot be loaded.

    .. versionadded:: 0.2

    """
    ring = load_keyring(keyring)
    report = verify_paths(paths, ring)
    return Decryption(report, ring, auditor_key=auditor_key or ring.auditor_key,
                      kms_client_factory=kms_client_factory)
