"""Long videos on AWS Batch: the upload records the duration, the Lambda handler splits by it
into an array job (one child per chunk) plus a stitch job that `dependsOn` it, and the local
Batch runner gives array jobs and dependencies AWS semantics.

Against the real moto server (S3, SQS), real subprocesses (a tiny job command for the
runner's semantics, `python -m batch.process_video` end to end) and the embedded database."""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VIDEOS, _clear_caches, require, start_api_server

BIKES = VIDEOS / "bikes.mp4"  # 10 s

# A job command: record the start/end of the child in $MARKS, sleep $SLEEP_S, fail when the
# index is in $FAIL (comma-separated).
TINY_JOB = (
    "import os, sys, time\n"
    "i = os.environ.get('AWS_BATCH_JOB_ARRAY_INDEX', '-')\n"
    "marks = os.path.join(os.environ['MARKS'], os.environ['AWS_BATCH_JOB_ID'].replace(':', '_'))\n"
    "open(marks + '.start', 'w').write(repr(time.time()))\n"
    "time.sleep(float(os.environ.get('SLEEP_S', '0')))\n"
    "open(marks + '.env', 'w').write(repr(dict(os.environ)))\n"
    "open(marks + '.end', 'w').write(repr(time.time()))\n"
    "sys.exit(1 if i in os.environ.get('FAIL', '').split(',') else 0)\n"
)


def tiny_batch(tmp_path: Path, max_jobs: int = 2, **env: str) -> Any:
    from batch.local_runner import LocalBatch

    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    return LocalBatch(
        {"PATH": "/usr/bin:/bin", "MARKS": str(marks), **env},
        max_jobs=max_jobs,
        log_dir=tmp_path / "jobs",
        command=[sys.executable, "-c", TINY_JOB],
    )


def marks_of(tmp_path: Path, job_id: str) -> dict[str, Any]:
    base = tmp_path / "marks" / job_id.replace(":", "_")
    out: dict[str, Any] = {}
    for kind in ("start", "end", "env"):
        path = base.with_name(base.name + "." + kind)
        if path.exists():
            out[kind] = eval(path.read_text())  # written by TINY_JOB: a float or a dict
    return out


SUBMIT = {"jobQueue": "local", "jobDefinition": "local"}


# --------------------------------------------------------------------------------------------
# The local runner: array jobs and dependencies as on AWS
# --------------------------------------------------------------------------------------------


