"""encrypt: data keys, wrapping for the auditor, event bodies, and one opaque error."""

from __future__ import annotations

import base64
import json
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_audit_log import encrypt as encrypt_module
from llm_audit_log.encrypt import (
    BODY_ALG,
    WRAP_X25519,
    AuditorRecipient,
    DataKey,
    clear_json,
    decrypt_event_body,
    enc_reference,
    encrypt_event_body,
    event_aad,
    parse_encryption_info,
    unwrap_data_key,
)
from llm_audit_log.errors import DataKeyError, DecryptionError
from llm_audit_log.keys import AuditorKey
from llm_audit_log.seal import parse_line, seal_line

POSITION = {"log_id": "L0123456789abcdef0123", "seq": 7, "prev": "ab" * 32,
            "kid": "k20260101-00000000", "ts": "2026-01-01T00:00:00.000000Z"}


def header_body(dk: DataKey, wrap: dict, index: int = 1) -> dict:
    """A header body as the handler writes it."""
    return {"file_index": index, "encryption": {"alg": BODY_ALG, "dk": dk.dk_id, "wrap": wrap,
                                                "clear": ["event_type", "status", "timestamp"]}}


def flip_b64(text: str, index: int = 3) -> str:
    """The same base64 string with one bit of the decoded bytes flipped."""
    raw = bytearray(base64.b64decode(text))
    raw[index % len(raw)] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def wrapped(auditor: AuditorKey, log_id: str = POSITION["log_id"],
            index: int = 1) -> tuple[DataKey, dict]:
    """A fresh data key wrapped for ``auditor``, and the header body declaring it."""
    dk, wrap = AuditorRecipient(auditor.public_key, auditor.kid).new_data_key(log_id, index)
    return dk, header_body(dk, wrap, index)


@pytest.fixture
def auditor() -> AuditorKey:
    return AuditorKey.generate()


class TestDataKey:
    def test_round_trip_with_fresh_nonces(self):
        """Encrypting twice gives different nonces and ciphertexts; both decrypt exactly."""
        dk = DataKey.generate()
        first = dk.encrypt_body(b"same plaintext", b"aad")
        second = dk.encrypt_body(b"same plaintext", b"aad")
        assert first[0] != second[0]
        assert first[1] != second[1]
        assert b"same plaintext" == dk.decrypt_body(*first, b"aad")
        assert 12 == len(base64.b64decode(first[0]))

    def test_cipher_object_is_reused_not_rebuilt(self, monkeypatch):
        """The AESGCM object is built once per data key, never per record."""
        dk = DataKey.generate()
        built = []
        real = encrypt_module.AESGCM
        monkeypatch.setattr(encrypt_module, "AESGCM", lambda key: built.append(1) or real(key))
        for number in range(50):
            dk.encrypt_event(f'{{"n":{number}}}', {}, **POSITION)
        assert [] == built

    def test_erase_zeroes_the_key_and_refuses_to_encrypt(self):
        """After erase the key bytes are zero; encrypting raises, decrypting fails opaquely."""
        dk = DataKey.generate()
        nonce, ct = dk.encrypt_body(b"x", b"")
        dk.erase()
        assert dk.erased
        assert bytes(32) == bytes(dk._key)
        with pytest.raises(DataKeyError):
            dk.encrypt_body(b"x", b"")
        with pytest.raises(DecryptionError):
            dk.decrypt_body(nonce, ct, b"")

    def test_repr_and_pickle_never_show_the_key(self):
        """The repr names the data key id only; pickling is refused."""
        dk = DataKey.generate()
        secret = base64.b64encode(bytes(dk._key)).decode()
        assert f"DataKey(dk_id={dk.dk_id!r})" == repr(dk)
        assert secret not in repr(dk)
        with pytest.raises(TypeError):
            pickle.dumps(dk)

    @pytest.mark.parametrize("damage", ["flip ct", "flip tag", "flip nonce", "other aad",
                                        "truncated", "bad base64", "short nonce", "wrong key",
                                        "not a string"])
    def test_every_failure_is_one_opaque_error(self, damage):
        """Altered ciphertext, tag, nonce or AAD, wrong key, bad encoding: the same DecryptionError."""
        dk = DataKey.generate()
        nonce, ct = dk.encrypt_body(b"secret payload", b"aad")
        aad = b"aad"
        key = dk
        if damage == "flip ct":
            ct = flip_b64(ct, 0)
        elif damage == "flip tag":
            ct = flip_b64(ct, -1)
        elif damage == "flip nonce":
            nonce = flip_b64(nonce)
        elif damage == "other aad":
            aad = b"aae"
        elif damage == "truncated":
            ct = base64.b64encode(base64.b64decode(ct)[:10]).decode()
        elif damage == "bad base64":
            ct = ct[:-2] + "!!"
        elif damage == "short nonce":
            nonce = base64.b64encode(b"short").decode()
        elif damage == "wrong key":
            key = DataKey.generate()
        else:
            ct = 42  # type: ignore[assignment]
        with pytest.raises(DecryptionError) as info:
            key.decrypt_body(nonce, ct, aad)
        assert "decryption failed" == str(info.value)
        assert info.value.__cause__ is None
        assert info.value.__context__ is None or info.value.__suppress_context__


