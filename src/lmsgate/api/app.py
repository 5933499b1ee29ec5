"""The ASGI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from lmsgate import __version__
from lmsgate.api import errors, openapi
from lmsgate.api.limits import BodySizeLimit
from lmsgate.api.routers import assignments, completions, content, courses, taxonomy, users
from lmsgate.bootstrap import Container, bootstrap


def create_app(container: Container | None = None) -> FastAPI:
    container = container or bootstrap()
    app = FastAPI(
        title="lmsgate", version=__version__, docs_url="/docs", redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.container = container
    for module in (completions, assignments, content, courses, users, taxonomy):
        app.include_router(module.router)
    errors.install(app)
    openapi.install(app)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(BodySizeLimit, max_bytes=container.settings.max_body_bytes)
    return app