def test_array_children_then_dependent_job(tmp_path: Path) -> None:
    runner = tiny_batch(tmp_path, max_jobs=1, SLEEP_S="0.3")
    try:
        array = runner.submit_job(jobName="video-chunks", arrayProperties={"size": 3}, **SUBMIT)
        stitch = runner.submit_job(jobName="video", dependsOn=[{"jobId": array["jobId"]}], **SUBMIT)
        time.sleep(0.1)
        assert runner.describe_jobs(jobs=[stitch["jobId"]])["jobs"][0]["status"] == "PENDING"
        assert runner.wait_all(60)

        parent = runner.describe_jobs(jobs=[array["jobId"]])["jobs"][0]
        assert parent["status"] == "SUCCEEDED"
        assert parent["arrayProperties"]["size"] == 3
        assert parent["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3
        children = runner.list_jobs(arrayJobId=array["jobId"], jobStatus="SUCCEEDED")
        children = children["jobSummaryList"]
        assert [c["jobId"] for c in children] == [f"{array['jobId']}:{i}" for i in range(3)]
        assert [c["arrayProperties"] for c in children] == [{"index": i} for i in range(3)]
        assert all(c["status"] == "SUCCEEDED" and c["jobName"] == "video-chunks" for c in children)
        # by name: the parent (never its children), like AWS
        listed = runner.list_jobs(
            jobQueue="local", filters=[{"name": "JOB_NAME", "values": ["video-chunks"]}]
        )
        assert [j["jobId"] for j in listed["jobSummaryList"]] == [array["jobId"]]
        assert [j.job_id for j in runner.jobs()] == [array["jobId"], stitch["jobId"]]

        spans = []
        for i, child in enumerate(children):
            m = marks_of(tmp_path, child["jobId"])
            assert m["env"]["AWS_BATCH_JOB_ARRAY_INDEX"] == str(i)
            spans.append((m["start"], m["end"]))
        spans.sort()
        # max_jobs=1: one child at a time
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
        after = marks_of(tmp_path, stitch["jobId"])
        assert after["start"] >= spans[-1][1], "the dependent job started before the children ended"
        assert "AWS_BATCH_JOB_ARRAY_INDEX" not in after["env"]
        assert runner.describe_jobs(jobs=[stitch["jobId"]])["jobs"][0]["dependsOn"] == [
            {"jobId": array["jobId"]}
        ]
    finally:
        runner.shutdown()


def test_failed_child_fails_the_array_and_its_dependent_without_running(tmp_path: Path) -> None:
    runner = tiny_batch(tmp_path, max_jobs=3, FAIL="1")
    try:
        array = runner.submit_job(jobName="v-chunks", arrayProperties={"size": 3}, **SUBMIT)
        stitch = runner.submit_job(jobName="v", dependsOn=[{"jobId": array["jobId"]}], **SUBMIT)
        after = runner.submit_job(jobName="v2", dependsOn=[{"jobId": stitch["jobId"]}], **SUBMIT)
        assert runner.wait_all(60)
        parent = runner.wait(array["jobId"])
        assert parent.status == "FAILED"
        assert [c.status for c in parent.children] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
        assert parent.children[1].exit_code == 1
        for job_id in (stitch["jobId"], after["jobId"]):
            job = runner.wait(job_id)
            assert job.status == "FAILED" and job.exit_code is None and job.process is None
            assert job.status_reason.startswith("Dependent Job failed")
            assert marks_of(tmp_path, job_id) == {}, "a job whose dependency failed ran"
    finally:
        runner.shutdown()


def test_submit_rejects_what_aws_rejects(tmp_path: Path) -> None:
    runner = tiny_batch(tmp_path)
    try:
        for size in (1, 10_001, "3"):
            with pytest.raises(ValueError, match="array size"):
                runner.submit_job(jobName="x", arrayProperties={"size": size}, **SUBMIT)
        with pytest.raises(ValueError, match="unknown job"):
            runner.submit_job(jobName="x", dependsOn=[{"jobId": "nope"}], **SUBMIT)
        assert runner.jobs() == []
    finally:
        runner.shutdown()


# --------------------------------------------------------------------------------------------
# The Lambda handler: who splits, and into what
# --------------------------------------------------------------------------------------------


@pytest.fixture
def raw_bucket(aws_env: str) -> Iterator[tuple[Any, str]]:
    import boto3

    s3 = boto3.client("s3")
    bucket = f"raw-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    yield s3, bucket


def s3_event(bucket: str, key: str, message_id: str | None = None) -> dict[str, Any]:
    from urllib.parse import quote_plus

    body = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
            }
        ]
    }
    return {
        "messageId": message_id or uuid.uuid4().hex,
        "receiptHandle": "receipt-" + uuid.uuid4().hex,
        "body": json.dumps(body),
    }


def put_video(s3: Any, bucket: str, key: str, duration: str | None) -> None:
    meta = {"video-id": "v1"} | ({"duration": duration} if duration is not None else {})
    s3.put_object(Bucket=bucket, Key=key, Body=b"not really a video", Metadata=meta)


def env_of(job: Any) -> dict[str, str]:
    return job.env


