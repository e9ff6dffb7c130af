"""
Stage 7, verify: check sealed logs without trusting anything the files say about themselves.

``verify_paths`` returns a :class:`Report` of typed :class:`Finding` objects; its
``exit_code`` follows the contract: 0 verified, 1 tampering or loss, 3 only a crash tail
or an unsealed end, 4 could not verify. It never returns 0 for anything unchecked.
Encrypted logs verify the same way, with the signing key alone.

``verify_cloudwatch`` reads CloudWatch Logs streams back and verifies them the same way,
optionally cross-checking them against local files (the same lines went to both).

``decrypt_paths`` verifies, then streams the lines in chain order with their bodies
decrypted (:class:`DecryptedLine`), refusing (:class:`Refusal`) every line that failed;
``decrypt_cloudwatch`` does the same for the copy in CloudWatch Logs (when the host and
its files are gone, the central copy is what an auditor reads).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from llm_audit_log.errors import SourceUnreadableError, VerificationError
from llm_audit_log.keys import (
    DEFAULT_KEYRING_SOURCE,
    AuditorKey,
    Keyring,
    load_auditor_key,
    load_keyring,
)
from llm_audit_log.verify._checks import verify_files
from llm_audit_log.verify._decrypt import DecryptedLine, Decryption, Refusal
from llm_audit_log.verify._reader import collect_files
from llm_audit_log.verify.verdicts import Finding, LogSummary, Report, Severity, Verdict

__all__ = ["DecryptedLine", "Decryption", "Finding", "LogSummary", "Refusal", "Report",
           "Severity", "Verdict", "decrypt_cloudwatch", "decrypt_paths", "verify_cloudwatch",
           "verify_paths"]


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
    except OSError as exc:  # e.g. a directory we may not list: nothing was checked
        raise SourceUnreadableError(
            f"cannot read {exc.filename or 'the logs'}: {exc.strerror or type(exc).__name__}"
        ) from None
    report = verify_files(files, ring, progress)
    for path in paths:  # a directory with nothing in it is named, not passed over
        if os.path.isdir(path) and not collect_files([os.fspath(path)]):
            report.add(Finding(Verdict.CANNOT_VERIFY, os.fspath(path),
                               "no log files here (hidden files are not read)"))
    return report


def verify_cloudwatch(
    log_group: str,
    streams: Sequence[str] | None = None,
    keyring: str | Keyring = DEFAULT_KEYRING_SOURCE,
    *,
    against: Sequence[str | os.PathLike[str]] | None = None,
    client: Any = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
) -> Report:
    """
    Read CloudWatch streams back (paginated, nothing written to disk) and verify them.

    Args:
        log_group: the log group.
        streams: stream names (default: every stream of the group).
        keyring: the signing keys.
        against: local log files or directories to cross-check the streams with.
        client: a boto3 ``logs`` client (default: one from the three options below).
        region: AWS region of the default client.
        endpoint_url: CloudWatch Logs endpoint of the default client.
        profile: AWS profile of the default client.

    Raises:
        VerificationError: the streams cannot be read, or a local path does not exist.
        KeyringError: the keyring cannot be loaded.

    .. versionadded:: 0.3

    """
    from llm_audit_log.verify import _cloudwatch  # noqa: PLC0415 - boto3 only when asked

    ring = load_keyring(keyring)
    read = _read_group(log_group, streams, client, region, endpoint_url, profile)
    report = _cloudwatch.verify_streams(read, ring)
    if against:
        try:
            _cloudwatch.cross_check(report, read, [os.fspath(p) for p in against], ring)
        except FileNotFoundError as exc:
            raise VerificationError(f"no such file or directory: {exc.args[0]}") from None
    return report


def decrypt_paths(
    paths: Sequence[str | os.PathLike[str]],
    keyring: str | Keyring = DEFAULT_KEYRING_SOURCE,
    *,
    auditor_key: str | os.PathLike[str] | AuditorKey | None = None,
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
        auditor_key: the auditor's private key, for files wrapped for an auditor: a key, or
            a source as for ``llm-audit decrypt --auditor-key`` (``env:VAR``,
            ``env-inline:VAR``, ``file:PATH`` or a path).
        kms_client_factory: returns a boto3 KMS client, for files wrapped by KMS.

    Raises:
        VerificationError: a path does not exist.
        KeyringError: the keyring cannot be loaded.

    .. versionadded:: 0.2

    """
    ring = load_keyring(keyring)
    auditor = _auditor_key(auditor_key) or ring.auditor_key
    report = verify_paths(paths, ring)
    return Decryption(report, ring, auditor_key=auditor, kms_client_factory=kms_client_factory)


def decrypt_cloudwatch(
    log_group: str,
    streams: Sequence[str] | None = None,
    keyring: str | Keyring = DEFAULT_KEYRING_SOURCE,
    *,
    auditor_key: str | os.PathLike[str] | AuditorKey | None = None,
    kms_client_factory: Callable[[], Any] | None = None,
    client: Any = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
) -> Decryption:
    """
    Verify CloudWatch streams, then return their lines with bodies decrypted.

    As :func:`decrypt_paths`, for the central copy: the lines are read back (paginated,
    nothing written to disk), verified like :func:`verify_cloudwatch`, and then decrypted
    with the data keys in the headers the streams carry.

    Raises:
        VerificationError: the streams cannot be read.
        KeyringError: the keyring cannot be loaded.

    """
    from llm_audit_log.verify import _cloudwatch  # noqa: PLC0415 - boto3 only when asked

    ring = load_keyring(keyring)
    auditor = _auditor_key(auditor_key) or ring.auditor_key
    read = _read_group(log_group, streams, client, region, endpoint_url, profile)
    sources = _cloudwatch.stream_sources(read)
    report = _cloudwatch.verify_streams(read, ring, sources)
    return Decryption(report, ring, auditor_key=auditor,
                      kms_client_factory=kms_client_factory, sources=dict(sources))


def _auditor_key(source: str | os.PathLike[str] | AuditorKey | None) -> AuditorKey | None:
    if source is None or isinstance(source, AuditorKey):
        return source
    return load_auditor_key(source)


def _read_group(log_group: str, streams: Sequence[str] | None, client: Any,
                region: str | None, endpoint_url: str | None, profile: str | None) -> list[Any]:
    """Every event of the named streams (default: all) of ``log_group``."""
    from llm_audit_log.verify import _cloudwatch  # noqa: PLC0415 - boto3 only when asked

    try:  # a bad region, profile or endpoint is as much "could not read" as a refusal
        if client is None:
            import boto3  # type: ignore[import-untyped]  # noqa: PLC0415

            session = boto3.session.Session(profile_name=profile)
            client = session.client("logs", region_name=region, endpoint_url=endpoint_url)
        return _cloudwatch.read_streams(client, log_group, streams)
    except _cloudwatch.StreamNotFoundError as exc:
        raise SourceUnreadableError(
            f"CloudWatch group {log_group!r} has no stream {exc.args[0]!r}") from None
    except Exception as exc:
        detail = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        raise SourceUnreadableError(f"cannot read CloudWatch group {log_group!r}: {detail}") \
            from None
