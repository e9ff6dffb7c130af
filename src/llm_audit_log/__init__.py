"""
llm-audit-log: tamper-evident, privacy-safe audit trails on the standard logging module.

A record passes these stages, in this order:

1. context  - event id, UTC timestamp, host and configured provenance (``context``)
2. schema   - payload copied into bounded JSON and checked per event type (``schema``)
3. scrub    - secrets and PII become typed keyed markers; raw prompts, responses,
               queries and content become keyed hashes (``scrub``, ``scrub_filter``)
4. seal     - canonical line, chain fields, HMAC, format version (``seal``)
5. encrypt  - optional: AES-256-GCM body under a per-file, wrapped data key (``encrypt``)
6. sink     - one write per line to rotating files (``sinks``)
7. verify   - the verifier's walk, typed verdicts, decryption of verified lines (``verify``)

:class:`AuditFilter` runs stages 1-3, :class:`AuditFormatter` renders the body, and
:class:`AuditFileHandler` encrypts (if asked), seals and writes it.
"""

from llm_audit_log.errors import (
    AuditLogError,
    AuditPayloadError,
    ConfigurationError,
    KeyringError,
    VerificationError,
)
from llm_audit_log.filter import AuditFilter, get_logger
from llm_audit_log.formatter import AuditFormatter
from llm_audit_log.keys import Keyring, load_keyring
from llm_audit_log.scrub_filter import ScrubFilter
from llm_audit_log.sinks.files import AuditFileHandler
from llm_audit_log.verify import Report, Verdict, verify_paths

__all__ = [
    "AuditFileHandler",
    "AuditFilter",
    "AuditFormatter",
    "AuditLogError",
    "AuditPayloadError",
    "ConfigurationError",
    "Keyring",
    "KeyringError",
    "Report",
    "ScrubFilter",
    "Verdict",
    "VerificationError",
    "get_logger",
    "load_keyring",
    "verify_paths",
]

__version__ = "0.1.0"