def test_lambda_splits_150_s_into_three_children_and_a_stitch_job(raw_bucket, tmp_path) -> None:
    from batch.lambda_handler import ENV_BODY, ENV_RECEIPT, Split, handle, job_name

    s3, bucket = raw_bucket
    key = "videos/v1/long.mp4"
    put_video(s3, bucket, key, "150.000")
    runner = tiny_batch(tmp_path, SLEEP_S="1")
    params = json.dumps({"chunk_s": 60, "max_frames": 5})
    split = Split.from_env({"CAPSTONE_ANALYSIS_PARAMS": params}, s3)
    assert split.chunk_s == 60.0 and split.min_chunks == 2
    try:
        record = s3_event(bucket, key)
        answer = handle({"Records": [record]}, runner, "local", "local", split)
        # the stitch job owns the message: the event source must not delete it
        assert answer == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
        array, stitch = runner.jobs()
        name = job_name(bucket, key)
        assert (array.name, stitch.name) == (name + "-chunks", name)
        assert array.array_size == 3 and len(array.children) == 3
        assert stitch.depends_on == [array.job_id]
        assert array.parameters == stitch.parameters == {"s3_bucket": bucket, "s3_key": key}
        for child in array.children:
            env = env_of(child)
            assert env["CAPSTONE_BATCH_MODE"] == "chunk"
            assert env[ENV_BODY] == record["body"] and ENV_RECEIPT not in env
            assert env["CAPSTONE_ANALYSIS_PARAMS"] == params
        env = env_of(stitch)
        assert env["CAPSTONE_BATCH_MODE"] == "stitch"
        assert env[ENV_RECEIPT] == record["receiptHandle"] and env[ENV_BODY] == record["body"]
        assert env["CAPSTONE_ANALYSIS_PARAMS"] == params

        # duplicates: S3 sending the event again (a new message) while the stitch job is
        # active, and twice in one invocation: no second submission, each one done
        again = [s3_event(bucket, key), s3_event(bucket, key)]
        assert handle({"Records": again}, runner, "local", "local", split) == {
            "batchItemFailures": []
        }
        assert len(runner.jobs()) == 2
        assert runner.wait_all(60)
        assert [j.status for j in runner.jobs()] == ["SUCCEEDED", "SUCCEEDED"]
        # and after it ended, a redelivery submits again (the recovery path)
        handle({"Records": [record]}, runner, "local", "local", split)
        assert len(runner.jobs()) == 4
    finally:
        runner.shutdown()


@pytest.mark.parametrize("duration", [None, "150.000"], ids=["single", "array"])
def test_invocations_racing_on_duplicate_events_leave_one_job(
    raw_bucket, tmp_path, duration
) -> None:
    """Concurrent invocations with duplicate events: each one's first ListJobs is held until
    all of them asked (so every one finds no active job and submits); afterwards each sees
    the first-submitted job, and every other terminates its own (array and stitch)."""
    from batch.lambda_handler import ENV_RECEIPT, Split, handle, job_name

    s3, bucket = raw_bucket
    key = "videos/v1/race.mp4"
    put_video(s3, bucket, key, duration)
    runner = tiny_batch(tmp_path, max_jobs=4, SLEEP_S="2")
    racers = 4
    barrier = threading.Barrier(racers)
    asked = threading.local()

    class HeldListing:
        def __getattr__(self, attr: str) -> Any:
            return getattr(runner, attr)

        def list_jobs(self, **kwargs: Any) -> dict[str, Any]:
            answer = runner.list_jobs(**kwargs)
            if not getattr(asked, "once", False):
                # listed first, answered after every racer listed: none can see a submit
                asked.once = True
                barrier.wait(30)
            return answer

    split = Split(s3=s3, chunk_s=60.0)
    records = [s3_event(bucket, key) for _ in range(racers)]
    answers: dict[str, Any] = {}

    def invoke(record: dict[str, Any]) -> None:
        answers[record["messageId"]] = handle(
            {"Records": [record]}, HeldListing(), "local", "local", split
        )

    threads = [threading.Thread(target=invoke, args=(r,)) for r in records]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert runner.wait_all(60)
        name = job_name(bucket, key)
        holders = [j for j in runner.jobs() if j.name == name]
        assert len(holders) == racers, "every invocation submitted (none saw another's job)"
        first = min(holders, key=lambda j: (int(j.created_at * 1000), j.job_id))
        assert [j for j in holders if j.status == "SUCCEEDED"] == [first]
        for job in holders:
            if job is not first:
                assert job.status == "FAILED", job.summary()
                assert job.status_reason == f"duplicate of job {first.job_id}"
        arrays = [j for j in runner.jobs() if j.name == name + "-chunks"]
        assert len(arrays) == (racers if duration else 0)
        assert sum(a.status == "SUCCEEDED" for a in arrays) == (1 if duration else 0)
        # the kept job holds its message (the event source keeps it); the others are done
        kept = [m for m, a in answers.items() if a["batchItemFailures"]]
        assert len(answers) == racers and len(kept) == 1
        (record,) = [r for r in records if r["messageId"] == kept[0]]
        assert first.env[ENV_RECEIPT] == record["receiptHandle"]
    finally:
        runner.shutdown()


