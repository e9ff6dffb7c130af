# Copyright 2026 llm-audit-log developers
# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: keyrings, audit loggers writing to tmp_path, and valid payloads."""

from __future__ import annotations

import logging
import os
import secrets
from typing import TYPE_CHECKING, Any, Protocol

import pytest

import llm_audit_log

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

#: Fields each event type needs beyond the common ``event_type``, ``user_id`` and ``status``.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "auth.login": (),
    "auth.logout": (),
    "llm.completion": ("model",),
    "rag.query": ("source",),
    "tool.call": ("tool_name",),
    "guardrail.block": ("rule",),
    "error": ("error_type",),
    "admin.config_change": ("actor", "target"),
}


class PayloadFactory(Protocol):
    def __call__(self, event_type: str = "auth.login", **fields: Any) -> dict[str, Any]: ...


class AuditLoggerFactory(Protocol):
    def __call__(self, directory: Path | None = None, *, stem: str = "audit",
                 keyring: llm_audit_log.Keyring | None = None,
                 **handler_options: Any) -> logging.Logger: ...


@pytest.fixture
def keyring(tmp_path: Path) -> llm_audit_log.Keyring:
    """A fresh keyring, also saved to ``tmp_path / "keyring.json"``."""
    ring = llm_audit_log.Keyring.generate()
    ring.save(tmp_path / "keyring.json")
    return ring


@pytest.fixture
def keyring_path(keyring: llm_audit_log.Keyring, tmp_path: Path) -> Path:
    """The file holding the ``keyring`` fixture."""
    return tmp_path / "keyring.json"


@pytest.fixture
def payload() -> PayloadFactory:
    """Build a valid audit payload for an event type; keyword arguments add or override fields."""

    def make(event_type: str = "auth.login", **fields: Any) -> dict[str, Any]:
        if event_type not in REQUIRED_FIELDS:
            raise ValueError(f"no payload recipe for {event_type!r}")
        body: dict[str, Any] = {
            "event_type": event_type,
            "user_id": f"u-{secrets.token_hex(4)}",
            "status": "success",
        }
        for name in REQUIRED_FIELDS[event_type]:
            body[name] = f"{name}-{secrets.token_hex(3)}"
        body.update(fields)
        return body

    return make


@pytest.fixture
def audit_logger(tmp_path: Path, keyring: llm_audit_log.Keyring) -> Iterator[AuditLoggerFactory]:
    """
    Make a uniquely named logger with an ``AuditFileHandler`` writing ``<directory>/<stem>.jsonl``.

    ``directory`` defaults to ``tmp_path / "logs"`` and ``keyring`` to the ``keyring``
    fixture; other keyword arguments go to the handler. Handlers still attached at
    teardown are removed and closed.
    """
    made: list[logging.Logger] = []
    default_ring = keyring

    def make(directory: Path | None = None, *, stem: str = "audit",
             keyring: llm_audit_log.Keyring | None = None,
             **handler_options: Any) -> logging.Logger:
        target = (directory if directory is not None else tmp_path / "logs") / f"{stem}.jsonl"
        ring = keyring if keyring is not None else default_ring
        logger = logging.getLogger(f"tests.audit.{secrets.token_hex(6)}")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(llm_audit_log.AuditFileHandler(target, keyring=ring, **handler_options))
        made.append(logger)
        return logger

    yield make
    for logger in made:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()



@pytest.fixture
def audit_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """
    Apply a shipped config (``logging_configs/NAME``) to the ``audit`` logger, as a user would.

    Runs in a fresh working directory with ``LLM_AUDIT_KEYRING`` pointing at the keyring
    given to ``apply(name, keyring)`` (saved 0600); the ``audit`` logger is restored after.
    """
    import json
    import logging.config
    from pathlib import Path as _Path

    import yaml

    monkeypatch.chdir(tmp_path)
    audit = logging.getLogger("audit")
    saved = (audit.handlers[:], audit.filters[:], audit.level, audit.propagate)
    configs = _Path(__file__).resolve().parents[1] / "logging_configs"

    def apply(name: str, keyring: llm_audit_log.Keyring) -> logging.Logger:
        keyring.save(tmp_path / "keyring.json", overwrite=True)
        monkeypatch.setenv("LLM_AUDIT_KEYRING", str(tmp_path / "keyring.json"))
        text = (configs / name).read_text()
        logging.config.dictConfig(yaml.safe_load(text) if name.endswith(".yaml")
                                  else json.loads(text))
        return audit

    yield apply
    for handler in audit.handlers:
        handler.close()
    audit.handlers[:], audit.filters[:] = saved[0], saved[1]
    audit.setLevel(saved[2])
    audit.propagate = saved[3]

#: The region every AWS test uses.
AWS_REGION = "us-east-1"


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    """
    moto's real HTTP server on 127.0.0.1 for one test module, with dummy credentials.

    A dict: ``url``, ``port``, ``server`` and ``restart`` (a test that stops the server
    calls it to start one again on the same port, so later tests of the module keep
    working). Tests use their own log groups.
    """
    from moto.server import ThreadedMotoServer

    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
             "AWS_ENDPOINT_URL")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION=AWS_REGION)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    holder: dict[str, Any] = {"server": moto, "url": f"http://{host}:{port}", "port": port}

    def restart() -> None:  # an outage ends: moto again on the same port, for later tests too
        holder["server"] = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        holder["server"].start()

    holder["restart"] = restart
    yield holder
    holder["server"].stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

