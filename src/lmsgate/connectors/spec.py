"""What a connector declares about its provider, as data: auth, config fields, base URL,
rate limit and field mappings.

Every connector class carries one :class:`ConnectorSpec`. The linked-accounts API validates an
account's config and credentials against it, the vault encrypts exactly the fields flagged
``secret``, the outbound HTTP policy reads its base URL, auth and rate limit from it, and
``docs/connectors.md`` is generated from it. :meth:`ConnectorSpec.check` runs when the
connector is registered and raises :class:`InvalidSpec` for a spec that contradicts itself (a
template naming an undeclared field, a secret in a URL, an auth variant pointing nowhere).

A spec says nothing about *how* fields are converted: that is plain, tested Python in each
connector's ``mapping`` module. :class:`FieldMapping` rows only document the conversions.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from lmsgate.errors import BadRequest

__all__ = [
    "ApiKeyAuth",
    "Auth",
    "BasicAuth",
    "ConfigField",
    "ConnectorSpec",
    "FieldMapping",
    "InvalidSpec",
    "LinkedConfig",
    "NoAuth",
    "OAuth2ClientCredentials",
    "RateLimit",
]

FieldKind = Literal["string", "url", "choice", "number"]
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
AUTH_TYPE = "auth_type"
"""The config field that picks an auth variant when a connector offers several."""


class InvalidSpec(ValueError):
    """Raised at registration for a connector spec that contradicts itself."""


@dataclass(frozen=True, slots=True)
class ConfigField:
    """One setting of a linked account.

    ``secret`` fields are credentials: sent under ``credentials``, encrypted by the vault,
    redacted from every log and provider error, and never returned. The others are sent under
    ``setup_information`` and returned as they were given. ``outbound`` marks a URL lmsgate
    will call, which the SSRF guard checks when the account is linked and at every call.
    """

    name: str
    description: str
    secret: bool = False
    required: bool = True
    kind: FieldKind = "string"
    default: str | float | None = None
    choices: tuple[str, ...] = ()
    outbound: bool = False
    example: str | None = None


# ---------------------------------------------------------------- auth variants


@dataclass(frozen=True, slots=True)
class NoAuth:
    """The provider needs no credentials (the embedded LMS)."""

    kind: Literal["none"] = "none"

    @property
    def field_names(self) -> tuple[str, ...]:
        return ()

    @property
    def secret_field_names(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP Basic auth (RFC 7617) from two fields."""

    username_field: str = "username"
    password_field: str = "password"
    kind: Literal["basic"] = "basic"

    @property
    def field_names(self) -> tuple[str, ...]:
        return (self.username_field, self.password_field)

    @property
    def secret_field_names(self) -> tuple[str, ...]:
        return (self.password_field,)


@dataclass(frozen=True, slots=True)
class ApiKeyAuth:
    """A key sent in a request header, optionally with a prefix such as ``Bearer ``."""

    header: str
    key_field: str = "api_key"
    prefix: str = ""
    kind: Literal["api_key"] = "api_key"

    @property
    def field_names(self) -> tuple[str, ...]:
        return (self.key_field,)

    @property
    def secret_field_names(self) -> tuple[str, ...]:
        return (self.key_field,)


@dataclass(frozen=True, slots=True)
class OAuth2ClientCredentials:
    """OAuth 2.0 client credentials grant (RFC 6749 §4.4); the token is sent as a bearer token.

    The client authenticates to the token endpoint with HTTP Basic (RFC 6749 §2.3.1).
    """

    token_url_field: str = "token_url"
    client_id_field: str = "client_id"
    client_secret_field: str = "client_secret"
    scope_field: str | None = "scope"
    kind: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"

    @property
    def field_names(self) -> tuple[str, ...]:
        names = (self.token_url_field, self.client_id_field, self.client_secret_field)
        return names + ((self.scope_field,) if self.scope_field else ())

    @property
    def secret_field_names(self) -> tuple[str, ...]:
        return (self.client_secret_field,)

    @property
    def optional_field_names(self) -> tuple[str, ...]:
        return (self.scope_field,) if self.scope_field else ()


