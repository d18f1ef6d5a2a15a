"""The AWS Batch job entrypoint: `python -m batch.process_video` (the orchestrator).

It takes over the SQS message that started it (handed over by the Lambda handler as
`CAPSTONE_SQS_RECEIPT_HANDLE` + `CAPSTONE_SQS_MESSAGE_BODY`; without them it receives one
message from `SQS_QUEUE_URL` itself), parses the S3 event with `batch.events`, and has each
video analyzed:

* mode `service` (default, `CAPSTONE_BATCH_MODE`): `POST {FASTAPI_ENDPOINT}/analyze?wait=false`
  and poll `GET /analyses/{id}` until the result is stored (no HTTP request stays open for
  the whole analysis, so load balancer idle timeouts do not matter);
* mode `notebook`: papermill runs `notebooks/analyze_video.ipynb`; the executed notebook is
  stored with the analysis row;
* mode `chunk` (a child of the array job the Lambda submits for a long video): analyzes
  chunk `AWS_BATCH_JOB_ARRAY_INDEX` in this process (`capstone.runtime.pipeline.analyze(...,
  chunks=[i], publish=False)`, database from `DB_SECRET_ARN`) and stages its rows. It holds
  no SQS message (the video comes from `CAPSTONE_SQS_MESSAGE_BODY`). Exit 0 when staged, when
  the chunk is done or held by another worker (a duplicate child), and on a permanent
  failure (the stitch job reports it); 1 on a retryable failure, which fails the stitch job
  that `dependsOn` the array (see batch/lambda_handler.py for the recovery);
* mode `stitch` (`dependsOn` the array job): `analyze(..., publish=True)` runs any chunk not
  done yet itself, stitches and publishes; it owns the SQS message like mode `service`. When
  it cannot hold the message any more (redelivered while the children ran and deleted as a
  duplicate) it still publishes: the work is idempotent, only the message is gone.

In modes `service` and `notebook` it writes no analysis rows itself. While it works, a
heartbeat keeps extending the message's visibility; on success it deletes the message; on a
transient failure it leaves it, so SQS redelivers it and, after `maxReceiveCount`, moves it
to the dead-letter queue. A permanent failure (the object is missing, not a video, or
refused: an API answer whose body says `"retryable": false`, or, without that field, a 4xx;
a failed row marked not retryable; an error whose class is not retryable,
`capstone.errors.policy_of`) moves the message to the dead-letter queue at once. When the
API dies under an analysis (its row stays `processing` but the lease expires), the job
notices the dead lease in `GET /analyses/{id}` and POSTs again, so the restarted API
resumes it. SIGTERM stops it cleanly (message left for redelivery, exit 143).

Environment: `SQS_QUEUE_URL`, `S3_BUCKET_RAW`, `FASTAPI_ENDPOINT`, `DB_SECRET_ARN` (its JSON
may carry `api_token`, the bearer token for the API; locally `CAPSTONE_API_TOKEN` works too).
Optional: `CAPSTONE_ANALYSIS_PARAMS` (JSON analysis parameters), `CAPSTONE_POLL_S`.
`FASTAPI_ENDPOINT` is needed in mode `service` only, `SQS_QUEUE_URL` in every mode but
`chunk`, `AWS_BATCH_JOB_ARRAY_INDEX` (set by Batch) in mode `chunk` only.
Exit codes: 0 done, 1 failed (message left), 2 bad configuration, 143 stopped by SIGTERM.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batch.events import MalformedEventError, S3Object, parse_message
from batch.lambda_handler import ENV_ARRAY_INDEX, ENV_BODY, ENV_MESSAGE_ID, ENV_RECEIPT
from capstone.errors import CapstoneError, ConfigError, policy_of

if TYPE_CHECKING:
    from capstone.runtime.heartbeat import Heartbeat

log = logging.getLogger("batch.process_video")

MODES = ("service", "notebook", "chunk", "stitch")
PIPELINE_MODES = ("chunk", "stitch")  # capstone.runtime.pipeline in this process, not the API
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_TERMINATED = 0, 1, 2, 143
# API answers that a retry cannot change, for an answer whose body does not say
# (`retryable`), e.g. a proxy's error page.
PERMANENT_STATUS = frozenset({400, 403, 404, 409, 413, 415, 422})
ORPHAN_GRACE_S = 30.0


class AnalysisFailed(CapstoneError):
    """The analysis of a video failed (the message stays for redelivery)."""

    retryable = True
    code = "analysis_failed"


class PermanentFailure(AnalysisFailed):
    """Retrying cannot help (not found, not a video, refused): the message goes to the
    dead-letter queue at once instead of being analyzed again on every receive."""

    retryable = False
    code = "permanent_failure"


class Stopped(CapstoneError):
    """SIGTERM arrived while the job was working."""

    exit_code = EXIT_TERMINATED
    retryable = True
    code = "stopped"


def failure(retryable: bool) -> type[AnalysisFailed]:
    """The failure to raise for a failed analysis: retried, or dead-lettered at once."""
    return AnalysisFailed if retryable else PermanentFailure


def answer_is_retryable(status: int, body: dict[str, Any]) -> bool:
    """Whether an API error answer can change on a retry: what its body says
    (`retryable`, `service.errors`), else, for a body without it, its status.

    >>> answer_is_retryable(503, {"code": "misconfigured", "retryable": False})
    False
    >>> answer_is_retryable(422, {"code": "analysis_failed", "retryable": True})
    True
    >>> answer_is_retryable(404, {"detail": "<html>Not Found</html>"})
    False
    >>> answer_is_retryable(502, {"detail": "Bad Gateway"})
    True
    """
    stated = body.get("retryable")
    if isinstance(stated, bool):
        return stated
    return status not in PERMANENT_STATUS


@dataclass
class JobConfig:
    """What the job reads from its environment."""

    queue_url: str
    bucket_raw: str
    fastapi_endpoint: str
    db_secret_arn: str | None
    mode: str = "service"
    params: dict[str, Any] | None = None
    poll_s: float = 2.0
    array_index: int | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> JobConfig:
        env = dict(os.environ if env is None else env)
        mode = env.get("CAPSTONE_BATCH_MODE", "service").strip().lower() or "service"
        if mode not in MODES:
            raise ConfigError(f"CAPSTONE_BATCH_MODE must be one of {', '.join(MODES)}")
        needed = {"service": ("SQS_QUEUE_URL", "FASTAPI_ENDPOINT"), "chunk": ()}
        missing = [n for n in needed.get(mode, ("SQS_QUEUE_URL",)) if not env.get(n)]
        if missing:
            raise ConfigError(f"set {', '.join(missing)} for the analysis job")
        array_index = None
        if mode == "chunk":
            text = env.get(ENV_ARRAY_INDEX, "").strip()
            if not text.isdigit() or int(text) >= 10_000:
                raise ConfigError(f"mode chunk runs as an array child: {ENV_ARRAY_INDEX}={text!r}")
            array_index = int(text)
        params = None
        if env.get("CAPSTONE_ANALYSIS_PARAMS"):
            try:
                params = json.loads(env["CAPSTONE_ANALYSIS_PARAMS"])
            except json.JSONDecodeError as exc:
                raise ConfigError(f"CAPSTONE_ANALYSIS_PARAMS is not JSON ({exc.msg})") from None
        return cls(
            queue_url=env.get("SQS_QUEUE_URL", ""),
            bucket_raw=env.get("S3_BUCKET_RAW", ""),
            fastapi_endpoint=env.get("FASTAPI_ENDPOINT", "").rstrip("/"),
            db_secret_arn=env.get("DB_SECRET_ARN") or None,
            mode=mode,
            params=params,
            poll_s=float(env.get("CAPSTONE_POLL_S", "2")),
            array_index=array_index,
        )


@dataclass
class Message:
    """The SQS message this job owns."""

    message_id: str
    receipt_handle: str
    body: str


def sqs_client() -> Any:
    import boto3

    return boto3.client("sqs", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)


def take_message(sqs: Any, queue_url: str, wait_s: int = 20) -> Message | None:
    """The handed-over message, else one received from the queue (None: queue empty)."""
    if os.environ.get(ENV_RECEIPT):
        return Message(
            os.environ.get(ENV_MESSAGE_ID, ""),
            os.environ[ENV_RECEIPT],
            os.environ.get(ENV_BODY, ""),
        )
    got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=wait_s)
    for m in got.get("Messages", []):
        return Message(m["MessageId"], m["ReceiptHandle"], m.get("Body", ""))
    return None


def visibility_heartbeat(sqs: Any, queue_url: str, receipt_handle: str) -> Heartbeat:
    """The library's lease heartbeat holding the message: its visibility is extended by
    the queue's visibility timeout every quarter of it."""
    from capstone.runtime.heartbeat import Heartbeat

    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])
    timeout_s = max(1, int(attrs["Attributes"]["VisibilityTimeout"]))

    def extend() -> None:
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=timeout_s
        )

    return Heartbeat(None, None, timeout_s, renew=[extend], name="sqs-heartbeat")


