"""
Stage 7, verify: check sealed logs without trusting anything the files say about themselves.

``verify_paths`` returns a :class:`Report` of typed :class:`Finding` objects; its
``exit_code`` follows the contract: 0 verified, 1 tampering or loss, 3 only a crash tail
or an unsealed end, 4 could not verify. It never returns 0 for anything unchecked.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from llm_audit_log.errors import VerificationError
from llm_audit_log.keys import DEFAULT_KEYRING_SOURCE, Keyring, load_keyring
from llm_audit_log.verify._checks import verify_files
from llm_audit_log.verify._reader import collect_files
from llm_audit_log.verify.verdicts import Finding, LogSummary, Report, Severity, Verdict

__all__ = ["Finding", "LogSummary", "Report", "Severity", "Verdict", "verify_paths"]


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
