"""keys: keyring files, key sources, and keeping key material out of every output."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path

import pytest

from llm_audit_log import Keyring, KeyringError, load_keyring


def secret_strings(ring: Keyring) -> list[str]:
    doc = json.loads(ring.unsafe_export_json())
    return [k["key"] for k in doc["keys"]] + [doc["pseudonym"]["key"]]


class TestKeyringFile:
    def test_saved_file_is_0600_and_round_trips(self, tmp_path):
        """keygen output is private and loads back to the same keys."""
        ring = Keyring.generate()
        path = ring.save(tmp_path / "k" / "keyring.json")
        assert 0o600 == stat.S_IMODE(path.stat().st_mode)
        loaded = load_keyring(str(path))
        assert ring.active_kid == loaded.active_kid
        assert ring.pseudonymise("x") == loaded.pseudonymise("x")

    def test_refuses_to_overwrite_keys(self, tmp_path):
        """Overwriting a keyring would orphan every log it signed."""
        Keyring.generate().save(tmp_path / "k.json")
        with pytest.raises(KeyringError):
            Keyring.generate().save(tmp_path / "k.json")

    @pytest.mark.parametrize("text", ["not json", "[]", '{"format": "other"}',
                                      '{"format": "llm-audit-log/keyring", "version": 9}'])
    def test_malformed_keyrings_fail_clearly(self, tmp_path, text):
        """A broken keyring is a KeyringError naming the file, not a traceback."""
        path = tmp_path / "k.json"
        path.write_text(text)
        path.chmod(0o600)
        with pytest.raises(KeyringError, match="keyring"):
            load_keyring(path)


class TestSources:
    def test_default_source_is_the_file_named_by_LLM_AUDIT_KEYRING(self, tmp_path, monkeypatch):
        """env:LLM_AUDIT_KEYRING holds a path to the keyring file."""
        ring = Keyring.generate()
        ring.save(tmp_path / "k.json")
        monkeypatch.setenv("LLM_AUDIT_KEYRING", str(tmp_path / "k.json"))
        assert ring.active_kid == load_keyring().active_kid

    def test_missing_variable_says_how_to_fix_it(self, monkeypatch):
        """A missing key fails configuration with a clear message."""
        monkeypatch.delenv("LLM_AUDIT_KEYRING", raising=False)
        with pytest.raises(KeyringError, match="llm-audit keygen"):
            load_keyring()

    def test_inline_environment_variable(self, monkeypatch):
        """env-inline:VAR holds the keyring document itself."""
        ring = Keyring.generate()
        monkeypatch.setenv("AUDIT_KEYS", ring.unsafe_export_json())
        assert ring.active_kid == load_keyring("env-inline:AUDIT_KEYS").active_kid

    def test_missing_file(self, tmp_path):
        """A path that does not exist is a KeyringError."""
        with pytest.raises(KeyringError, match="does not exist"):
            load_keyring(f"file:{tmp_path / 'nope.json'}")


class TestPermissions:
    def test_loose_permissions_warn(self, tmp_path):
        """A keyring readable by others is still used, with a warning to chmod it."""
        from llm_audit_log.errors import AuditLogWarning

        path = Keyring.generate().save(tmp_path / "k.json")
        path.chmod(0o644)
        with pytest.warns(AuditLogWarning, match="chmod 600"):
            load_keyring(path)


class TestNoLeaks:
    def test_repr_and_errors_hold_no_key_material(self, tmp_path):
        """Key bytes appear in no repr and no error message."""
        ring = Keyring.generate()
        for secret in secret_strings(ring):
            assert secret not in repr(ring)
        bad = json.loads(ring.unsafe_export_json())
        bad["keys"][0]["key"] = bad["keys"][0]["key"][:-4]
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        path.chmod(0o600)
        with pytest.raises(KeyringError) as info:
            load_keyring(path)
        for secret in secret_strings(ring):
            assert secret[:-4] not in str(info.value)

    def test_keyrings_cannot_be_pickled(self):
        """No pickle: a keyring never leaves the process by accident."""
        with pytest.raises(TypeError):
            pickle.dumps(Keyring.generate())


class TestRotation:
    def test_rotated_keyring_keeps_old_keys_for_verification(self):
        """A new active key signs; old ids still verify; the pseudonym key is unchanged."""
        ring = Keyring.generate()
        new = ring.rotated(retire_old_after="2030-01-01T00:00:00.000000Z")
        assert new.active_kid != ring.active_kid
        assert set(ring.kids) < set(new.kids)
        assert ring.pseudonymise("x") == new.pseudonymise("x")
        old = new.info(ring.active_kid)
        assert old is not None
        assert not old.valid_at("2031-01-01T00:00:00.000000Z")
        assert old.valid_at("2029-01-01T00:00:00.000000Z")


class TestAuditorKey:
    def test_generated_keyring_holds_an_auditor_pair(self, tmp_path):
        """keygen's keyring names the auditor key and holds both halves; both survive a reload."""
        ring = Keyring.generate()
        ring.save(tmp_path / "k.json")
        loaded = load_keyring(tmp_path / "k.json")
        assert ring.auditor_kid == loaded.auditor_kid
        assert ring.auditor_public_key == loaded.auditor_public_key
        assert loaded.auditor_key is not None
        assert loaded.auditor_key.public_key == ring.auditor_public_key

    def test_split_keyring_keeps_only_the_public_half(self, tmp_path):
        """without_auditor_key() drops the private half; the file then holds no 'private'."""
        ring = Keyring.generate()
        host = ring.without_auditor_key()
        host.save(tmp_path / "host.json")
        doc = json.loads((tmp_path / "host.json").read_text())
        assert {"kid", "alg", "public"} == set(doc["auditor"])
        assert load_keyring(tmp_path / "host.json").auditor_key is None
        assert ring.auditor_public_key == load_keyring(tmp_path / "host.json").auditor_public_key

    def test_auditor_key_file_round_trips_and_is_private(self, tmp_path):
        """The auditor's own file is 0600 and loads back to the same key."""
        from llm_audit_log.keys import AuditorKey, load_auditor_key

        key = AuditorKey.generate()
        path = key.save(tmp_path / "auditor.json")
        assert 0o600 == stat.S_IMODE(path.stat().st_mode)
        assert key.public_key == load_auditor_key(path).public_key
        assert key.kid == load_auditor_key(f"file:{path}").kid

    def test_auditor_key_loads_from_a_full_keyring_but_not_a_split_one(self, tmp_path):
        """load_auditor_key accepts a keyring holding the private half, and explains when it does not."""
        from llm_audit_log.keys import load_auditor_key

        ring = Keyring.generate()
        ring.save(tmp_path / "full.json")
        ring.without_auditor_key().save(tmp_path / "host.json")
        assert ring.auditor_kid == load_auditor_key(tmp_path / "full.json").kid
        with pytest.raises(KeyringError, match="public half"):
            load_auditor_key(tmp_path / "host.json")

    def test_mismatched_halves_are_refused(self, tmp_path):
        """A keyring whose auditor private key does not match its public key fails to load."""
        from llm_audit_log.keys import AuditorKey

        doc = json.loads(Keyring.generate().unsafe_export_json())
        doc["auditor"]["private"] = AuditorKey.generate().unsafe_export_entry()["private"]
        with pytest.raises(KeyringError, match="differ"):
            Keyring.from_json(json.dumps(doc), source="test")

    def test_with_auditor_key_replaces_only_the_auditor(self):
        """with_auditor_key keeps signing and pseudonymisation keys and names the new auditor."""
        from llm_audit_log.keys import AuditorKey

        ring = Keyring.generate()
        new = AuditorKey.generate()
        updated = ring.without_auditor_key().with_auditor_key(new)
        assert (new.kid, new.public_key) == (updated.auditor_kid, updated.auditor_public_key)
        assert ring.active_kid == updated.active_kid
        assert ring.pseudonymise("x") == updated.pseudonymise("x")

    def test_rotation_keeps_the_auditor_key(self):
        """Rotating the signing key keeps the auditor pair."""
        ring = Keyring.generate()
        rotated = ring.rotated()
        assert ring.auditor_kid == rotated.auditor_kid
        assert rotated.auditor_key is not None

    def test_private_key_appears_in_no_repr(self):
        """Keyring and AuditorKey reprs name key ids only; the auditor key refuses pickling."""
        ring = Keyring.generate()
        assert ring.auditor_key is not None
        private = ring.auditor_key.unsafe_export_entry()["private"]
        public = ring.auditor_key.unsafe_export_entry()["public"]
        for text in (repr(ring), repr(ring.auditor_key), repr(ring.without_auditor_key()),
                     str(ring.auditor_key)):
            assert private not in text
            assert public not in text
        assert ring.auditor_kid in repr(ring)
        assert "public only" in repr(ring.without_auditor_key())
        with pytest.raises(TypeError):
            pickle.dumps(ring.auditor_key)

    def test_loader_errors_never_quote_key_bytes(self, tmp_path):
        """A malformed auditor key file fails naming the problem, not the bytes."""
        from llm_audit_log.keys import AuditorKey, load_auditor_key

        entry = AuditorKey.generate().unsafe_export_entry()
        doc = {"format": "llm-audit-log/auditor-key", "version": 1, **entry}
        doc["private"] = entry["private"][:-4]
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(doc))
        path.chmod(0o600)
        with pytest.raises(KeyringError) as info:
            load_auditor_key(path)
        assert entry["private"][:-4] not in str(info.value)
        assert entry["public"] not in str(info.value)


