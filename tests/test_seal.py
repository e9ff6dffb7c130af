"""seal: the line format (version 2 written, version 1 still read), golden lines, the parser."""

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
    def test_format_version_2_is_frozen(self):
        """The bytes this library writes never change silently: old logs must keep verifying."""
        assert (DATA / "golden_v2.jsonl").read_bytes() == b"".join(golden_chain())

    @pytest.mark.parametrize("name", ["golden_v1.jsonl", "golden_v2.jsonl"])
    def test_golden_lines_of_every_version_verify_and_chain(self, name):
        """Version 1 (no longer written) and version 2 lines: MACs verify, prev links hold."""
        ring = fixed_keyring()
        prev = GENESIS_PREV
        for raw in (DATA / name).read_bytes().split(b"\n")[:-1]:
            line = parse_line(raw)
            assert ring.verify_mac(line.kid, line.mac_input, line.mac)
            assert prev == line.prev
            prev = line.hash

    def test_version_1_macs_the_bytes_and_chains_the_whole_line(self):
        """What old logs were written under: MAC over the signed bytes, hash of the line."""
        raw = (DATA / "golden_v1.jsonl").read_bytes().split(b"\n")[1]
        line = parse_line(raw)
        assert (1, line.signed) == (line.version, line.mac_input)
        assert hashlib.sha256(raw).hexdigest() == line.hash

    def test_a_version_1_log_goes_on_in_version_2(self):
        """A log resumed after an upgrade: the first v2 line chains to the last v1 line."""
        ring = fixed_keyring()
        v1 = (DATA / "golden_v1.jsonl").read_bytes().split(b"\n")[:-1]
        last = parse_line(v1[-1])
        chain = Chain(log_id="Lgolden", next_seq=last.seq + 1, prev_hash=last.hash,
                      kid="k-golden", mac=ring.mac_function("k-golden"))
        raw, _digest = chain.seal("event", '{"event_type":"auth.login"}',
                                  "2026-01-02T00:00:00.000000Z")
        resumed = parse_line(raw[:-1])
        assert (2, last.hash) == (resumed.version, resumed.prev)
        assert ring.verify_mac(resumed.kid, resumed.mac_input, resumed.mac)
        assert not ring.verify_mac(resumed.kid, resumed.signed, resumed.mac)


class TestSealLine:
    def test_mac_signs_the_hash_of_every_byte_before_the_mac_field(self):
        """One SHA-256 of the signed prefix: the next line's prev, and what the MAC signs."""
        ring = fixed_keyring()
        line, digest = seal_line(kind="event", body="{}", log_id="L1", seq=3, prev=GENESIS_PREV,
                                 kid="k-golden", ts="2026-01-01T00:00:00.000000Z",
                                 mac=ring.mac_function("k-golden"))
        raw = line[:-1]
        prefix, _, mac = raw.rpartition(b',"mac":"')
        assert hashlib.sha256(prefix).hexdigest() == digest
        assert ring.mac_function("k-golden")(hashlib.sha256(prefix).digest()) == mac[:-2].decode()
        assert line.endswith(b"\n") and line.count(b"\n") == 1

    def test_chain_seal_and_seal_line_give_the_same_bytes(self):
        """The precomputed fast path agrees with the plain function, for text and bytes."""
        ring = fixed_keyring()
        expected = seal_line(kind="event", body='{"a":"\u00e9"}', log_id="L1", seq=3,
                             prev=GENESIS_PREV, kid="k-golden",
                             ts="2026-01-01T00:00:00.000000Z", mac=ring.mac_function("k-golden"))
        for body in ('{"a":"\u00e9"}', '{"a":"\u00e9"}'.encode()):
            chain = Chain(log_id="L1", next_seq=3, prev_hash=GENESIS_PREV, kid="k-golden",
                          mac=ring.mac_function("k-golden"))
            assert expected == chain.seal("event", body, "2026-01-01T00:00:00.000000Z")


def valid_raw() -> bytes:
    return golden_chain()[1][:-1]


class TestParseLine:
    @pytest.mark.parametrize(("mutate", "reason"), [
        (lambda r: r.replace(b'{"alg"', b'{"seq":1,"alg"', 1), "duplicate JSON key"),
        (lambda r: b"\xef\xbb\xbf" + r, "not valid JSON"),
        (lambda r: r + b"\r", "line does not end with a MAC field"),
        (lambda r: r.replace(b'"v":2', b'"v":2,"x":1'), "unexpected or missing envelope fields"),
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
            parse_line(valid_raw().replace(b'"v":2', b'"v":3'))

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
