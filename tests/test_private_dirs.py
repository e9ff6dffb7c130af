"""Every directory the library creates is 0700, parents included, whatever the umask."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_audit_log import AuditFileHandler, Keyring
from llm_audit_log._private_dirs import make_private_dirs
from llm_audit_log.sinks._batching import Event
from llm_audit_log.sinks._spill import Spill


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 000: what a careless service manager or container entrypoint may leave."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_parents_are_0700_too(tmp_path, open_umask):
    make_private_dirs(tmp_path / "a" / "b" / "c")
    assert [0o700] * 3 == [mode(tmp_path / "a"), mode(tmp_path / "a" / "b"),
                           mode(tmp_path / "a" / "b" / "c")]


def test_existing_directories_are_left_alone(tmp_path, open_umask):
    (tmp_path / "shared").mkdir(mode=0o755)
    make_private_dirs(tmp_path / "shared" / "keys")
    assert (0o755, 0o700) == (mode(tmp_path / "shared"), mode(tmp_path / "shared" / "keys"))


def test_keyring_log_and_spill_directories(tmp_path, open_umask):
    """keygen's --out, a nested log path and a nested spill directory: all 0700."""
    ring = Keyring.generate()
    ring.save(tmp_path / "keys" / "prod" / "keyring.json")
    handler = AuditFileHandler(tmp_path / "logs" / "app" / "audit.jsonl", keyring=ring)
    logging.getLogger("tests.private_dirs").addHandler(handler)
    handler.close()
    logging.getLogger("tests.private_dirs").removeHandler(handler)
    spill = Spill(str(tmp_path / "spill" / "cw"))
    spill.append("group", "stream", [Event(1, b"line")])
    spill.close()

    for directory in ("keys", "keys/prod", "logs", "logs/app", "spill", "spill/cw"):
        assert 0o700 == mode(tmp_path / directory), directory
    assert 0o600 == mode(tmp_path / "keys" / "prod" / "keyring.json")
