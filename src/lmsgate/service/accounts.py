"""Resolving who is calling and on which linked account, and managing linked accounts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from lmsgate.connectors.base import CallContext
from lmsgate.connectors.linking import credentials_context, open_credentials, seal_credentials
from lmsgate.connectors.registry import ConnectorRegistry
from lmsgate.connectors.spec import AUTH_TYPE, ConnectorSpec, LinkedConfig
from lmsgate.errors import BadRequest, Conflict, NotFound, PreconditionFailed, Unauthorized
from lmsgate.http import BlockedAddress, OutboundHttp, UnresolvableHost
from lmsgate.ids import new_id
from lmsgate.schema.accounts import LinkedAccountCreate, PatchAccountExternalDto
from lmsgate.store.tenancy import Account, Tenancy
from lmsgate.vault import TamperedSecret, Vault

_KEY_CACHE_SECONDS = 5.0


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


class LinkedAccounts:
    """The linked-accounts use cases: link, change, disable, delete, test, rotate.

    Settings are validated against the connector's spec; secret fields are sealed by the vault
    before they reach the database and opened only to build a provider session. URLs lmsgate
    will call (the spec's ``outbound`` fields) are checked by the SSRF guard when linked.
    """

    def __init__(self, tenancy: Tenancy, registry: ConnectorRegistry, vault: Vault,
                 outbound: OutboundHttp) -> None:
        self.tenancy = tenancy
        self.registry = registry
        self.vault = vault
        self.outbound = outbound

    # ------------------------------------------------------------ reads

    def get(self, project_id: str, account_id: str) -> Account:
        account = self.tenancy.get_account(account_id)
        if account is None or account.project_id != project_id:
            raise NotFound(f"id: linked account {account_id} not found")
        return account

    def list(self, project_id: str, *, page: int, page_size: int, providers: list[str],
             origin_owner_ids: list[str], account_ids: list[str], statuses: list[str]) -> list[Account]:
        return self.tenancy.list_accounts(
            project_id, providers=providers, origin_owner_ids=origin_owner_ids, account_ids=account_ids,
            statuses=statuses, offset=(page - 1) * page_size, limit=page_size,
        )

    def provider_name(self, account: Account) -> str | None:
        try:
            return self.registry.spec(account.provider).name
        except BadRequest:
            return None

    # ------------------------------------------------------------ writes

    async def _check_outbound(self, spec: ConnectorSpec, linked: LinkedConfig) -> None:
        for name in spec.outbound_fields():
            url = linked.config.get(name)
            if url:
                try:
                    await self.outbound.check_url(url)
                except UnresolvableHost:
                    pass  # DNS may differ where lmsgate runs; every call checks again
                except BlockedAddress as exc:
                    raise BadRequest(f"setup_information.{name}: {exc}") from None

    async def create(self, project_id: str, body: LinkedAccountCreate) -> Account:
        spec = self.registry.spec(body.provider)
        linked = spec.link(body.setup_information, body.credentials)
        await self._check_outbound(spec, linked)
        account_id = body.id or new_id()
        if self.tenancy.get_account(account_id) is not None:
            raise Conflict(f"id: a linked account {account_id} already exists")
        sealed = seal_credentials(self.vault, account_id, linked.secrets)
        try:
            return self.tenancy.create_account(
                project_id, spec.key, account_id=account_id, config=linked.config,
                origin_owner_id=body.origin_owner_id, origin_owner_name=body.origin_owner_name,
                origin_username=body.origin_username, label=body.label, credentials=sealed,
            )
        except IntegrityError:  # the same pinned id, linked at the same moment
            raise Conflict(f"id: a linked account {account_id} already exists") from None

    async def update(self, project_id: str, account_id: str, patch: PatchAccountExternalDto) -> Account:
        account = self.get(project_id, account_id)
        sent = patch.model_fields_set
        if patch.provider is not None and patch.provider != account.provider:
            raise BadRequest(f"provider: an account's provider cannot change ({account.provider!r}); "
                             "link a new account instead")
        values: dict[str, Any] = {}
        for name in ("origin_owner_id", "origin_owner_name", "origin_username", "label"):
            if name in sent:
                value = getattr(patch, name)
                if value is None and name in ("origin_owner_id", "origin_owner_name"):
                    raise BadRequest(f"{name}: cannot be removed")
                values[name] = value
        if "status" in sent and patch.status is not None:
            values["status"] = patch.status
        if patch.setup_information is not None or patch.credentials is not None:
            spec = self.registry.spec(account.provider)
            setup = {**account.config, **(patch.setup_information or {})}
            secrets: dict[str, Any] = dict(open_credentials(self.vault, account))
            secrets.update(patch.credentials or {})
            if setup.get(AUTH_TYPE) != account.config.get(AUTH_TYPE):
                # A new auth variant: settings that belonged only to the old one go.
                old = spec.auth_variant(account.config).field_names
                new = spec.auth_variant(setup).field_names
                for name in set(old) - set(new):
                    if name not in (patch.setup_information or {}) and name not in (patch.credentials or {}):
                        setup.pop(name, None)
                        secrets.pop(name, None)
            setup = {k: v for k, v in setup.items() if v is not None}
            secrets = {k: v for k, v in secrets.items() if v is not None}
            moved = next((name for name in spec.outbound_fields() if setup.get(name) != account.config.get(name)), None)
            carried = sorted(k for k in secrets if k not in (patch.credentials or {}))
            if moved and carried:
                # Else any key of the project could point the account at its own server, and
                # receive the customer's provider secrets with the next call.
                raise BadRequest(f"credentials.{carried[0]}: a new setup_information.{moved} changes where this "
                                 "account's credentials are sent; send them again with it (lmsgate does not send "
                                 "stored secrets to a new address)")
            linked = spec.link(setup, secrets)
            await self._check_outbound(spec, linked)
            values["config"] = linked.config
            values["credentials"] = seal_credentials(self.vault, account.id, linked.secrets)
        if not values:
            return account
        updated = self.tenancy.update_account(account.id, **values)
        if updated is None:
            raise NotFound(f"id: linked account {account_id} not found")
        return updated

    def delete(self, project_id: str, account_id: str) -> Account:
        account = self.get(project_id, account_id)
        if not self.tenancy.delete_account(account.id):
            raise NotFound(f"id: linked account {account_id} not found")
        return account

    async def test(self, project_id: str, account_id: str, want_raw: bool = False) -> tuple[str, CallContext]:
        """Make the connector's cheap real call. Works on disabled accounts too, so credentials
        can be checked before an account is enabled again."""
        account = self.get(project_id, account_id)
        ctx = CallContext(account=account, want_raw=want_raw)
        connector = self.registry.for_account(account)
        return await connector.verify(ctx), ctx

    # ------------------------------------------------------------ key rotation

    def rotate(self) -> RotationReport:
        """Re-seal every account's credentials under the vault's current primary key."""
        report = RotationReport(key_id=self.vault.keyring.primary.id)
        for account_id, sealed in self.tenancy.sealed_credentials():
            if not self.vault.needs_rotation(sealed):
                report.current += 1
                continue
            context = credentials_context(account_id)
            try:
                plaintext = self.vault.open(sealed, context)
            except TamperedSecret:
                report.unreadable.append(account_id)
                continue
            if self.tenancy.replace_credentials(account_id, sealed, self.vault.seal(plaintext, context)):
                report.resealed += 1
            else:
                report.changed_meanwhile.append(account_id)
        return report


@dataclass
class RotationReport:
    key_id: str
    resealed: int = 0
    current: int = 0
    unreadable: list[str] = field(default_factory=list)
    """Accounts whose credentials no key in the keyring opens; they are left as they are."""
    changed_meanwhile: list[str] = field(default_factory=list)
    """Accounts whose credentials changed while rotating; already sealed with the new key."""
