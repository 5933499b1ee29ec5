"""Connector specs: every registered one is consistent, bad ones fail at registration, account
settings are checked against them, and docs/connectors.md is generated from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmsgate.connectors import docs
from lmsgate.connectors.base import OPERATIONS, Connector
from lmsgate.connectors.registry import ConnectorRegistry
from lmsgate.connectors.spec import (
    ApiKeyAuth,
    BasicAuth,
    ConfigField,
    ConnectorSpec,
    InvalidSpec,
    NoAuth,
    OAuth2ClientCredentials,
    RateLimit,
)
from lmsgate.errors import BadRequest

REGISTRY = docs.default_registry()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "connectors.md"


@pytest.mark.parametrize("provider", REGISTRY.providers)
def test_every_registered_connector_declares_a_consistent_spec(provider: str) -> None:
    cls = REGISTRY.connector_class(provider)
    spec = REGISTRY.spec(provider)
    spec.check_spec()
    assert spec.key == cls.provider == provider
    assert cls.capabilities() <= set(OPERATIONS)
    assert cls.verify is not Connector.verify, "every connector needs a cheap credential check"
    for name in spec.template_fields():
        assert not spec.field(name).secret
    for variant in spec.auth:
        for name in variant.secret_field_names:
            assert spec.field(name).secret


def test_registry_walk_knows_the_providers() -> None:
    assert REGISTRY.providers == ["local", "xapi"]
    assert "create_user_completion" in REGISTRY.connector_class("xapi").capabilities()
    assert "upsert_content" not in REGISTRY.connector_class("xapi").capabilities()
    with pytest.raises(BadRequest, match="installed: local, xapi"):
        REGISTRY.spec("moodle")


def _spec(**kw: object) -> ConnectorSpec:
    base: dict[str, object] = {"key": "demo", "name": "Demo", "description": "d",
                               "fields": (ConfigField("host", "h", kind="url", outbound=True),)}
    return ConnectorSpec(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "problem"),
    [
        ({"key": "Bad Key"}, "lower case"),
        ({"base_url": "{host}/api/{tenant}"}, "{tenant}, which is not a declared field"),
        ({"fields": (ConfigField("host", "h", kind="url"), ConfigField("token", "t", secret=True)),
          "base_url": "{host}?t={token}"}, "secrets never go into URLs"),
        ({"fields": (ConfigField("host", "h"), ConfigField("host", "again"))}, "declared twice"),
        ({"auth": (BasicAuth("user", "pass"),)}, "not declared"),
        ({"fields": (ConfigField("user", "u"), ConfigField("pass", "p")), "auth": (BasicAuth("user", "pass"),)},
         "flagged secret"),
        ({"fields": (ConfigField("k", "k"),), "auth": (ApiKeyAuth("X-Key", "k"),)}, "flagged secret"),
        ({"auth": (OAuth2ClientCredentials(),)}, "token_url"),
        ({"auth": ()}, "no variant"),
        ({"auth": (NoAuth(), NoAuth())}, "same kind twice"),
        ({"fields": (ConfigField("mode", "m", kind="choice"),)}, "no choices"),
        ({"fields": (ConfigField("mode", "m", kind="choice", choices=("a",), default="b"),)}, "not one of"),
        ({"fields": (ConfigField("host", "h", outbound=True),)}, "must be a url field"),
        ({"fields": (ConfigField("auth_type", "x"),)}, "reserved"),
        ({"rate_limit": RateLimit(0, 60)}, "at least one request"),
        ({"rate_limit_field": "host"}, "must be a number field"),
        ({"rate_limit_field": "speed"}, "not a declared field"),
    ],
)
def test_contradictory_specs_fail_at_registration(kw: dict, problem: str) -> None:
    spec = _spec(**kw)

    class Demo(Connector):
        provider = spec.key

    Demo.spec = spec
    with pytest.raises(InvalidSpec, match=problem.replace("{", r"\{").replace("}", r"\}").replace("?", r"\?")):
        ConnectorRegistry().register(Demo, lambda a: Demo())


def test_a_spec_key_must_match_the_provider() -> None:
    class Demo(Connector):
        provider = "other"
        spec = _spec()

    with pytest.raises(InvalidSpec, match="provider 'other'"):
        ConnectorRegistry().register(Demo, lambda a: Demo())


def test_link_splits_settings_and_never_echoes_secrets() -> None:
    spec = _spec(fields=(ConfigField("host", "h", kind="url", outbound=True),
                         ConfigField("region", "r", kind="choice", choices=("eu", "us"), default="eu", required=False),
                         ConfigField("key", "k", secret=True)),
                 auth=(ApiKeyAuth("X-Key", "key"),), base_url="{host}/v1")
    linked = spec.link({"host": "https://h.test"}, {"key": "sekret-value"})
    assert linked.config == {"host": "https://h.test", "region": "eu"}
    assert linked.secrets == {"key": "sekret-value"}
    assert spec.render_base_url(linked.config) == "https://h.test/v1"
    with pytest.raises(BadRequest) as err:
        spec.link({"host": "https://h.test", "key": "sekret-value"}, {})
    assert "setup_information.key: send this field under credentials" in str(err.value)
    assert "sekret-value" not in str(err.value)


def test_docs_are_generated_from_the_registry() -> None:
    text = DOCS.read_text()
    current = text[text.index(docs.BEGIN):text.index(docs.END) + len(docs.END)]
    assert current == docs.render(REGISTRY), (
        "docs/connectors.md is out of date: run python -m lmsgate.connectors.docs --write docs/connectors.md")


def test_the_rate_limit_comes_from_the_spec_or_the_account() -> None:
    from lmsgate.connectors.linking import _rate
    from lmsgate.connectors.spec import LinkedConfig

    spec = _spec(fields=(ConfigField("host", "h", kind="url", outbound=True),
                         ConfigField("speed", "s", kind="number", required=False)),
                 rate_limit=RateLimit(70, 60, "provider docs"), rate_limit_field="speed")
    documented = _rate(spec, LinkedConfig({"host": "https://h.test"}, {}))
    assert documented is not None and documented.burst == 70 and abs(documented.per_second - 70 / 60) < 1e-9
    tuned = _rate(spec, LinkedConfig({"host": "https://h.test", "speed": 2.5}, {}))
    assert tuned is not None and tuned.per_second == 2.5 and tuned.burst == 2.5
    assert _rate(_spec(), LinkedConfig({}, {})) is None