class TestAuditorWrap:
    def test_wrap_and_unwrap(self, auditor):
        """The auditor's private key recovers the file's data key from the header."""
        dk, header = wrapped(auditor)
        nonce, ct = dk.encrypt_body(b"payload", b"")
        got = unwrap_data_key(header, log_id=POSITION["log_id"], auditor_key=auditor)
        assert dk.dk_id == got.dk_id
        assert b"payload" == got.decrypt_body(nonce, ct, b"")

    def test_header_holds_no_key_material(self, auditor):
        """The wrap object names algorithm, auditor key id and public values only."""
        dk, header = wrapped(auditor)
        text = json.dumps(header)
        wrap = header["encryption"]["wrap"]
        assert {"alg", "akid", "epk", "n", "ct"} == set(wrap)
        assert (WRAP_X25519, auditor.kid) == (wrap["alg"], wrap["akid"])
        assert base64.b64encode(bytes(dk._key)).decode() not in text
        assert auditor.unsafe_export_entry()["private"] not in text

    def test_every_file_gets_a_fresh_ephemeral_key_and_data_key(self, auditor):
        """Two files: two data keys and two ephemeral public keys."""
        (dk1, h1), (dk2, h2) = wrapped(auditor, index=1), wrapped(auditor, index=2)
        assert dk1.dk_id != dk2.dk_id
        assert h1["encryption"]["wrap"]["epk"] != h2["encryption"]["wrap"]["epk"]

    @pytest.mark.parametrize("change", ["log id", "file index", "data key id", "epk", "ct",
                                        "nonce", "akid"])
    def test_wrap_is_bound_to_its_log_and_file(self, auditor, change):
        """A wrapped key moved to another log, file index or data key id does not open."""
        _dk, header = wrapped(auditor)
        log_id = POSITION["log_id"]
        enc = header["encryption"]
        wrap = enc["wrap"]
        if change == "log id":
            log_id = "L" + "f" * 20
        elif change == "file index":
            header["file_index"] = 2
        elif change == "data key id":
            enc["dk"] = "d" + "0" * 20
        elif change == "epk":
            wrap["epk"] = flip_b64(wrap["epk"])
        elif change == "ct":
            wrap["ct"] = flip_b64(wrap["ct"])
        elif change == "nonce":
            wrap["n"] = flip_b64(wrap["n"])
        else:
            wrap["akid"] = "a20260101-ffffffff"
        with pytest.raises(DecryptionError):
            unwrap_data_key(header, log_id=log_id, auditor_key=auditor)

    def test_other_auditor_key_cannot_unwrap(self, auditor):
        """A different private key (even under the same key id) gets the opaque error."""
        _dk, header = wrapped(auditor)
        impostor = AuditorKey(kid=auditor.kid,
                              private_key=base64.urlsafe_b64decode(
                                  AuditorKey.generate().unsafe_export_entry()["private"]))
        for key in (None, AuditorKey.generate(), impostor):
            with pytest.raises(DecryptionError):
                unwrap_data_key(header, log_id=POSITION["log_id"], auditor_key=key)

    def test_unwrap_failures_carry_no_key_material(self, auditor):
        """Neither message nor context of a failed unwrap quotes anything secret."""
        _dk, header = wrapped(auditor)
        header["encryption"]["wrap"]["ct"] = flip_b64(header["encryption"]["wrap"]["ct"])
        with pytest.raises(DecryptionError) as info:
            unwrap_data_key(header, log_id=POSITION["log_id"], auditor_key=auditor)
        assert "decryption failed" == str(info.value)
        assert info.value.__context__ is None or info.value.__suppress_context__

    @pytest.mark.parametrize("declaration", [
        {"alg": "A128CBC", "dk": "d1", "wrap": {"alg": "x"}, "clear": []},
        {"alg": BODY_ALG, "dk": "d1", "wrap": {"alg": "x"}, "clear": ["enc"]},
        {"alg": BODY_ALG, "dk": 5, "wrap": {"alg": "x"}, "clear": []},
        {"alg": BODY_ALG, "dk": "d1", "clear": []},
        "yes",
    ])
    def test_malformed_declarations_are_refused(self, declaration):
        """A header declaration of another cipher or shape is a ValueError, never accepted."""
        with pytest.raises(ValueError, match="encryption"):
            parse_encryption_info({"encryption": declaration})