def api_token(db_secret_arn: str | None) -> str | None:
    """The API bearer token: `api_token` of the DB secret's JSON, else `CAPSTONE_API_TOKEN`."""
    if db_secret_arn:
        import boto3

        client = boto3.client(
            "secretsmanager", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None
        )
        try:
            secret = client.get_secret_value(SecretId=db_secret_arn)["SecretString"]
        except Exception as exc:
            raise ConfigError(f"cannot read secret {db_secret_arn}: {exc}") from None
        try:
            data = json.loads(secret)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and data.get("api_token"):
            return str(data["api_token"])
    return os.environ.get("CAPSTONE_API_TOKEN") or None


def video_id_for(obj: S3Object) -> str:
    """The id the API would derive; for a missing object, the one from its key, so that
    the API records the failed analysis under a stable id."""
    from capstone.errors import InputError
    from capstone.io.s3 import object_video_id, video_id_from_key

    try:
        return object_video_id(obj.bucket, obj.key)
    except InputError:
        return video_id_from_key(obj.key)


class ServiceClient:
    """`POST /analyze` + status polling against the FastAPI service."""

    def __init__(self, endpoint: str, token: str | None, stop: threading.Event, poll_s: float):
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.endpoint = endpoint
        self.http = httpx.Client(base_url=endpoint, headers=headers, timeout=60.0)
        self.stop, self.poll_s = stop, poll_s

    def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        import httpx

        for attempt in range(6):
            self._check_stop()
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 500:
                    return response
                if not answer_is_retryable(response.status_code, _json(response)):
                    return response  # e.g. 503 misconfigured: the caller fails for good
                reason = f"HTTP {response.status_code}: {response.text[:300]}"
            log.warning("FastAPI request failed (%s); retrying", reason)
            self.stop.wait(min(30.0, self.poll_s * 2**attempt))
        raise AnalysisFailed(f"FastAPI at {self.endpoint} unavailable: {reason}")

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Stopped("stopped by SIGTERM")

    def analyze(self, obj: S3Object, video_id: str, params: dict[str, Any] | None) -> Any:
        """Start or join the analysis and wait for its stored result; the 200 answer."""
        body: dict[str, Any] = {"s3_bucket": obj.bucket, "s3_key": obj.key, "video_id": video_id}
        if params:
            body["params"] = params
        log.info("Calling FastAPI: %s/analyze", self.endpoint)
        while True:
            response = self._request("POST", "/analyze", params={"wait": "false"}, json=body)
            data = _json(response)
            if response.status_code == 200:
                return data
            if response.status_code in (202, 409) and data.get("code") != "content_conflict":
                status_url = data.get("status_url") or f"/analyses/{data.get('analysis_id')}"
                if response.status_code == 409:
                    log.info("Analysis already running elsewhere: %s", data.get("detail"))
                self._wait_for(status_url)
                continue  # stored (the next POST answers 200 at once) or its worker died
            raise failure(answer_is_retryable(response.status_code, data))(
                f"FastAPI answered {response.status_code}: {data.get('detail') or data}"
            )

    def _wait_for(self, status_url: str) -> None:
        """Poll until the analysis is stored; return early when its worker died (the
        caller POSTs again). Raises on failure."""
        last = None
        orphaned_since: float | None = None
        while True:
            self.stop.wait(self.poll_s)
            response = self._request("GET", status_url)
            data = _json(response)
            if response.status_code != 200:
                raise failure(answer_is_retryable(response.status_code, data))(
                    f"{status_url} answered {response.status_code}: {data}"
                )
            state = (data.get("status"), data.get("stage"), round(data.get("progress") or 0))
            if state != last:
                log.info("Analysis %s: %s %s (%s%%)", data.get("id"), *state)
                last = state
            if data.get("status") == "completed":
                return
            if data.get("status") == "failed":
                retryable = (data.get("summary") or {}).get("retryable") is not False
                raise failure(retryable)(f"analysis {data.get('id')} failed: {data.get('error')}")
            if data.get("lease_live", True):
                orphaned_since = None
                continue
            # processing with a dead lease: its worker died; pending without one: nobody
            # picked it up (e.g. the API restarted). Give it a grace period, then re-POST.
            orphaned_since = orphaned_since or time.monotonic()
            grace = 0.0 if data.get("status") == "processing" else ORPHAN_GRACE_S
            if time.monotonic() - orphaned_since >= grace:
                log.warning("Analysis %s has no live worker; asking FastAPI again", data.get("id"))
                return


