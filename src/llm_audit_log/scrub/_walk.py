"""
The payload side of the Scrubber: walk dicts, lists and tuples, and gate them at once.

A payload is usually clean, so it is first *collected*: its strings are gathered (keys
known to be clean and not credential-like are skipped) and the gate runs once over
their join. Only when that fires, or a key is new, credential-like or dirty, is the
payload *walked*: every string scrubbed, values under credential keys redacted whole,
and only the containers on the path to a change copied.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from llm_audit_log.scrub._config import Marker
from llm_audit_log.scrub._patterns import TRANSLATION, gate
from llm_audit_log.scrub._validators import card_ok

__all__ = ["MAX_DEPTH", "SCRUB_ERROR_MARKER", "PayloadWalk", "bump"]

#: Nesting deeper than this is redacted as a scrub error rather than walked.
MAX_DEPTH: Final = 64
#: Numbers this large are checked as card numbers (13+ digits).
_CARD_INT: Final = 10**12
#: Clean key names remembered at most (schemas repeat them; a flood of new ones is not).
_CLEAN_KEYS: Final = 2048
#: A name/value pair's keys (as AWS, Kubernetes and CloudFormation spell them): when the
#: name is a credential's, the value is redacted as if it sat under that name.
_PAIR_NAME_KEYS: Final = frozenset({"name", "Name", "key", "Key", "ParameterKey",
                                    "parameterKey", "ParameterName"})
_PAIR_VALUE_KEYS: Final = frozenset({"value", "Value", "ParameterValue", "parameterValue"})
#: What a string becomes when scrubbing it raised.
SCRUB_ERROR_MARKER: Final = "[REDACTED:SCRUB_ERROR]"


def bump(counts: dict[str, int], kind: str) -> None:
    """Count one marker of *kind*."""
    counts[kind] = counts.get(kind, 0) + 1


class PayloadWalk:
    """Mixed into :class:`Scrubber`: the payload walk, over the attributes it sets."""

    __slots__ = ()
    _allowlist: frozenset[str]
    _clean_keys: set[object]
    _enabled: frozenset[str]
    _extra_gates: tuple[re.Pattern[str], ...]
    _marker: Marker
    _max_chars: int
    _redact_fields: bool

    def scrub_text(self, text: str, counts: dict[str, int]) -> str:
        raise NotImplementedError

    def is_secret_key(self, key: str) -> bool:
        raise NotImplementedError

    def whole_value_kind(self, key: object) -> str | None:
        raise NotImplementedError

    def _render(self, kind: str, value: str) -> str:
        raise NotImplementedError

    def _collect(self, value: Any, strings: list[str], depth: int) -> bool:
        """Gather the strings of a plain payload; False when it needs the full walk."""
        if depth > MAX_DEPTH:
            return False
        if type(value) is dict:
            if not _PAIR_VALUE_KEYS.isdisjoint(value):
                return False  # {"name": "API_KEY", "value": ...}: the walk decides
            clean_keys = self._clean_keys
            if not clean_keys.issuperset(value):
                for key in value:
                    if key not in clean_keys and not self._learn_key(key):
                        return False
            value = value.values()
        append = strings.append
        for item in value:
            kind = type(item)
            if kind is str:
                append(item)
            elif kind is int or kind is float:
                if item >= _CARD_INT or item <= -_CARD_INT:
                    return False
            elif kind is list or kind is tuple or kind is dict:
                if not self._collect(item, strings, depth + 1):
                    return False
            elif item is not None and kind is not bool:
                return False
        return True

    def _learn_key(self, key: object) -> bool:
        """Whether a key may take the fast path (a clean, non-credential name)."""
        if type(key) is not str:
            return not isinstance(key, str)
        if self.whole_value_kind(key) is not None:
            return False
        if self._strings_hit([key]):
            return False
        if len(self._clean_keys) < _CLEAN_KEYS:
            self._clean_keys.add(key)
        return True

    def _strings_hit(self, strings: list[str]) -> bool:
        if not strings:
            return False
        joined = "\n".join(strings)
        if len(joined) > self._max_chars:
            return True
        tl = joined.encode("ascii", "replace").translate(TRANSLATION).decode("ascii")
        if gate(joined, tl):
            return True
        return any(pattern.search(text) is not None
                   for pattern in self._extra_gates for text in strings)

    def _walk(self, value: Any, counts: dict[str, int], depth: int) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value, counts)
        if depth > MAX_DEPTH:
            bump(counts, "SCRUB_ERROR")
            return SCRUB_ERROR_MARKER
        if isinstance(value, dict):
            return self._walk_dict(value, counts, depth, whole=None)
        if isinstance(value, list | tuple):
            items = [self._walk(item, counts, depth + 1) for item in value]
            return _rebuilt(value, items)
        kind = type(value)
        if kind is int or kind is float:
            return self._number(value, counts)
        if value is None or kind is bool:
            return value
        return self._foreign(value, counts, depth)

    def _number(self, value: float, counts: dict[str, int]) -> Any:
        """
        A card number given as an int, or as a float printed with all its digits.

        A float a formatter prints with an exponent (``4.3e+18``) shows no card number.
        """
        if (value >= _CARD_INT or value <= -_CARD_INT) and "CARD_NUMBER" in self._enabled \
                and (type(value) is int or (value.is_integer() and "e" not in repr(value))):
            digits = str(abs(int(value)))
            if card_ok(digits):
                bump(counts, "CARD_NUMBER")
                return self._render("CARD_NUMBER", digits)
        return value

    def _foreign(self, value: Any, counts: dict[str, int], depth: int) -> Any:
        """
        Anything else a record may carry (bytes, sets, objects): what a formatter would print.

        Sets are walked like lists. Bytes are read as text, and other objects through
        ``str`` and ``repr``; if either form holds a finding, the value becomes its scrubbed
        text, so no handler can render the original. Clean values are left as they are;
        a value that cannot be printed becomes the scrub-error marker.
        """
        try:
            return self._printed(value, counts, depth)
        except Exception:
            bump(counts, "SCRUB_ERROR")
            return SCRUB_ERROR_MARKER

    def _printed(self, value: Any, counts: dict[str, int], depth: int) -> Any:
        if isinstance(value, set | frozenset):
            items = [self._walk(item, counts, depth + 1) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return type(value)(_hashable(item) for item in items)
        if isinstance(value, bytes | bytearray | memoryview):
            text = bytes(value).decode("utf-8", "replace")
            clean = self.scrub_text(text, counts)
            return value if clean is text else clean
        shown = str(value)
        clean = self.scrub_text(shown, counts)
        if clean is not shown:
            return clean
        described = repr(value)
        if self.scrub_text(described, counts) is described:
            return value
        return shown  # the repr holds a finding that the str does not: keep the str

    def _walk_dict(self, value: dict[Any, Any], counts: dict[str, int], depth: int, *,
                   whole: str | None) -> dict[Any, Any]:
        """``whole``: the kind every scalar inside becomes (under a credential key)."""
        result: dict[Any, Any] = {}
        changed = False
        secret_pair = whole is None and not _PAIR_VALUE_KEYS.isdisjoint(value) and (
            self._names_credential(value))
        for key, item in value.items():
            new_key = self.scrub_text(key, counts) if isinstance(key, str) else key
            kind = whole or self.whole_value_kind(key)
            if secret_pair and key in _PAIR_VALUE_KEYS and kind is None:
                kind = "SECRET_FIELD"
            if kind == "RAW_TEXT":
                new_item = self._raw_text(item, counts)
            elif kind is not None:
                new_item = self._redact_whole(item, counts, depth + 1, kind)
            else:
                new_item = self._walk(item, counts, depth + 1)
            if new_key is not key or new_item is not item:
                changed = True
            while new_key in result:  # two keys scrubbed to one marker: keep both
                new_key = f"{new_key}#"
            result[new_key] = new_item
        return result if changed else value

    def _names_credential(self, pair: dict[Any, Any]) -> bool:
        """
        Whether a name/value pair names a credential.

        ``{"name": "OPENAI_API_KEY", "value": ...}`` (Kubernetes and ECS env), ``{"Key":
        "DbPassword", "Value": ...}`` (tags), ``{"ParameterKey": ..., "ParameterValue":
        ...}`` (CloudFormation).
        """
        for name_key in _PAIR_NAME_KEYS.intersection(pair):
            name = pair[name_key]
            if isinstance(name, str) and len(name) <= 128 and self.is_secret_key(name):
                return True
        return False

    def _redact_whole(self, value: Any, counts: dict[str, int], depth: int,
                      kind: str = "SECRET_FIELD") -> Any:
        """A value under a credential key: every scalar in it becomes a marker."""
        if value is None:
            return None
        if depth > MAX_DEPTH:
            bump(counts, "SCRUB_ERROR")
            return SCRUB_ERROR_MARKER
        if isinstance(value, dict):
            return self._walk_dict(value, counts, depth, whole=kind)
        if isinstance(value, list | tuple):
            items = [self._redact_whole(item, counts, depth + 1, kind) for item in value]
            return _rebuilt(value, items)
        text = value if isinstance(value, str) else str(value)
        if text in self._allowlist or self._marker.pattern.fullmatch(text):
            return value
        bump(counts, kind)
        return self._render(kind, text)

    def _raw_text(self, value: Any, counts: dict[str, int]) -> Any:
        """
        Raw LLM text under a name such as ``prompt`` or ``messages``: one keyed-hash marker.

        A string, or a whole structure (a chat's message list) as its canonical JSON, so
        equal prompts stay linkable; booleans and None stay, numbers are checked as cards.
        """
        if value is None or type(value) is bool:
            return value
        if type(value) in (int, float):
            return self._number(value, counts)  # a card number given as a number goes
        if isinstance(value, str):
            text = value
        else:
            try:
                text = json.dumps(value, sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=False, default=repr)
            except Exception:  # unprintable (a cycle, say): nothing of it is kept
                bump(counts, "SCRUB_ERROR")
                return SCRUB_ERROR_MARKER
        if self._marker.pattern.fullmatch(text):  # already a marker (scrubbed twice)
            return value
        bump(counts, "RAW_TEXT")
        return self._render("RAW_TEXT", text)


def _hashable(item: Any) -> Any:
    return tuple(item) if isinstance(item, list) else item


def _rebuilt(original: list[Any] | tuple[Any, ...], items: list[Any]) -> Any:
    for old, new in zip(original, items, strict=True):
        if old is not new:
            return tuple(items) if isinstance(original, tuple) else items
    return original
