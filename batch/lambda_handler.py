"""Lambda function (SQS trigger): submit one AWS Batch analysis job per uploaded video.

Packaged as this single file (handler `lambda_handler.handler`), so it imports only the
standard library and boto3. Environment: `BATCH_JOB_QUEUE`, `BATCH_JOB_DEFINITION`.

Per SQS record (see batch/README.md for why):

* `s3:TestEvent`, events that create nothing -> done (the event source mapping deletes it);
* a body that is not an S3 event -> reported in `batchItemFailures`: it returns after the
  visibility timeout and, after `maxReceiveCount` receives, lands in the dead-letter queue;
* a video whose job is already active (same deterministic job name) -> done: that job
  holds the message that started it, so this duplicate adds nothing;
* otherwise -> `SubmitJob` with the bucket, key and the message's receipt handle, and the
  record is reported in `batchItemFailures` *on purpose*: the job now owns the in-flight
  message (extends its visibility, deletes it on success, leaves it on failure), so the
  event source mapping must not delete it.

>>> job_name("raw", "videos/test-001/clip one.mp4")[:25]
'analyze-test-001-clip-one'
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
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


class BadRecord(ValueError):
    """An SQS record whose body is not an S3 event notification."""


def created_objects(body: str) -> list[tuple[str, str]]:
    """(bucket, key) of every `ObjectCreated` record of one body; `[]` for `s3:TestEvent`.

    Only what naming the job needs; the job re-validates the body with `batch.events`.

    >>> created_objects('{"Event": "s3:TestEvent"}')
    []
    """
    if len(body) > MAX_OVERRIDE_BODY:
        raise BadRecord(f"body of {len(body)} characters is too large for an S3 event")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise BadRecord(f"body is not JSON ({exc.msg})") from None
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
            key = unquote_plus(record["s3"]["object"]["key"])
        except (KeyError, TypeError):
            raise BadRecord("record lacks eventName, s3.bucket.name or s3.object.key") from None
        if not all(isinstance(v, str) and v for v in (name, bucket, key)):
            raise BadRecord("record has an empty eventName, bucket or key")
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


def active_job(batch: Any, queue: str, name: str) -> dict[str, Any] | None:
    """An active job of that name in the queue (ListJobs by name returns every status)."""
    pages = {"jobQueue": queue, "filters": [{"name": "JOB_NAME", "values": [name]}]}
    while True:
        answer = batch.list_jobs(**pages)
        for job in answer.get("jobSummaryList", []):
            if job.get("jobName") == name and job.get("status") in ACTIVE_STATES:
                return job
        token = answer.get("nextToken")
        if not token:
            return None
        pages["nextToken"] = token


def handle(event: dict[str, Any], batch: Any, queue: str, definition: str) -> dict[str, Any]:
    """The handler's work with an explicit Batch client (boto3's, or the local runner)."""
    failures: list[dict[str, str]] = []
    submitted: set[str] = set()
    for record in event.get("Records", []):
        message_id = str(record.get("messageId", ""))
        try:
            objects = created_objects(str(record.get("body", "")))
        except BadRecord as exc:
            log.error("message %s rejected: %s", message_id, exc)
            failures.append({"itemIdentifier": message_id})
            continue
        if not objects:
            log.info("message %s names no created object (test event); done", message_id)
            continue
        name = job_name_of(objects)
        try:
            running = {"jobName": name} if name in submitted else active_job(batch, queue, name)
            if running is not None:
                log.info("message %s: job %s is already active; duplicate", message_id, name)
                continue
            bucket, key = objects[0]
            answer = batch.submit_job(
                jobName=name,
                jobQueue=queue,
                jobDefinition=definition,
                parameters={"s3_bucket": bucket, "s3_key": key},
                containerOverrides={
                    "environment": [
                        {"name": ENV_MESSAGE_ID, "value": message_id},
                        {"name": ENV_RECEIPT, "value": str(record.get("receiptHandle", ""))},
                        {"name": ENV_BODY, "value": str(record.get("body", ""))},
                    ]
                },
            )
        except Exception as exc:  # Batch throttling or outage: SQS redelivers the record
            log.error("message %s: cannot submit job %s: %s", message_id, name, exc)
            failures.append({"itemIdentifier": message_id})
            continue
        submitted.add(name)
        log.info("message %s: submitted job %s (%s)", message_id, name, answer.get("jobId"))
        # The job owns the in-flight message now: keep the event source from deleting it.
        failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """AWS Lambda entry point."""
    import boto3

    queue = os.environ["BATCH_JOB_QUEUE"]
    definition = os.environ["BATCH_JOB_DEFINITION"]
    return handle(event, boto3.client("batch"), queue, definition)
