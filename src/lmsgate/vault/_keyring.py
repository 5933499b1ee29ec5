"""Where vault keys come from: the ``LMSGATE_VAULT_KEY`` variable or a key file.

A key is 32 random bytes (AES-256), written as unpadded URL-safe base64. A keyring is a list
of keys, newest first: the first one encrypts, every one decrypts. Rotation puts a new key in
front; ``lmsgate vault rotate`` then re-encrypts everything with it.

Key file
    One key per line, newest first, ``#`` comments allowed. Created on first use with mode
    0600 (owner read/write only), through ``O_CREAT | O_EXCL`` so two processes starting at
    once cannot both create one. A key file readable by others is refused.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Key", "KeyFile", "Keyring", "VaultKeyError", "generate_key", "parse_key"]

KEY_BYTES = 32


class VaultKeyError(RuntimeError):
    """The vault key is missing, malformed, or its file is unsafe. Raised at first use."""


@dataclass(frozen=True, slots=True)
class Key:
    material: bytes

    @property
    def id(self) -> str:
        """A short fingerprint naming the key inside ciphertexts (not enough to recover it)."""
        return hashlib.sha256(b"lmsgate-vault-key-id\x00" + self.material).hexdigest()[:8]

    def __repr__(self) -> str:  # never show key material
        return f"Key(id={self.id})"

    def encoded(self) -> str:
        return base64.urlsafe_b64encode(self.material).decode().rstrip("=")


def generate_key() -> Key:
    return Key(secrets.token_bytes(KEY_BYTES))


def parse_key(text: str, where: str) -> Key:
    text = text.strip()
    try:
        material = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        material = b""
    if len(material) != KEY_BYTES:
        raise VaultKeyError(
            f"{where}: a vault key is {KEY_BYTES} bytes in URL-safe base64 "
            "(make one with: python -c \"import secrets,base64;"
            "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())\")"
        )
    return Key(material)


@dataclass(frozen=True, slots=True)
class Keyring:
    keys: tuple[Key, ...]
    source: str
    """Human-readable origin, e.g. ``LMSGATE_VAULT_KEY`` or the key file path."""

    @property
    def primary(self) -> Key:
        return self.keys[0]

    def find(self, key_id: str) -> Key | None:
        for key in self.keys:
            if key.id == key_id:
                return key
        return None

    @classmethod
    def from_env(cls, value: str) -> Keyring:
        """Parse ``LMSGATE_VAULT_KEY``: one key, or several comma-separated, newest first."""
        parts = [p for p in value.split(",") if p.strip()]
        if not parts:
            raise VaultKeyError("LMSGATE_VAULT_KEY is set but empty")
        return cls(tuple(parse_key(p, f"LMSGATE_VAULT_KEY[{i}]") for i, p in enumerate(parts)),
                   "LMSGATE_VAULT_KEY")


class KeyFile:
    """A key file on disk: read it, create it on first use, put a new key in front."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _check_mode(self) -> None:
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:
            raise VaultKeyError(
                f"{self.path}: vault key file is readable by others (mode {mode:o}); "
                f"run chmod 600 {self.path}"
            )

    def read(self) -> Keyring:
        self._check_mode()
        lines = [ln.strip() for ln in self.path.read_text().splitlines()]
        keys = [parse_key(ln, f"{self.path}:{n}")
                for n, ln in enumerate(lines, 1) if ln and not ln.startswith("#")]
        if not keys:
            raise VaultKeyError(f"{self.path}: holds no key")
        return Keyring(tuple(keys), str(self.path))

    def load_or_create(self) -> Keyring:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return self.read()
            with os.fdopen(fd, "w") as fh:
                fh.write(_file_text([generate_key()]))
                fh.flush()
                os.fsync(fh.fileno())
        return self.read()

    def prepend(self, key: Key) -> Keyring:
        """Put ``key`` first, keeping the older keys for decryption. Atomic replace, mode 0600."""
        current = self.read().keys if self.path.exists() else ()
        self._write([key, *current])
        return self.read()

    def keep_only_primary(self) -> Keyring:
        self._write([self.read().primary])
        return self.read()

    def _write(self, keys: list[Key]) -> None:
        # A new file of a name no one can have made first (O_EXCL, in a private name), so the
        # keys never go into a file another user made readable, or through a symlink.
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as fh:  # mkstemp makes it 0600
                fh.write(_file_text(keys))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _file_text(keys: list[Key]) -> str:
    return (
        "# lmsgate vault keys, newest first. The first key encrypts; all of them decrypt.\n"
        "# Keep this file private (mode 0600) and back it up apart from the database.\n"
        + "".join(k.encoded() + "\n" for k in keys)
    )
