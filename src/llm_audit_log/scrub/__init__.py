"""
Stage 3, scrub: secrets and PII in strings and payloads become typed, keyed markers.

:class:`Scrubber` is the engine the audit filter calls for every string a record
carries. It gates each string with cheap literal checks, runs exact patterns and
validators (checksums, Luhn, mod 97, SSN and phone rules) only where the gate fired,
and replaces each finding with a marker such as ``[REDACTED:EMAIL:3f9a1c2b7d4e]``:
the kind plus 12 hex characters of a keyed hash, so equal values stay linkable without
being readable. Findings are counted per kind, never recorded.

Built-in kinds are listed in :data:`DETECTOR_KINDS`; IP_ADDRESS is opt-in.
"""

from llm_audit_log.scrub._config import MARKER_STYLES
from llm_audit_log.scrub._scrubber import DETECTOR_KINDS, SCRUB_ERROR_MARKER, Scrubber

__all__ = ["DETECTOR_KINDS", "MARKER_STYLES", "SCRUB_ERROR_MARKER", "Scrubber"]
