"""
Typed results of verification: verdicts, findings and the report that sums them up.

The verifier maps *all* damage instead of raising at the first failure. The exit code
is computed worst-first and is 0 only when everything was checked and found intact.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["EXIT_CANNOT_VERIFY", "EXIT_INCOMPLETE", "EXIT_OK", "EXIT_TAMPERED", "EXIT_USAGE",
           "Finding", "LogSummary", "Report", "Severity", "Verdict", "exit_code_for"]

EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_CANNOT_VERIFY = 4


class Severity(enum.IntEnum):
    """How a finding weighs on the exit code (higher is worse)."""

    INFO = 0  # benign, recorded for the auditor (a restart, a prune, a clock step)
    INCOMPLETE = 1  # crash tail or an unsealed end: exit 3
    UNVERIFIABLE = 2  # something could not be checked: exit 4
    DAMAGE = 3  # tampering or loss: exit 1


def exit_code_for(worst: Severity | None, lines_verified: int) -> int:
    """The exit-code contract, worst first: 1 damage, 4 unverifiable or nothing verified."""
    if worst is Severity.DAMAGE:
        return EXIT_TAMPERED
    if worst is Severity.UNVERIFIABLE or lines_verified == 0:
        return EXIT_CANNOT_VERIFY
    if worst is Severity.INCOMPLETE:
        return EXIT_INCOMPLETE
    return EXIT_OK


class Verdict(str, enum.Enum):
    """What was found; the string values are stable for the JSON report."""

    TAMPERED = "tampered"
    MALFORMED = "malformed"
    GAP = "gap"
    REORDERED = "reordered"
    DUPLICATE = "duplicate"
    FORK = "fork"
    FOREIGN = "foreign"
    FILE_MISSING = "file_missing"
    MISSING_PREFIX = "missing_prefix"
    TRUNCATED = "truncated"
    KEY_INVALID = "key_invalid"
    INCOMPLETE_TAIL = "incomplete_tail"
    UNSEALED = "unsealed"
    CANNOT_VERIFY = "cannot_verify"
    CLOCK_STEP = "clock_step"
    RESUMED = "resumed"
    PRUNED = "pruned"
    KEY_ROTATED = "key_rotated"
    EMPTY_FILE = "empty_file"
    DELIVERY_GAP = "delivery_gap"
    MIRROR_START = "mirror_start"

    @property
    def severity(self) -> Severity:
        """The weight of this verdict."""
        return _SEVERITY[self]


_SEVERITY = {
    Verdict.TAMPERED: Severity.DAMAGE,
    Verdict.MALFORMED: Severity.DAMAGE,
    Verdict.GAP: Severity.DAMAGE,
    Verdict.REORDERED: Severity.DAMAGE,
    Verdict.DUPLICATE: Severity.DAMAGE,
    Verdict.FORK: Severity.DAMAGE,
    Verdict.FOREIGN: Severity.DAMAGE,
    Verdict.FILE_MISSING: Severity.DAMAGE,
    Verdict.MISSING_PREFIX: Severity.DAMAGE,
    Verdict.TRUNCATED: Severity.DAMAGE,
    Verdict.KEY_INVALID: Severity.DAMAGE,
    Verdict.INCOMPLETE_TAIL: Severity.INCOMPLETE,
    Verdict.UNSEALED: Severity.INCOMPLETE,
    Verdict.DELIVERY_GAP: Severity.INCOMPLETE,  # the writer's signed record of a rejection
    Verdict.CANNOT_VERIFY: Severity.UNVERIFIABLE,
    Verdict.CLOCK_STEP: Severity.INFO,
    Verdict.RESUMED: Severity.INFO,
    Verdict.PRUNED: Severity.INFO,
    Verdict.KEY_ROTATED: Severity.INFO,
    # A remote copy that begins where the writer's signed header says mirroring began.
    Verdict.MIRROR_START: Severity.INFO,
    # The writer reuses an empty file it left behind; one that stays empty is a crash not
    # yet recovered from, or a log emptied by someone: never "verified".
    Verdict.EMPTY_FILE: Severity.INCOMPLETE,
}


@dataclass(frozen=True)
class Finding:
    """
    One thing the verifier found, located as exactly as it can be.

    ``count`` > 1 folds a run of identical findings on consecutive lines.
    """

    verdict: Verdict
    file: str | None
    detail: str
    offset: int | None = None
    line: int | None = None
    seq: int | None = None
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["verdict"] = self.verdict.value
        data["severity"] = self.verdict.severity.name.lower()
        return data


@dataclass
class LogSummary:
    """One log (one chain) as the verifier saw it."""

    log_id: str
    files: list[str] = field(default_factory=list)
    lines: int = 0
    events: int = 0
    rejected: int = 0
    encrypted: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    closed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class Report:
    """Everything one verification found, and the exit code it implies."""

    findings: list[Finding] = field(default_factory=list)
    logs: list[LogSummary] = field(default_factory=list)
    files_checked: int = 0
    lines_checked: int = 0
    lines_verified: int = 0
    damage_added: int = field(default=0, repr=False)  # a running count, for cheap deltas

    def add(self, finding: Finding) -> None:
        """Record a finding, folding it into the previous one when it continues a run."""
        if finding.verdict.severity is Severity.DAMAGE:
            self.damage_added += 1
        if self.findings:
            last = self.findings[-1]
            if (last.verdict is finding.verdict and last.file == finding.file
                    and last.detail == finding.detail and last.line is not None
                    and finding.line == last.line + last.count):
                self.findings[-1] = Finding(last.verdict, last.file, last.detail, last.offset,
                                            last.line, last.seq, last.count + 1)
                return
        self.findings.append(finding)

    @property
    def worst(self) -> Severity | None:
        """The heaviest severity found, or None."""
        return max((f.verdict.severity for f in self.findings), default=None)

    @property
    def exit_code(self) -> int:
        """0 verified, 1 tampering or loss, 3 only crash/unsealed tail, 4 could not verify."""
        return exit_code_for(self.worst, self.lines_verified)

    @property
    def ok(self) -> bool:
        """True only when everything was checked and found intact."""
        return self.exit_code == EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``llm-audit verify --json``."""
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "files_checked": self.files_checked,
            "lines_checked": self.lines_checked,
            "lines_verified": self.lines_verified,
            "logs": [log.to_dict() for log in self.logs],
            "findings": [f.to_dict() for f in self.findings],
        }
