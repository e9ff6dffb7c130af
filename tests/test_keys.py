"""keys: keyring files, key sources, and keeping key material out of every output."""

from __future__ import annotations

import json
import pickle
import stat

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
