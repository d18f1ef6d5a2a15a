"""One settings object for the whole project, read from the environment and `.env`.

The state directory (`CAPSTONE_HOME`: embedded database, caches, eval output) does not
depend on the working directory: unset, it is `.capstone/` in the project root of a source
checkout (or editable install), else a per-user data directory. So a notebook kernel
started in `notebooks/` uses the same database as `capstone` run from the root.

>>> from capstone.config import Settings, get_settings
>>> get_settings().home.is_absolute()
True
>>> explicit = Settings(capstone_home="/srv/capstone")
>>> explicit.home, explicit.home_origin
(PosixPath('/srv/capstone'), 'CAPSTONE_HOME')
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from capstone.errors import ConfigError


def _project_root() -> Path | None:
    """The directory holding this repository's pyproject.toml when the package runs from a
    source checkout (or an editable install), else None (an installed wheel)."""
    root = Path(__file__).resolve().parents[1]
    try:
        pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "capstone"' in pyproject else None


PROJECT_ROOT = _project_root()


def user_data_dir() -> Path:
    """The per-user data directory: `$XDG_DATA_HOME/capstone` (`~/.local/share/capstone`)."""
    base = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    return Path(base).expanduser().absolute() / "capstone"


def default_home() -> Path:
    """`CAPSTONE_HOME` when unset: `<project root>/.capstone`, else the per-user directory."""
    return PROJECT_ROOT / ".capstone" if PROJECT_ROOT is not None else user_data_dir()


class Settings(BaseSettings):
    """Runtime configuration. Every field maps to an upper-case environment variable."""

    # The project root's `.env`, then the working directory's (the later one wins).
    model_config = SettingsConfigDict(
        env_file=(PROJECT_ROOT / ".env", ".env") if PROJECT_ROOT else ".env",
        extra="ignore",
        populate_by_name=True,
    )

    database_url: str | None = Field(
        default=None, description="SQLAlchemy/libpq URL; unset means the embedded server"
    )
    db_secret_arn: str | None = Field(
        default=None, description="AWS Secrets Manager secret holding the database credentials"
    )
    capstone_home: Path = Field(
        default_factory=default_home,
        description="state directory; unset: <project root>/.capstone, else per-user",
    )
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
    max_upload_bytes: int = Field(
        default=2 * 1024**3, ge=1, description="upload and /analyze object size limit"
    )
    max_json_bytes: int = Field(default=1024**2, ge=1024, description="JSON request body limit")
    analyze_buckets: str = Field(
        default="", description="comma-separated buckets /analyze may read (S3_BUCKET_RAW too)"
    )
    analyze_timeout_s: float = Field(
        default=3600.0, gt=0, description="how long POST /analyze?wait=true waits for a result"
    )
    analyze_workers: int = Field(default=1, ge=1, le=16, description="concurrent analyses")
    analyze_nice: int = Field(
        default=10, ge=0, le=19, description="CPU niceness of analysis worker processes"
    )
    capstone_lease_s: int = Field(
        default=120,
        ge=2,
        le=3600,
        description="lease of an analysis and of each chunk: a killed worker's work is resumed"
        " by another once this long has passed without its heartbeat",
    )

    @property
    def home(self) -> Path:
        return self.capstone_home.expanduser().absolute()

    @property
    def home_origin(self) -> str:
        """Where `home` comes from: `CAPSTONE_HOME`, the project root, or the per-user dir."""
        if "capstone_home" in self.model_fields_set:
            return "CAPSTONE_HOME"
        return "project root" if PROJECT_ROOT is not None else "per-user default"

    @property
    def allowed_buckets(self) -> set[str]:
        """Buckets that `/analyze` and queue messages may name."""
        extra = {b.strip() for b in self.analyze_buckets.split(",") if b.strip()}
        return {self.s3_bucket_raw} | extra

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
