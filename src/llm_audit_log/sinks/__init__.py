"""
Stage 6, sink: the logging.Handler classes that write sealed lines.

``AuditFileHandler`` writes rotating local files (and, with ``cloudwatch={...}``,
mirrors every line to CloudWatch Logs); ``CloudWatchHandler`` ships to CloudWatch only.
Handlers own the chain (sequence numbers, previous hashes, key ids) under their lock;
formatters stay pure.
"""

from __future__ import annotations

from llm_audit_log.sinks.cloudwatch import CloudWatchHandler, CloudWatchSink
from llm_audit_log.sinks.files import AuditFileHandler

__all__ = ["AuditFileHandler", "CloudWatchHandler", "CloudWatchSink"]