def _json(response: Any) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {"detail": response.text[:300]}
    return data if isinstance(data, dict) else {"detail": data}


def run_notebook_mode(obj: S3Object, video_id: str, params: dict[str, Any] | None) -> int:
    """papermill `analyze_video` for one video; stores the executed notebook; analysis id."""
    from capstone.runtime import notebooks
    from capstone.stages.params import AnalysisParams

    known = notebooks.parameters_of("analyze_video")
    if {"bucket", "key"} <= set(known):
        values: dict[str, Any] = {"bucket": obj.bucket, "key": obj.key}
    elif "video" in known:
        values = {"video": obj.uri}
    else:
        raise ConfigError("analyze_video.ipynb has no bucket/key or video parameter")
    if "video_id" in known:
        values["video_id"] = video_id
    # Every parameter explicitly, so both modes analyze with the same AnalysisParams.
    try:
        chosen = AnalysisParams(**(params or {})).canonical()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"CAPSTONE_ANALYSIS_PARAMS: {exc}") from None
    defaults = AnalysisParams().canonical()
    for name, value in chosen.items():
        if name in known:
            values[name] = value
        elif value != defaults[name]:
            raise ConfigError(f"analyze_video.ipynb has no parameter {name!r}")
    log.info("Running notebook analyze_video for %s", obj.uri)
    output = notebooks.run_notebook("analyze_video", values)
    result = notebooks.read_result(output) or {}
    analysis_id = result.get("analysis_id")
    if not analysis_id:
        raise AnalysisFailed(f"notebook {output.name} published no analysis_id")
    notebooks.store_executed_notebook(int(analysis_id), output)
    if result.get("status") not in (None, "completed"):
        raise failure(not failure_is_permanent(int(analysis_id)))(
            f"analysis {analysis_id} failed: {result.get('error')}"
        )
    log.info("Executed notebook stored with analysis %s", analysis_id)
    return int(analysis_id)


