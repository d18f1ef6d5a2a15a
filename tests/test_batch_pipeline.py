"""The event-driven pipeline against the real moto server, embedded database and service:
S3 upload -> ObjectCreated -> SQS -> handler (QueuePoller) -> local Batch job subprocess ->
POST /analyze (uvicorn on 127.0.0.1) -> rows in PostgreSQL -> message deleted."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import VIDEOS, _clear_caches, require, start_api_server

BIKES = VIDEOS / "bikes.mp4"
PETS = VIDEOS / "pets09-s2l1.avi"  # 795 frames: an analysis that outlasts two visibilities
TOKEN = "batch-token-" + uuid.uuid4().hex
SPEC_LINES = (
    "Calling FastAPI: http://127.0.0.1:",
    'FastAPI response: {"status": "success", "video_id": ',
    "Analysis results saved to PostgreSQL + pgvector by FastAPI",
    "Message deleted successfully",
    "Video analysis completed successfully",
)


@dataclass
class Pipeline:
    """One test's pipeline: bucket + queue + DLQ in moto, the API, the runner, the poller."""

    bucket: str
    queue_url: str
    dlq_url: str
    api: str
    secret_arn: str
    db_url: str
    sqs: Any
    s3: Any
    tmp: Path
    runner: Any = None
    poller: Any = None

    def start(self, params: dict[str, Any], *, batch_size: int = 10, mode: str = "service"):
        from batch.local_runner import LocalBatch, QueuePoller

        env = dict(os.environ)
        env.pop("DATABASE_URL", None)  # the job gets the database from the secret
        env.update(
            SQS_QUEUE_URL=self.queue_url,
            S3_BUCKET_RAW=self.bucket,
            FASTAPI_ENDPOINT=self.api,
            DB_SECRET_ARN=self.secret_arn,
            CAPSTONE_ANALYSIS_PARAMS=json.dumps(params),
            CAPSTONE_BATCH_MODE=mode,
            CAPSTONE_POLL_S="0.3",
            CAPSTONE_HOME=str(self.tmp / "home"),
        )
        self.runner = LocalBatch(env, max_jobs=2, log_dir=self.tmp / "jobs")
        self.poller = QueuePoller(self.queue_url, self.runner, batch_size=batch_size, sqs=self.sqs)
        return self

    def poll_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.poller.poll_once()
            time.sleep(0.1)

    def queue_counts(self, url: str | None = None) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attrs["ApproximateNumberOfMessages"]),
            int(attrs["ApproximateNumberOfMessagesNotVisible"]),
        )

    def drained(self) -> bool:
        jobs_done = all(j.done.is_set() for j in self.runner.jobs())
        return jobs_done and self.queue_counts() == (0, 0)

    def sql(self, query: str, **params: Any) -> list[Any]:
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(query), params))
        finally:
            engine.dispose()

    def log_of(self, job: Any) -> str:
        return job.log_path.read_text(errors="replace")

    def send_event(self, key: str, name: str = "ObjectCreated:Put") -> None:
        from urllib.parse import quote_plus

        record = {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventName": name,
            "s3": {
                "bucket": {"name": self.bucket},
                "object": {"key": quote_plus(key, safe="/"), "size": 1},
            },
        }
        self.sqs.send_message(
            QueueUrl=self.queue_url, MessageBody=json.dumps({"Records": [record]})
        )


