"""
The Scrubber: gate, detect, validate, replace; over strings and whole payloads.

Clean input is the common case, so the clean path is short: one translation of the
string and :func:`._patterns.gate`'s chain of cheap checks, after which the same object
is returned. A payload is gated once over the join of its strings. Past the gate,
``Scrubber._detect`` repeats the checks one per detector family and runs only the
finders behind those that fired; a failure anywhere redacts the whole string (fail
closed) and is counted as ``SCRUB_ERROR``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from llm_audit_log.errors import ConfigurationError
from llm_audit_log.scrub import _config
from llm_audit_log.scrub._detectors import (
    FAMILIES,
    KEY_VALUE_KINDS,
    Finder,
    Span,
    command_line_finder,
    key_value_finder,
)
from llm_audit_log.scrub._keys import RAW_TEXT_KEYS, builtin_secret_key, normalise_key
from llm_audit_log.scrub._patterns import (
    CAPITAL_A,
    IPV4,
    IPV6,
    KEY_SEPARATOR,
    SLACK_PREFIX,
    TRANSLATION,
    email_sign_in,
    gate,
    option_in,
)
from llm_audit_log.scrub._walk import SCRUB_ERROR_MARKER, PayloadWalk, bump

__all__ = ["DETECTOR_KINDS", "SCRUB_ERROR_MARKER", "Scrubber"]

#: Every built-in kind name.
DETECTOR_KINDS: Final = frozenset(
    {kind for family in FAMILIES.values() for kinds, _ in family for kind in kinds}
    | KEY_VALUE_KINDS | {"RAW_TEXT"})
#: Off unless asked for: four-part version strings look like IPv4 addresses.
_OPT_IN: Final = frozenset({"IP_ADDRESS"})
#: Key names whose verdict is remembered (schemas repeat them).
_KEY_CACHE_SIZE: Final = 2048
#: How far back from the cap truncation looks for whitespace, so no token is cut.
_TRUNCATE_BACKOFF: Final = 256
#: How far around the cap truncation looks for the start of a word, or for a finding that
#: crosses the cap (a PEM key, or the longest JWT the pattern takes, fits).
_TRUNCATE_LOOK: Final = 16384
#: Characters that end a word (a token, key or number never holds one).
_SEPARATORS: Final = " \t\n\r\x0b\x0c\"'`,;:|<>(){}[]\\"


class Scrubber(PayloadWalk):
    """
    Find secrets and PII in strings and payloads and replace them with typed markers.

    Args:
        digest: keyed hash of a matched value, returning hex; the first 12 characters
            go into the marker, so equal values stay linkable without being readable.
        detectors: kinds to run (default: all of :data:`DETECTOR_KINDS` but IP_ADDRESS).
        disable: kinds to leave out.
        custom_patterns: extra kinds, ``{"INTERNAL_ID": "regex"}``; compiled here.
        secret_keys: extra credential key names (compared normalised, exactly).
        allowlist: exact values that are never redacted.
        marker: ``"typed-hash"`` (default form), ``"typed"``, ``"fixed"`` or a format
            string using ``{kind}`` and ``{hash}``.
        ip_addresses: also redact IPv4/IPv6 addresses in free text.
        max_chars: characters scanned per string; the rest becomes ``[TRUNCATED:<n> chars]``.

    Raises:
        ConfigurationError: an argument is invalid; the message names it.

    """

    __slots__ = (
        "_a",
        "_allowlist",
        "_at",
        "_bearer",
        "_clean_keys",
        "_custom",
        "_digest",
        "_digits",
        "_enabled",
        "_extra",
        "_extra_gates",
        "_extra_keys",
        "_hook",
        "_j",
        "_marker",
        "_max_chars",
        "_option",
        "_pem",
        "_redact_fields",
        "_redact_raw_text",
        "_secret_cache",
        "_separator",
        "_x",
    )

    def __init__(
        self,
        *,
        digest: Callable[[str], str],
        detectors: Iterable[str] | None = None,
        disable: Iterable[str] = (),
        custom_patterns: Mapping[str, str] | None = None,
        secret_keys: Iterable[str] = (),
        allowlist: Iterable[str] = (),
        marker: str = "[REDACTED:{kind}:{hash}]",
        ip_addresses: bool = False,
        max_chars: int = 65536,
    ) -> None:
        self._digest = _config.check_digest(digest)
        if not isinstance(ip_addresses, bool):
            raise ConfigurationError("ip_addresses: expected true or false")
        self._custom = _config.compile_custom(custom_patterns, DETECTOR_KINDS)
        custom_kinds = frozenset(kind for kind, _ in self._custom)
        if detectors is None:
            enabled = DETECTOR_KINDS - _OPT_IN
        else:
            enabled = _config.kind_names("detectors", detectors, DETECTOR_KINDS)
        if ip_addresses:
            enabled |= _OPT_IN
        enabled = (enabled | custom_kinds) - _config.kind_names(
            "disable", disable, DETECTOR_KINDS | custom_kinds)
        self._enabled = enabled
        self._custom = tuple((kind, pattern) for kind, pattern in self._custom if kind in enabled)
        families = {name: tuple(find for kinds, find in family if kinds & enabled)
                    for name, family in FAMILIES.items()}
        if enabled & KEY_VALUE_KINDS:
            families["separator"] += (key_value_finder(self.is_secret_key, enabled),)
            families["option"] = (command_line_finder(self.is_secret_key),)
        else:
            families["option"] = ()
        self._at, self._j, self._pem = families["at"], families["j"], families["pem"]
        self._hook, self._a, self._x = families["hook"], families["a"], families["x"]
        self._digits, self._bearer = families["digits"], families["bearer"]
        self._separator = families["separator"]
        self._option = families["option"]
        #: Runs on every string that reaches the detectors: custom patterns and the
        #: opt-in IP finder have no cheap gate of their own.
        self._extra: tuple[Finder, ...] = families["ip"] + tuple(
            _custom_finder(kind, pattern) for kind, pattern in self._custom)
        self._extra_gates = tuple(pattern for _, pattern in self._custom) + (
            (IPV4, IPV6) if "IP_ADDRESS" in enabled else ())
        self._extra_keys = frozenset(
            normalise_key(key) for key in _config.string_list("secret_keys", secret_keys))
        self._allowlist = frozenset(_config.string_list("allowlist", allowlist))
        self._marker = _config.Marker(marker)
        self._max_chars = _config.check_max_chars(max_chars)
        self._redact_fields = "SECRET_FIELD" in enabled
        self._redact_raw_text = "RAW_TEXT" in enabled
        #: Key names seen clean and not credential-like (schemas repeat them).
        self._clean_keys: set[object] = set()
        self._secret_cache: dict[str, bool] = {}

    def __repr__(self) -> str:
        return (f"Scrubber(kinds={len(self._enabled)}, custom={len(self._custom)}, "
                f"marker={self._marker.fmt!r}, max_chars={self._max_chars})")

    # -- keys ---------------------------------------------------------------------------

    def is_secret_key(self, key: str) -> bool:
        """Whether values under *key* are credentials (``apiKey``, ``x_api_key``, ...)."""
        known = self._secret_cache.get(key)
        if known is not None:
            return known
        normal = normalise_key(key)
        secret = normal in self._extra_keys or builtin_secret_key(normal)
        if len(self._secret_cache) < _KEY_CACHE_SIZE:
            self._secret_cache[key] = secret
        return secret

    def whole_value_kind(self, key: object) -> str | None:
        """
        The kind a value under ``key`` is redacted as, whole; None to scrub it as usual.

        ``SECRET_FIELD`` under a credential-like name, ``RAW_TEXT`` (one keyed-hash marker)
        under a name for raw LLM text such as ``prompt``, ``messages`` or ``content``.
        """
        if type(key) is not str:
            return None
        if self._redact_fields and self.is_secret_key(key):
            return "SECRET_FIELD"
        if self._redact_raw_text and normalise_key(key) in RAW_TEXT_KEYS:
            return "RAW_TEXT"
        return None

    # -- strings ------------------------------------------------------------------------

    def scrub_text(self, text: str, counts: dict[str, int]) -> str:
        """
        Return *text* with every finding replaced by a marker; the same object if clean.

        Args:
            text: the string to scrub.
            counts: incremented per marker written, by kind (values are never recorded).

        """
        try:
            if len(text) > self._max_chars:
                return self._truncated(text, counts)
            tl = text.encode("ascii", "replace").translate(TRANSLATION).decode("ascii")
            spans = self._detect(text, tl)  # None: clean (the gate's own checks, once)
            return text if spans is None else self._replace(text, spans, counts)
        except Exception:
            bump(counts, "SCRUB_ERROR")
            return SCRUB_ERROR_MARKER

    def _detect(
        self,
        text: str,
        tl: str,
        _capital_a: Callable[[str], object] = CAPITAL_A.search,
        _slack: Callable[[str], object] = SLACK_PREFIX.search,
        _key_separator: Callable[[str], object] = KEY_SEPARATOR.search,
    ) -> list[Span] | None:
        """
        Run the families whose gate check fires; None when none did (clean text).

        The checks are :func:`._patterns.gate`'s, one per family, so a clean string
        costs exactly the gate and a dirty one runs only the finders it needs.
        """
        fired = False
        families: list[tuple[Finder, ...]] = []
        if "@" in text or (("%" in text or "&" in text) and email_sign_in(text)):
            families.append(self._at)
        if "J" in text:
            families.append(self._j)
        if "-----BEGIN" in text:
            families.append(self._pem)
        if "hooks.slack.com" in text:
            families.append(self._hook)
        if "A" in text and _capital_a(text) is not None:
            families.append(self._a)
        if "x" in text and _slack(text) is not None:
            families.append(self._x)
        if ("+" in text or "000000000" in tl or "00 0000" in tl
                or "0 00 00 00 00" in tl):
            families.append(self._digits)
        if "bearer" in tl:
            families.append(self._bearer)
        if _key_separator(tl) is not None:
            families.append(self._separator)
        if self._option and option_in(text):
            families.append(self._option)
        if self._extra:
            families.append(self._extra)
            fired = True
        if not families:
            return None
        out: list[Span] = []
        for family in families:
            for find in family:
                find(text, tl, out)
        return out if out or fired else []

    def _truncated(self, text: str, counts: dict[str, int]) -> str:
        """
        The first ``max_chars`` characters, scrubbed, and a marker saying how many went.

        The cut never splits a finding, which would leave a part no detector knows (15 of
        16 card digits, the head of a token): it goes back to whitespace near the cap,
        else to the start of the word the cap falls in, and then before any finding that
        a look past the cap shows crossing it.
        """
        cut = self._max_chars
        floor = cut - min(_TRUNCATE_BACKOFF, cut // 4)
        space = max(text.rfind(" ", floor, cut), text.rfind("\n", floor, cut),
                    text.rfind("\t", floor, cut))
        if space > floor:
            cut = space
        elif text[cut] not in _SEPARATORS:  # the cap falls inside a word
            lo = max(0, cut - _TRUNCATE_LOOK)
            separator = max(text.rfind(char, lo, cut) for char in _SEPARATORS)
            if separator >= 0:
                cut = separator + 1
        start = max(0, cut - _TRUNCATE_LOOK)
        window = text[start:cut + _TRUNCATE_LOOK]
        spans = self._detect(window, window.encode("ascii", "replace").translate(
            TRANSLATION).decode("ascii")) or []
        for found_start, found_end, _ in sorted(spans, reverse=True):
            if found_start < cut - start < found_end:
                cut = start + found_start
        head = text[:cut]
        tl = head.encode("ascii", "replace").translate(TRANSLATION).decode("ascii")
        bump(counts, "TRUNCATED")
        found = self._detect(head, tl)
        scrubbed = head if found is None else self._replace(head, found, counts)
        return f"{scrubbed}[TRUNCATED:{len(text) - cut} chars]"

    def _replace(self, text: str, spans: list[Span], counts: dict[str, int]) -> str:
        if not spans:
            return text
        spans = self._keep(text, spans)
        if not spans:
            return text
        pieces = []
        last = 0
        for start, end, kind in spans:
            pieces.append(text[last:start])
            pieces.append(self._render(kind, text[start:end]))
            bump(counts, kind)
            last = end
        pieces.append(text[last:])
        return "".join(pieces)

    def _keep(self, text: str, spans: list[Span]) -> list[Span]:
        """Enabled, not allowlisted, not inside an existing marker; overlaps merged."""
        enabled = self._enabled
        allow = self._allowlist
        found = [s for s in spans if s[2] in enabled and text[s[0]:s[1]] not in allow]
        marker = self._marker
        if found and (not marker.prefix or marker.prefix in text or "[" in text):
            markers = [(m.start(), m.end()) for m in marker.pattern.finditer(text)]
            if markers:  # what starts inside a marker was found in the marker's own text
                found = [s for s in found if not any(lo <= s[0] < hi for lo, hi in markers)]
        found.sort(key=lambda s: (s[0], -s[1]))
        merged: list[Span] = []
        for start, end, kind in found:
            if merged and start < merged[-1][1]:
                prev_start, prev_end, prev_kind = merged[-1]
                if end > prev_end:
                    longer = kind if end - start > prev_end - prev_start else prev_kind
                    merged[-1] = (prev_start, end, longer)
                continue
            merged.append((start, end, kind))
        return merged

    def _render(self, kind: str, value: str) -> str:
        marker = self._marker
        if marker.hashed:
            return marker.fmt.format(kind=kind, hash=self._digest(value)[:_config.HASH_CHARS])
        return marker.fmt.format(kind=kind)

    # -- payloads -----------------------------------------------------------------------

    def scrub_value(self, value: Any, counts: dict[str, int]) -> Any:
        """
        Scrub a JSON-like value: strings, dict keys, and whole values under secret keys.

        Dicts, lists and tuples are walked; the same object comes back when nothing
        changed, otherwise a new container (inputs are never modified). Values under
        credential-like keys are redacted whole, strings and other scalars alike
        (``None`` stays ``None``). Other objects pass through untouched.
        """
        kind = type(value)
        if kind is str:
            return self.scrub_text(value, counts)
        try:
            if kind is dict or kind is list or kind is tuple:
                strings: list[str] = []
                if self._collect(value, strings, 0) and not self._strings_hit(strings):
                    return value
                return self._walk(value, counts, 0)
            return self._walk(value, counts, 0)
        except Exception:
            bump(counts, "SCRUB_ERROR")
            return SCRUB_ERROR_MARKER

    def scrub_field(self, key: str, value: Any, counts: dict[str, int]) -> Any:
        """
        Scrub a value carried under a name, such as a record's extra attribute.

        Under a credential-like name (``password``, ``api_key``...) the whole value is
        redacted, as inside payloads; otherwise it is scrubbed like any payload value.
        """
        kind = self.whole_value_kind(key)
        if kind is not None:
            try:
                if kind == "RAW_TEXT":
                    return self._raw_text(value, counts)
                return self._redact_whole(value, counts, 0, kind)
            except Exception:
                bump(counts, "SCRUB_ERROR")
                return SCRUB_ERROR_MARKER
        return self.scrub_value(value, counts)

    def values_text_is_clean(self, payload: dict[str, Any], text: bytes) -> bool:
        """
        Whether a payload without nested objects provably needs no scrubbing.

        A fast path for the audit filter, which already made ``text``: the compact JSON
        (orjson bytes) of ``[message, logger name, *payload.values()]``. Top-level keys
        are checked by name (cached) and the gate runs once over all the values. Nested
        objects, escapes (which could hide ``"password": "..."`` from the gate), custom
        patterns and IP detection always take the full walk (False).
        """
        if self._extra or len(text) > self._max_chars:
            return False
        view = text.decode()  # ``in`` on str takes CPython's fast path; on bytes it does not
        if "{" in view or "\\" in view:
            return False
        clean_keys = self._clean_keys
        if not clean_keys.issuperset(payload):
            for key in payload:
                if key not in clean_keys and not self._learn_key(key):
                    return False
        return not gate(view, text.translate(TRANSLATION).decode("ascii", "replace"))


def _custom_finder(kind: str, pattern: re.Pattern[str]) -> Finder:
    def find(text: str, _tl: str, out: list[Span]) -> None:
        out.extend((m.start(), m.end(), kind) for m in pattern.finditer(text)
                   if m.end() > m.start())

    return find
