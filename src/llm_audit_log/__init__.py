"""
llm-audit-log: tamper-evident, privacy-safe audit trails on the standard logging module.

A record passes these stages, in this order:

1. context  - event id, UTC timestamp, host and configured provenance (``context``)
2. schema   - payload copied into bounded JSON and checked per event type (``schema``)
3. scrub    - raw prompts, responses, queries and content become keyed hashes (``scrub``)
4. seal     - canonical line, chain fields, HMAC, format version (``seal``)
5. sink     - one write per line to rotating files (``sinks``)
6. verify   - the verifier's walk and typed verdicts (``verify``)

:class:`AuditFilter` runs stages 1-3, :class:`AuditFormatter` renders the body, and
:class:`AuditFileHandler` seals and writes it.
"""

from llm_audit_log.errors import (
    AuditLogError,
    AuditPayloadError,
    ConfigurationError,
    KeyringError,
    VerificationError,
)
from llm_audit_log.filter import AuditFilter, AuditLogger, get_logger
from llm_audit_log.formatter import AuditFormatter
from llm_audit_log.keys import Keyring, load_keyring
from llm_audit_log.sinks.files import AuditFileHandler
from llm_audit_log.verify import Report, Verdict, verify_paths

__all__ = [
    "AuditFileHandler",
    "AuditFilter",
    "AuditFormatter",
    "AuditLogError",
    "AuditLogger",
    "AuditPayloadError",
    "ConfigurationError",
    "Keyring",
    "KeyringError",
    "Report",
    "Verdict",
    "VerificationError",
    "get_logger",
    "load_keyring",
    "verify_paths",
]

__version__ = "0.1.0"
