"""`capstone stack up` -> `capstone upload` -> results in the database -> `capstone stack down`,
as real processes (moto server, API, poller + local Batch runner) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ROOT, VIDEOS, free_port, require

BIKES = VIDEOS / "bikes.mp4"


def _capstone(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "capstone", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_stack_up_upload_status_down(db_url: str, tmp_path: Path) -> None:
    require(BIKES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(CAPSTONE_HOME=str(tmp_path / "home"), DATABASE_URL=db_url)
    api_port, s3_port = free_port(), free_port()
    up = _capstone(
        env,
        "stack", "up", "--api-port", str(api_port), "--s3-port", str(s3_port),
        "--visibility", "10", "--params", '{"max_frames": 20}',
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert f"http://127.0.0.1:{api_port}" in up.stdout
        assert f"http://127.0.0.1:{s3_port}" in up.stdout
        state = json.loads((tmp_path / "home" / "stack" / "state.json").read_text())
        assert not state["started_db"]  # DATABASE_URL given: not ours to stop

        again = _capstone(env, "stack", "up", "--api-port", str(api_port))
        assert again.returncode != 0 and "already running" in again.stderr

        sent = _capstone(env, "upload", str(BIKES), "--video-id", "stack-001")
        assert sent.returncode == 0, sent.stderr
        assert re.search(r"videos/stack-001/[0-9a-f]{16}-bikes\.mp4", sent.stdout), sent.stdout

        engine = create_engine(db_url)
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and status != "completed":
            time.sleep(1)
            with engine.connect() as conn:
                status = conn.execute(
                    text("SELECT status FROM apps_db_videoanalysis WHERE video_id = 'stack-001'")
                ).scalar()
        with engine.connect() as conn:
            events = conn.execute(
                text("SELECT COUNT(*) FROM frame_embeddings WHERE video_id = 'stack-001'")
            ).scalar_one()
        engine.dispose()
        assert status == "completed" and events > 0

        shown = _capstone(env, "stack", "status")
        assert shown.returncode == 0, shown.stdout
        assert "queue-poller-and-batch-runner" in shown.stdout and "DOWN" not in shown.stdout
        # the row is stored before the job has seen it, deleted the message and logged
        jobs = tmp_path / "home" / "stack" / "jobs"
        deadline = time.monotonic() + 60
        done = False
        while not done and time.monotonic() < deadline:
            done = any(
                "Video analysis completed successfully" in p.read_text() for p in jobs.glob("*.log")
            )
            time.sleep(0.5)
        assert done, [p.read_text()[-2000:] for p in jobs.glob("*.log")]
    finally:
        down = _capstone(env, "stack", "down")
    assert down.returncode == 0 and "api" in down.stdout, down.stderr
    from capstone.runtime.local_stack import alive

    time.sleep(0.5)
    assert not any(alive(p) for p in state["processes"])  # gone (or a reaped-later zombie)
    gone = _capstone(env, "upload", str(BIKES))
    assert gone.returncode != 0 and "not running" in gone.stderr
