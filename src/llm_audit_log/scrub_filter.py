"""
The scrub stage as seen from logging: everything a record carries, scrubbed in place.

Records are shared by every handler of a logger, so scrubbing happens on the record
itself, before any formatter runs: the message (with its args merged in), exception
text, stack info, and the audit payload. :class:`ScrubFilter` does this on its own, for
any logger; :class:`~llm_audit_log.AuditFilter` does it as stage 3 of its pipeline.

Put the filter on the *logger* (not only on a handler) so that handlers that are not
ours - a console handler on the root logger, an OpenTelemetry bridge - see scrubbed
records too. A logger's filters do not run for its children's records: attach it to
each logger you log to, or to every handler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from llm_audit_log._payload import LOGRECORD_ATTRS
from llm_audit_log.errors import ConfigurationError
from llm_audit_log.keys import DEFAULT_KEYRING_SOURCE, Keyring, load_keyring
from llm_audit_log.scrub import Scrubber

__all__ = ["ScrubFilter", "make_scrubber", "scrub_record_text"]

#: Attribute holding the per-kind counts of what was redacted from a record.
COUNTS_ATTR: Final = "_llm_audit_scrubbed"
_DONE_ATTR: Final = "_llm_audit_scrub_done"
_OPTIONS: Final = frozenset({"detectors", "disable", "custom_patterns", "secret_keys",
                             "allowlist", "marker", "ip_addresses", "max_chars"})
_TRACEBACKS: Final = logging.Formatter()


def make_scrubber(keyring: Keyring, options: Mapping[str, Any] | bool | None) -> Scrubber | None:
    """
    Build the scrubber from dictConfig options; None when scrubbing is switched off.

    Markers use the keyring's pseudonymisation key, so a value redacted in one record
    gets the same marker in every other.
    """
    if options is False:
        return None
    settings: dict[str, Any] = {}
    if isinstance(options, Mapping):
        for key in list(options):  # dictConfig's converting dicts: copy item by item
            if key not in _OPTIONS:
                raise ConfigurationError(
                    f"scrubbing: unknown option {key!r} (expected one of {sorted(_OPTIONS)})")
            value = options[key]
            settings[key] = dict(value.items()) if isinstance(value, Mapping) else value
    elif options not in (True, None):
        raise ConfigurationError("scrubbing must be true, false or a mapping of options")

    def digest(text: str) -> str:
        return keyring.pseudonymise(text).rpartition(":")[2]

    return Scrubber(digest=digest, **settings)


def scrub_record_text(record: logging.LogRecord, scrubber: Scrubber,
                      counts: dict[str, int]) -> None:
    """
    Scrub the message (args merged in), exception text and stack info of ``record``.

    The exception is replaced by its scrubbed text (``exc_text``; ``exc_info`` cleared),
    which every stdlib-style formatter prints instead: a traceback object would let a
    formatter render the raw exception message again.
    """
    try:
        message = record.getMessage()
    except Exception as exc:  # wrong args: say so, without the args
        message = f"<message could not be formatted: {type(exc).__name__}>"
    clean = scrubber.scrub_text(message, counts) if type(message) is str else message
    if record.args or clean is not record.msg:
        record.msg = clean
        record.args = None
    if record.exc_info:
        try:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        except Exception as exc:
            record.exc_text = f"<exception could not be formatted: {type(exc).__name__}>"
        record.exc_info = None
    if record.exc_text:
        record.exc_text = scrubber.scrub_text(record.exc_text, counts)
    if record.stack_info:
        record.stack_info = scrubber.scrub_text(record.stack_info, counts)
    if type(record.name) is str:  # logger names can be built from data too
        record.name = scrubber.scrub_text(record.name, counts)


class ScrubFilter(logging.Filter):
    """
    Scrub secrets and PII from every string a record carries, in place; never drops.

    Args:
        name: as for :class:`logging.Filter`.
        keyring: key source for the keyed hashes in markers.
        payload_attr: the ``extra`` key of a nested audit payload (also scrubbed).
        **options: scrubber options: ``detectors``, ``disable``, ``custom_patterns``,
            ``secret_keys``, ``allowlist``, ``marker``, ``ip_addresses``, ``max_chars``.

    """

    def __init__(self, name: str = "", *, keyring: str | Keyring = DEFAULT_KEYRING_SOURCE,
                 payload_attr: str = "audit", **options: Any) -> None:
        super().__init__(name)
        scrubber = make_scrubber(load_keyring(keyring), options)
        assert scrubber is not None
        self._scrubber = scrubber
        self.payload_attr = payload_attr

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._scrubber!r})"

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub once; a record already scrubbed by us passes untouched."""
        if self.name and not super().filter(record):
            return False
        attrs = record.__dict__
        if attrs.get(_DONE_ATTR):
            return True
        counts: dict[str, int] = attrs.setdefault(COUNTS_ATTR, {})
        scrubber = self._scrubber
        scrub_record_text(record, scrubber, counts)
        for key in [k for k in attrs if k not in LOGRECORD_ATTRS and k[:1] != "_"]:
            attrs[key] = scrubber.scrub_field(key, attrs[key], counts)
        attrs[_DONE_ATTR] = True
        return True
