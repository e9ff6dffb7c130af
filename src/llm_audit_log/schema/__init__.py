# Copyright 2026 llm-audit-log developers
# SPDX-License-Identifier: Apache-2.0
"""Stage 2, schema: which fields each audit event may carry, checked before anything is written.

The category schemas ship as JSON Schema files in ``events/`` (draft 2020-12 syntax, a
documented subset) and are compiled once into closures, so validating an event costs
microseconds. Problems name a JSON pointer and a reason, never a payload value.
"""

from __future__ import annotations

from llm_audit_log.schema._compile import Problem, SchemaError
from llm_audit_log.schema._registry import EventSchemaRegistry, default_registry

__all__ = ["EventSchemaRegistry", "Problem", "SchemaError", "default_registry"]
