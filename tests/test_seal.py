"""seal: the version-1 line format, frozen by golden lines, and its strict parser."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_audit_log.keys import KeyInfo, Keyring
from llm_audit_log.seal import (
    GENESIS_PREV,
    Chain,
    MalformedLineError,
    UnsupportedVersionError,
    parse_line,
    seal_line,
)

DATA = Path(__file__).parent / "data"


def fixed_keyring() -> Keyring:
    """A keyring with fixed, obviously fake keys so golden lines are reproducible."""
    info = KeyInfo("k-golden", "HS256", None, None, None)
    return Keyring(active_kid="k-golden", keys={"k-golden": (info, bytes(range(32)))},
                   pseudonym_kid="p-golden", pseudonym_key=bytes(range(32, 64)))


def golden_chain() -> list[bytes]:
    ring = fixed_keyring()
    chain = Chain(log_id="Lgolden", next_seq=0, prev_hash=GENESIS_PREV, kid="k-golden",
                  mac=ring.mac_function("k-golden"))
    lines = []
    for kind, body in (("header", '{"file_index":1,"reason":"genesis"}'),
                       ("event", '{"event_type":"auth.login","note":"caf\u00e9 \u2028"}'),
                       ("footer", '{"file_index":1,"lines":3,"reason":"close"}')):
        line, digest = chain.seal(kind, body, "2026-01-01T00:00:00.000000Z")
        chain.advance(digest)
        lines.append(line)
    return lines


class TestGoldenLines:
    def test_format_version_1_is_frozen(self):
        """The bytes of version-1 lines never change: old logs must keep verifying."""
        assert (DATA / "golden_v1.jsonl").read_bytes() == b"".join(golden_chain())

    def test_golden_lines_verify_and_chain(self):
        """Each golden line's MAC verifies and its prev is the previous line's SHA-256."""
        ring = fixed_keyring()
        prev = GENESIS_PREV
        for raw in (DATA / "golden_v1.jsonl").read_bytes().split(b"\n")[:-1]:
            line = parse_line(raw)
            assert ring.verify_mac(line.kid, line.signed, line.mac)
            assert prev == line.prev
            prev = hashlib.sha256(raw).hexdigest()


class TestSealLine:
    def test_mac_covers_every_byte_before_the_mac_field(self):
        """The MAC input is the exact prefix; the hash chains the whole line."""
        ring = fixed_keyring()
        line, digest = seal_line(kind="event", body="{}", log_id="L1", seq=3, prev=GENESIS_PREV,
                                 kid="k-golden", ts="2026-01-01T00:00:00.000000Z",
                                 mac=ring.mac_function("k-golden"))
        raw = line[:-1]
        prefix, _, mac = raw.rpartition(b',"mac":"')
        assert ring.mac_function("k-golden")(prefix) == mac[:-2].decode()
        assert hashlib.sha256(raw).hexdigest() == digest
        assert line.endswith(b"\n") and line.count(b"\n") == 1


def valid_raw() -> bytes:
    return golden_chain()[1][:-1]


class TestParseLine:
    @pytest.mark.parametrize(("mutate", "reason"), [
        (lambda r: r.replace(b'{"alg"', b'{"seq":1,"alg"', 1), "duplicate JSON key"),
        (lambda r: b"\xef\xbb\xbf" + r, "not valid JSON"),
        (lambda r: r + b"\r", "line does not end with a MAC field"),
        (lambda r: r.replace(b'"v":1', b'"v":1,"x":1'), "unexpected or missing envelope fields"),
        (lambda r: r.replace(b'"seq":1', b'"seq":-1'), "seq is not a non-negative integer"),
        (lambda r: r.replace(b'"seq":1', b'"seq":true'), "seq is not a non-negative integer"),
        (lambda r: r.replace(b"caf\xc3\xa9", b"caf\xe9"), "not valid UTF-8"),
        (lambda r: r.rpartition(b',"mac"')[0] + b',"mac":null}', "line does not end with a MAC field"),
    ])
    def test_strictness(self, mutate, reason):
        """Anything but the exact shape is malformed, with a reason that quotes nothing."""
        with pytest.raises(MalformedLineError) as info:
            parse_line(mutate(valid_raw()))
        assert reason == info.value.reason

    def test_unknown_version_is_its_own_error(self):
        """A later format version is 'cannot verify', not 'malformed'."""
        with pytest.raises(UnsupportedVersionError):
            parse_line(valid_raw().replace(b'"v":1', b'"v":2'))

    def test_line_separators_inside_strings_are_fine(self):
        """U+2028 inside a value is just text; we never split on it."""
        assert "caf\u00e9 \u2028" == parse_line(valid_raw()).body["note"]

    def test_deep_nesting_is_malformed_not_a_crash(self):
        """100k nested arrays are rejected without a RecursionError escaping."""
        raw = valid_raw().replace(b'"note"', b'"n":' + b"[" * 100_000 + b"]" * 100_000 + b',"note"')
        with pytest.raises(MalformedLineError):
            parse_line(raw)

    @given(st.binary(max_size=300))
    def test_arbitrary_bytes_never_crash(self, data):
        """parse_line either parses or raises MalformedLineError, for any input."""
        try:
            parse_line(data)
        except MalformedLineError:
            pass