class TestEventBodies:
    def test_round_trip_gives_the_exact_plaintext(self):
        """Decrypting an encrypted body at the same position returns the same bytes."""
        dk = DataKey.generate()
        plain = '{"event_type":"auth.login","status":"success","user_id":"u-\u00fc\u2028"}'
        body = encrypt_event_body(dk, plain, {"event_type": "auth.login"}, **POSITION)
        parsed = json.loads(body)
        assert plain.encode() == decrypt_event_body(dk, parsed, **POSITION)
        assert ["enc", "event_type"] == list(parsed)
        assert {"ct", "dk", "n"} == set(parsed["enc"])

    @pytest.mark.parametrize("field", ["log_id", "seq", "prev", "kid", "ts"])
    def test_ciphertext_is_pinned_to_its_line(self, field):
        """The AAD binds log id, sequence number, previous hash, key id and time."""
        dk = DataKey.generate()
        body = json.loads(encrypt_event_body(dk, '{"a":1}', {}, **POSITION))
        moved = dict(POSITION)
        moved[field] = 8 if field == "seq" else f"{moved[field]}x"
        with pytest.raises(DecryptionError):
            decrypt_event_body(dk, body, **moved)

    def test_clear_fields_are_authenticated(self):
        """Editing a clear copy makes the ciphertext fail (they are part of the AAD)."""
        dk = DataKey.generate()
        body = json.loads(encrypt_event_body(dk, '{"status":"success"}',
                                             {"status": "success"}, **POSITION))
        body["status"] = "failure"
        with pytest.raises(DecryptionError):
            decrypt_event_body(dk, body, **POSITION)

    def test_clear_fields_must_match_the_plaintext(self):
        """Clear copies that disagree with the encrypted body are refused."""
        dk = DataKey.generate()
        body = json.loads(encrypt_event_body(dk, '{"status":"success"}',
                                             {"status": "failure"}, **POSITION))
        with pytest.raises(DecryptionError):
            decrypt_event_body(dk, body, **POSITION)

    def test_aad_helper_matches_the_hot_path(self):
        """event_aad (readers) and the writer's inline AAD are the same bytes."""
        dk = DataKey.generate()
        clear = {"event_type": "auth.login"}
        body = json.loads(encrypt_event_body(dk, '{"event_type":"auth.login"}', clear,
                                             **POSITION))
        aad = event_aad(dk.dk_id, clear_json(clear), **POSITION)
        assert b'{"event_type":"auth.login"}' == dk.decrypt_body(body["enc"]["n"],
                                                                  body["enc"]["ct"], aad)

    def test_enc_reference_checks_shape_only(self):
        """A verifier without the key can read the data key id and nonce, and spot bad shapes."""
        dk = DataKey.generate()
        body = json.loads(encrypt_event_body(dk, "{}", {}, **POSITION))
        ref = enc_reference(body)
        assert ref is not None
        assert dk.dk_id == ref[0]
        assert 12 == len(ref[1])
        for bad in ({}, {"enc": "x"}, {"enc": {**body["enc"], "extra": 1}},
                    {"enc": {**body["enc"], "n": "AAAA"}}, {"enc": {**body["enc"], "ct": "!"}}):
            assert enc_reference(bad) is None

    @settings(max_examples=150, deadline=None)
    @given(st.dictionaries(
        st.sampled_from(["event_type", "status", "model", "tokens_input", "meta", "zeta"]),
        st.recursive(st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                     | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=8)))
    def test_any_clear_values_round_trip_through_a_sealed_line(self, clear):
        """Whatever JSON the clear copies hold (floats, big ints, surrogates), reading back the sealed line reproduces the AAD."""
        dk = DataKey.generate()
        plain = clear_json({**clear, "user_id": "u-1"}).decode()
        body = encrypt_event_body(dk, plain, dict(clear), **POSITION)
        line, _ = seal_line(kind="event", body=body, log_id=POSITION["log_id"],
                            seq=POSITION["seq"], prev=POSITION["prev"], kid=POSITION["kid"],
                            ts=POSITION["ts"], mac=lambda _data: "0" * 64)
        parsed = parse_line(line.rstrip(b"\n"))
        assert plain.encode() == decrypt_event_body(dk, parsed.body, **POSITION)