@pytest.fixture
def make_pipeline(
    db_url: str, aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Pipeline]]:
    """Build a pipeline with a given visibility timeout and maxReceiveCount."""
    import boto3

    from capstone.core.ids import hash_api_key

    monkeypatch.setenv("API_KEY_HASHES", hash_api_key(TOKEN))
    monkeypatch.delenv("CAPSTONE_AUTH_DISABLED", raising=False)
    monkeypatch.delenv("SQS_QUEUE_URL", raising=False)
    monkeypatch.setenv("CAPSTONE_HOME", str(tmp_path / "api-home"))
    _clear_caches()
    servers: list[tuple[Any, threading.Thread]] = []
    pipelines: list[Pipeline] = []

    def make(visibility_s: int = 5, max_receive: int = 3) -> Pipeline:
        tag = uuid.uuid4().hex[:10]
        s3 = boto3.client("s3")
        sqs = boto3.client("sqs")
        bucket = f"raw-{tag}"
        s3.create_bucket(Bucket=bucket)
        monkeypatch.setenv("S3_BUCKET_RAW", bucket)  # the API analyzes only its own bucket
        _clear_caches()
        dlq_url = sqs.create_queue(QueueName=f"dlq-{tag}")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}
        queue_url = sqs.create_queue(
            QueueName=f"videos-{tag}",
            Attributes={
                "VisibilityTimeout": str(visibility_s),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
            },
        )
        secret = {"url": db_url, "api_token": TOKEN}
        secret_arn = boto3.client("secretsmanager").create_secret(
            Name=f"db-{tag}", SecretString=json.dumps(secret)
        )["ARN"]
        api_url, server, thread = start_api_server()
        servers.append((server, thread))
        pipeline = Pipeline(
            bucket,
            queue_url,
            dlq_url,
            api_url,
            secret_arn,
            db_url,
            sqs,
            s3,
            tmp_path,
        )
        pipelines.append(pipeline)
        return pipeline

    yield make
    for pipeline in pipelines:
        if pipeline.runner is not None:
            pipeline.runner.shutdown(timeout=5)
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def _upload(p: Pipeline, video_id: str, path: Path = BIKES) -> str:
    from capstone.io.s3 import upload_video

    return upload_video(path, p.bucket, video_id)


def test_end_to_end_upload_to_rows_and_message_deleted(make_pipeline) -> None:
    require(BIKES)
    p = make_pipeline(visibility_s=5).start({"max_frames": 30})
    key = _upload(p, "e2e-001")
    assert key.startswith("videos/e2e-001/") and key.endswith("-bikes.mp4")
    p.poll_until(lambda: p.runner.jobs() and p.drained(), 90, "the job and an empty queue")

    jobs = p.runner.jobs()
    assert [j.status for j in jobs] == ["SUCCEEDED"]
    assert jobs[0].parameters == {"s3_bucket": p.bucket, "s3_key": key}
    log = p.log_of(jobs[0])
    positions = [log.find(line) for line in SPEC_LINES]
    assert all(pos >= 0 for pos in positions), log
    assert positions == sorted(positions), log
    assert '"video_id": "e2e-001"' in log
    rows = p.sql("SELECT status, progress, frames_processed FROM apps_db_videoanalysis")
    assert [tuple(r) for r in rows] == [("completed", 100.0, 30)]
    # rows of the result (30 frames of bikes.mp4 may hold no confident track: keyframes)
    stored = p.sql("SELECT COUNT(*) FROM frame_embeddings WHERE video_id = 'e2e-001'")[0][0]
    assert stored > 0
    assert p.queue_counts(p.dlq_url) == (0, 0)


