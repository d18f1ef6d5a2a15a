"""Progress of a long (chunked) analysis, issue 17: `GET /analyses/{id}` and the dashboard's
data report chunks done / total and frames while the chunks run and at completion. Real
pipeline on a real clip (5 chunks of 2 s), real uvicorn, the real embedded PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import VIDEOS, _clear_caches, require, start_api_server

# analyses here must take their real time (killed, cancelled or watched while running)
pytestmark = pytest.mark.usefixtures("real_detection")


@pytest.fixture
def api(db_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("CAPSTONE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SQS_QUEUE_URL", raising=False)
    monkeypatch.delenv("REQUIRE_AUTH_FOR_READS", raising=False)
    _clear_caches()
    url, server, thread = start_api_server()
    yield url
    server.should_exit = True
    thread.join(timeout=60)


def test_analysis_status_reports_chunks_done_of_total_while_running_and_when_done(
    api: str, db_url: str
) -> None:
    from capstone.core.video import probe
    from capstone.runtime.pipeline import analyze, plan
    from capstone.stages.params import AnalysisParams
    from dashboards import data

    clip = require(VIDEOS / "bikes.mp4")
    params = AnalysisParams(stages=("detect", "track"), chunk_s=2.0)
    planned = len(plan(probe(clip), params))
    assert planned == 5
    video_id = "long-progress"
    outcome: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: outcome.update(result=analyze(clip, video_id=video_id, params=params)),
        daemon=True,
    )
    runner.start()

    engine = create_engine(db_url)
    seen: list[dict[str, Any]] = []  # (API answer, chunk rows in the database at that moment)
    analysis_id = None
    deadline = time.monotonic() + 300
    with httpx.Client(base_url=api, timeout=30) as client:
        while runner.is_alive():
            assert time.monotonic() < deadline, "the analysis did not finish in 300 s"
            with engine.connect() as conn:
                if analysis_id is None:
                    analysis_id = conn.execute(
                        text("SELECT id FROM apps_db_videoanalysis WHERE video_id = :v"),
                        {"v": video_id},
                    ).scalar()
                rows = conn.execute(
                    text("SELECT count(*) FROM apps_db_analysischunk WHERE analysis_id = :a"),
                    {"a": analysis_id or 0},
                ).scalar()
            if analysis_id is not None:
                answer = client.get(f"/analyses/{analysis_id}")
                assert answer.status_code == 200, answer.text
                seen.append({**answer.json(), "chunk_rows": rows})
            time.sleep(0.05)
        runner.join()
        final = client.get(f"/analyses/{outcome['result'].analysis_id}").json()
        listed = client.get(f"/videos/{video_id}/analyses").json()
        video = client.get(f"/videos/{video_id}").json()
    engine.dispose()

    result = outcome["result"]
    assert result.status == "completed", result.error
    assert result.chunks_total == planned
    running = [s for s in seen if s["status"] == "processing" and s["chunks_total"]]
    assert running, f"no answer while the chunks ran ({len(seen)} polls)"
    # While it runs the API's total is the number of chunk rows (published: rows deleted).
    assert all(s["chunks_total"] == planned for s in running)
    assert any(s["chunk_rows"] == s["chunks_total"] for s in running)
    assert any(s["chunks_done"] < s["chunks_total"] for s in running), "no partial progress seen"
    done = [s["chunks_done"] for s in seen]
    assert done == sorted(done), f"chunks_done went backwards: {done}"
    frames = [s["frames_processed"] for s in running]
    assert frames == sorted(frames) and frames[-1] > 0
    assert all(0 <= s["chunks_done"] <= s["chunks_total"] for s in seen)

    assert final["status"] == "completed"
    assert final["chunks_done"] == final["chunks_total"] == planned
    assert final["frames_processed"] == result.frames_processed == 250
    assert listed[0]["chunks_done"] == listed[0]["chunks_total"] == planned
    assert video["latest_analysis"]["chunks_total"] == planned

    _clear_caches()
    row = next(r for r in data.video_rows() if r["video_id"] == video_id)
    assert (row["chunks_done"], row["chunks_total"]) == (planned, planned)
    assert data.get_video(video_id)["latest_analysis"]["chunks_done"] == planned
    from dashboards.ui import fmt_chunks

    assert fmt_chunks("processing", 2, planned, 100) == "2/5 chunks · 100 frames"
    assert fmt_chunks(row["analysis_status"], planned, planned, 250) == ""  # completed
