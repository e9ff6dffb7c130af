"""Rendering a :class:`~llm_audit_log.verify.Report` for people (text) and machines (JSON)."""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from llm_audit_log.verify.verdicts import (
    EXIT_CANNOT_VERIFY,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_TAMPERED,
    Report,
    Severity,
)

__all__ = ["ProgressDisplay", "render_json", "render_text"]

_HEADLINE = {
    EXIT_OK: "VERIFIED: every line checked; chain complete and intact",
    EXIT_TAMPERED: "FAILED: tampering or loss found",
    EXIT_INCOMPLETE: "INCOMPLETE: intact, but the end is not sealed (crash tail or running writer)",
    EXIT_CANNOT_VERIFY: "CANNOT VERIFY: something could not be checked (see below)",
}


def render_text(report: Report, *, max_findings: int = 200) -> str:
    """A readable summary: headline, per-log totals, then findings worst first."""
    out = [_HEADLINE[report.exit_code]]
    out.append(f"  files: {report.files_checked}  lines: {report.lines_checked}  "
               f"verified: {report.lines_verified}")
    for log in report.logs:
        state = "closed" if log.closed else "open"
        encrypted = f", {log.encrypted} encrypted" if log.encrypted else ""
        out.append(f"  log {log.log_id}: {len(log.files)} file(s), {log.lines} lines, "
                   f"{log.events} events ({log.rejected} rejected{encrypted}), seq "
                   f"{log.first_seq}..{log.last_seq}, {state}")
    ordered = sorted(report.findings, key=lambda f: -f.verdict.severity)
    for finding in ordered[:max_findings]:
        where = finding.file or "-"
        if finding.line is not None:
            where += f":{finding.line}"
        if finding.offset is not None:
            where += f" @{finding.offset}"
        if finding.seq is not None:
            where += f" seq={finding.seq}"
        times = f" (x{finding.count})" if finding.count > 1 else ""
        tag = "  " if finding.verdict.severity is Severity.INFO else "! "
        out.append(f"{tag}{finding.verdict.value.upper()}{times} {where}: {finding.detail}")
    if len(ordered) > max_findings:
        out.append(f"  ... {len(ordered) - max_findings} more findings (use --json)")
    return "\n".join(out)


def render_json(report: Report) -> str:
    """The machine-readable report."""
    return json.dumps(report.to_dict(), indent=2, sort_keys=True)


class ProgressDisplay:
    """A one-line progress meter on a terminal; silent when the stream is not a TTY."""

    def __init__(self, total_bytes: int, stream: TextIO | None = None) -> None:
        self.total = max(total_bytes, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0

    def __call__(self, done: int) -> None:
        """Show progress at most five times a second."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and done < self.total:
            return
        self._last = now
        pct = min(100.0, 100.0 * done / self.total)
        self.stream.write(f"\rverifying: {pct:5.1f}% of {self.total / 1e6:.1f} MB")
        self.stream.flush()

    def close(self) -> None:
        """Clear the progress line."""
        if self.enabled:
            self.stream.write("\r" + " " * 40 + "\r")
            self.stream.flush()
