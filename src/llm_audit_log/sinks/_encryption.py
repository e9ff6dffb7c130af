"""The file handler's encryption state: recipient, clear fields and the current file's data key."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from llm_audit_log.encrypt import (
    BODY_ALG,
    ENC_FIELD,
    AuditorRecipient,
    DataKey,
    KmsRecipient,
    Recipient,
    kms_client_factory,
)
from llm_audit_log.errors import ConfigurationError
from llm_audit_log.keys import Keyring
from llm_audit_log.seal import Chain

__all__ = ["DEFAULT_CLEAR_FIELDS", "FileEncryption", "build_encryption"]

#: Index fields kept in clear by default, so encrypted logs stay searchable by kind and time.
DEFAULT_CLEAR_FIELDS: Final = ("event_type", "timestamp", "status")
#: Set by the formatter itself (free text or formatter-only): always encrypted.
_FORMATTER_FIELDS: Final = frozenset({"message", "logger", "level", "exception", "stack_info"})
_FIELD_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")


class FileEncryption:
    """
    Per-file data keys for one handler, used under the handler's lock.

    The next file's key is *prepared* (created and wrapped, which may call KMS) before
    the file exists, so a failure changes nothing on disk; *activating* it erases the
    previous file's key, after which nothing in this process can decrypt that file.
    """

    __slots__ = ("_current", "_pending", "clear_fields", "recipient")

    def __init__(self, recipient: Recipient, clear_fields: Sequence[str]) -> None:
        self.recipient = recipient
        self.clear_fields = tuple(clear_fields)
        self._current: DataKey | None = None
        self._pending: tuple[tuple[str, int], DataKey, dict[str, Any]] | None = None

    def __repr__(self) -> str:
        dk = self._current.dk_id if self._current is not None else None
        return f"FileEncryption({self.recipient.describe()}, dk={dk!r})"

    @property
    def current(self) -> DataKey | None:
        """The data key of the file being written (None between files)."""
        return self._current

    def prepare(self, log_id: str, index: int) -> None:
        """
        Create and wrap the data key for file ``index`` of ``log_id``.

        Raises:
            DataKeyError: the recipient (KMS) could not provide a key.

        """
        if self._pending is not None:
            if self._pending[0] == (log_id, index):
                return
            self._pending[1].erase()
            self._pending = None
        dk, wrap = self.recipient.new_data_key(log_id, index)
        self._pending = ((log_id, index), dk, wrap)

    def ready(self, log_id: str, index: int) -> bool:
        """Whether the key for file (or window) ``index`` of ``log_id`` is prepared already."""
        return self._pending is not None and self._pending[0] == (log_id, index)

    def offer(self, log_id: str, index: int, key: DataKey, wrap: dict[str, Any]) -> None:
        """Take a key made elsewhere (outside the handler's lock) as the one for ``index``."""
        if self._pending is not None:
            if self._pending[0] == (log_id, index):
                key.erase()
                return
            self._pending[1].erase()
        self._pending = ((log_id, index), key, wrap)

    def activate(self, log_id: str, index: int) -> dict[str, Any]:
        """Switch to the prepared key, erasing the previous one; returns the header declaration."""
        if self._pending is None or self._pending[0] != (log_id, index):
            self.prepare(log_id, index)
        assert self._pending is not None
        _, dk, wrap = self._pending
        self._pending = None
        if self._current is not None:
            self._current.erase()
        self._current = dk
        return {"alg": BODY_ALG, "dk": dk.dk_id, "wrap": wrap, "clear": list(self.clear_fields)}

    def set_recipient(self, recipient: Recipient) -> None:
        """Wrap the next files' data keys for ``recipient`` (the current file keeps its key)."""
        self.recipient = recipient
        if self._pending is not None:
            self._pending[1].erase()
            self._pending = None

    def erase(self) -> None:
        """Erase every key held (on close, after a failed write, in a forked child)."""
        if self._current is not None:
            self._current.erase()
            self._current = None
        if self._pending is not None:
            self._pending[1].erase()
            self._pending = None

    def event_body(self, body: str | bytes, source: Mapping[str, Any], static: Mapping[str, Any],
                   chain: Chain, ts: str) -> bytes:
        """
        Encrypt a plaintext body for the chain's next position.

        Clear copies come from ``source`` (the processed audit body the formatter
        rendered), then from the formatter's ``static_fields``.
        """
        dk = self._current
        assert dk is not None
        clear = {name: source[name] for name in self.clear_fields if name in source}
        if static and len(clear) < len(self.clear_fields):
            for name in self.clear_fields:
                if name not in clear and name in static:
                    clear[name] = static[name]
        return dk.encrypt_event(body, clear, chain.log_id, chain.next_seq, chain.prev_hash,
                                chain.kid, ts)


def _clear_fields(value: Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return tuple(sorted(DEFAULT_CLEAR_FIELDS))
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigurationError("clear_fields must be a list of field names")
    fields: list[str] = []
    for name in value:
        if not isinstance(name, str) or not _FIELD_RE.match(name):
            raise ConfigurationError(
                f"clear_fields: {name!r} is not a field name ([A-Za-z0-9_.-], at most 64)")
        if name == ENC_FIELD or name in _FORMATTER_FIELDS:
            raise ConfigurationError(
                f"clear_fields: {name!r} cannot be kept in clear (message, logger, level, "
                "exception and stack_info are always encrypted; 'enc' is reserved)")
        if name not in fields:
            fields.append(name)
    return tuple(sorted(fields))


def build_encryption(
    encrypt: str | None,
    keyring: Keyring,
    *,
    kms_key_id: str | None,
    clear_fields: Sequence[str] | None,
    kms_region: str | None,
    kms_endpoint_url: str | None,
    kms_client_factory_: Callable[[], Any] | None,
) -> FileEncryption | None:
    """
    Validate the handler's encryption options and build its state.

    Raises:
        ConfigurationError: naming the option and what was expected.

    """
    kms_options = (kms_region, kms_endpoint_url, kms_client_factory_)
    if encrypt is None:
        if kms_key_id is not None or clear_fields is not None or any(
                o is not None for o in kms_options):
            raise ConfigurationError("kms_key_id, kms_* and clear_fields need encrypt="
                                     "'auditor' or 'kms'")
        return None
    fields = _clear_fields(clear_fields)
    if encrypt == "auditor":
        if kms_key_id is not None or any(o is not None for o in kms_options):
            raise ConfigurationError("kms_key_id and kms_* options need encrypt='kms'")
        public = keyring.auditor_public_key
        if public is None or keyring.auditor_kid is None:
            raise ConfigurationError(
                f"encrypt='auditor' needs a keyring with an auditor public key; {keyring.source} "
                "has none (create one with `llm-audit keygen --out PATH`)")
        try:
            recipient = AuditorRecipient(public, keyring.auditor_kid)
        except ValueError as exc:
            raise ConfigurationError(f"encrypt='auditor': {exc} ({keyring.source})") from None
        return FileEncryption(recipient, fields)
    if encrypt == "kms":
        if not isinstance(kms_key_id, str) or not kms_key_id:
            raise ConfigurationError("encrypt='kms' needs kms_key_id (a key id, ARN or alias)")
        if kms_client_factory_ is not None and (kms_region or kms_endpoint_url):
            raise ConfigurationError("give kms_client_factory or kms_region/kms_endpoint_url, "
                                     "not both")
        if kms_client_factory_ is not None and not callable(kms_client_factory_):
            raise ConfigurationError("kms_client_factory must be callable")
        factory = kms_client_factory_ or kms_client_factory(kms_region, kms_endpoint_url)
        return FileEncryption(KmsRecipient(kms_key_id, factory), fields)
    raise ConfigurationError(f"encrypt must be 'auditor', 'kms' or null, not {encrypt!r}")
