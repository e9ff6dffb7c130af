"""
Exceptions raised by llm-audit-log: every one is an AuditLogError.

A bad payload is data, not an exception: it becomes a signed ``audit.rejected``
record. Exceptions mean "could not run" (bad configuration, missing key), or a
payload problem when strict mode was asked for.
"""

from __future__ import annotations

__all__ = [
    "AuditLogError",
    "AuditLogWarning",
    "AuditPayloadError",
    "ConfigurationError",
    "DataKeyError",
    "DecryptionError",
    "KeyringError",
    "SourceUnreadableError",
    "VerificationError",
]


class AuditLogError(Exception):
    """Base class for every exception this library raises."""


class ConfigurationError(AuditLogError, ValueError):
    """A handler, filter or keyring was configured wrongly; the message names the option."""


class KeyringError(ConfigurationError):
    """Key material is missing, unreadable or malformed. Never carries key bytes."""


class DecryptionError(AuditLogError, ValueError):
    """
    A ciphertext or wrapped data key could not be decrypted.

    Deliberately opaque, like ``InvalidToken`` in cryptography's Fernet: a wrong key, an
    altered ciphertext, a moved line and a refused KMS call all look the same, so the
    error tells an attacker nothing. It never carries key material or plaintext.
    """

    def __init__(self, message: str = "decryption failed") -> None:
        super().__init__(message)


class DataKeyError(AuditLogError, RuntimeError):
    """
    A new file's data key could not be created or wrapped (KMS unreachable or refusing).

    The message names the KMS error code, never key material.
    """


class AuditPayloadError(AuditLogError, ValueError):
    """
    Strict mode only: a payload was rejected.

    The message names fields and reasons, never values.
    """

    def __init__(self, message: str, problems: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class VerificationError(AuditLogError):
    """The verifier could not run at all (as opposed to finding damage)."""


class SourceUnreadableError(VerificationError):
    """
    The logs to check could not be read; nothing was checked, so the CLI exits 4, not 2.

    For example a CloudWatch group the service would not list or return.
    """


class AuditLogWarning(UserWarning):
    """Warnings about this library's own operation (never about payload values)."""