@pytest.mark.parametrize(
    "duration",
    [None, "nan", "NaN", "inf", "-1", "0", "1e30", "ten minutes", "", " ", "150" * 20, "0x96"],
)
def test_missing_or_hostile_duration_gives_the_single_job(raw_bucket, tmp_path, duration) -> None:
    from batch.lambda_handler import ENV_RECEIPT, Split, handle, job_name

    s3, bucket = raw_bucket
    key = "videos/v1/clip.mp4"
    put_video(s3, bucket, key, duration)
    runner = tiny_batch(tmp_path)
    try:
        record = s3_event(bucket, key)
        handle({"Records": [record]}, runner, "local", "local", Split(s3=s3, chunk_s=4.0))
        (job,) = runner.jobs()
        assert job.name == job_name(bucket, key) and job.array_size is None
        assert not job.depends_on and "CAPSTONE_BATCH_MODE" not in job.env
        assert job.env[ENV_RECEIPT] == record["receiptHandle"]
    finally:
        runner.shutdown()


def test_single_job_for_short_videos_failed_heads_and_no_split(raw_bucket, tmp_path) -> None:
    from batch.lambda_handler import Split, handle

    s3, bucket = raw_bucket
    put_video(s3, bucket, "videos/v1/short.mp4", "60.0")  # exactly one 60 s chunk
    put_video(s3, bucket, "videos/v1/mid.mp4", "150")  # 3 chunks, under a threshold of 4
    put_video(s3, bucket, "videos/v1/long.mp4", "150")
    put_video(s3, bucket, "videos/v1/huge.mp4", "150000")  # 2500 chunks: over MAX_CHUNKS
    cases = [
        ("videos/v1/huge.mp4", Split(s3=s3)),
        ("videos/v1/short.mp4", Split(s3=s3)),
        ("videos/v1/mid.mp4", Split.from_env({"CAPSTONE_BATCH_ARRAY_MIN_CHUNKS": "4"}, s3)),
        ("videos/v1/missing.mp4", Split(s3=s3)),  # HEAD answers 404
        ("videos/v1/long.mp4", None),  # no split configured (QueuePoller's default)
        ("videos/v1/long.mp4", Split(s3=None)),
    ]
    runner = tiny_batch(tmp_path)
    try:
        for i, (key, split) in enumerate(cases):
            handle({"Records": [s3_event(bucket, key)]}, runner, "local", "local", split)
            assert runner.wait_all(30)
            assert len(runner.jobs()) == i + 1, key
            assert runner.jobs()[-1].array_size is None, (key, split)
        # a bad bucket: HEAD fails with an error, not an exception out of the handler
        handle(
            {"Records": [s3_event("no-such-bucket-x", "videos/v1/a.mp4")]},
            runner,
            "local",
            "local",
            Split(s3=s3),
        )
        assert runner.jobs()[-1].array_size is None
    finally:
        runner.shutdown()


def test_split_configuration_from_environment() -> None:
    from batch.lambda_handler import Split, chunk_count

    assert Split.from_env({}, None) == Split()
    for bad in ("{", "[]", '{"chunk_s": "x"}', '{"chunk_s": 0.5}', '{"chunk_s": NaN}'):
        assert Split.from_env({"CAPSTONE_ANALYSIS_PARAMS": bad}, None).chunk_s == 60.0, bad
    assert Split.from_env({"CAPSTONE_ANALYSIS_PARAMS": '{"chunk_s": 4}'}, None).chunk_s == 4.0
    for raw, expected in (("1", 2), ("x", 2), ("7", 7)):
        assert Split.from_env({"CAPSTONE_BATCH_ARRAY_MIN_CHUNKS": raw}, None).min_chunks == expected
    assert [chunk_count(d, 4.0) for d in (0.1, 4.0, 4.01, 10.0)] == [1, 1, 2, 3]
    try:
        from capstone.core.chunks import chunk_count as pipeline_count
    except ImportError:
        return
    for d, c in ((0.1, 60.0), (150.0, 60.0), (10.0, 4.0), (120.0, 60.0), (3599.9, 7.5)):
        assert chunk_count(d, c) == pipeline_count(d, c), (d, c)


