"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from capstone.errors import CapstoneError
from service.auth import require_read
from service.deps import MetricsDep, SettingsDep
from service.errors import error_responses
from service.schemas import Health, Readiness

router = APIRouter(tags=["health"])
log = logging.getLogger("capstone.service")


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health()


# A check answers "ok" or "unavailable": which component failed, never its address, user
# or socket path (a stranger may call /readyz); the reason goes to the server log.
UNAVAILABLE = "unavailable"


def _check_database() -> str:
    from capstone.store.engine import ping

    try:
        ping()
    except (CapstoneError, SQLAlchemyError, OSError) as exc:
        log.warning("readyz: database unavailable: %s", exc)
        return UNAVAILABLE
    return "ok"


def _check_storage(bucket: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    from capstone.io.s3 import s3_client

    try:
        s3_client().head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        log.warning("readyz: storage unavailable: bucket %s: %s", bucket, code)
        return UNAVAILABLE
    except (BotoCoreError, CapstoneError, OSError) as exc:
        log.warning("readyz: storage unavailable: %s", exc)
        return UNAVAILABLE
    return "ok"


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The database and the raw bucket are reachable",
    responses={503: {"model": Readiness, "description": "a dependency is not reachable"}},
)
async def readyz(settings: SettingsDep) -> JSONResponse:
    checks = {
        "database": await run_in_threadpool(_check_database),
        "storage": await run_in_threadpool(_check_storage, settings.s3_bucket_raw),
    }
    ready = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (needs a token when REQUIRE_AUTH_FOR_READS=1)",
    description="Request metrics always; analyses by status and frames processed when the "
    "database answers (`capstone_database_up` says whether it did).",
    response_class=Response,
    dependencies=[Depends(require_read)],
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **error_responses(401, 403),
    },
)
async def metrics(m: MetricsDep) -> Response:
    body = await run_in_threadpool(generate_latest, m.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
