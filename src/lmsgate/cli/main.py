"""``lmsgate``: run the server, manage the database, print the API description."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Optional

import typer
from rich.console import Console

from lmsgate.settings import Settings

app = typer.Typer(help="lmsgate: a self-hosted unified LMS API.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
console = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[Optional[str], typer.Option("--database-url", envvar="LMSGATE_DATABASE_URL",
                                                 help="sqlite:///path or postgresql://…")]


def _settings(database_url: str | None, **extra: object) -> Settings:
    values = {k: v for k, v in {"database_url": database_url, **extra}.items() if v is not None}
    return Settings(**values)  # type: ignore[arg-type]


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(envvar="LMSGATE_HOST", help="Address to listen on.")] = None,
    port: Annotated[Optional[int], typer.Option(envvar="LMSGATE_PORT", help="Port to listen on.")] = None,
    database_url: DbOption = None,
) -> None:
    """Start the API server. On first run, create the database, an API key and a local account."""
    import uvicorn

    from lmsgate.api.app import create_app
    from lmsgate.bootstrap import bootstrap
    from lmsgate.setup import ensure_first_run

    settings = _settings(database_url, host=host, port=port)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    container = bootstrap(settings)
    first = ensure_first_run(container)
    base = f"http://{settings.host}:{settings.port}"
    console.print(f"[bold]lmsgate[/] on {base}  (store: {container.engine.url.render_as_string(hide_password=True)})")
    if first.new_api_key:
        console.print("New API key (shown once, store it now):")
        console.print(f"  [bold green]{first.new_api_key}[/]")
    key_hint = first.new_api_key or ("$LMSGATE_API_KEY" if settings.api_key else "<your key>")
    console.print(f"Local account id: [bold]{first.account_id}[/]")
    console.print(
        "Try it:\n"
        f"  curl -u {key_hint}: -H 'x-account-id: {first.account_id}' -H 'content-type: application/json' \\\n"
        f"    -d '{{\"learning_object_external_reference\": \"course-1\", \"completed_at\": \"2021-07-21T14:00:00Z\"}}' \\\n"
        f"    {base}/unified/lms/users/learner-1/completions\n"
        f"API reference: {base}/docs"
    )
    uvicorn.run(create_app(container), host=settings.host, port=settings.port,
                log_level=settings.log_level, access_log=False)


@app.command()
def migrate(database_url: DbOption = None) -> None:
    """Create or upgrade the database schema to the newest version."""
    from lmsgate.bootstrap import bootstrap

    container = bootstrap(_settings(database_url))
    console.print(f"Schema is up to date on {container.engine.url.render_as_string(hide_password=True)}")


@app.command()
def openapi() -> None:
    """Print lmsgate's OpenAPI document (JSON) to standard output."""
    from lmsgate.api.app import create_app
    from lmsgate.bootstrap import bootstrap

    container = bootstrap(Settings(database_url="sqlite://"))
    typer.echo(json.dumps(create_app(container).openapi(), indent=2))


if __name__ == "__main__":  # pragma: no cover
    app()
