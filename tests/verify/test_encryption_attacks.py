# Copyright 2026 llm-audit-log developers
# SPDX-License-Identifier: Apache-2.0
"""
Threat-model items 24-27 (the encryption layer), checked WITHOUT the decryption key.

Logs are written by the real handler with ``encrypt="auditor"``; the verifier is given the
host's keyring, which holds the signing key and only the *public* half of the auditor key.
Attacks that need the signing key (re-sealing a line after editing it) use the test's copy
of it, as an attacker who stole it would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llm_audit_log import AuditFileHandler, Keyring, Verdict, verify_paths
from llm_audit_log import encrypt as encrypt_module
from llm_audit_log.seal import parse_line
from llm_audit_log.verify import DecryptedLine, Refusal, Report, Severity, decrypt_paths

# -- helpers ----------------------------------------------------------------------------------


def read_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def offset_of(lines: list[bytes], index: int) -> int:
    return sum(len(line) + 1 for line in lines[:index])


def raw_body(line: bytes) -> bytes:
    start = line.index(b'"body":') + len(b'"body":')
    return line[start:line.rindex(b',"kid":"')]


def reseal(line: bytes, keyring: Keyring, *, body: bytes | None = None,
           prev: str | None = None) -> bytes:
    """Rebuild a line with a new body and/or prev and a MAC that verifies (stolen signing key)."""
    doc = json.loads(line)
    signed = (
        f'{{"alg":"{doc["alg"]}","body":{(body or raw_body(line)).decode()},"kid":"{doc["kid"]}",'
        f'"log":"{doc["log"]}","prev":"{prev or doc["prev"]}","seq":{doc["seq"]},'
        f'"t":"{doc["t"]}","ts":"{doc["ts"]}","v":{doc["v"]}'
    ).encode()
    mac_input = signed if doc["v"] == 1 else hashlib.sha256(signed).digest()
    return signed + b',"mac":"' + keyring.mac_function(doc["kid"])(mac_input).encode() + b'"}'


def rechain(lines: list[bytes], keyring: Keyring, start: int) -> list[bytes]:
    out = list(lines)
    for index in range(max(start, 1), len(out)):
        out[index] = reseal(out[index], keyring, prev=parse_line(out[index - 1]).hash)
    return out


def body_of(line: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(line)["body"]
    return body


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def log_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))


def damage(report: Report) -> list[tuple[Verdict, int | None, str]]:
    return [(f.verdict, f.line, f.detail) for f in report.findings
            if f.verdict.severity is Severity.DAMAGE]


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def auditor_ring() -> Keyring:
    return Keyring.generate()


@pytest.fixture
def host_ring(auditor_ring: Keyring) -> Keyring:
    """Signing keys and the auditor's public key only: no way to decrypt anything."""
    ring = auditor_ring.without_auditor_key()
    assert ring.auditor_key is None
    return ring


