"""One settings object for the whole project, read from the environment and `.env`.

>>> from capstone.config import get_settings
>>> get_settings().home.name
'.capstone'
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from capstone.errors import ConfigError


class Settings(BaseSettings):
    """Runtime configuration. Every field maps to an upper-case environment variable."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(
        default=None, description="SQLAlchemy/libpq URL; unset means the embedded server"
    )
    db_secret_arn: str | None = Field(
        default=None, description="AWS Secrets Manager secret holding the database credentials"
    )
    capstone_home: Path = Field(default=Path(".capstone"), description="state directory")
    capstone_models_dir: Path | None = Field(default=None, description="offline model weights")

    aws_region: str = Field(default="ap-northeast-2", alias="AWS_DEFAULT_REGION")
    aws_endpoint_url: str | None = Field(
        default=None, description="S3/SQS/Secrets Manager endpoint (moto server locally)"
    )
    s3_bucket_raw: str = Field(default="capstone-raw", description="bucket holding uploaded videos")
    sqs_queue_url: str | None = None
    sqs_dlq_url: str | None = None
    fastapi_endpoint: str = "http://127.0.0.1:8087"

    # FastAPI service (service/): auth, limits, timeouts.
    api_key_hashes: str = Field(
        default="", description="comma-separated sha256 hex digests of the accepted API keys"
    )
    capstone_auth_disabled: bool = Field(
        default=False, description="accept writes without a token (local development only)"
    )
    require_auth_for_reads: bool = Field(default=False, description="reads need a token too")
    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1, description="upload size limit")
    analyze_timeout_s: float = Field(
        default=3600.0, gt=0, description="how long POST /analyze?wait=true waits for a result"
    )
    analyze_workers: int = Field(default=1, ge=1, le=16, description="concurrent analyses")

    @property
    def home(self) -> Path:
        return self.capstone_home.expanduser().absolute()

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (call `get_settings.cache_clear()` after changing env)."""
    return Settings()


def url_from_secret(secret: str) -> str:
    """Turn a Secrets Manager secret string into a SQLAlchemy URL.

    Accepts a plain URL, a JSON object with a `url` key, or the RDS shape
    (`username`, `password`, `host`, `port`, `dbname`).

    >>> url_from_secret('{"username": "u", "password": "p@ss", "host": "db", "dbname": "x"}')
    'postgresql+psycopg://u:p%40ss@db:5432/x'
    """
    text = secret.strip()
    if text.startswith("postgres"):
        return normalize_url(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("database secret is neither a URL nor JSON") from exc
    if not isinstance(data, dict):
        raise ConfigError("database secret JSON must be an object")
    if "url" in data:
        return normalize_url(str(data["url"]))
    missing = [k for k in ("username", "password", "host") if k not in data]
    if missing:
        raise ConfigError(f"database secret lacks {', '.join(missing)}")
    user = quote(str(data["username"]), safe="")
    password = quote(str(data["password"]), safe="")
    port = data.get("port", 5432)
    dbname = data.get("dbname") or data.get("database") or "postgres"
    return f"postgresql+psycopg://{user}:{password}@{data['host']}:{port}/{dbname}"


def normalize_url(url: str) -> str:
    """Make any postgres URL use the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
