"""One error taxonomy (issue 24): every error class says its CLI exit code, HTTP status,
machine code and whether a retry can help, and the CLI, the API, the pipeline's failed rows
and the Batch job all read those attributes (`capstone.errors.policy_of`)."""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from capstone.errors import (
    CapstoneError,
    ConfigError,
    DatabaseError,
    ErrorPolicy,
    EvaluationError,
    InputError,
    ModelNotFoundError,
    policy_of,
)
from capstone.stages.params import AnalysisParams
from tests.conftest import VIDEOS, _clear_caches, free_port, require

BIKES = VIDEOS / "bikes.mp4"
# Accepted when the parameters are made (a finite number), refused when the depth stage
# starts in a chunk: a ConfigError at run time.
BAD_CAMERA = {"max_frames": 6, "chunk_s": 1, "options": {"hfov_deg": 500}}

# Every CapstoneError subclass of the repository: (exit code, HTTP status, retryable, code).
TABLE: dict[str, tuple[int, int, bool, str]] = {
    "capstone.errors.CapstoneError": (1, 500, True, "error"),
    "capstone.errors.ConfigError": (2, 503, False, "misconfigured"),
    "capstone.errors.DatabaseError": (3, 503, True, "database_unavailable"),
    "capstone.errors.InputError": (4, 422, False, "invalid_input"),
    "capstone.errors.ModelNotFoundError": (5, 422, False, "model_not_found"),
    "capstone.errors.EvaluationError": (6, 422, False, "evaluation_failed"),
    "capstone.errors.BudgetExceededError": (4, 422, False, "budget_exceeded"),
    "capstone.core.video.DecodeError": (4, 422, False, "invalid_input"),
    "capstone.models.embedders.WeightsIntegrityError": (5, 500, False, "weights_corrupt"),
    "capstone.store.analyses.AnalysisBusyError": (6, 409, True, "analysis_running"),
    "capstone.store.analyses.LeaseLostError": (6, 409, True, "lease_lost"),
    "capstone.store.analyses.ContentConflictError": (4, 409, False, "content_conflict"),
    "capstone.search.query.SearchInputError": (4, 422, False, "invalid_input"),
    "capstone.search.ql.QueryError": (4, 422, False, "invalid_input"),
    "capstone.search.query.SearchReferenceNotFound": (4, 404, False, "not_found"),
    "capstone.search.query.ImageTooLarge": (4, 413, False, "image_too_large"),
    "capstone.runtime.heartbeat.AnalysisCancelled": (1, 503, True, "cancelled"),
    "capstone.runtime.local_stack.StackError": (1, 503, True, "stack_unavailable"),
    "capstone.runtime.notebooks.NotebookError": (7, 500, True, "notebook_failed"),
    "batch.events.MalformedEventError": (4, 422, False, "malformed_event"),
    "batch.process_video.AnalysisFailed": (1, 500, True, "analysis_failed"),
    "batch.process_video.PermanentFailure": (1, 500, False, "permanent_failure"),
    "batch.process_video.Stopped": (143, 500, True, "stopped"),
    "dashboards.data.DashboardError": (1, 422, False, "invalid_request"),
    "dashboards.data.WriteRefused": (1, 403, False, "forbidden"),
}


def _class(dotted: str) -> type[CapstoneError]:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_class_has_its_policy() -> None:
    for dotted, (exit_code, status, retryable, code) in TABLE.items():
        cls = _class(dotted)
        assert cls.policy() == ErrorPolicy(exit_code, status, retryable, code), dotted
    # A new error class of the repository must be classified here on purpose.
    ours = ("capstone.", "service.", "batch.", "dashboards.")
    found = {
        f"{c.__module__}.{c.__qualname__}"
        for c in _subclasses(CapstoneError)
        if c.__module__.startswith(ours)
    }
    assert found <= set(TABLE), sorted(found - set(TABLE))


def test_the_permanent_classes_and_the_retryable_ones() -> None:
    for cls in (ConfigError, InputError, ModelNotFoundError, EvaluationError):
        assert policy_of(cls("x")).retryable is False, cls
    assert policy_of(DatabaseError("x")).retryable is True
    # exit codes the CLI has always used
    assert [c.exit_code for c in (ConfigError, DatabaseError, InputError, ModelNotFoundError)] == [
        2,
        3,
        4,
        5,
    ]


