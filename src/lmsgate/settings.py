"""Settings, read from ``LMSGATE_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LMSGATE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///.lmsgate/lmsgate.db",
        description="SQLAlchemy URL. sqlite:///path for the embedded store, postgresql://... at scale.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = Field(
        default=None, description="Pin the first API key (scripted deployments). Never logged."
    )
    account_id: str | None = Field(default=None, description="Pin the id of the first local account.")
    max_body_bytes: int = Field(default=5 * 1024 * 1024, description="Largest request body accepted.")
    log_level: str = "info"
