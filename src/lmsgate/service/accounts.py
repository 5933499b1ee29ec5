"""Resolving who is calling and on which linked account."""

from __future__ import annotations

import time

from lmsgate.errors import BadRequest, NotFound, PreconditionFailed, Unauthorized
from lmsgate.store.tenancy import Account, Tenancy

_KEY_CACHE_SECONDS = 30.0


class AccountResolver:
    """Authenticates API keys and resolves ``x-account-id`` within the key's project.

    Successful key checks are cached for a short time (keyed by the key's hash, never the
    key), so the hot path does not hit the database for every request. Revocation takes
    effect within ``_KEY_CACHE_SECONDS``.
    """

    def __init__(self, tenancy: Tenancy) -> None:
        self.tenancy = tenancy
        self._keys: dict[str, tuple[str, float]] = {}

    def project_for_key(self, api_key: str | None) -> str:
        if not api_key:
            raise Unauthorized()
        import hashlib

        digest = hashlib.sha256(api_key.encode()).hexdigest()
        cached = self._keys.get(digest)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        project = self.tenancy.authenticate(api_key)
        if project is None:
            raise Unauthorized("Unauthorized: the API key is unknown or revoked")
        self._keys[digest] = (project, time.monotonic() + _KEY_CACHE_SECONDS)
        return project

    def forget_keys(self) -> None:
        self._keys.clear()

    def account(self, project_id: str, account_id: str | None) -> Account:
        if not account_id:
            raise BadRequest("x-account-id: header is required; it names the linked account to use")
        account = self.tenancy.get_account(account_id)
        if account is None or account.project_id != project_id:
            # Another project's account is reported exactly like a missing one.
            raise NotFound(f"x-account-id: linked account {account_id} not found")
        if account.status != "active":
            raise PreconditionFailed(f"linked account {account_id} is disabled")
        return account
