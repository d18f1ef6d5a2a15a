"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from capstone.errors import CapstoneError
from service.deps import MetricsDep, SettingsDep
from service.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health()


def _check_database() -> str:
    from capstone.store.engine import ping

    try:
        ping()
    except CapstoneError as exc:
        return f"error: {exc}"
    return "ok"


def _check_storage(bucket: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    from capstone.io.s3 import s3_client

    try:
        s3_client().head_bucket(Bucket=bucket)
    except ClientError as exc:
        return f"error: bucket {bucket}: {exc.response.get('Error', {}).get('Code', '')}"
    except BotoCoreError as exc:
        return f"error: {exc}"
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
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(m: MetricsDep) -> Response:
    body = await run_in_threadpool(generate_latest, m.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