def test_poller_keeps_split_messages_in_flight(raw_bucket, tmp_path) -> None:
    """Through a real queue: the message stays (not deleted) for the stitch job."""
    import boto3

    from batch.lambda_handler import Split
    from batch.local_runner import QueuePoller

    s3, bucket = raw_bucket
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(
        QueueName=f"q-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "30"}
    )["QueueUrl"]
    put_video(s3, bucket, "videos/v1/long.mp4", "150")
    runner = tiny_batch(tmp_path)
    try:
        poller = QueuePoller(queue_url, runner, sqs=sqs, split=Split(s3=s3))
        sqs.send_message(
            QueueUrl=queue_url, MessageBody=s3_event(bucket, "videos/v1/long.mp4")["body"]
        )
        answer = poller.poll_once()
        assert answer is not None and len(answer["batchItemFailures"]) == 1
        attrs = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
        array, stitch = runner.jobs()
        assert array.array_size == 3 and stitch.depends_on == [array.job_id]
        assert runner.wait_all(30)
    finally:
        runner.shutdown()


# --------------------------------------------------------------------------------------------
# The duration metadata and the job's configuration
# --------------------------------------------------------------------------------------------


def test_upload_records_the_probed_duration(raw_bucket) -> None:
    from batch.lambda_handler import parse_duration as lambda_parse
    from capstone.io.s3 import head, parse_duration, upload_video

    require(BIKES)
    _, bucket = raw_bucket
    key = upload_video(BIKES, bucket, "dur-001")
    value = head(bucket, key).metadata["duration"]
    assert 9.5 < float(value) < 10.5 and lambda_parse(value) == parse_duration(value)
    key = upload_video(BIKES, bucket, "dur-002", "other.mp4", duration_s=float("nan"))
    assert "duration" not in head(bucket, key).metadata
    for hostile in ("nan", "-1", "1e30", "ten", "", None, True, "1" * 40):
        assert parse_duration(hostile) is None and lambda_parse(hostile) is None, hostile