def analysis_params(params: dict[str, Any] | None) -> Any:
    """`CAPSTONE_ANALYSIS_PARAMS` as `AnalysisParams` (ConfigError when invalid)."""
    from capstone.stages.params import AnalysisParams

    try:
        return AnalysisParams(**(params or {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"CAPSTONE_ANALYSIS_PARAMS: {exc}") from None


def failure_is_permanent(analysis_id: int | None) -> bool:
    """Whether the failed analysis row says a retry cannot help (`summary.retryable`)."""
    if not analysis_id:
        return False
    from capstone.store import queries

    try:
        row = queries.get_analysis(int(analysis_id))
        summary = dict((row or {}).get("summary") or {})
    except Exception as exc:  # the database is unreachable: a retry may help
        log.warning("Cannot read analysis %s: %s", analysis_id, exc)
        return False
    return summary.get("retryable") is False


def run_pipeline_mode(
    config: JobConfig, obj: S3Object, video_id: str, stop: threading.Event
) -> str:
    """Mode `chunk` (stage chunk `config.array_index`) or `stitch` (publish) in this process.

    Returns the result's status (`staged`, `completed`; in mode chunk also `pending` when
    another worker holds the chunk). Raises `PermanentFailure` / `AnalysisFailed`, `Stopped`.
    A stitch job whose analysis is held elsewhere (a duplicate stitch job) waits for it.
    """
    from capstone.runtime.pipeline import analyze
    from capstone.store.analyses import AnalysisBusyError

    params = analysis_params(config.params)
    if config.mode == "chunk":
        options: dict[str, Any] = {"chunks": [config.array_index], "publish": False}
    else:
        options = {"publish": True}
    while True:
        if stop.is_set():
            raise Stopped("stopped by SIGTERM")
        log.info("Analyzing %s (%s)", obj.uri, ", ".join(f"{k}={v}" for k, v in options.items()))
        try:
            result = analyze(obj.uri, video_id=video_id, params=params, cancel=stop, **options)
        except AnalysisBusyError as exc:
            status, error, analysis_id, retryable = "pending", str(exc), None, True
        else:
            status, error = result.status, result.error
            analysis_id, retryable = result.analysis_id, result.retryable is not False
        if stop.is_set() and status not in ("staged", "completed"):
            raise Stopped("stopped by SIGTERM")
        if status in ("staged", "completed"):
            log.info("Analysis %s of %s: %s", analysis_id, video_id, status)
            return status
        if status == "pending" and config.mode == "chunk":
            log.info("Chunk %s is held by another worker: %s", config.array_index, error)
            return status
        if status == "pending":  # another publisher holds it; its lease expires if it died
            log.info("Analysis of %s is busy elsewhere (%s); waiting", video_id, error)
            stop.wait(max(config.poll_s, 1.0) * 5)
            continue
        if status == "conflict" or failure_is_permanent(analysis_id):
            raise PermanentFailure(f"analysis {analysis_id} of {video_id} failed: {error}")
        # A chunk-only run writes no failure into the analysis row: its result says (a chunk
        # past the video's end, bad parameters: permanent, the stitch job reports it).
        raise failure(retryable)(f"analysis {analysis_id} of {video_id} {status}: {error}")


def run_chunk(config: JobConfig, stop: threading.Event) -> int:
    """Mode `chunk`: one array child; no SQS message. An exit code."""
    try:
        objects = parse_message(os.environ.get(ENV_BODY, ""))
    except MalformedEventError as exc:
        log.error("Chunk job without a valid %s: %s", ENV_BODY, exc)
        return EXIT_CONFIG
    try:
        for obj in objects:
            log.info("Processing chunk %s of s3://%s/%s", config.array_index, obj.bucket, obj.key)
            run_pipeline_mode(config, obj, video_id_for(obj), stop)
    except Stopped:
        log.warning("Stopped by SIGTERM; chunk %s left for another worker", config.array_index)
        return EXIT_TERMINATED
    except CapstoneError as exc:
        if policy_of(exc).retryable:
            log.error("Chunk %s failed: %s; retryable", config.array_index, exc)
            return EXIT_FAILED
        log.error(
            "Chunk %s failed: %s; permanent, the stitch job reports it", config.array_index, exc
        )
        return EXIT_OK
    log.info("Chunk %s done", config.array_index)
    return EXIT_OK


def process(config: JobConfig, message: Message, stop: threading.Event, sqs: Any) -> None:
    """Analyze every video of the message; raise on failure (the message stays unless the
    failure is permanent)."""
    try:
        objects = parse_message(message.body)
    except MalformedEventError as exc:
        raise PermanentFailure(f"not an S3 event: {exc}") from None
    if not objects:
        log.info("Message %s names no created video (test event)", message.message_id)
        return
    token = api_token(config.db_secret_arn) if config.mode == "service" else None
    for obj in objects:
        log.info("Processing video s3://%s/%s", obj.bucket, obj.key)
        video_id = video_id_for(obj)
        if config.mode == "service":
            client = ServiceClient(config.fastapi_endpoint, token, stop, config.poll_s)
            answer = client.analyze(obj, video_id, config.params)
            log.info("FastAPI response: %s", json.dumps(answer))
            log.info("Analysis results saved to PostgreSQL + pgvector by FastAPI")
        elif config.mode in PIPELINE_MODES:
            run_pipeline_mode(config, obj, video_id, stop)
            log.info("Analysis of %s published to PostgreSQL + pgvector", video_id)
        else:
            analysis_id = run_notebook_mode(obj, video_id, config.params)
            log.info("Analysis %s of %s saved to PostgreSQL + pgvector", analysis_id, video_id)


def run(config: JobConfig, stop: threading.Event) -> int:
    """One job: take the message, heartbeat, process, delete on success. An exit code."""
    if config.mode == "chunk":
        return run_chunk(config, stop)
    sqs = sqs_client()
    message = take_message(sqs, config.queue_url)
    if message is None:
        log.info("No message to process")
        return EXIT_OK
    log.info("Received message %s", message.message_id)
    outcome: dict[str, BaseException | None] = {}

    def work() -> None:
        try:
            process(config, message, stop, sqs)
            outcome["error"] = None
        except BaseException as exc:  # reported by the main thread
            outcome["error"] = exc

    def supervise() -> None:
        worker = threading.Thread(target=work, name="analysis", daemon=True)
        worker.start()
        while worker.is_alive() and not stop.is_set():
            worker.join(0.5)

    held = True
    try:
        heartbeat = visibility_heartbeat(sqs, config.queue_url, message.receipt_handle)
        heartbeat.beat()  # at once: the handler's receive may be a while ago
        heartbeat.__enter__()
    except Exception as exc:  # the message is gone or the queue unreachable
        if config.mode != "stitch":
            log.error("Cannot hold message %s: %s", message.message_id, exc)
            return EXIT_FAILED
        # Redelivered while the children ran (and deleted as a duplicate): publish anyway.
        log.warning("Cannot hold message %s (%s); publishing without it", message.message_id, exc)
        held = False
    try:
        supervise()
    finally:
        if held:
            heartbeat.__exit__()
    if (stop.is_set() and "error" not in outcome) or isinstance(outcome.get("error"), Stopped):
        log.warning("Stopped by SIGTERM; message %s left for redelivery", message.message_id)
        return EXIT_TERMINATED
    error = outcome.get("error")
    if error is not None and not policy_of(error).retryable:
        log.error("Video analysis failed: %s; permanent, not retried", error)
        dead_letter(sqs, config.queue_url, message, delete=held)
        return EXIT_FAILED
    if error is not None:
        reason = str(error) if isinstance(error, CapstoneError) else repr(error)
        left = "message left for redelivery" if held else "no message held to redeliver"
        log.error("Video analysis failed: %s; %s", reason, left)
        return EXIT_FAILED
    if held:
        sqs.delete_message(QueueUrl=config.queue_url, ReceiptHandle=message.receipt_handle)
        log.info("Message deleted successfully")
    log.info("Video analysis completed successfully")
    return EXIT_OK


def dead_letter(sqs: Any, queue_url: str, message: Message, *, delete: bool = True) -> bool:
    """Move the message to the queue's dead-letter queue (its redrive policy) at once.
    False (message left for redelivery) when the queue has none or it cannot be sent.
    `delete=False` (a message this job no longer holds): only send its body there."""
    try:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]
        ).get("Attributes", {})
        target = json.loads(attributes.get("RedrivePolicy") or "{}").get("deadLetterTargetArn")
        if not target:
            log.warning("Queue has no dead-letter queue; message left for redelivery")
            return False
        dlq_url = sqs.get_queue_url(QueueName=target.rsplit(":", 1)[-1])["QueueUrl"]
        sqs.send_message(QueueUrl=dlq_url, MessageBody=message.body)
        if delete:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message.receipt_handle)
    except Exception as exc:  # the queue's own redrive still ends it in the DLQ
        log.warning("Cannot move message to the dead-letter queue (%s)", type(exc).__name__)
        return False
    log.info("Message moved to the dead-letter queue")
    return True


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(message)s",
        force=True,
    )
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        config = JobConfig.from_env()
    except ConfigError as exc:
        log.error("Configuration error: %s", exc)
        return EXIT_CONFIG
    log.info("Analysis job started (mode %s)", config.mode)
    try:
        return run(config, stop)
    except CapstoneError as exc:
        log.error("Video analysis failed: %s", exc)
        return EXIT_FAILED


if __name__ == "__main__":
    code = main(sys.argv[1:])
    logging.shutdown()
    os._exit(code)  # do not wait for a hung analysis thread after SIGTERM
