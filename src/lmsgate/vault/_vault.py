"""Authenticated encryption of linked-account credentials.

Format of a sealed value (ASCII, fits a text column)::

    v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>

* AES-256-GCM (``cryptography``'s AESGCM), a fresh random 96-bit nonce for every value, so
  two equal plaintexts never give equal ciphertexts.
* The associated data binds the value to its purpose and row (``context``, e.g. the account
  id): a ciphertext copied onto another account does not decrypt.
* Any change to the text (nonce, body, tag, key id or context) makes :meth:`Vault.open`
  raise :class:`TamperedSecret`.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lmsgate.vault._keyring import Keyring

__all__ = ["TamperedSecret", "Vault"]

VERSION = "v1"
NONCE_BYTES = 12


class TamperedSecret(ValueError):
    """A sealed value failed authentication: altered, truncated, or sealed for another row.

    Also raised when it names a key the keyring no longer has.
    """


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Vault:
    """Seals and opens small secrets with the keyring's keys.

    The keyring is loaded on first use (``load``), so commands that never touch credentials
    (``lmsgate openapi``, ``lmsgate migrate``) never create or read a key file.
    """

    def __init__(self, load: Callable[[], Keyring], changed: Callable[[], bool] = lambda: False) -> None:
        self._load = load
        self._changed = changed
        """True when the key source changed since the last load (a rotation by another process)."""
        self._keyring: Keyring | None = None
        self._lock = threading.Lock()

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            with self._lock:
                if self._keyring is None:
                    self._keyring = self._load()
        return self._keyring

    def reload(self) -> Keyring:
        with self._lock:
            self._keyring = self._load()
        return self._keyring

    @staticmethod
    def _aad(context: str) -> bytes:
        return f"lmsgate-vault/{VERSION}/{context}".encode()

    def seal(self, plaintext: bytes, context: str) -> str:
        if self._keyring is not None and self._changed():
            self.reload()  # never seal with a key another process has rotated away
        key = self.keyring.primary
        nonce = os.urandom(NONCE_BYTES)
        body = AESGCM(key.material).encrypt(nonce, plaintext, self._aad(context))
        return f"{VERSION}.{key.id}.{_b64(nonce + body)}"

    def open(self, sealed: str, context: str) -> bytes:
        try:
            version, key_id, payload = sealed.split(".", 2)
            raw = _unb64(payload)
        except (ValueError, AttributeError):
            raise TamperedSecret("sealed value is malformed") from None
        if version != VERSION or len(raw) < NONCE_BYTES + 16:
            raise TamperedSecret("sealed value is malformed")
        key = self.keyring.find(key_id)
        if key is None:
            # Another process may have rotated the key file since this one loaded it.
            key = self.reload().find(key_id)
        if key is None:
            raise TamperedSecret(
                f"sealed with key {key_id}, which is not in the keyring ({self.keyring.source})"
            )
        try:
            return AESGCM(key.material).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._aad(context))
        except InvalidTag:
            raise TamperedSecret("sealed value failed authentication") from None

    def key_id_of(self, sealed: str) -> str | None:
        parts = sealed.split(".", 2)
        return parts[1] if len(parts) == 3 else None

    def needs_rotation(self, sealed: str) -> bool:
        return self.key_id_of(sealed) != self.keyring.primary.id

    # JSON helpers: credentials are a small dict of strings.

    def seal_json(self, value: dict[str, str], context: str) -> str:
        return self.seal(orjson.dumps(value), context)

    def open_json(self, sealed: str, context: str) -> dict[str, str]:
        data = orjson.loads(self.open(sealed, context))
        if not isinstance(data, dict):
            raise TamperedSecret("sealed credentials are not an object")
        return data
