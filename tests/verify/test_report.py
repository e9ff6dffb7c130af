"""verify.report: what people see (summary, progress) and what machines read (JSON)."""

from __future__ import annotations

import io
import json

from llm_audit_log.verify.report import ProgressDisplay, render_json, render_text
from llm_audit_log.verify.verdicts import Finding, Report, Verdict


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestProgressDisplay:
    def test_shows_progress_on_a_terminal_and_clears_it(self):
        """On a TTY the meter prints percentages, and close() wipes the line."""
        stream = _Terminal()
        progress = ProgressDisplay(1000, stream)
        progress(1000)
        progress.close()
        assert "100.0%" in stream.getvalue()
        assert stream.getvalue().endswith("\r")

    def test_silent_when_not_a_terminal(self):
        """Piped output (CI, files) gets no progress noise."""
        stream = io.StringIO()
        progress = ProgressDisplay(1000, stream)
        progress(500)
        progress.close()
        assert "" == stream.getvalue()


class TestRendering:
    def test_text_and_json_agree_on_the_outcome(self):
        """The headline and the JSON report both say 'tampering', with the finding listed."""
        report = Report(lines_checked=2, lines_verified=1)
        report.add(Finding(Verdict.TAMPERED, "a.jsonl", "MAC does not match", 10, 2, 1))
        text = render_text(report)
        data = json.loads(render_json(report))
        assert text.startswith("FAILED")
        assert "TAMPERED" in text
        assert (1, False) == (data["exit_code"], data["ok"])
        assert "tampered" == data["findings"][0]["verdict"]
