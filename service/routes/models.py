"""`GET /models`: the detector models a request may name in `params.model`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from capstone.models.weights import DEFAULT_DETECTOR
from service.auth import require_read
from service.errors import error_responses
from service.schemas import ModelsOut

router = APIRouter(tags=["analysis"])


@router.get(
    "/models",
    response_model=ModelsOut,
    summary="Detector models this server may load (names for `params.model`)",
    description=(
        "The allow-list read at startup from `CAPSTONE_MODELS_DIR` and the user model cache. "
        "Requests name a model; paths are refused (a `.pt` file is code)."
    ),
    dependencies=[Depends(require_read)],
    responses=error_responses(401, 403),
)
async def list_models(request: Request) -> ModelsOut:
    return ModelsOut(models=sorted(request.app.state.models), default=DEFAULT_DETECTOR)
