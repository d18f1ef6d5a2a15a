"""Hostile input to the worker and the queue (issue 29, findings 5, 6 and 7), against the real
pipeline and embedded PostgreSQL, the real Lambda handler (the local Batch runner receives
its jobs) and the real Batch job entry against moto's SQS with a dead-letter queue.

The videos are made here, small: MJPG AVI files whose JPEG frames are crafted (a grey
16000x16000 frame is 3 MB of entropy data, no 768 MB array is ever built), and whose
container headers are patched to claim what the file does not hold."""

from __future__ import annotations

import asyncio
import fractions
import json
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import _clear_caches, start_api_server

# analyses here must take their real time (killed, cancelled or watched while running)
pytestmark = pytest.mark.usefixtures("real_detection")

CHEAP = ("detect", "track")
API_KEY = "hardening2-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {API_KEY}"}

# -- crafted videos ----------------------------------------------------------------------------

# The standard luminance Huffman tables (ITU T.81, K.3).
_DC_BITS = bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
_AC_BITS = bytes([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D])
_AC_VALS = bytes.fromhex(
    "01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718"
    "191a25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475"
    "767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3"
    "c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa"
)


def _segment(marker: int, payload: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def grey_jpeg(width: int, height: int) -> bytes:
    """A valid baseline JPEG of a uniform grey `width` x `height` image: every 8x8 block
    is DC difference 0 ('00') + end of block ('1010'), 6 bits; 4 blocks are 3 bytes."""
    blocks = -(-width // 8) * -(-height // 8)
    bits = "001010" * (blocks % 4)
    bits += "1" * (-len(bits) % 8)
    data = b"\x28\xa2\x8a" * (blocks // 4)
    data += bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
    return (
        b"\xff\xd8"
        + _segment(0xDB, b"\x00" + bytes([1] * 64))
        + _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
        + _segment(0xC4, b"\x00" + _DC_BITS + bytes(range(12)))
        + _segment(0xC4, b"\x10" + _AC_BITS + _AC_VALS)
        + _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        + data
        + b"\xff\xd9"
    )


def write_avi(path: Path, frames: list[bytes], header: tuple[int, int], fps: int = 25) -> Path:
    """An MJPG AVI of these JPEG frames (muxed, not re-encoded) whose stream header says
    `header` (width, height): it may lie."""
    import av

    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mjpeg", rate=fps)
        stream.width, stream.height = header
        stream.pix_fmt = "yuvj420p"
        for i, jpeg in enumerate(frames):
            packet = av.Packet(jpeg)
            packet.stream = stream
            packet.pts = packet.dts = i
            packet.time_base = fractions.Fraction(1, fps)
            container.mux(packet)
    return path


def claim_frames(path: Path, frames: int) -> Path:
    """Patch the AVI header to claim `frames` frames: 'avih' dwTotalFrames, 'strh' dwLength
    and OpenDML 'dmlh' dwTotalFrames."""
    data = bytearray(path.read_bytes())
    for tag, offset in ((b"avih", 8 + 16), (b"strh", 8 + 32), (b"dmlh", 8)):
        at = data.find(tag)
        if at >= 0:
            data[at + offset : at + offset + 4] = struct.pack("<I", frames)
    path.write_bytes(bytes(data))
    return path


# -- measuring ---------------------------------------------------------------------------------


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/self/status")


class PeakRss:
    """Peak resident memory of this process inside the block, above its RSS at entry (the
    kernel's high-water mark, reset at entry; a 5 ms sampler where that is not allowed)."""

    def __enter__(self) -> PeakRss:
        self.base = _status_mb("VmRSS")
        self.peak = self.base
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _status_mb("VmRSS"))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        else:
            self.peak = _status_mb("VmHWM")

    @property
    def delta_mb(self) -> float:
        return self.peak - self.base


def _sql(db_url: str, query: str, **params: Any) -> list[Any]:
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            return list(conn.execute(text(query), params))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def warm_worker() -> None:
    """What every analysis loads once (detector, torch, stages), loaded before measuring."""
    from capstone.models.detector import get_detector
    from capstone.runtime.pipeline import _import_stage_modules
    from capstone.stages.params import AnalysisParams

    _import_stage_modules()
    get_detector(AnalysisParams().model)


def _analyze_bounded(source: Path, limit_s: float = 120.0, **kwargs: Any) -> tuple[Any, float]:
    """`analyze` with a cancel after `limit_s` (a generous bound: an unbounded plan must not
    hang the suite); the result and its wall time."""
    from capstone.runtime.pipeline import analyze

    cancel = threading.Event()
    timer = threading.Timer(limit_s, cancel.set)
    timer.start()
    started = time.monotonic()
    try:
        result = analyze(source, cancel=cancel, **kwargs)
    finally:
        timer.cancel()
    return result, time.monotonic() - started


# -- 5. huge frames --------------------------------------------------------------------------


def test_huge_frames_fail_from_the_header_before_any_frame_is_decoded(
    db_url: str, tmp_path: Path, warm_worker: None
) -> None:
    """3 frames of 16000x16000 (a 9 MB file; 768 MB each as BGR): refused from the stream
    header before decoding; before the fix it completed with +2 GB of worker RSS."""
    from capstone.stages.params import AnalysisParams

    video = write_avi(tmp_path / "huge.avi", [grey_jpeg(16000, 16000)] * 3, (16000, 16000))
    with PeakRss() as rss:
        result, _ = _analyze_bounded(
            video, video_id="huge-frames", params=AnalysisParams(stages=CHEAP)
        )
    assert result.status == "failed", result
    assert "MAX_FRAME_PIXELS" in result.error and "16000x16000" in result.error
    assert str(tmp_path) not in result.error, "a server path in the reason"
    assert result.retryable is not True
    assert rss.delta_mb < 256, f"+{rss.delta_mb:.0f} MB worker RSS"
    (row,) = _sql(db_url, "SELECT status, error FROM apps_db_videoanalysis")
    assert row.status == "failed" and "MAX_FRAME_PIXELS" in row.error


@pytest.mark.parametrize("size", [16000, 3000])
def test_a_huge_frame_behind_a_small_header_fails_before_the_next_is_decoded(
    db_url: str, tmp_path: Path, warm_worker: None, size: int
) -> None:
    """A header that says 320x240 and a third frame of size x size: FFmpeg refuses to
    allocate a 16000x16000 frame (max_pixels); a 3000x3000 one (9 MP, just over the budget)
    is caught right after decoding. Either way the analysis fails naming the budget."""
    from capstone.stages.params import AnalysisParams

    frames = [grey_jpeg(320, 240)] * 2 + [grey_jpeg(size, size)] * 3
    video = write_avi(tmp_path / "liar.avi", frames, (320, 240))
    with PeakRss() as rss:
        result, _ = _analyze_bounded(
            video, video_id=f"liar-{size}", params=AnalysisParams(stages=CHEAP)
        )
    assert result.status == "failed", result
    assert "MAX_FRAME_PIXELS" in result.error and "frame 2" in result.error, result.error
    assert result.retryable is False
    assert rss.delta_mb < 256, f"+{rss.delta_mb:.0f} MB worker RSS"


def test_decoded_frames_buffered_ahead_are_bounded_in_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames of 8 MP (24 MB as BGR) under a slow consumer: DECODE_PREFETCH_BYTES (64 MB
    here) bounds what waits, not 16 frames (384 MB)."""
    from capstone.core.video import iter_frames

    monkeypatch.setenv("DECODE_PREFETCH_BYTES", str(64 * 1024**2))
    _clear_caches()
    video = write_avi(tmp_path / "big.avi", [grey_jpeg(4000, 2000)] * 24, (4000, 2000))
    with PeakRss() as rss:
        frames = iter_frames(video)
        first = next(frames)
        time.sleep(1.5)  # the decoder runs ahead as far as it may
        count = 1 + sum(1 for _ in frames)
        del first
    assert count == 24
    assert rss.delta_mb < 200, f"+{rss.delta_mb:.0f} MB decoding ahead"


@pytest.fixture
def env(
    db_url: str, aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """One test's settings: its database, its own bucket and CAPSTONE_HOME, one API key."""
    from capstone.core.ids import hash_api_key
    from capstone.io.s3 import s3_client

    bucket = f"raw-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("CAPSTONE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("S3_BUCKET_RAW", bucket)
    monkeypatch.setenv("API_KEY_HASHES", hash_api_key(API_KEY))
    for var in ("SQS_QUEUE_URL", "CAPSTONE_AUTH_DISABLED", "REQUIRE_AUTH_FOR_READS"):
        monkeypatch.delenv(var, raising=False)
    _clear_caches()
    s3_client().create_bucket(Bucket=bucket)
    yield {"bucket": bucket, "db": db_url}


@pytest.fixture
def api(env: dict[str, Any]) -> Iterator[str]:
    url, server, thread = start_api_server()
    yield url
    server.should_exit = True
    thread.join(timeout=60)


def test_uploads_over_the_budgets_are_refused_naming_them_and_never_stored(
    api: str, env: dict[str, Any], tmp_path: Path, warm_worker: None
) -> None:
    """Three huge-frame uploads at once and a header claiming 33 h: 413 naming the budget
    (before the fix: 201, the first 16000x16000 frame decoded to probe it)."""
    from capstone.io.s3 import s3_client

    huge = write_avi(tmp_path / "huge.avi", [grey_jpeg(16000, 16000)] * 3, (16000, 16000))
    long = _two_frame_avi(tmp_path / "long.avi", 25 * 3600 * 33)

    def upload(path: Path, video_id: str) -> dict[str, Any]:
        return {
            "method": "POST",
            "url": "/db/videos/upload/",
            "params": {"video_id": video_id, "analyze": "false"},
            "headers": AUTH,
            "files": {"video": (path.name, path.read_bytes(), "video/x-msvideo")},
        }

    async def send(requests: list[dict[str, Any]]) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=api, timeout=120) as client:
            return await asyncio.gather(*(client.request(**r) for r in requests))

    requests = [upload(huge, f"huge-{i}") for i in range(3)] + [upload(long, "long")]
    with PeakRss() as rss:
        answers = asyncio.run(send(requests))
    assert [a.status_code for a in answers] == [413] * 4, [a.text for a in answers]
    for answer in answers[:3]:
        assert "MAX_FRAME_PIXELS" in answer.json()["detail"], answer.text
    assert "MAX_VIDEO_DURATION_S" in answers[3].json()["detail"], answers[3].text
    assert all(str(tmp_path) not in a.text and "/tmp" not in a.text for a in answers)
    assert rss.delta_mb < 256, f"+{rss.delta_mb:.0f} MB server RSS"
    listed = s3_client().list_objects_v2(Bucket=env["bucket"])
    assert listed.get("KeyCount", 0) == 0, "an over-budget upload was stored"


# -- 7. lying container metadata ---------------------------------------------------------------


def _two_frame_avi(path: Path, claimed_frames: int) -> Path:
    return claim_frames(write_avi(path, [grey_jpeg(320, 240)] * 2, (320, 240)), claimed_frames)


def test_a_header_claiming_33_hours_fails_on_the_budget_before_planning(
    db_url: str, tmp_path: Path, warm_worker: None
) -> None:
    """Before the fix: 1,980 chunks planned (and run, one stream each) for 2 frames."""
    from capstone.core.video import probe
    from capstone.stages.params import AnalysisParams

    video = _two_frame_avi(tmp_path / "liar.avi", 25 * 3600 * 33)
    assert probe(video).frame_count == 25 * 3600 * 33  # what the header claims
    result, wall = _analyze_bounded(
        video, video_id="claims-33h", params=AnalysisParams(stages=CHEAP)
    )
    assert result.status == "failed", result
    assert "MAX_VIDEO_DURATION_S" in result.error and "33.0 h" in result.error, result.error
    assert result.retryable is False
    chunks = _sql(db_url, "SELECT count(*) FROM apps_db_analysischunk")[0][0]
    assert chunks == 0, f"{chunks} chunks planned"
    assert wall < 60


def test_a_header_claiming_hours_within_budget_runs_only_the_real_frames(
    db_url: str, tmp_path: Path, warm_worker: None
) -> None:
    """2 frames claiming 10 h (600 chunks of 60 s): completed with the 2 real frames; the
    chunks past the real end are completed empty without ever being claimed or decoded."""
    from capstone.stages.params import AnalysisParams

    video = _two_frame_avi(tmp_path / "liar.avi", 25 * 3600 * 10)
    params = AnalysisParams(stages=CHEAP)
    # every chunk, unpublished (publishing drops the chunk rows): what ran is visible
    staged, wall = _analyze_bounded(video, video_id="claims-10h", params=params, publish=False)
    assert staged.status == "staged", staged
    rows = _sql(
        db_url,
        "SELECT chunk_index, status, attempts, frames_processed FROM apps_db_analysischunk "
        "ORDER BY chunk_index",
    )
    assert len(rows) == 600 and all(r.status == "done" for r in rows)
    started = [r.chunk_index for r in rows if r.attempts > 0]
    assert started == [0], f"{len(started)} chunks were run (one decoding pass each)"
    assert sum(r.frames_processed for r in rows) == 2
    assert wall < 90

    result, wall = _analyze_bounded(video, video_id="claims-10h", params=params)
    assert result.status == "completed", result
    assert result.frames_processed == 2
    assert any("decoded 2 of" in w for w in result.warnings), result.warnings
    assert wall < 90


def test_decoding_past_the_duration_budget_fails_the_analysis(
    db_url: str, tmp_path: Path, warm_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A header that understates (2 frames claimed, 30 in the file): the budget counts
    what is decoded."""
    from capstone.stages.params import AnalysisParams

    monkeypatch.setenv("MAX_VIDEO_DURATION_S", "0.5")  # 12.5 frames at 25 fps
    _clear_caches()
    video = write_avi(tmp_path / "short.avi", [grey_jpeg(320, 240)] * 30, (320, 240))
    claim_frames(video, 2)
    result, _ = _analyze_bounded(video, video_id="understated", params=AnalysisParams(stages=CHEAP))
    assert result.status == "failed", result
    assert "MAX_VIDEO_DURATION_S" in result.error and "frame 13" in result.error, result.error


@pytest.fixture
def raw_bucket(aws_env: str) -> Iterator[tuple[Any, str]]:
    import boto3

    s3 = boto3.client("s3")
    bucket = f"raw-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    yield s3, bucket


def _s3_body(bucket: str, key: Any, size: str = "10") -> str:
    """An S3 event body; `size` is raw JSON text (so `NaN`, `1e999` can be sent)."""
    key_json = json.dumps(key)
    return (
        '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": '
        f'{{"bucket": {{"name": "{bucket}"}}, "object": {{"key": {key_json}, "size": {size}}}}}'
        "}]}"
    )


def _record(body: str) -> dict[str, str]:
    return {
        "messageId": uuid.uuid4().hex,
        "receiptHandle": "receipt-" + uuid.uuid4().hex,
        "body": body,
    }


def test_the_lambda_never_plans_more_than_the_chunk_budget(
    raw_bucket: tuple[Any, str], tmp_path: Path
) -> None:
    """`x-amz-meta-duration` is the header's claim: 33 h (over MAX_VIDEO_DURATION_S) or
    10 h with MAX_CHUNKS_PER_JOB=100 get no array job (the single job fails them at once,
    recorded, naming the budget); before the fix 33 h planned a 1,980-child array job."""
    from batch.lambda_handler import Split, handle
    from tests.test_batch_array import tiny_batch

    s3, bucket = raw_bucket
    for name, seconds in (("claims-33h", 33 * 3600), ("claims-10h", 10 * 3600), ("ok", 150)):
        s3.put_object(
            Bucket=bucket,
            Key=f"videos/{name}/clip.avi",
            Body=b"x",
            Metadata={"video-id": name, "duration": f"{seconds:.3f}"},
        )
    runner = tiny_batch(tmp_path)
    try:
        default = Split.from_env({}, s3)
        capped = Split.from_env({"MAX_CHUNKS_PER_JOB": "100"}, s3)
        for name, split, size in (
            ("claims-33h", default, None),
            ("claims-10h", capped, None),
            ("ok", capped, 3),  # within the budgets: an array job
        ):
            before = len(runner.jobs())
            body = _s3_body(bucket, f"videos/{name}/clip.avi")
            handle({"Records": [_record(body)]}, runner, "local", "local", split)
            jobs = runner.jobs()[before:]
            assert jobs, name
            assert jobs[0].array_size == size, (name, jobs[0].array_size)
            assert runner.wait_all(60)
    finally:
        runner.shutdown()


# -- 6. poison queue records -------------------------------------------------------------------

POISON_BODIES = {
    "non-string key": lambda b: _s3_body(b, 12345),
    "nested 3000 deep": lambda b: '{"Records": [' + "[" * 3000 + "]" * 3000 + "]}",
    "NaN size": lambda b: _s3_body(b, "videos/p/nan.mp4", "NaN"),
    "1e999 size": lambda b: _s3_body(b, "videos/p/inf.mp4", "1e999"),
    "nested object 2000 deep": lambda b: '{"a": ' * 2000 + "1" + "}" * 2000,
}


@pytest.mark.parametrize("reverse", [False, True])
def test_one_poison_record_never_fails_the_valid_ones(
    raw_bucket: tuple[Any, str], tmp_path: Path, reverse: bool
) -> None:
    from batch.lambda_handler import handle, job_name
    from tests.test_batch_array import tiny_batch

    _, bucket = raw_bucket
    good = [f"videos/good-{i}/clip.mp4" for i in range(2)]
    records = [_record(_s3_body(bucket, good[0]))]
    records += [_record(make(bucket)) for make in POISON_BODIES.values()]
    records.insert(3, _record(_s3_body(bucket, good[1])))
    if reverse:
        records.reverse()
    runner = tiny_batch(tmp_path)
    try:
        answer = handle({"Records": records}, runner, "local", "local", None)
        submitted = sorted(job.name for job in runner.jobs())
        assert submitted == sorted(job_name(bucket, key) for key in good)
        reported = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        # every record is reported: the poison ones as failures, the submitted ones because
        # their job owns the message now (see batch/lambda_handler.py)
        assert reported == {r["messageId"] for r in records}
        assert runner.wait_all(60)
    finally:
        runner.shutdown()


@pytest.fixture
def queues(aws_env: str) -> dict[str, Any]:
    """A main queue whose redrive policy names a dead-letter queue (maxReceiveCount 5)."""
    import boto3

    sqs = boto3.client("sqs")
    name = f"q-{uuid.uuid4().hex[:10]}"
    dlq = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})
    main = sqs.create_queue(
        QueueName=name,
        Attributes={"VisibilityTimeout": "30", "RedrivePolicy": policy},
    )["QueueUrl"]
    return {"sqs": sqs, "main": main, "dlq": dlq}


def _messages(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


@pytest.mark.parametrize("poison", list(POISON_BODIES))
def test_the_batch_job_dead_letters_an_undecodable_message_at_once(
    queues: dict[str, Any], monkeypatch: pytest.MonkeyPatch, poison: str
) -> None:
    """Before the fix the deep ones and `1e999` raised RecursionError / OverflowError:
    retryable, so the message came back until maxReceiveCount."""
    from batch.lambda_handler import ENV_BODY, ENV_MESSAGE_ID, ENV_RECEIPT
    from batch.process_video import EXIT_CONFIG, EXIT_FAILED, JobConfig, run, run_chunk

    sqs, main, dlq = queues["sqs"], queues["main"], queues["dlq"]
    body = POISON_BODIES[poison]("raw-bucket")
    sqs.send_message(QueueUrl=main, MessageBody=body)
    (message,) = sqs.receive_message(QueueUrl=main, MaxNumberOfMessages=1)["Messages"]
    monkeypatch.setenv(ENV_RECEIPT, message["ReceiptHandle"])
    monkeypatch.setenv(ENV_MESSAGE_ID, message["MessageId"])
    monkeypatch.setenv(ENV_BODY, body)
    config = JobConfig(
        queue_url=main,
        bucket_raw="raw-bucket",
        fastapi_endpoint="http://127.0.0.1:9",  # never called
        db_secret_arn=None,
        poll_s=0.1,
    )
    assert run(config, threading.Event()) == EXIT_FAILED
    assert _messages(sqs, main) == 0, "the message stays for redelivery"
    (dead,) = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert dead["Body"] == body

    # an array child given the same body: a configuration exit, not a crash
    chunk = JobConfig(
        queue_url="", bucket_raw="", fastapi_endpoint="", db_secret_arn=None, mode="chunk",
        array_index=0,
    )  # fmt: skip
    assert run_chunk(chunk, threading.Event()) == EXIT_CONFIG


def test_strict_parsing_names_what_it_refuses() -> None:
    from batch.events import MalformedEventError, parse_message

    reasons: dict[str, Callable[[str], str]] = {
        "non-string key": lambda r: "empty bucket or key" in r,
        "nested 3000 deep": lambda r: "nested deeper" in r,
        "NaN size": lambda r: "NaN" in r,
        "1e999 size": lambda r: "1e999" in r,
        "nested object 2000 deep": lambda r: "nested deeper" in r,
    }  # type: ignore[dict-item]
    for name, make in POISON_BODIES.items():
        with pytest.raises(MalformedEventError) as caught:
            parse_message(make("raw"))
        assert reasons[name](str(caught.value)), (name, str(caught.value))