Auth = NoAuth | BasicAuth | ApiKeyAuth | OAuth2ClientCredentials


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The provider's documented request limit: ``requests`` per ``per_seconds`` seconds."""

    requests: int
    per_seconds: float
    source: str = ""
    """Where the provider documents it."""

    @property
    def per_second(self) -> float:
        return self.requests / self.per_seconds


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Documentation of one unified ↔ provider field conversion (the code is in ``mapping``)."""

    unified: str
    provider: str
    conversion: str = "as is"


@dataclass(frozen=True, slots=True)
class LinkedConfig:
    """An account's settings after validation against the spec, split by secrecy."""

    config: dict[str, Any]
    secrets: dict[str, str]

    def value(self, name: str) -> Any:
        return self.secrets[name] if name in self.secrets else self.config.get(name)


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    key: str
    """The provider name used in ``POST /accounts`` and returned as ``provider``."""
    name: str
    description: str
    auth: tuple[Auth, ...] = (NoAuth(),)
    """Auth variants; with more than one, the account's ``auth_type`` picks (first is default)."""
    fields: tuple[ConfigField, ...] = ()
    base_url: str | None = None
    """A template such as ``{endpoint}`` or ``https://{subdomain}.example.com/api``."""
    rate_limit: RateLimit | None = None
    rate_limit_field: str | None = None
    """An optional number field an operator may set to override the rate limit (requests/s)."""
    check: str = ""
    """The cheap call ``POST /accounts/{id}/test`` makes."""
    mappings: tuple[FieldMapping, ...] = ()
    notes: tuple[str, ...] = ()

    # ------------------------------------------------------------ self-consistency

    def template_fields(self) -> tuple[str, ...]:
        if not self.base_url:
            return ()
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.base_url) if name)

    def field(self, name: str) -> ConfigField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def auth_kinds(self) -> tuple[str, ...]:
        return tuple(a.kind for a in self.auth)

    def check_spec(self) -> None:
        """Raise :class:`InvalidSpec` unless every reference in the spec resolves."""
        problems: list[str] = []
        if not _NAME.match(self.key):
            problems.append(f"key {self.key!r} must be lower case letters, digits and _")
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"fields declared twice: {', '.join(dupes)}")
        declared = set(names)
        for f in self.fields:
            if not _NAME.match(f.name):
                problems.append(f"field {f.name!r} must be lower case letters, digits and _")
            if f.name == AUTH_TYPE:
                problems.append(f"field name {AUTH_TYPE!r} is reserved")
            if f.kind == "choice" and not f.choices:
                problems.append(f"choice field {f.name!r} lists no choices")
            if f.kind == "choice" and f.default is not None and f.default not in f.choices:
                problems.append(f"default of {f.name!r} is not one of its choices")
            if f.outbound and f.kind != "url":
                problems.append(f"outbound field {f.name!r} must be a url field")
            if f.secret and f.outbound:
                problems.append(f"field {f.name!r} cannot be both secret and an outbound URL")
        for name in self.template_fields():
            if name not in declared:
                problems.append(f"base_url names {{{name}}}, which is not a declared field")
            elif self.field(name).secret:
                problems.append(f"base_url names secret field {{{name}}}; secrets never go into URLs")
        if not self.auth:
            problems.append("auth lists no variant (use NoAuth)")
        kinds = self.auth_kinds
        if len(set(kinds)) != len(kinds):
            problems.append("auth lists the same kind twice")
        for variant in self.auth:
            for name in variant.field_names:
                if name not in declared:
                    problems.append(f"{variant.kind} auth names field {name!r}, which is not declared")
            for name in variant.secret_field_names:
                if name in declared and not self.field(name).secret:
                    problems.append(f"{variant.kind} auth needs field {name!r} flagged secret")
        if self.rate_limit and (self.rate_limit.requests < 1 or self.rate_limit.per_seconds <= 0):
            problems.append("rate_limit must allow at least one request in a positive period")
        if self.rate_limit_field is not None:
            if self.rate_limit_field not in declared:
                problems.append(f"rate_limit_field {self.rate_limit_field!r} is not a declared field")
            elif self.field(self.rate_limit_field).kind != "number":
                problems.append(f"rate_limit_field {self.rate_limit_field!r} must be a number field")
        if problems:
            raise InvalidSpec(f"connector spec {self.key!r}: " + "; ".join(problems))

    # ------------------------------------------------------------ account settings

    def _auth_for(self, auth_type: str | None) -> Auth:
        if auth_type is None:
            return self.auth[0]
        for variant in self.auth:
            if variant.kind == auth_type:
                return variant
        raise BadRequest(
            f"setup_information.{AUTH_TYPE}: {auth_type!r} is not offered by the {self.key} "
            f"connector; one of: {', '.join(self.auth_kinds)}"
        )

    def auth_variant(self, config: dict[str, Any]) -> Auth:
        return self._auth_for(config.get(AUTH_TYPE))

    def link(self, setup: dict[str, Any] | None, credentials: dict[str, Any] | None) -> LinkedConfig:
        """Validate an account's ``setup_information`` and ``credentials``.

        Raises :class:`~lmsgate.errors.BadRequest` naming the first field at fault. Messages
        never repeat a value given for a secret field.
        """
        setup = dict(setup or {})
        credentials = dict(credentials or {})
        auth_type = setup.pop(AUTH_TYPE, None)
        if auth_type is not None and not isinstance(auth_type, str):
            raise BadRequest(f"setup_information.{AUTH_TYPE}: must be a string")
        variant = self._auth_for(auth_type)
        needed_by_auth = set(variant.field_names) - set(getattr(variant, "optional_field_names", ()))
        other_auth = {n for v in self.auth if v is not variant for n in v.field_names}
        other_auth -= set(variant.field_names)
        by_name = {f.name: f for f in self.fields}

        places = (("setup_information", setup, False), ("credentials", credentials, True))
        for where, given, want_secret in places:
            for name in given:
                f = by_name.get(name)
                if f is None:
                    known = sorted(n for n, x in by_name.items() if x.secret == want_secret)
                    raise BadRequest(
                        f"{where}.{name}: not a setting of the {self.key} connector"
                        + (f"; known: {', '.join(known)}" if known else "; it takes none here")
                    )
                if f.secret != want_secret:
                    right = "credentials" if f.secret else "setup_information"
                    raise BadRequest(f"{where}.{name}: send this field under {right}")
                if name in other_auth:
                    raise BadRequest(f"{where}.{name}: not used with auth_type {variant.kind!r}")

        config: dict[str, Any] = {}
        secrets: dict[str, str] = {}
        for f in self.fields:
            where = "credentials" if f.secret else "setup_information"
            raw = (credentials if f.secret else setup).get(f.name)
            if f.name in other_auth:
                continue
            if raw is None or raw == "":
                required = f.required or f.name in needed_by_auth
                if required and f.default is None:
                    raise BadRequest(
                        f"{where}.{f.name}: required by the {self.key} connector ({f.description})")
                if f.default is not None:
                    config[f.name] = f.default
                continue
            value = _coerce(f, raw, where)
            if f.secret:
                secrets[f.name] = value
            else:
                config[f.name] = value
        if len(self.auth) > 1:
            config[AUTH_TYPE] = variant.kind
        return LinkedConfig(config=config, secrets=secrets)

    def render_base_url(self, config: dict[str, Any]) -> str | None:
        if not self.base_url:
            return None
        return self.base_url.format(**{name: config[name] for name in self.template_fields()})

    def outbound_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.outbound)