def test_policy_of_exceptions_from_outside() -> None:
    class Strict(BaseModel):
        n: int

    with pytest.raises(ValidationError) as invalid:
        Strict(n="many")  # type: ignore[arg-type]
    config = ErrorPolicy(exit_code=2, http_status=422, retryable=False, code="invalid_value")
    assert policy_of(invalid.value) == config
    assert policy_of(ValueError("out of range")) == config
    internal = ErrorPolicy(exit_code=1, http_status=500, retryable=True, code="internal_error")
    for exc in (OSError("disk full"), KeyError("x"), RuntimeError("bug")):
        assert policy_of(exc) == internal, exc
    dropped = OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    assert policy_of(dropped).retryable is True


# -- the API ---------------------------------------------------------------------------


def _app(raise_: dict[str, BaseException]) -> TestClient:
    from service.errors import ApiError, install

    app = FastAPI()
    install(app)

    @app.get("/raise/{name}")
    async def _raise(name: str) -> None:
        raise raise_[name]

    @app.get("/api-error")
    async def _api_error() -> None:
        raise ApiError(409, "already running", code="analysis_running", retryable=True)

    return TestClient(app, raise_server_exceptions=False)


def test_the_api_answers_each_error_from_its_class() -> None:
    from capstone.store.analyses import AnalysisBusyError

    client = _app(
        {
            "config": ConfigError("detector weights missing"),
            "database": DatabaseError("database not reachable at postgresql://u:***@db/x"),
            "input": InputError("not a video"),
            "model": ModelNotFoundError("unknown model 'yolo99'"),
            "busy": AnalysisBusyError(7, "processing", 40.0),
            "evaluation": EvaluationError("no gt.txt"),
            "bug": KeyError("boom"),
        }
    )
    expected = {
        "config": (503, "misconfigured", False, "service misconfigured: detector weights missing"),
        "database": (503, "database_unavailable", True, "database unavailable"),
        "input": (422, "invalid_input", False, "not a video"),
        "model": (422, "model_not_found", False, "unknown model 'yolo99'"),
        "busy": (409, "analysis_running", True, "analysis 7 is already processing elsewhere"),
        "evaluation": (422, "evaluation_failed", False, "no gt.txt"),
        "bug": (500, "internal_error", True, "internal error (KeyError)"),
    }
    for name, (status, code, retryable, detail) in expected.items():
        res = client.get(f"/raise/{name}")
        body = res.json()
        assert res.status_code == status, (name, res.text)
        assert (body["code"], body["retryable"]) == (code, retryable), (name, body)
        assert body["detail"].startswith(detail), (name, body)
        assert "request_id" in body and body["errors"] is None
    assert "postgresql" not in client.get("/raise/database").text  # no URL for API clients

    busy = client.get("/api-error").json()
    assert busy["code"] == "analysis_running" and busy["retryable"] is True
    unknown = client.get("/no-such-route")
    assert unknown.status_code == 404 and unknown.json()["retryable"] is False


# -- the CLI ---------------------------------------------------------------------------


def test_cli_exit_codes_come_from_the_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from capstone.cli import main

    monkeypatch.delenv("CAPSTONE_DEBUG", raising=False)
    bad = tmp_path / "options.yaml"
    bad.write_text("no_such_option: 1\n")
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "clip.mp4", "--options", str(bad)])
    err = capsys.readouterr().err
    assert exc.value.code == ConfigError.exit_code == 2
    assert "capstone: error: invalid options" in err and "no_such_option" in err

    with pytest.raises(SystemExit) as exc:
        main(["analyze", "clip.mp4", "--options", str(tmp_path / "missing.yaml")])
    assert exc.value.code == InputError.exit_code == 4
    assert "no such options file" in capsys.readouterr().err


# -- the pipeline: a configuration error at run time is not retryable ------------------


def _rows(url: str, sql: str) -> list[Any]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = list(conn.execute(text(sql)))
    engine.dispose()
    return rows


def test_a_config_error_when_a_chunk_starts_fails_the_row_for_good(db_url: str) -> None:
    from capstone.runtime.pipeline import analyze

    params = AnalysisParams(**BAD_CAMERA)
    result = analyze(require(BIKES), video_id="bad-camera", params=params)
    assert result.status == "failed" and result.retryable is False
    assert "hfov_deg must be between 1 and 179" in (result.error or "")
    (row,) = _rows(db_url, "SELECT id, status, error, summary FROM apps_db_videoanalysis")
    assert row.status == "failed" and "hfov_deg" in row.error
    assert row.summary["retryable"] is False

    from batch.process_video import failure_is_permanent

    assert failure_is_permanent(row.id) is True  # the Batch job's reading of that row

    # a chunk-only run (an array child) writes no failure into the row; its result says
    staged = analyze(BIKES, video_id="bad-camera-2", params=params, chunks=[0], publish=False)
    assert staged.status == "failed" and staged.retryable is False