class TestMisplacedKeyMaterial:
    def test_keyring_json_in_a_path_variable_is_never_echoed(self, monkeypatch):
        """env:VAR holding the keyring itself (not a path): a clear error without the keys."""
        ring = Keyring.generate()
        text = ring.unsafe_export_json()
        monkeypatch.setenv("LLM_AUDIT_KEYRING", text)
        with pytest.raises(KeyringError, match="env-inline:LLM_AUDIT_KEYRING") as info:
            load_keyring("env:LLM_AUDIT_KEYRING")
        for secret in secret_strings(ring):
            assert secret not in str(info.value)
        assert "{" not in str(info.value)


    def test_a_bare_key_in_a_path_variable_is_never_echoed(self, monkeypatch):
        """env:VAR holding one base64 key (not a path): 'does not exist', without the value."""
        secret = secret_strings(Keyring.generate())[0]
        monkeypatch.setenv("LLM_AUDIT_KEYRING", secret)
        with pytest.raises(KeyringError, match="the file it names does not exist") as info:
            load_keyring("env:LLM_AUDIT_KEYRING")
        assert secret not in str(info.value)

    def test_a_key_in_the_kid_field_is_never_echoed(self):
        """kid and key swapped by hand: the malformed id is refused without being shown."""
        ring = Keyring.generate()
        doc = json.loads(ring.unsafe_export_json())
        entry = doc["keys"][0]
        entry["kid"], entry["key"] = entry["key"] + "=", entry["kid"]
        with pytest.raises(KeyringError, match="key id is malformed") as info:
            Keyring.from_json(json.dumps(doc), source="test")
        assert entry["kid"] not in str(info.value)

    def test_an_unknown_home_directory_is_a_keyring_error(self):
        with pytest.raises(KeyringError, match="cannot expand"):
            load_keyring("~no-such-user-4711/keyring.json")


