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
    # Database connections: pools sized from the server's limit, timeouts on every session.
    capstone_api_processes: int = Field(
        default=1,
        ge=1,
        le=256,
        description="API processes sharing the database (`capstone serve` sets it for its"
        " workers): each process's pool is its share of the server's connections",
    )
    db_reserved_connections: int | None = Field(
        default=None,
        ge=0,
        description="connections kept out of the API pools for analysis workers, migrations,"
        " the CLI and admin; unset: 5 + 4 per ANALYZE_WORKERS",
    )
    db_pool_size: int | None = Field(
        default=None, ge=1, le=1000, description="connections a process keeps (unset: derived)"
    )
    db_max_overflow: int | None = Field(
        default=None, ge=0, le=1000, description="connections beyond the kept ones (unset: derived)"
    )
    db_pool_timeout_s: float = Field(
        default=3.0,
        gt=0,
        le=300,
        description="seconds a request waits for a pooled connection before a 503",
    )
    db_statement_timeout_s: float = Field(
        default=30.0, ge=0, description="statement_timeout of every session (0: none)"
    )
    db_lock_timeout_s: float = Field(
        default=5.0, ge=0, description="lock_timeout of every session (0: none)"
    )
    db_idle_in_transaction_timeout_s: float = Field(
        default=60.0,
        ge=0,
        description="idle_in_transaction_session_timeout of every session (0: none)",
    )
    db_publish_timeout_s: float = Field(
        default=900.0,
        ge=0,
        description="statement and idle-in-transaction timeout of an analysis's publishing"
        " transaction, which moves all its staged rows (0: none)",
    )
    capstone_home: Path = Field(
        default_factory=default_home,
        description="state directory; unset: <project root>/.capstone, else per-user",
    )
    capstone_models_dir: Path | None = Field(default=None, description="offline model weights")
    capstone_model_cache: Path | None = Field(
        default=None,
        description="converted and compiled models (OpenVINO IR and compiled blobs, keyed by"
        " model, version and CPU); unset: <CAPSTONE_HOME>/cache/openvino. Several homes, or a"
        " container image, can share one",
    )
    capstone_detection_memo: Path | None = Field(
        default=None,
        description="directory of detections of frames already seen, reused for the same"
        " pixels and detector settings (the test suite's; off by default)",
    )

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
    max_image_pixels: int = Field(
        default=4096 * 4096,
        ge=1,
        description="pixels of a search query image, read from its header before decoding",
    )
    max_query_chars: int = Field(
        default=500,
        ge=16,
        le=100_000,
        description="characters of a query-language string or an English question (/ask, /tracks)",
    )
    page_cache_entries: int = Field(
        default=2048, ge=0, description="rendered result pages kept in memory per process"
    )
    page_cache_bytes: int = Field(
        default=64 * 1024**2, ge=0, description="bytes of rendered result pages kept per process"
    )
    http_header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="seconds a client has to send a request's headers, from connecting or "
        "from the first byte of its next request on a kept-alive connection",
    )
    http_keep_alive_s: int = Field(
        default=30, ge=1, description="seconds an idle kept-alive connection stays open"
    )
    max_header_bytes: int = Field(
        default=32 * 1024, ge=4096, description="bytes of a request's line and headers"
    )
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

    # Analysis budgets (worker, Batch jobs, Lambda): checked before the work they cost.
    max_frame_pixels: int = Field(
        default=4096 * 2160,
        ge=64 * 64,
        le=16384 * 16384,
        description="pixels of a video frame (DCI 4K), from the header before decoding and"
        " by the decoder before it allocates each frame",
    )
    decode_prefetch_bytes: int = Field(
        default=128 * 1024**2,
        ge=1,
        description="bytes of decoded frames buffered ahead of the detector (at least one frame)",
    )
    max_video_duration_s: float = Field(
        default=86400.0,
        gt=0,
        le=7 * 86400.0,
        description="seconds of video one analysis covers: the header's duration is refused"
        " above it, and decoding stops the analysis at it",
    )
    max_chunks_per_job: int = Field(
        default=1440,
        ge=1,
        le=2000,
        description="chunks one analysis (or one Batch array job) may plan",
    )

    # Dashboard (dashboards/): writes, its own analyses, the video player.
    dashboard_allow_writes: bool = Field(
        default=False,
        description="the dashboard may upload and retry (still with an API token from"
        " API_KEY_HASHES, unless CAPSTONE_AUTH_DISABLED=1)",
    )
    dashboard_max_analyses: int = Field(
        default=1, ge=1, le=8, description="analyses the dashboard process runs at once"
    )
    dashboard_max_queued: int = Field(
        default=4, ge=0, le=100, description="dashboard analyses waiting; beyond them: refused"
    )
    dashboard_presigned_urls: bool = Field(
        default=False,
        description="the player gets a presigned S3 URL (valid 1 h) instead of the video"
        " bytes served by the dashboard",
    )
    dashboard_max_video_bytes: int = Field(
        default=100 * 1024**2,
        ge=0,
        description="largest video the dashboard serves to its player (bytes; 0: no player)",
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
    def model_cache(self) -> Path:
        """Where converted and compiled models are kept (`CAPSTONE_MODEL_CACHE`)."""
        if self.capstone_model_cache is not None:
            return self.capstone_model_cache.expanduser().absolute()
        return self.home / "cache" / "openvino"

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