def test_duplicate_deliveries_make_one_job_and_one_result(make_pipeline) -> None:
    require(BIKES)
    p = make_pipeline(visibility_s=5).start({"max_frames": 30}, batch_size=1)
    key = _upload(p, "dup-001")
    p.send_event(key)  # S3 delivering the same event again
    p.send_event(key, "ObjectCreated:CompleteMultipartUpload")  # multipart's second event
    # and the three at the same time, through concurrent handler invocations
    for _ in range(2):
        p.send_event(key)
    threads = [threading.Thread(target=p.poller.poll_once) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    p.poll_until(p.drained, 90, "all deliveries handled")

    # Invocations that raced past the active-job check each submitted: all but the first
    # terminated their own job at once (`batch.lambda_handler.handle`); one job ran.
    jobs = p.runner.jobs()
    ran = [j for j in jobs if not j.terminated]
    assert len(ran) == 1 and ran[0].status == "SUCCEEDED", [j.summary() for j in jobs]
    for job in jobs:
        if job is not ran[0]:
            assert (
                job.status == "FAILED" and job.status_reason == f"duplicate of job {ran[0].job_id}"
            )
    rows = p.sql("SELECT id, status, attempts FROM apps_db_videoanalysis")
    assert len(rows) == 1 and rows[0].status == "completed" and rows[0].attempts == 1
    per_analysis = p.sql("SELECT DISTINCT analysis_id FROM frame_embeddings")
    assert [r[0] for r in per_analysis] == [rows[0].id]


def test_poison_messages_end_in_dlq_and_good_one_still_runs(make_pipeline, tmp_path) -> None:
    require(BIKES)
    p = make_pipeline(visibility_s=5, max_receive=2).start({"max_frames": 20})
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    _upload(p, "bad-001", corrupt)
    p.send_event("videos/missing-001/nothing.mp4")
    p.sqs.send_message(QueueUrl=p.queue_url, MessageBody="this is not an S3 event {")

    p.poll_until(lambda: p.queue_counts(p.dlq_url)[0] == 3, 120, "three messages in the DLQ")
    dead = p.sqs.receive_message(QueueUrl=p.dlq_url, MaxNumberOfMessages=10)["Messages"]
    bodies = " ".join(m["Body"] for m in dead)
    assert "bad-001" in bodies and "missing-001" in bodies and "not an S3 event" in bodies

    rows = {
        r.video_id: r for r in p.sql("SELECT video_id, status, error FROM apps_db_videoanalysis")
    }
    assert rows["bad-001"].status == "failed" and rows["bad-001"].error
    assert rows["missing-001"].status == "failed" and "not found" in rows["missing-001"].error
    failed_logs = " ".join(p.log_of(j) for j in p.runner.jobs())
    assert "Video analysis failed" in failed_logs and "Message deleted" not in failed_logs

    _upload(p, "good-001")
    p.poll_until(
        lambda: any(j.status == "SUCCEEDED" for j in p.runner.jobs()) and p.drained(),
        90,
        "the good video",
    )
    good = p.sql("SELECT status FROM apps_db_videoanalysis WHERE video_id = 'good-001'")
    assert [r[0] for r in good] == ["completed"]


def _wait_processing(p: Pipeline, timeout: float = 60) -> None:
    p.poll_until(
        lambda: bool(
            p.sql(
                "SELECT 1 FROM apps_db_videoanalysis WHERE status = 'processing' "
                "AND frames_processed > 0"
            )
        ),
        timeout,
        "the analysis to be running",
    )


@pytest.mark.slow
@pytest.mark.usefixtures("real_detection")  # killed or watched mid-run
def test_sigkilled_worker_message_reappears_and_retry_stores_one_result(make_pipeline) -> None:
    require(BIKES)
    p = make_pipeline(visibility_s=8).start({"max_frames": 250})
    _upload(p, "kill-001")
    _wait_processing(p)
    first = p.runner.jobs()[0]
    p.runner.signal(first.job_id, signal.SIGKILL)
    p.runner.wait(first.job_id, 10)
    assert first.exit_code == -signal.SIGKILL
    p.poll_until(lambda: len(p.runner.jobs()) == 2 and p.drained(), 120, "the retry to finish")
    retry = p.runner.jobs()[1]
    assert retry.status == "SUCCEEDED", p.log_of(retry)
    assert all(line in p.log_of(retry) for line in SPEC_LINES)
    rows = p.sql("SELECT id, status, frames_processed FROM apps_db_videoanalysis")
    assert len(rows) == 1 and rows[0].status == "completed" and rows[0].frames_processed == 250
    assert [r[0] for r in p.sql("SELECT DISTINCT analysis_id FROM apps_db_event")] == [rows[0].id]


@pytest.mark.slow
@pytest.mark.usefixtures("real_detection")  # killed or watched mid-run
def test_heartbeat_keeps_a_long_analysis_from_being_redelivered(make_pipeline) -> None:
    require(PETS)
    # 240 frames (every stage) take several 4 s visibility timeouts below ~30 frames/s.
    # Not 2 s: the job's first beat comes after its process starts, up to 3 s after the
    # handler received the message on a loaded 2-core machine, when the message is
    # already visible again and the job rightly gives up.
    p = make_pipeline(visibility_s=4, max_receive=1).start({"max_frames": 240})
    _upload(p, "long-001", PETS)
    p.poll_until(lambda: p.runner.jobs() and p.drained(), 240, "the long analysis")
    jobs = p.runner.jobs()
    assert [j.status for j in jobs] == ["SUCCEEDED"], [p.log_of(j) for j in jobs]
    started = p.sql("SELECT started_at, finished_at FROM apps_db_videoanalysis")[0]
    assert (started.finished_at - started.started_at).total_seconds() > 2 * 4
    assert p.queue_counts(p.dlq_url) == (0, 0)  # maxReceiveCount 1: a redelivery = DLQ


@pytest.mark.usefixtures("real_detection")  # killed or watched mid-run
def test_sigterm_stops_the_job_and_leaves_the_message(make_pipeline) -> None:
    require(BIKES)
    p = make_pipeline(visibility_s=3).start({"max_frames": 250})
    _upload(p, "term-001")
    _wait_processing(p)
    job = p.runner.jobs()[0]
    p.runner.signal(job.job_id, signal.SIGTERM)
    p.runner.wait(job.job_id, 15)
    assert job.exit_code == 143, p.log_of(job)
    assert "Stopped by SIGTERM" in p.log_of(job)
    time.sleep(3.5)  # one visibility timeout: the message is back
    assert sum(p.queue_counts()) == 1


@pytest.mark.slow
def test_notebook_mode_stores_the_same_result_as_service_mode(make_pipeline) -> None:
    require(BIKES)
    from capstone.runtime import notebooks

    try:
        notebooks.notebook_path("analyze_video")
    except notebooks.NotebookError:
        pytest.skip("notebooks/analyze_video.ipynb is not there yet")
    params = {"max_frames": 20}
    p = make_pipeline(visibility_s=10).start(params)
    _upload(p, "nb-svc")
    p.poll_until(lambda: p.runner.jobs() and p.drained(), 90, "the service-mode job")
    p.start(params, mode="notebook")
    _upload(p, "nb-note")
    p.poll_until(lambda: p.runner.jobs() and p.drained(), 180, "the notebook-mode job")
    assert [j.status for j in p.runner.jobs()] == ["SUCCEEDED"], p.log_of(p.runner.jobs()[0])

    rows = {
        r.video_id: r
        for r in p.sql(
            "SELECT video_id, status, error, params_hash, frames_processed, "
            "notebook IS NOT NULL AS nb FROM apps_db_videoanalysis"
        )
    }
    assert rows["nb-svc"].status == rows["nb-note"].status == "completed", (
        rows,
        p.log_of(p.runner.jobs()[0]),
    )
    assert rows["nb-svc"].params_hash == rows["nb-note"].params_hash
    assert rows["nb-svc"].frames_processed == rows["nb-note"].frames_processed
    assert rows["nb-note"].nb and not rows["nb-svc"].nb
    query = (
        "SELECT frame_number, class_name, track_id, round(confidence::numeric, 3), bbox::text "
        "FROM apps_db_event WHERE video_id = :v ORDER BY 1, 2, 3, 4, 5"
    )
    assert [tuple(r) for r in p.sql(query, v="nb-svc")] == [
        tuple(r) for r in p.sql(query, v="nb-note")
    ]