# -- the Batch job ---------------------------------------------------------------------


@pytest.fixture
def video_in_s3(aws_env: str) -> Iterator[tuple[str, str]]:
    import uuid

    import boto3

    from capstone.io.s3 import upload_video

    bucket = f"raw-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    yield bucket, upload_video(require(BIKES), bucket, "cfg-001")


def _chunk_config(bucket: str, params: dict[str, Any]) -> Any:
    from batch.process_video import JobConfig

    return JobConfig(
        queue_url="",
        bucket_raw=bucket,
        fastapi_endpoint="",
        db_secret_arn=None,
        mode="chunk",
        params=params,
        poll_s=0.1,
        array_index=0,
    )


def _event(bucket: str, key: str) -> str:
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}},
    }
    return json.dumps({"Records": [record]})


def test_batch_treats_a_config_error_as_permanent_and_a_database_outage_as_retryable(
    db_url: str,
    video_in_s3: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from batch.events import S3Object
    from batch.lambda_handler import ENV_BODY
    from batch.process_video import (
        EXIT_FAILED,
        EXIT_OK,
        PermanentFailure,
        run_chunk,
        run_pipeline_mode,
    )

    bucket, key = video_in_s3
    stop = threading.Event()
    monkeypatch.setenv(ENV_BODY, _event(bucket, key))
    caplog.set_level("INFO", logger="batch.process_video")
    # the array child: a permanent failure exits 0 and leaves the report to the stitch job
    assert run_chunk(_chunk_config(bucket, BAD_CAMERA), stop) == EXIT_OK
    assert "permanent, the stitch job reports it" in caplog.text and "hfov_deg" in caplog.text

    stitch = _chunk_config(bucket, BAD_CAMERA)
    stitch.mode, stitch.array_index = "stitch", None
    with pytest.raises(PermanentFailure, match="hfov_deg"):  # from the row's retryable
        run_pipeline_mode(stitch, S3Object(bucket, key), "cfg-001", stop)
    (row,) = _rows(db_url, "SELECT status, summary FROM apps_db_videoanalysis")
    assert row.status == "failed" and row.summary["retryable"] is False

    caplog.clear()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody:x@127.0.0.1:{free_port()}/none")
    _clear_caches()
    # DatabaseError: the child fails, so the array fails and the message comes back
    assert run_chunk(_chunk_config(bucket, {"max_frames": 6}), stop) == EXIT_FAILED
    assert "database not reachable" in caplog.text and "retryable" in caplog.text


def _service_app(answers: list[tuple[int, dict[str, Any] | str]]) -> FastAPI:
    """An API whose POST /analyze gives these answers in turn (JSON bodies, or a proxy's
    HTML page)."""
    from fastapi.responses import HTMLResponse, JSONResponse

    app = FastAPI()
    app.state.calls = 0

    @app.post("/analyze")
    async def _analyze() -> Any:
        status, body = answers[min(app.state.calls, len(answers) - 1)]
        app.state.calls += 1
        if isinstance(body, str):
            return HTMLResponse(body, status_code=status)
        return JSONResponse(body, status_code=status)

    return app


def _body(code: str, retryable: bool) -> dict[str, Any]:
    return {"detail": code.replace("_", " "), "code": code, "retryable": retryable}


@pytest.mark.parametrize(
    ("status", "body", "permanent", "calls"),
    [
        (503, _body("misconfigured", False), True, 1),  # a 5xx that no retry can fix
        (503, _body("database_unavailable", True), False, 6),
        (422, _body("analysis_failed", True), False, 1),  # a 4xx that a retry can fix
        (422, _body("invalid_input", False), True, 1),
        (404, "<html>Not Found</html>", True, 1),  # a proxy's page: the status decides
        (502, "<html>Bad Gateway</html>", False, 6),
    ],
)
def test_the_batch_job_reads_retryable_from_the_api_answer(
    status: int, body: dict[str, Any] | str, permanent: bool, calls: int
) -> None:
    from batch.events import S3Object
    from batch.process_video import AnalysisFailed, PermanentFailure, ServiceClient

    app = _service_app([(status, body)])
    client = ServiceClient("http://testserver", None, threading.Event(), poll_s=0.001)
    client.http = TestClient(app)
    started = time.monotonic()
    with pytest.raises(AnalysisFailed) as failed:
        client.analyze(S3Object("raw", "videos/v1/a.mp4"), "v1", None)
    assert isinstance(failed.value, PermanentFailure) is permanent, failed.value
    assert app.state.calls == calls
    assert time.monotonic() - started < 10
