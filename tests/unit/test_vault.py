"""The credential vault: AES-256-GCM with a fresh nonce, tamper detection, keys and rotation."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from lmsgate.vault import KeyFile, Keyring, TamperedSecret, Vault, VaultKeyError, generate_key, vault_for


def fixed(*keys) -> Vault:  # type: ignore[no-untyped-def]
    return Vault(lambda: Keyring(tuple(keys), "test"))


def test_equal_plaintexts_give_different_ciphertexts() -> None:
    vault = fixed(generate_key())
    sealed = {vault.seal(b"the same secret", "account/a") for _ in range(50)}
    assert len(sealed) == 50
    assert all(vault.open(s, "account/a") == b"the same secret" for s in sealed)
    assert all(b"the same secret" not in s.encode() for s in sealed)


def _flip(sealed: str, position: int) -> str:
    version, key_id, payload = sealed.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[position] ^= 0x01
    return f"{version}.{key_id}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"


@pytest.mark.parametrize("position", [0, 11, 12, 20, -1])  # nonce, first body byte, body, tag
def test_a_tampered_ciphertext_is_rejected(position: int) -> None:
    vault = fixed(generate_key())
    sealed = vault.seal(b'{"password": "hunter2"}', "account/a")
    with pytest.raises(TamperedSecret, match="authentication"):
        vault.open(_flip(sealed, position), "account/a")


@pytest.mark.parametrize("mangle", [
    lambda s: s[:-4],                                  # truncated
    lambda s: s.replace("v1.", "v2.", 1),               # unknown version
    lambda s: "v1.00000000." + s.split(".", 2)[2],      # unknown key
    lambda s: "garbage",
])
def test_malformed_values_are_rejected(mangle) -> None:  # type: ignore[no-untyped-def]
    vault = fixed(generate_key())
    with pytest.raises(TamperedSecret):
        vault.open(mangle(vault.seal(b"x" * 40, "ctx")), "ctx")


def test_a_value_only_opens_in_its_own_context() -> None:
    vault = fixed(generate_key())
    sealed = vault.seal(b"secret", "account-credentials/a")
    with pytest.raises(TamperedSecret):
        vault.open(sealed, "account-credentials/b")


def test_rotation_new_writes_use_the_new_key_old_values_still_open() -> None:
    old, new = generate_key(), generate_key()
    before = fixed(old)
    sealed_old = before.seal(b"first", "ctx")
    after = fixed(new, old)
    sealed_new = after.seal(b"second", "ctx")
    assert after.key_id_of(sealed_new) == new.id and after.key_id_of(sealed_old) == old.id
    assert after.open(sealed_old, "ctx") == b"first" and after.open(sealed_new, "ctx") == b"second"
    assert after.needs_rotation(sealed_old) and not after.needs_rotation(sealed_new)
    with pytest.raises(TamperedSecret, match="not in the keyring"):
        fixed(new).open(sealed_old, "ctx")


def test_the_key_file_is_created_private_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "vault.key"
    vault = vault_for(None, str(path), "sqlite://")
    assert not path.exists()  # nothing happens until a secret is sealed
    sealed = vault.seal(b"x", "ctx")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert vault_for(None, str(path), "sqlite://").open(sealed, "ctx") == b"x"  # the next process reads it


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vault.key"
    KeyFile(path).load_or_create()
    os.chmod(path, 0o644)
    with pytest.raises(VaultKeyError, match="chmod 600"):
        KeyFile(path).read()


def test_the_default_key_file_sits_beside_the_sqlite_database(tmp_path: Path) -> None:
    vault = vault_for(None, None, f"sqlite:///{tmp_path}/data/lmsgate.db")
    vault.seal(b"x", "ctx")
    assert (tmp_path / "data" / "vault.key").exists()


def test_keys_from_the_environment() -> None:
    new, old = generate_key(), generate_key()
    vault = vault_for(f"{new.encoded()},{old.encoded()}", None, "sqlite://")
    assert vault.keyring.primary.id == new.id and vault.keyring.find(old.id) is not None
    with pytest.raises(VaultKeyError, match="32 bytes"):
        vault_for("too-short", None, "sqlite://")
    assert "Key(id=" in repr(new) and new.encoded() not in repr(new)


def test_a_process_picks_up_a_rotated_key_file(tmp_path: Path) -> None:
    path = tmp_path / "vault.key"
    running = vault_for(None, str(path), "sqlite://")
    first = running.seal(b"a", "ctx")
    rotated = KeyFile(path).prepend(generate_key())  # another process rotates
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    other = vault_for(None, str(path), "sqlite://")
    assert running.open(other.seal(b"b", "ctx"), "ctx") == b"b"  # unknown key id: reload, then open
    assert running.key_id_of(running.seal(b"c", "ctx")) == rotated.primary.id
    assert running.open(first, "ctx") == b"a"


def test_no_new_key_is_made_while_the_database_holds_sealed_credentials(tmp_path: Path) -> None:
    """With the key file deleted, the next start made a new key silently: every account then
    failed with 500s, and new ones were sealed with a second key."""
    path = tmp_path / "vault.key"
    vault = vault_for(None, str(path), "sqlite://", holds_sealed=lambda: True)
    with pytest.raises(VaultKeyError, match="missing.*sealed.*Restore"):
        vault.seal(b"x", "ctx")
    assert not path.exists()
    assert vault_for(None, str(path), "sqlite://", holds_sealed=lambda: False).seal(b"x", "ctx")  # a new store


def test_rotation_writes_the_keys_into_a_file_no_one_made_first(tmp_path: Path) -> None:
    """The keys went through a fixed vault.key.tmp opened without O_EXCL: a file someone made
    readable there (or a symlink) received every key, and the key file became 0644."""
    path = tmp_path / "vault.key"
    KeyFile(path).load_or_create()
    planted = tmp_path / "vault.key.tmp"
    planted.write_text("")
    os.chmod(planted, 0o644)
    keys = KeyFile(path).prepend(generate_key())
    assert len(keys.keys) == 2 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert planted.read_text() == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vault.key", "vault.key.tmp"]
