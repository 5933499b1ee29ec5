"""What turns a stored linked account into a working connection: sealed credentials and the
provider session built from the connector's declaration.

Credentials are sealed with the account id as associated data, so a ciphertext copied onto
another account does not open.
"""

from __future__ import annotations

from collections.abc import Mapping

from lmsgate.connectors.spec import (
    ApiKeyAuth,
    BasicAuth,
    ConnectorSpec,
    LinkedConfig,
    NoAuth,
    OAuth2ClientCredentials,
)
from lmsgate.errors import LmsGateError
from lmsgate.http import (
    BasicCredentials,
    HeaderCredentials,
    NoCredentials,
    OAuth2Credentials,
    OutboundHttp,
    ProviderSession,
    RateSpec,
)
from lmsgate.http._auth import Credentials
from lmsgate.store.tenancy import Account
from lmsgate.vault import TamperedSecret, Vault

__all__ = ["credentials_context", "linked_config", "open_credentials", "provider_session", "seal_credentials"]


class CredentialsUnreadable(LmsGateError):
    """500-class fault of the operator's setup: the vault cannot open an account's credentials."""

    status = 500


def credentials_context(account_id: str) -> str:
    return f"account-credentials/{account_id}"


def seal_credentials(vault: Vault, account_id: str, secrets: Mapping[str, str]) -> str | None:
    return vault.seal_json(dict(secrets), credentials_context(account_id)) if secrets else None


def open_credentials(vault: Vault, account: Account) -> dict[str, str]:
    if not account.credentials:
        return {}
    try:
        return vault.open_json(account.credentials, credentials_context(account.id))
    except TamperedSecret as exc:
        raise CredentialsUnreadable(
            f"The credentials of linked account {account.id} cannot be decrypted ({exc}); check the "
            "vault key (LMSGATE_VAULT_KEY or the key file), or link the account's credentials again"
        ) from None


def linked_config(vault: Vault, account: Account) -> LinkedConfig:
    return LinkedConfig(config=dict(account.config), secrets=open_credentials(vault, account))


def _credentials(spec: ConnectorSpec, linked: LinkedConfig) -> Credentials:
    variant = spec.auth_variant(linked.config)
    v = linked.value
    if isinstance(variant, BasicAuth):
        return BasicCredentials(v(variant.username_field) or "", v(variant.password_field) or "")
    if isinstance(variant, ApiKeyAuth):
        return HeaderCredentials(variant.header, variant.prefix + (v(variant.key_field) or ""))
    if isinstance(variant, OAuth2ClientCredentials):
        return OAuth2Credentials(token_url=v(variant.token_url_field), client_id=v(variant.client_id_field),
                                 client_secret=v(variant.client_secret_field) or "",
                                 scope=v(variant.scope_field) if variant.scope_field else None)
    assert isinstance(variant, NoAuth)
    return NoCredentials()


def _rate(spec: ConnectorSpec, linked: LinkedConfig) -> RateSpec | None:
    override = linked.config.get(spec.rate_limit_field) if spec.rate_limit_field else None
    if override:
        per_second = float(override)
        return RateSpec(per_second=per_second, burst=max(1.0, per_second))
    if spec.rate_limit:
        return RateSpec(per_second=spec.rate_limit.per_second, burst=float(spec.rate_limit.requests))
    return None


def provider_session(outbound: OutboundHttp, account: Account, spec: ConnectorSpec, linked: LinkedConfig,
                     default_headers: Mapping[str, str] | None = None) -> ProviderSession:
    return outbound.session(
        account_id=account.id, provider=spec.key, base_url=spec.render_base_url(linked.config),
        credentials=_credentials(spec, linked), rate=_rate(spec, linked), default_headers=default_headers,
    )
