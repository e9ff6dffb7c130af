"""
Checks for the Scrubber's constructor arguments and the marker they configure.

Every argument is a plain value so that ``logging.config.dictConfig`` can pass it; each
check raises :class:`ConfigurationError` naming the option and what was expected.
"""

from __future__ import annotations

import importlib
import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from llm_audit_log.errors import ConfigurationError

__all__ = [
    "MARKER_STYLES",
    "Marker",
    "check_digest",
    "check_max_chars",
    "compile_custom",
    "kind_names",
    "string_list",
]

#: Named marker styles; any other value is a format string with ``{kind}`` / ``{hash}``.
MARKER_STYLES: Final = {
    "typed-hash": "[REDACTED:{kind}:{hash}]",
    "typed": "[REDACTED:{kind}]",
    "fixed": "[REDACTED]",
}
#: Hex characters of the keyed hash shown in a marker.
HASH_CHARS: Final = 12
MIN_MAX_CHARS: Final = 64
_KIND_NAME: Final = re.compile(r"[A-Z][A-Z0-9_]{0,39}")
_RESERVED_KINDS: Final = frozenset({"SCRUB_ERROR", "TRUNCATED"})
_HEX: Final = re.compile(r"[0-9a-f]+")
#: Strings a custom pattern is tried on, to reject one that matches empty text (backup
#: for the parser-based check below).
_EMPTY_PROBES: Final = ("", " ", "a", "A", "0", "_", "-", "@", "a b", "x\ny")


def string_list(option: str, value: object) -> tuple[str, ...]:
    """A list of strings (a bare string is refused: it would iterate as characters)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"{option}: expected a list of strings, got {type(value).__name__}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise ConfigurationError(f"{option}: every entry must be a non-empty string")
    return items


def kind_names(option: str, value: object, known: frozenset[str]) -> frozenset[str]:
    """A list of detector kind names, each one of *known*."""
    names = frozenset(string_list(option, value))
    unknown = sorted(names - known)
    if unknown:
        raise ConfigurationError(
            f"{option}: unknown detector kind(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(sorted(known))}")
    return names


def check_digest(digest: object) -> Callable[[str], str]:
    """The injected keyed hash: called once here, it must return lowercase hex."""
    if not callable(digest):
        raise ConfigurationError("digest: expected a callable str -> hex str")
    try:
        probe = digest("llm-audit-log scrub probe")
    except Exception as exc:
        raise ConfigurationError(f"digest: raised {type(exc).__name__} on a probe value") from exc
    if not isinstance(probe, str) or len(probe) < HASH_CHARS or not _HEX.fullmatch(probe):
        raise ConfigurationError(
            f"digest: expected at least {HASH_CHARS} lowercase hex characters")
    checked: Callable[[str], str] = digest
    return checked


def check_max_chars(value: object) -> int:
    """Scan cap per string."""
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_MAX_CHARS:
        raise ConfigurationError(f"max_chars: expected an integer >= {MIN_MAX_CHARS}")
    return value


def compile_custom(
    value: object, reserved: frozenset[str],
) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """``{"INTERNAL_ID": "regex"}``: compiled now; a pattern matching empty text is refused."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigurationError("custom_patterns: expected a mapping of kind name to regex")
    compiled = []
    for kind, source in value.items():
        option = f"custom_patterns[{kind!r}]"
        if not isinstance(kind, str) or not _KIND_NAME.fullmatch(kind):
            raise ConfigurationError(f"{option}: kind names are UPPER_SNAKE_CASE, at most 40")
        if kind in reserved or kind in _RESERVED_KINDS:
            raise ConfigurationError(f"{option}: {kind} is a built-in kind")
        if not isinstance(source, str) or not source:
            raise ConfigurationError(f"{option}: expected a non-empty regex string")
        try:
            pattern = re.compile(source)
        except re.error as exc:
            raise ConfigurationError(f"{option}: invalid regex ({exc})") from exc
        if _can_match_empty(pattern):
            raise ConfigurationError(f"{option}: the pattern can match the empty string")
        compiled.append((kind, pattern))
    return tuple(compiled)


def _can_match_empty(pattern: re.Pattern[str]) -> bool:
    for probe in _EMPTY_PROBES:
        for match in pattern.finditer(probe):
            if match.start() == match.end():
                return True
    # The parser's minimum width also catches empty matches no probe provokes
    # (lookarounds, anchors). It is private (``re._parser``; ``sre_parse`` on 3.10).
    try:
        parser: Any = getattr(re, "_parser", None) or importlib.import_module("sre_parse")
        return int(parser.parse(pattern.pattern, pattern.flags).getwidth()[0]) == 0
    except Exception:  # the probes above already ran
        return False


class Marker:
    """Renders a marker for a kind and value; recognises markers it (or we) produced."""

    __slots__ = ("fmt", "hashed", "pattern", "prefix")

    def __init__(self, marker: object) -> None:
        if not isinstance(marker, str) or not marker:
            raise ConfigurationError("marker: expected a style name or a format string")
        fmt = MARKER_STYLES.get(marker, marker)
        pieces: list[str] = []
        fields: set[str] = set()
        try:
            parsed = list(string.Formatter().parse(fmt))
        except ValueError as exc:
            raise ConfigurationError(f"marker: invalid format string ({exc})") from exc
        for literal, field, spec, conversion in parsed:
            pieces.append(re.escape(literal))
            if field is None:
                continue
            if field not in ("kind", "hash") or spec or conversion:
                raise ConfigurationError(
                    f"marker: only {{kind}} and {{hash}} may appear, got {{{field}}}; "
                    f"or a style: {', '.join(MARKER_STYLES)}")
            fields.add(field)
            pieces.append("[A-Z][A-Z0-9_]*" if field == "kind" else "[0-9a-f]+")
        self.fmt = fmt
        self.hashed = "hash" in fields
        self.prefix = parsed[0][0] if parsed and parsed[0][0] else ""
        self.pattern = re.compile(
            "(?:" + "".join(pieces) + r")|\[REDACTED:SCRUB_ERROR\]|\[TRUNCATED:[0-9]+ chars\]")
