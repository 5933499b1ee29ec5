"""The connector reference in ``docs/connectors.md``, generated from the registered specs.

    python -m lmsgate.connectors.docs --write docs/connectors.md

rewrites the part of the file between the ``BEGIN``/``END`` markers; a test fails when that
part is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lmsgate.connectors.base import OPERATIONS
from lmsgate.connectors.registry import ConnectorRegistry
from lmsgate.connectors.spec import AUTH_TYPE, ConnectorSpec

BEGIN = "<!-- BEGIN GENERATED: python -m lmsgate.connectors.docs --write docs/connectors.md -->"
END = "<!-- END GENERATED -->"

_AUTH_NAMES = {
    "none": "none",
    "basic": "HTTP Basic",
    "api_key": "API key header",
    "oauth2_client_credentials": "OAuth 2.0 client credentials",
}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _connector(spec: ConnectorSpec, capabilities: frozenset[str]) -> list[str]:
    out = [f"### `{spec.key}`: {spec.name}", "", spec.description, ""]
    auth = ", ".join(_AUTH_NAMES[k] for k in spec.auth_kinds)
    if len(spec.auth) > 1:
        kinds = ", ".join(f"`{k}`" for k in spec.auth_kinds)
        auth += f" (pick with `setup_information.{AUTH_TYPE}`: {kinds};"
        auth += f" default `{spec.auth_kinds[0]}`)"
    out.append(f"- **Auth:** {auth}")
    if spec.base_url:
        out.append(f"- **Base URL:** `{spec.base_url}`")
    if spec.rate_limit:
        rl = spec.rate_limit
        source = f" ({rl.source})" if rl.source else ""
        out.append(f"- **Rate limit:** {rl.requests} requests per {rl.per_seconds:g} s{source}")
    else:
        out.append("- **Rate limit:** none documented"
                   + (f"; set `{spec.rate_limit_field}` to pace calls" if spec.rate_limit_field else ""))
    if spec.check:
        out.append(f"- **`POST /accounts/{{id}}/test` calls:** {spec.check}")
    ops = [op for op in OPERATIONS if op in capabilities]
    rest = "." if len(ops) == len(OPERATIONS) else "; every other operation answers 501."
    out.append("- **Supports:** " + (", ".join(f"`{op}`" for op in ops) if ops else "nothing yet") + rest)
    out.append("")
    if spec.fields:
        out += ["| field | sent under | required | kind | what it is |", "|---|---|---|---|---|"]
        for f in spec.fields:
            where = "`credentials`" if f.secret else "`setup_information`"
            used_by = [v.kind for v in spec.auth if f.name in v.field_names]
            required = "yes" if f.required else (f"with `{'`, `'.join(used_by)}`" if used_by else "no")
            if f.name in {n for v in spec.auth for n in getattr(v, "optional_field_names", ())}:
                required = "no"
            kind = f.kind + (f": {', '.join(f.choices)}" if f.choices else "")
            if f.default is not None:
                kind += f" (default `{f.default}`)"
            desc = f.description + (f", e.g. `{f.example}`" if f.example else "")
            out.append(f"| `{f.name}` | {where} | {required} | {_cell(kind)} | {_cell(desc)} |")
        out.append("")
    else:
        out += ["Takes no settings.", ""]
    if spec.mappings:
        out += ["| unified | provider | conversion |", "|---|---|---|"]
        out += [f"| `{_cell(x.unified)}` | `{_cell(x.provider)}` | {_cell(x.conversion)} |"
                for x in spec.mappings]
        out.append("")
    for note in spec.notes:
        out.append(f"> {note}")
        out.append("")
    return out


def render(registry: ConnectorRegistry) -> str:
    lines = [BEGIN, ""]
    for provider in registry.providers:
        cls = registry.connector_class(provider)
        lines += _connector(registry.spec(provider), cls.capabilities())
    lines.append(END)
    return "\n".join(lines)


def default_registry() -> ConnectorRegistry:
    from lmsgate.bootstrap import bootstrap
    from lmsgate.settings import Settings

    return bootstrap(Settings(database_url="sqlite://")).registry


def updated(text: str, generated: str) -> str:
    """``text`` with its generated section replaced by ``generated``."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + generated + text[end:]


def main(argv: list[str]) -> int:
    generated = render(default_registry())
    if len(argv) == 2 and argv[0] == "--write":
        path = Path(argv[1])
        path.write_text(updated(path.read_text(), generated))
        return 0
    print(generated)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