_CREDENTIAL_PARAM = re.compile(
    r"(?i)(x[-_])?(api[-_]?key|key|apikey|password|passwd|pwd|pass|secret|client[-_]?secret|token|"
    r"access[-_]?token|auth|authorization|sig|signature|session|sessionid|wstoken)")
"""Query parameters of a URL setting that hold a credential (``?api_key=…``, ``?wstoken=…``): a
whole name, so that ``?passage=`` or ``?tokenizer=`` are not taken for one."""
MIN_NUMBER = 0.001
"""The smallest number setting taken (a rate of one call in 1,000 s)."""


def _coerce(f: ConfigField, raw: Any, where: str) -> Any:
    label = f"{where}.{f.name}"
    if f.kind == "number":
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw <= 0:
            raise BadRequest(f"{label}: must be a positive number")
        if raw < MIN_NUMBER:  # 1e-320 requests a second: every call then waited "inf s", a 408
            raise BadRequest(f"{label}: must be at least {MIN_NUMBER}")
        return raw
    if not isinstance(raw, str):
        raise BadRequest(f"{label}: must be a string")
    if "\x00" in raw:
        raise BadRequest(f"{label}: NUL characters are not allowed")
    if len(raw) > 4096:
        raise BadRequest(f"{label}: longer than 4096 characters")
    if f.kind == "choice" and raw not in f.choices:
        raise BadRequest(f"{label}: must be one of {', '.join(f.choices)}")
    if f.kind == "url":
        shown = "the given value" if f.secret else repr(raw)
        try:
            parts = urlsplit(raw)
            parts.port  # noqa: B018 - raises for a port that is not a number from 0 to 65535
        except ValueError as exc:  # "http://[::1" (an unclosed IPv6 bracket), "http://h:99999/"
            raise BadRequest(f"{label}: {shown} is not a valid URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadRequest(f"{label}: {shown} is not an absolute http(s) URL")
        if parts.username or parts.password:
            raise BadRequest(f"{label}: must not carry credentials; send them under credentials")
        if any(_CREDENTIAL_PARAM.fullmatch(name) for name, _ in parse_qsl(parts.query, keep_blank_values=True)):
            raise BadRequest(f"{label}: must not carry a secret in its query string (it would be shown with "
                             "the account's settings); send it under credentials")
    return raw
