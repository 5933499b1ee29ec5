"""The credential vault: linked-account secrets encrypted at rest with AES-256-GCM.

    vault_for(settings) → Vault      keys from LMSGATE_VAULT_KEY, else the key file
    Vault.seal / open                 one value; fresh nonce each time; bound to a context
    KeyFile.prepend                   rotation: a new key in front, old keys still decrypt
    TamperedSecret                    a sealed value that fails authentication
    VaultKeyError                     the key is missing, malformed or its file unsafe
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from lmsgate.vault._keyring import Key, KeyFile, Keyring, VaultKeyError, generate_key, parse_key
from lmsgate.vault._vault import TamperedSecret, Vault

__all__ = [
    "Key",
    "KeyFile",
    "Keyring",
    "TamperedSecret",
    "Vault",
    "VaultKeyError",
    "default_key_file",
    "generate_key",
    "parse_key",
    "vault_for",
]


def default_key_file(database_url: str) -> Path | None:
    """Where the key file lives when ``LMSGATE_VAULT_KEY_FILE`` is not set.

    Beside a SQLite database file (``.lmsgate/vault.key`` for the default store), and
    ``.lmsgate/vault.key`` in the working directory for PostgreSQL. ``None`` for an in-memory
    SQLite database: its credentials die with the process, so an in-memory key is enough.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            return None
        return Path(url.database).expanduser().resolve().parent / "vault.key"
    return Path(".lmsgate") / "vault.key"


def vault_for(env_key: str | None, key_file: str | None, database_url: str,
              holds_sealed: Callable[[], bool] = lambda: False) -> Vault:
    """The vault for these settings. Nothing is read or created until the first seal or open.

    ``holds_sealed`` tells whether the database already holds credentials sealed with some key:
    then a missing key file is an error, not a reason to make a new key (which would open none of
    them, and seal new ones beside them: a second key to lose)."""

    if env_key:
        Keyring.from_env(env_key)  # a malformed key fails at start-up, not at the first request
    path = None if env_key else (Path(key_file) if key_file else default_key_file(database_url))
    seen: list[int] = []

    def mtime() -> int:
        try:
            return path.stat().st_mtime_ns if path else 0
        except OSError:
            return 0

    def load() -> Keyring:
        if env_key:
            return Keyring.from_env(env_key)
        if path is None:
            return Keyring((generate_key(),), "in-memory key (in-memory database)")
        if not path.exists() and holds_sealed():
            raise VaultKeyError(
                f"{path}: the vault key file is missing, and the database holds credentials sealed with a key. "
                "Restore the file from your backup (or set LMSGATE_VAULT_KEY_FILE to where it is, or "
                "LMSGATE_VAULT_KEY); lmsgate makes no new key, which could open none of them.")
        keyring = KeyFile(path).load_or_create()
        seen[:] = [mtime()]
        return keyring

    def changed() -> bool:
        return path is not None and bool(seen) and mtime() != seen[0]

    return Vault(load, changed)
