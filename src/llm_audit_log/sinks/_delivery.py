"""
The CloudWatch Logs calls of the sender: client, group and stream setup, one put.

Errors are classified, never raised: a put either settles (stored, possibly with some
events rejected one by one) or must be retried later from the spill.
"""

from __future__ import annotations

import enum
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from llm_audit_log.context import host_name
from llm_audit_log.errors import ConfigurationError
from llm_audit_log.sinks._batching import Event

__all__ = ["CLOUDWATCH_RETENTION_DAYS", "Delivery", "Outcome", "PutResult",
           "cloudwatch_retention", "render_stream_name"]

#: Retention values PutRetentionPolicy accepts (days).
CLOUDWATCH_RETENTION_DAYS: Final = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545,
                                    731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
#: Client errors worth retrying later; anything unknown is retried too (fail safe).
_NOT_RETRYABLE: Final = frozenset({"InvalidParameterException"})
_STREAM_BAD_CHARS: Final = re.compile(r"[:*]")


def cloudwatch_retention(days: int) -> int:
    """The shortest CloudWatch retention that keeps at least ``days`` days."""
    for allowed in CLOUDWATCH_RETENTION_DAYS:
        if allowed >= days:
            return allowed
    return CLOUDWATCH_RETENTION_DAYS[-1]


def render_stream_name(template: str, logger_name: str) -> str:
    """Fill a stream-name template (``{host} {pid} {date} {logger} {rand}``)."""
    try:
        name = template.format(host=host_name(), pid=os.getpid(),
                               date=time.strftime("%Y-%m-%d", time.gmtime()),
                               logger=logger_name, rand=secrets.token_hex(4))
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigurationError(f"stream_name: bad template ({exc}); use {{host}}, {{pid}}, "
                                 "{date}, {logger}, {rand}") from None
    name = _STREAM_BAD_CHARS.sub("_", name)[:512]
    if not name:
        raise ConfigurationError("stream_name renders to an empty name")
    return name


class Outcome(enum.Enum):
    """How a put ended."""

    STORED = "stored"  # all events stored, or some rejected one by one (see ``rejected``)
    RETRY = "retry"  # nothing stored: throttled, unreachable, missing stream...


@dataclass
class PutResult:
    """The outcome of one put, the events rejected by reason, and a safe detail string."""

    outcome: Outcome
    detail: str = ""
    rejected: dict[str, list[int]] = field(default_factory=dict)


def _default_client_factory(region: str | None, endpoint_url: str | None,
                            profile: str | None) -> Callable[[], Any]:
    # Imported here, in the thread that builds the handler: imported first in the sender
    # thread during interpreter exit, boto3 fails ("can't register atexit after shutdown")
    # and a short job's records would never leave the spill.
    import boto3  # type: ignore[import-untyped]  # noqa: PLC0415 - only when asked
    from botocore.config import Config  # type: ignore[import-untyped]  # noqa: PLC0415

    def make() -> Any:
        # Our own retries (spill, backoff with jitter) replace botocore's.
        config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=3,
                        read_timeout=15, user_agent_extra="llm-audit-log")
        session = boto3.session.Session(profile_name=profile)
        return session.client("logs", region_name=region, endpoint_url=endpoint_url,
                              config=config)

    return make


class Delivery:
    """One sender's client and the streams it knows exist."""

    def __init__(self, log_group: str, *, region: str | None, endpoint_url: str | None,
                 profile: str | None, client_factory: Callable[[], Any] | None,
                 create_group: bool, create_stream: bool, retention_days: int | None,
                 kms_key_id: str | None, report: Callable[..., None]) -> None:
        if retention_days is not None and (isinstance(retention_days, bool) or not isinstance(
                retention_days, int) or retention_days <= 0):
            raise ConfigurationError("retention_days must be a positive integer")
        if kms_key_id is not None and (not isinstance(kms_key_id, str) or not kms_key_id):
            raise ConfigurationError("kms_key_id must be a KMS key ARN")
        self.log_group = log_group
        self._factory = client_factory or _default_client_factory(region, endpoint_url, profile)
        self.create_group = bool(create_group)
        self.create_stream = bool(create_stream)
        self.retention_days = (cloudwatch_retention(retention_days)
                               if retention_days is not None else None)
        self.kms_key_id = kms_key_id
        self._report = report
        self._client: Any = None
        self._ready: set[tuple[str, str]] = set()
        self._group_ready = False

    def client(self) -> Any:
        """The ``logs`` client, made on first use (in the sender thread)."""
        if self._client is None:
            self._client = self._factory()
        return self._client

    def _ensure(self, group: str, stream: str) -> None:
        client = self.client()
        if self.create_group and not self._group_ready and group == self.log_group:
            args: dict[str, Any] = {"logGroupName": group}
            if self.kms_key_id:
                args["kmsKeyId"] = self.kms_key_id
            try:
                client.create_log_group(**args)
            except client.exceptions.ResourceAlreadyExistsException:
                pass
            else:
                if self.retention_days is not None:
                    client.put_retention_policy(logGroupName=group,
                                                retentionInDays=self.retention_days)
            self._group_ready = True
        if self.create_stream:
            try:
                client.create_log_stream(logGroupName=group, logStreamName=stream)
            except client.exceptions.ResourceAlreadyExistsException:
                pass
        self._ready.add((group, stream))

    def put(self, group: str, stream: str, events: list[Event]) -> PutResult:
        """Put one valid batch; never raises."""
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]  # noqa: PLC0415

        try:
            if (group, stream) not in self._ready:
                self._ensure(group, stream)
            response = self.client().put_log_events(
                logGroupName=group, logStreamName=stream,
                logEvents=[{"timestamp": e.ts_ms, "message": e.message.decode("utf-8")}
                           for e in events])
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            if code == "ResourceNotFoundException":
                self._ready.discard((group, stream))
                self._group_ready = False
            if code in _NOT_RETRYABLE:
                return PutResult(Outcome.STORED, code,
                                 {"invalid": list(range(len(events)))})
            return PutResult(Outcome.RETRY, code)
        except Exception as exc:  # connection errors, timeouts, credentials, no region...
            return PutResult(Outcome.RETRY, type(exc).__name__)
        return PutResult(Outcome.STORED, "", _rejected(response, len(events)))

    def close(self) -> None:
        """Drop the client (its connection pool closes with it)."""
        client, self._client = self._client, None
        if client is not None:
            close = getattr(client, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # noqa: S110 - closing a pool must never fail a close
                    pass

    def forget_after_fork(self) -> None:
        """A forked child must never use the parent's connections."""
        self._client = None
        self._ready = set()
        self._group_ready = False


def _rejected(response: Any, count: int) -> dict[str, list[int]]:
    """Indexes of events rejected one by one, by reason (``rejectedLogEventsInfo``)."""
    info = response.get("rejectedLogEventsInfo") if isinstance(response, dict) else None
    if not info:
        return {}
    out: dict[str, list[int]] = {}
    taken: set[int] = set()
    too_new = info.get("tooNewLogEventStartIndex")
    too_old = info.get("tooOldLogEventEndIndex")
    expired = info.get("expiredLogEventEndIndex")
    if isinstance(expired, int):
        out["expired"] = [i for i in range(min(expired, count)) if i not in taken]
        taken.update(out["expired"])
    if isinstance(too_old, int):
        out["too_old"] = [i for i in range(min(too_old, count)) if i not in taken]
        taken.update(out["too_old"])
    if isinstance(too_new, int):
        out["too_new"] = [i for i in range(max(too_new, 0), count) if i not in taken]
    return {k: v for k, v in out.items() if v}