@pytest.fixture
def write_log(tmp_path, host_ring, payload):
    """Write an encrypted log: ``events`` per file, ``files`` files; returns its directory."""
    handlers: list[AuditFileHandler] = []

    def write(directory: Path | None = None, *, events: int = 4, files: int = 1) -> Path:
        directory = directory or tmp_path / "logs"
        handler = AuditFileHandler(directory / "audit.jsonl", keyring=host_ring,
                                   encrypt="auditor")
        handlers.append(handler)
        logger = logging.getLogger(f"enc.attack.{secrets.token_hex(6)}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        for index in range(files):
            if index:
                handler.doRollover()
            for number in range(events):
                logger.info("event %d", number, extra={"audit": payload("llm.completion")})
        handler.close()
        logger.removeHandler(handler)
        return directory

    yield write
    for handler in handlers:
        handler.close()


def run_cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llm_audit_log", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False)


# -- item 24 ----------------------------------------------------------------------------------


class TestFlippedBits:
    """Item 24: flipped ciphertext bits are caught by the line MAC, with no decryption key."""

    def test_every_flipped_ciphertext_byte_is_tampered(self, write_log, host_ring):
        """Flipping any byte of a ciphertext gives TAMPERED at that line and exit 1."""
        path = log_files(write_log(events=2))[0]
        original = read_lines(path)
        start = original[1].index(b'"ct":"') + 6
        end = original[1].index(b'"', start)
        for index in range(start, end, max(1, (end - start) // 25)):
            lines = list(original)
            flipped = bytearray(lines[1])
            flipped[index] ^= 0x01
            lines[1] = bytes(flipped)
            write_lines(path, lines)

            report = verify_paths([path.parent], host_ring)

            assert [(Verdict.TAMPERED, 2)] == [(v, line) for v, line, _ in damage(report)]
            assert 1 == report.exit_code

    def test_flipped_bit_in_the_decoded_ciphertext_is_tampered(self, write_log, host_ring):
        """A valid-base64 edit (one bit of the ciphertext itself) is TAMPERED too."""
        path = log_files(write_log(events=2))[0]
        lines = read_lines(path)
        ct = body_of(lines[2])["enc"]["ct"]
        raw = bytearray(base64.b64decode(ct))
        raw[5] ^= 0x80
        lines[2] = lines[2].replace(ct.encode(), base64.b64encode(bytes(raw)), 1)
        write_lines(path, lines)

        report = verify_paths([path.parent], host_ring)

        assert [(Verdict.TAMPERED, 3)] == [(v, line) for v, line, _ in damage(report)]
        assert 1 == report.exit_code

    def test_flipped_bit_in_the_wrapped_data_key_is_tampered(self, write_log, host_ring):
        """The header's wrapped key is MACed like everything else."""
        path = log_files(write_log())[0]
        lines = read_lines(path)
        wrapped = body_of(lines[0])["encryption"]["wrap"]["ct"].encode()
        lines[0] = lines[0].replace(wrapped, wrapped[:-3] + (b"A" if wrapped[-3:-2] != b"A"
                                                             else b"B") + wrapped[-2:], 1)
        write_lines(path, lines)

        report = verify_paths([path.parent], host_ring)

        assert (Verdict.TAMPERED, 1) in [(v, line) for v, line, _ in damage(report)]
        assert 1 == report.exit_code

    def test_cli_verifies_with_the_public_only_keyring(self, write_log, host_ring, tmp_path):
        """``llm-audit verify`` with the host keyring: 0 untouched, 1 after a ciphertext flip."""
        directory = write_log(events=3, files=2)
        keyring = host_ring.save(tmp_path / "host.json")
        assert 0 == run_cli("verify", "--keyring", keyring, directory).returncode
        path = log_files(directory)[1]
        lines = read_lines(path)
        lines[1] = lines[1].replace(b'"ct":"', b'"ct":"A', 1)
        write_lines(path, lines)

        result = run_cli("verify", "--json", "--keyring", keyring, directory)

        assert 1 == result.returncode
        assert [("tampered", 2)] == [(f["verdict"], f["line"]) for f in json.loads(
            result.stdout)["findings"] if f["severity"] == "damage"]


# -- item 25 ----------------------------------------------------------------------------------


class TestMovedCiphertexts:
    """Item 25: ciphertexts moved to other lines, and encrypted files swapped between logs."""

    def test_ciphertext_moved_to_another_line_is_tampered(self, write_log, host_ring):
        """Copying one line's ciphertext over another's is TAMPERED at the target line."""
        path = log_files(write_log())[0]
        lines = read_lines(path)
        source, target = body_of(lines[1])["enc"], body_of(lines[3])["enc"]
        lines[3] = lines[3].replace(canonical(target), canonical(source), 1)
        write_lines(path, lines)

        report = verify_paths([path.parent], host_ring)

        assert [(Verdict.TAMPERED, 4)] == [(v, line) for v, line, _ in damage(report)]
        assert 1 == report.exit_code

    def test_moved_and_resealed_ciphertext_reuses_a_nonce(self, write_log, host_ring,
                                                          auditor_ring):
        """With a stolen signing key the copy verifies its MAC, but repeats a nonce: TAMPERED."""
        path = log_files(write_log())[0]
        lines = read_lines(path)
        source = body_of(lines[1])
        lines[3] = reseal(lines[3], host_ring, body=canonical(source))
        write_lines(path, rechain(lines, host_ring, 4))

        report = verify_paths([path.parent], host_ring)

        assert [(Verdict.TAMPERED, 4, "nonce reused under one data key")] == damage(report)
        assert 1 == report.exit_code
        run = decrypt_paths([path.parent], auditor_ring)
        refused = [item.line for item in run if isinstance(item, Refusal)]
        # Line 4 is refused; so is line 5, whose previous-line hash the attacker had to
        # rewrite: prev is part of every ciphertext's AAD, so re-chaining breaks them all.
        assert [4, 5] == refused
        assert 1 == run.exit_code

    def test_swapped_and_resealed_ciphertexts_do_not_decrypt(self, write_log, host_ring,
                                                             auditor_ring):
        """Two ciphertexts swapped and re-MACed: the AAD pins each to its line; decrypt refuses them and every re-chained line after them."""
        path = log_files(write_log())[0]
        lines = read_lines(path)
        first, second = body_of(lines[1]), body_of(lines[2])
        lines[1] = reseal(lines[1], host_ring, body=canonical(second))
        lines[2] = reseal(lines[2], host_ring, body=canonical(first))
        write_lines(path, rechain(lines, host_ring, 2))
        # With the signing key stolen, the swap re-MACs cleanly: no key-less check can see it.
        assert 0 == verify_paths([path.parent], host_ring).exit_code

        run = decrypt_paths([path.parent], auditor_ring)
        items = list(run)

        assert [2, 3, 4, 5] == [item.line for item in items if isinstance(item, Refusal)]
        assert all("does not decrypt at this position" in item.reason for item in items
                   if isinstance(item, Refusal))
        assert 1 == run.exit_code

    def test_ciphertext_from_another_file_is_tampered(self, write_log, host_ring):
        """A (re-sealed) ciphertext taken from another file names another data key: TAMPERED."""
        first, second = log_files(write_log(files=2))
        foreign = body_of(read_lines(first)[2])
        lines = read_lines(second)
        lines[2] = reseal(lines[2], host_ring, body=canonical(foreign))
        write_lines(second, rechain(lines, host_ring, 3))

        report = verify_paths([second.parent], host_ring)

        assert [(Verdict.TAMPERED, 3)] == [(v, line) for v, line, _ in damage(report)]
        assert "another data key" in damage(report)[0][2]
        assert 1 == report.exit_code

    def test_encrypted_files_swapped_between_logs_are_detected(self, write_log, host_ring,
                                                               tmp_path):
        """Swapping the middle files of two encrypted logs (same keys) fails both logs."""
        one = write_log(tmp_path / "one", files=3)
        two = write_log(tmp_path / "two", files=3)
        a, b = log_files(one)[1], log_files(two)[1]
        a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
        a.write_bytes(b_bytes)
        b.write_bytes(a_bytes)

        for directory in (one, two):
            report = verify_paths([directory], host_ring)
            found = {f.verdict for f in report.findings}
            assert Verdict.FILE_MISSING in found
            assert Verdict.MISSING_PREFIX in found
            assert 1 == report.exit_code


# -- item 26 ----------------------------------------------------------------------------------


class TestStrippedEncryption:
    """Item 26: a plaintext body in place of the ciphertext."""

    def test_plaintext_in_place_of_the_ciphertext_is_tampered(self, write_log, host_ring,
                                                              auditor_ring):
        """Replacing the encrypted body with the real plaintext body fails the MAC."""
        path = log_files(write_log())[0]
        plain = [i.body for i in decrypt_paths([path.parent], auditor_ring)
                 if isinstance(i, DecryptedLine) and i.encrypted]
        lines = read_lines(path)
        lines[2] = lines[2].replace(raw_body(lines[2]), plain[1], 1)
        write_lines(path, lines)

        report = verify_paths([path.parent], host_ring)

        assert [(Verdict.TAMPERED, 3)] == [(v, line) for v, line, _ in damage(report)]
        assert 1 == report.exit_code

    def test_stripped_and_resealed_is_tampered(self, write_log, host_ring, auditor_ring):
        """Even re-MACed, a clear event in a file that declares encryption is TAMPERED."""
        path = log_files(write_log())[0]
        plain = [i.body for i in decrypt_paths([path.parent], auditor_ring)
                 if isinstance(i, DecryptedLine) and i.encrypted]
        lines = read_lines(path)
        lines[2] = reseal(lines[2], host_ring, body=plain[1])
        write_lines(path, rechain(lines, host_ring, 3))

        report = verify_paths([path.parent], host_ring)

        assert [(Verdict.TAMPERED, 3)] == [(v, line) for v, line, _ in damage(report)]
        assert "encryption stripped" in damage(report)[0][2]
        assert 1 == report.exit_code

    def test_stripped_declaration_is_tampered(self, write_log, host_ring):
        """A header re-MACed without its encryption declaration leaves its events flagged."""
        path = log_files(write_log(events=3))[0]
        lines = read_lines(path)
        header = body_of(lines[0])
        del header["encryption"]
        lines[0] = reseal(lines[0], host_ring, body=canonical(header))
        write_lines(path, rechain(lines, host_ring, 1))

        report = verify_paths([path.parent], host_ring)

        assert [(Verdict.TAMPERED, 2)] == [(v, line) for v, line, _ in damage(report)]
        assert 3 == report.findings[0].count
        assert "declaration stripped" in damage(report)[0][2]
        assert 1 == report.exit_code

    def test_undeclared_clear_field_is_tampered(self, write_log, host_ring):
        """A field put in clear beside the ciphertext that the header does not declare is TAMPERED."""
        path = log_files(write_log())[0]
        lines = read_lines(path)
        body = body_of(lines[2])
        body["user_id"] = "u-added-in-clear"
        lines[2] = reseal(lines[2], host_ring, body=canonical(body))
        write_lines(path, rechain(lines, host_ring, 3))

        report = verify_paths([path.parent], host_ring)

        assert [(Verdict.TAMPERED, 3)] == [(v, line) for v, line, _ in damage(report)]
        assert 1 == report.exit_code


# -- item 27 ----------------------------------------------------------------------------------


def broken_rng(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every nonce the same (a broken RNG, or a VM snapshot replayed)."""
    real = os.urandom
    monkeypatch.setattr(encrypt_module.os, "urandom",
                        lambda n: bytes(n) if n == encrypt_module.NONCE_BYTES else real(n))


class TestNonceReuse:
    """Item 27: a nonce repeated under one data key is flagged."""

    def test_writer_with_a_broken_rng_is_flagged(self, write_log, host_ring, monkeypatch):
        """Every line after the first that repeats the nonce is TAMPERED (exit 1)."""
        broken_rng(monkeypatch)
        path = log_files(write_log(events=4))[0]

        report = verify_paths([path.parent], host_ring)

        assert [(Verdict.TAMPERED, 3, "nonce reused under one data key")] == damage(report)
        assert 3 == report.findings[0].count
        assert 1 == report.exit_code

    def test_crafted_repeated_nonce_is_flagged(self, write_log, host_ring):
        """A re-sealed line carrying another line's nonce is TAMPERED."""
        path = log_files(write_log())[0]
        lines = read_lines(path)
        body = body_of(lines[3])
        body["enc"]["n"] = body_of(lines[1])["enc"]["n"]
        lines[3] = reseal(lines[3], host_ring, body=canonical(body))
        write_lines(path, rechain(lines, host_ring, 4))

        report = verify_paths([path.parent], host_ring)

        assert [(Verdict.TAMPERED, 4, "nonce reused under one data key")] == damage(report)
        assert 1 == report.exit_code

    def test_the_same_nonce_under_different_data_keys_is_not_reuse(self, write_log, host_ring,
                                                                   monkeypatch):
        """Nonces are tracked per data key: one event per file with a constant nonce verifies."""
        broken_rng(monkeypatch)
        directory = write_log(events=1, files=3)

        report = verify_paths([directory], host_ring)

        assert [] == report.findings
        assert 0 == report.exit_code