def test_upload_route_stores_duration_metadata(db_url, raw_bucket, monkeypatch) -> None:
    import httpx

    from capstone.core.ids import hash_api_key
    from capstone.io.s3 import head

    require(BIKES)
    _, bucket = raw_bucket
    token = "k-" + uuid.uuid4().hex
    monkeypatch.setenv("S3_BUCKET_RAW", bucket)
    monkeypatch.setenv("API_KEY_HASHES", hash_api_key(token))
    monkeypatch.delenv("SQS_QUEUE_URL", raising=False)
    monkeypatch.delenv("CAPSTONE_AUTH_DISABLED", raising=False)
    _clear_caches()
    url, server, thread = start_api_server()
    try:
        with BIKES.open("rb") as fh, httpx.Client(base_url=url, timeout=60) as client:
            res = client.post(
                "/db/videos/upload/",
                params={"video_id": "route-dur", "analyze": "false"},
                files={"video": ("bikes.mp4", fh, "video/mp4")},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert res.status_code == 201, res.text
        meta = head(bucket, res.json()["s3_key"]).metadata
        assert meta["video-id"] == "route-dur" and 9.5 < float(meta["duration"]) < 10.5
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_job_configuration_of_the_array_modes() -> None:
    from batch.process_video import JobConfig
    from capstone.errors import ConfigError

    chunk = JobConfig.from_env({"CAPSTONE_BATCH_MODE": "chunk", "AWS_BATCH_JOB_ARRAY_INDEX": "7"})
    assert chunk.mode == "chunk" and chunk.array_index == 7
    for bad in ("", "-1", "x", "10000"):
        with pytest.raises(ConfigError, match="AWS_BATCH_JOB_ARRAY_INDEX"):
            JobConfig.from_env({"CAPSTONE_BATCH_MODE": "chunk", "AWS_BATCH_JOB_ARRAY_INDEX": bad})
    stitch = JobConfig.from_env({"CAPSTONE_BATCH_MODE": "stitch", "SQS_QUEUE_URL": "http://q"})
    assert stitch.mode == "stitch" and stitch.array_index is None
    with pytest.raises(ConfigError, match="SQS_QUEUE_URL"):
        JobConfig.from_env({"CAPSTONE_BATCH_MODE": "stitch"})
    with pytest.raises(ConfigError, match="FASTAPI_ENDPOINT"):
        JobConfig.from_env({"SQS_QUEUE_URL": "http://q"})


# --------------------------------------------------------------------------------------------
# End to end: a real video through array children + the stitch job (needs capstone.core.chunks)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_array_children_and_stitch_publish_one_result(db_url, raw_bucket, tmp_path) -> None:
    pytest.importorskip("capstone.core.chunks", reason="the chunked pipeline has not landed yet")
    import os

    import boto3
    from sqlalchemy import create_engine, text

    from batch.lambda_handler import Split
    from batch.local_runner import LocalBatch, QueuePoller
    from capstone.io.s3 import upload_video

    require(BIKES)
    s3, bucket = raw_bucket
    sqs = boto3.client("sqs")
    tag = uuid.uuid4().hex[:8]
    dlq_url = sqs.create_queue(QueueName=f"dlq-{tag}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"q-{tag}",
        Attributes={
            # longer than the children take, so the stitch job still holds the message
            "VisibilityTimeout": "300",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
        },
    )["QueueUrl"]
    secret_arn = boto3.client("secretsmanager").create_secret(
        Name=f"db-{tag}", SecretString=json.dumps({"url": db_url})
    )["ARN"]
    params = json.dumps({"chunk_s": 4})
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)  # the jobs get the database from the secret
    env.update(
        SQS_QUEUE_URL=queue_url,
        S3_BUCKET_RAW=bucket,
        FASTAPI_ENDPOINT="http://127.0.0.1:9",  # never called in the array modes
        DB_SECRET_ARN=secret_arn,
        CAPSTONE_ANALYSIS_PARAMS=params,
        CAPSTONE_HOME=str(tmp_path / "home"),
    )
    runner = LocalBatch(env, max_jobs=2, log_dir=tmp_path / "jobs")
    split = Split.from_env({"CAPSTONE_ANALYSIS_PARAMS": params}, s3)
    poller = QueuePoller(queue_url, runner, sqs=sqs, split=split)
    try:
        key = upload_video(BIKES, bucket, "array-001")
        event = s3_event(bucket, key)["body"]
        sqs.send_message(QueueUrl=queue_url, MessageBody=event)
        sqs.send_message(QueueUrl=queue_url, MessageBody=event)  # S3 sending it twice
        deadline = time.monotonic() + 600
        while not (runner.jobs() and all(j.done.is_set() for j in runner.jobs())):
            assert time.monotonic() < deadline, "array run did not finish"
            poller.poll_once()
            time.sleep(0.2)
        array, stitch = runner.jobs()
        logs = {c.job_id: c.log_path.read_text(errors="replace") for c in [*array.children, stitch]}
        assert array.array_size == 3 and array.status == "SUCCEEDED", logs
        assert stitch.status == "SUCCEEDED", logs[stitch.job_id]
        assert "Message deleted successfully" in logs[stitch.job_id]
        counts = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert counts == {
            "ApproximateNumberOfMessages": "0",
            "ApproximateNumberOfMessagesNotVisible": "0",
        }
        engine = create_engine(db_url)
        with engine.connect() as conn:
            rows = list(conn.execute(text("SELECT id, status FROM apps_db_videoanalysis")))
            events = conn.execute(
                text("SELECT COUNT(DISTINCT analysis_id) FROM apps_db_event")
            ).scalar_one()
        engine.dispose()
        assert [r.status for r in rows] == ["completed"], rows
        assert events == 1  # one published result (staged chunk rows are gone after publish)
        for child in array.children:
            assert f"Chunk {child.array_index} done" in logs[child.job_id], logs[child.job_id]
    finally:
        runner.shutdown(timeout=5)