class TestSaving:
    def test_a_keyring_appearing_meanwhile_is_not_replaced(self, tmp_path, monkeypatch):
        """Two keygens racing for one name: the second refuses instead of replacing keys."""
        target = tmp_path / "keyring.json"
        first = Keyring.generate()
        real_exists = Path.exists

        def racing(path: Path) -> bool:  # the check sees nothing; another writer wins
            if path == target and not real_exists(path):
                first.save(tmp_path / "other.json")
                os.link(tmp_path / "other.json", target)
                return False
            return real_exists(path)

        monkeypatch.setattr(Path, "exists", racing)
        with pytest.raises(KeyringError, match="refusing to overwrite"):
            Keyring.generate().save(target)
        monkeypatch.undo()
        assert first.active_kid == load_keyring(target).active_kid
        assert [target.name, "other.json"] == sorted(p.name for p in tmp_path.iterdir())


class TestRetirement:
    @pytest.mark.parametrize(("given", "stored"), [
        ("2031-02-03T04:05:06Z", "2031-02-03T04:05:06.000000Z"),
        ("2031-02-03T04:05:06.5Z", "2031-02-03T04:05:06.500000Z"),
    ])
    def test_times_are_stored_as_lines_carry_them(self, given, stored):
        ring = Keyring.generate()
        info = ring.rotated(retire_old_after=given).info(ring.active_kid)
        assert info is not None and stored == info.not_after

    @pytest.mark.parametrize("given", ["yesterday", "01/01/2030", "2030-01-01",
                                       "2030-01-01T00:00:00+02:00"])
    def test_anything_else_is_refused(self, given):
        with pytest.raises(KeyringError, match="expected a UTC time"):
            Keyring.generate().rotated(retire_old_after=given)


class TestCache:
    def test_one_cached_keyring_per_file_replaced_on_change(self, tmp_path):
        """Loading twice shares one object; rewriting the file replaces the cached entry."""
        from llm_audit_log import keys as keys_module

        path = tmp_path / "k.json"
        ring = Keyring.generate()
        ring.save(path)
        assert load_keyring(path) is load_keyring(path)
        rotated = ring.rotated()
        rotated.save(path, overwrite=True)
        assert rotated.active_kid == load_keyring(path).active_kid
        entries = [k for k in keys_module._CACHE if k == str(path.resolve())]
        assert 1 == len(entries)
