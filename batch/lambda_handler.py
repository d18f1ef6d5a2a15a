"""Lambda function (SQS trigger): submit the AWS Batch analysis job(s) of each uploaded video.

Packaged as this single file (handler `lambda_handler.handler`), so it imports only the
standard library and boto3. Environment: `BATCH_JOB_QUEUE`, `BATCH_JOB_DEFINITION`;
optional `CAPSTONE_ANALYSIS_PARAMS` (JSON analysis parameters: `chunk_s`, default 60, sets the
split; when set it is passed to every job, so the jobs analyze with the parameters the split
was made for), `CAPSTONE_BATCH_ARRAY_MIN_CHUNKS` (default 2), and the budgets
`MAX_VIDEO_DURATION_S` (default 86400) and `MAX_CHUNKS_PER_JOB` (default 1440), the same
variables as the jobs' settings.

Per SQS record (see batch/README.md for why):

* `s3:TestEvent`, events that create nothing -> done (the event source mapping deletes it);
* a body that is not an S3 event (not JSON, nested deeper than 32, `NaN` / `Infinity` /
  `1e999`, a non-string name: whatever one record raises) -> reported in
  `batchItemFailures`, the other records still submitted: it returns after the
  visibility timeout and, after `maxReceiveCount` receives, lands in the dead-letter queue;
* a video whose job is already active (same deterministic job name) -> done: that job
  holds the message that started it, so this duplicate adds nothing; invocations that
  check at the same time all submit, then each lists the active jobs of the name again
  and every one but the first submitted (`createdAt`, then job id: all agree) terminates
  its own jobs (`TerminateJob`, before they start on AWS) and is done;
* otherwise the video is split (`plan`): HeadObject reads `x-amz-meta-duration` (written by
  the upload route); `chunk_count(duration, chunk_s)` chunks, at least the threshold ->
  an **array job** `{name}-chunks` (`arrayProperties.size` = chunks, one child per chunk,
  `CAPSTONE_BATCH_MODE=chunk`: each stages its chunk) plus a **stitch job** `{name}`
  (`dependsOn` the array job, `CAPSTONE_BATCH_MODE=stitch`: publishes, running any chunk
  that is not done itself). No or hostile metadata, a short video, a failed HEAD, a message
  naming several videos -> one job `{name}` as before (it runs every chunk itself). A
  duration over `MAX_VIDEO_DURATION_S` or more chunks than `MAX_CHUNKS_PER_JOB` (the
  metadata is the header's claim) -> never an array job: logged, and the single job fails
  the analysis at once, permanently, with the budget named in its row (message to the DLQ).
* the record is reported in `batchItemFailures` *on purpose*: the job (the stitch job of an
  array run) now owns the in-flight message (extends its visibility once it runs, deletes it
  on success, moves it to the DLQ on a permanent failure), so the event source mapping must
  not delete it.

A failed child fails the stitch job without running it (AWS `dependsOn` semantics): nobody
deletes the message, it returns after the queue's visibility timeout, the stitch job's name
is no longer active, and the video is submitted again; chunks already staged return at once,
the failed one runs again; after `maxReceiveCount` the message is dead-lettered. Children
exit 0 on permanent failures (nothing to retry) so the stitch job reports those at once.

>>> job_name("raw", "videos/test-001/clip one.mp4")[:25]
'analyze-test-001-clip-one'
>>> chunk_count(150.0, 60.0), chunk_count(0.5, 60.0)
(3, 1)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

log = logging.getLogger("batch.lambda_handler")
log.setLevel(logging.INFO)

ACTIVE_STATES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
MAX_OVERRIDE_BODY = 16 * 1024  # SubmitJob requests are limited to 30 KiB

# Environment variables a submitted job gets on top of its job definition's four.
ENV_BODY = "CAPSTONE_SQS_MESSAGE_BODY"
ENV_MESSAGE_ID = "CAPSTONE_SQS_MESSAGE_ID"
ENV_RECEIPT = "CAPSTONE_SQS_RECEIPT_HANDLE"
ENV_MODE = "CAPSTONE_BATCH_MODE"
ENV_PARAMS = "CAPSTONE_ANALYSIS_PARAMS"
ENV_MIN_CHUNKS = "CAPSTONE_BATCH_ARRAY_MIN_CHUNKS"
ENV_ARRAY_INDEX = "AWS_BATCH_JOB_ARRAY_INDEX"  # set by Batch in each array child

# Object metadata the upload route writes (capstone.io.s3.DURATION_METADATA).
DURATION_METADATA = "duration"
MAX_DURATION_S = 7 * 86400.0  # capstone.io.s3.MAX_DURATION_S
DEFAULT_CHUNK_S = 60.0  # capstone.stages.params.AnalysisParams.chunk_s
MIN_ARRAY_SIZE = 2  # AWS Batch accepts arrayProperties.size 2..10000
MAX_CHUNKS = 2000  # capstone.core.chunks.MAX_CHUNKS: more chunks fail the analysis (single job)
# Budgets, the same environment variables and defaults as capstone.config.Settings: above
# them the video gets no array job; its single job fails it at once, permanently, with a
# reason naming the budget (recorded in its analysis row) and dead-letters the message.
ENV_MAX_CHUNKS = "MAX_CHUNKS_PER_JOB"
ENV_MAX_DURATION = "MAX_VIDEO_DURATION_S"
DEFAULT_MAX_CHUNKS = 1440  # Settings.max_chunks_per_job
DEFAULT_MAX_DURATION_S = 86400.0  # Settings.max_video_duration_s
ARRAY_SUFFIX = "-chunks"


class BadRecord(ValueError):
    """An SQS record whose body is not an S3 event notification."""


MAX_JSON_DEPTH = 32  # an S3 event nests 5 deep; json.loads recurses once per level
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is not a finite number")
    return value


def strict_json(text: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` for hostile text: nesting deeper than `max_depth` is refused before
    parsing (no `RecursionError`), and so are `NaN`, `Infinity` and numbers that overflow
    to infinity (`1e999`). Raises `ValueError` (a `json.JSONDecodeError` for bad JSON).

    >>> strict_json('{"a": [1, 2.5]}')
    {'a': [1, 2.5]}
    >>> for bad in ('[' * 5000 + ']' * 5000, '{"size": NaN}', '{"size": 1e999}'):
    ...     try:
    ...         strict_json(bad)
    ...     except ValueError as exc:
    ...         print(exc)
    JSON nested deeper than 32 levels
    NaN is not a JSON number
    1e999 is not a finite number
    """
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        c = token.group()
        if c in "[{":
            depth += 1
            if depth > max_depth:
                raise ValueError(f"JSON nested deeper than {max_depth} levels")
        elif c in "]}":
            depth -= 1
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def created_objects(body: str) -> list[tuple[str, str]]:
    """(bucket, key) of every `ObjectCreated` record of one body; `[]` for `s3:TestEvent`.

    Only what naming the job needs; the job re-validates the body with `batch.events`.

    >>> created_objects('{"Event": "s3:TestEvent"}')
    []
    """
    if len(body) > MAX_OVERRIDE_BODY:
        raise BadRecord(f"body of {len(body)} characters is too large for an S3 event")
    try:
        data = strict_json(body)
    except json.JSONDecodeError as exc:
        raise BadRecord(f"body is not JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:
        raise BadRecord(f"body is not plain JSON ({exc})") from None
    if isinstance(data, dict) and data.get("Event") == "s3:TestEvent":
        return []
    records = data.get("Records") if isinstance(data, dict) else None
    if not isinstance(records, list) or not records:
        raise BadRecord("body has no S3 event Records")
    found: list[tuple[str, str]] = []
    for record in records:
        try:
            name = record["eventName"]
            bucket = record["s3"]["bucket"]["name"]
            key = record["s3"]["object"]["key"]
        except (KeyError, TypeError):
            raise BadRecord("record lacks eventName, s3.bucket.name or s3.object.key") from None
        if not all(isinstance(v, str) and v for v in (name, bucket, key)):
            raise BadRecord("record has an empty or non-string eventName, bucket or key")
        key = unquote_plus(key)
        if name.startswith("ObjectCreated:") and (bucket, key) not in found:
            found.append((bucket, key))
    return found


def job_name(bucket: str, key: str) -> str:
    """Deterministic Batch job name of one video (<= 128 letters, digits, `-`, `_`)."""
    parts = key.split("/")
    readable = parts[1] + "-" + parts[-1] if len(parts) == 3 and parts[0] == "videos" else key
    slug = re.sub(r"[^A-Za-z0-9]+", "-", readable.rsplit(".", 1)[0]).strip("-")[:80] or "video"
    digest = hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()[:12]
    return f"analyze-{slug}-{digest}"


def job_name_of(objects: list[tuple[str, str]]) -> str:
    """One video: `job_name`; a message naming several: a name over all of them."""
    if len(objects) == 1:
        return job_name(*objects[0])
    digest = hashlib.sha256(json.dumps(sorted(objects)).encode()).hexdigest()[:16]
    return f"analyze-{len(objects)}-videos-{digest}"


def chunk_count(duration_s: float, chunk_s: float) -> int:
    """`ceil(duration / chunk_s)`, at least 1 (as `capstone.core.chunks.chunk_count`)."""
    if not math.isfinite(duration_s) or duration_s <= 0:
        return 1
    return max(1, math.ceil(duration_s / chunk_s - 1e-9))


def parse_duration(value: Any) -> float | None:
    """Seconds from object metadata, or None unless a plain finite number in (0, a week]:
    metadata is hostile input (`capstone.io.s3.parse_duration` reads it alike).

    >>> [parse_duration(v) for v in ("150", "nan", "-1", "1e30", "ten", " 9.5 ")]
    [150.0, None, None, None, None, 9.5]
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 32:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and 0 < seconds <= MAX_DURATION_S else None


@dataclass(frozen=True)
class Split:
    """How the handler splits long videos: `s3` (a client for HeadObject; None: never
    split), `chunk_s`, the smallest chunk count worth an array job, and the analysis
    parameters JSON to pass to the jobs (None: the job definition's)."""

    s3: Any = None
    chunk_s: float = DEFAULT_CHUNK_S
    min_chunks: int = MIN_ARRAY_SIZE
    params_json: str | None = None
    max_chunks: int = DEFAULT_MAX_CHUNKS
    max_duration_s: float = DEFAULT_MAX_DURATION_S

    @classmethod
    def from_env(cls, env: dict[str, str], s3: Any) -> Split:
        """From the function's environment; bad values fall back to the defaults (the jobs
        reject bad parameters themselves)."""
        params_json = env.get(ENV_PARAMS) or None
        chunk_s = DEFAULT_CHUNK_S
        if params_json:
            try:
                params = json.loads(params_json)
                value = float(params.get("chunk_s", DEFAULT_CHUNK_S))
                if math.isfinite(value) and 1.0 <= value <= 86400.0:
                    chunk_s = value
            except (ValueError, TypeError, AttributeError):
                log.warning("%s is not a JSON object with a valid chunk_s; using 60 s", ENV_PARAMS)
        try:
            min_chunks = max(MIN_ARRAY_SIZE, int(env.get(ENV_MIN_CHUNKS) or MIN_ARRAY_SIZE))
            min_chunks = min(min_chunks, MAX_CHUNKS)
        except ValueError:
            min_chunks = MIN_ARRAY_SIZE
        max_chunks, max_duration_s = DEFAULT_MAX_CHUNKS, DEFAULT_MAX_DURATION_S
        try:
            max_chunks = min(MAX_CHUNKS, max(1, int(env.get(ENV_MAX_CHUNKS) or max_chunks)))
        except ValueError:
            log.warning("%s is not an integer; using %d", ENV_MAX_CHUNKS, max_chunks)
        duration = parse_duration(env.get(ENV_MAX_DURATION) or str(max_duration_s))
        if duration is None:
            log.warning("%s is not a duration; using %g s", ENV_MAX_DURATION, max_duration_s)
        return cls(
            s3=s3,
            chunk_s=chunk_s,
            min_chunks=min_chunks,
            params_json=params_json,
            max_chunks=max_chunks,
            max_duration_s=duration or max_duration_s,
        )

    def plan(self, bucket: str, key: str) -> int:
        """How many array children the video gets: 0 for a single job."""
        if self.s3 is None:
            return 0
        try:
            answer = self.s3.head_object(Bucket=bucket, Key=key)
        except Exception as exc:  # missing, forbidden, S3 outage: the single job decides
            log.warning("HeadObject s3://%s/%s failed (%s); single job", bucket, key, exc)
            return 0
        metadata = {str(k).lower(): v for k, v in (answer.get("Metadata") or {}).items()}
        duration = parse_duration(metadata.get(DURATION_METADATA))
        if duration is None:
            return 0
        if duration > self.max_duration_s:  # a header's claim: never an array job
            log.error(
                "s3://%s/%s claims %.0f s, over %s=%g: no array job; the single job refuses it",
                bucket, key, duration, ENV_MAX_DURATION, self.max_duration_s,
            )  # fmt: skip
            return 0
        n = chunk_count(duration, self.chunk_s)
        if n > self.max_chunks:
            log.error(
                "s3://%s/%s: %d chunks of %g s, over %s=%d: no array job; the single job"
                " refuses it",
                bucket, key, n, self.chunk_s, ENV_MAX_CHUNKS, self.max_chunks,
            )  # fmt: skip
            return 0
        return n if self.min_chunks <= n else 0


def _jobs_named(batch: Any, queue: str, name: str) -> list[dict[str, Any]]:
    """Every job of that name in the queue, any status (ListJobs by name, all pages)."""
    pages = {"jobQueue": queue, "filters": [{"name": "JOB_NAME", "values": [name]}]}
    found = []
    while True:
        answer = batch.list_jobs(**pages)
        found += [j for j in answer.get("jobSummaryList", []) if j.get("jobName") == name]
        token = answer.get("nextToken")
        if not token:
            return found
        pages["nextToken"] = token


def active_job(batch: Any, queue: str, name: str) -> dict[str, Any] | None:
    """The first-submitted active job of that name in the queue (by `createdAt`, then id:
    every invocation that asks picks the same one), or None."""
    active = [j for j in _jobs_named(batch, queue, name) if j.get("status") in ACTIVE_STATES]
    return (
        min(active, key=lambda j: (j.get("createdAt", 0), j.get("jobId", ""))) if active else None
    )


def submit(
    batch: Any,
    queue: str,
    definition: str,
    name: str,
    bucket: str,
    key: str,
    record: dict[str, Any],
    size: int,
    split: Split | None,
) -> list[dict[str, Any]]:
    """Submit the single job (`size` 0) or the array job of `size` children + the stitch
    job; the answers in order of submission (the last job holds the message)."""
    body = str(record.get("body", ""))
    message = [
        {"name": ENV_MESSAGE_ID, "value": str(record.get("messageId", ""))},
        {"name": ENV_RECEIPT, "value": str(record.get("receiptHandle", ""))},
        {"name": ENV_BODY, "value": body},
    ]
    params = (
        [{"name": ENV_PARAMS, "value": split.params_json}] if split and split.params_json else []
    )
    common = {
        "jobQueue": queue,
        "jobDefinition": definition,
        "parameters": {"s3_bucket": bucket, "s3_key": key},
    }
    if size < MIN_ARRAY_SIZE:
        return [
            batch.submit_job(
                jobName=name, containerOverrides={"environment": message + params}, **common
            )
        ]
    array = batch.submit_job(
        jobName=name + ARRAY_SUFFIX,
        arrayProperties={"size": size},
        containerOverrides={  # the body names the video; the children hold no message
            "environment": [
                {"name": ENV_MODE, "value": "chunk"},
                {"name": ENV_BODY, "value": body},
                *params,
            ]
        },
        **common,
    )
    log.info("submitted array job %s%s (%s), %d chunks", name, ARRAY_SUFFIX, array["jobId"], size)
    stitch = batch.submit_job(
        jobName=name,
        dependsOn=[{"jobId": array["jobId"]}],
        containerOverrides={
            "environment": [{"name": ENV_MODE, "value": "stitch"}, *message, *params]
        },
        **common,
    )
    return [array, stitch]


def handle(
    event: dict[str, Any], batch: Any, queue: str, definition: str, split: Split | None = None
) -> dict[str, Any]:
    """The handler's work with an explicit Batch client (boto3's, or the local runner) and
    split configuration (None: one job per video, never an array job)."""
    failures: list[dict[str, str]] = []
    submitted: set[str] = set()
    for record in event.get("Records", []):
        message_id = str(record.get("messageId", "")) if isinstance(record, dict) else ""
        try:  # whatever one record raises fails that record only, never the others
            objects = created_objects(str(record.get("body", "")))
            name = job_name_of(objects) if objects else ""
        except Exception as exc:
            reason = exc if isinstance(exc, BadRecord) else f"{type(exc).__name__}: {exc}"
            log.error("message %s rejected: %s", message_id, reason)
            failures.append({"itemIdentifier": message_id})
            continue
        if not objects:
            log.info("message %s names no created object (test event); done", message_id)
            continue
        try:
            running = {"jobName": name} if name in submitted else active_job(batch, queue, name)
            if running is not None:
                log.info("message %s: job %s is already active; duplicate", message_id, name)
                continue
            bucket, key = objects[0]
            size = split.plan(bucket, key) if split is not None and len(objects) == 1 else 0
            created = submit(batch, queue, definition, name, bucket, key, record, size, split)
            holder = created[-1].get("jobId")
            first = active_job(batch, queue, name)
            if first is not None and first.get("jobId") != holder:
                # A concurrent invocation submitted the same video first: ours goes.
                for job in reversed(created):
                    reason = f"duplicate of job {first.get('jobId')}"
                    batch.terminate_job(jobId=job["jobId"], reason=reason)
                log.info("message %s: job %s was submitted twice; duplicate", message_id, name)
                continue
        except Exception as exc:  # Batch throttling or outage: SQS redelivers the record
            log.error("message %s: cannot submit job %s: %s", message_id, name, exc)
            failures.append({"itemIdentifier": message_id})
            continue
        submitted.add(name)
        log.info("message %s: submitted job %s (%s)", message_id, name, holder)
        # The job owns the in-flight message now: keep the event source from deleting it.
        failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """AWS Lambda entry point."""
    import boto3

    queue = os.environ["BATCH_JOB_QUEUE"]
    definition = os.environ["BATCH_JOB_DEFINITION"]
    split = Split.from_env(dict(os.environ), boto3.client("s3"))
    return handle(event, boto3.client("batch"), queue, definition, split)
