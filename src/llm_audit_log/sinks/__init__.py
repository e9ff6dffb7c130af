"""
Stage 6, sink: the logging.Handler classes that write sealed lines.

``AuditFileHandler`` writes rotating local files. Handlers own the chain (sequence
numbers, previous hashes, key ids) under their lock; formatters stay pure.
"""

from __future__ import annotations

from llm_audit_log.sinks.files import AuditFileHandler

__all__ = ["AuditFileHandler"]
