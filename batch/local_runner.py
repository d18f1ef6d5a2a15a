"""Local stand-ins for AWS Batch and the Lambda SQS trigger, with the same semantics.

`LocalBatch` answers the Batch calls the Lambda handler makes (`submit_job`, `list_jobs`,
`describe_jobs`, `terminate_job`) and runs each job as a subprocess,
`python -m batch.process_video`, with the job definition's environment plus the job's
container overrides; at most `max_jobs` run at once, the rest wait as RUNNABLE. Array jobs
and dependencies behave as on AWS:

* `arrayProperties={"size": n}` (2..10000) makes one parent job (it never runs itself) and
  n children `{parent}:{i}` with `AWS_BATCH_JOB_ARRAY_INDEX=i`; the parent is PENDING until a
  child runs, RUNNING while any does, and once every child ended SUCCEEDED when all
  succeeded, else FAILED. `list_jobs` lists parents (children with `arrayJobId=`);
* `dependsOn=[{"jobId": ...}]`: the job stays PENDING until every dependency ended; it runs
  when all SUCCEEDED, and becomes FAILED without running ("Dependent Job failed") when any
  FAILED. `QueuePoller` is the event source mapping: it receives up
to 10 messages, calls `batch.lambda_handler.handle` and deletes every message the handler
does not report in `batchItemFailures`, exactly as Lambda does; given a
`lambda_handler.Split` (as `main` does, from this process's environment, like the function's)
the handler splits long videos into array + stitch jobs.

>>> runner = LocalBatch(env={"SQS_QUEUE_URL": "http://127.0.0.1:5000/q"}, max_jobs=2)
>>> runner.list_jobs(jobQueue="local")["jobSummaryList"]
[]
>>> runner.shutdown()

`python -m batch.local_runner` runs both until SIGTERM (used by `capstone stack up`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batch import lambda_handler

log = logging.getLogger("batch.local_runner")
REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_QUEUE = "capstone-local-analysis"
LOCAL_DEFINITION = "capstone-local-analysis"
ARRAY_SIZE = (2, 10_000)  # what AWS Batch accepts
DONE_STATES = ("SUCCEEDED", "FAILED")


@dataclass
class LocalJob:
    """One submitted job and its process."""

    job_id: str
    name: str
    env: dict[str, str]
    parameters: dict[str, str]
    log_path: Path
    status: str = "SUBMITTED"
    created_at: float = field(default_factory=time.time)
    exit_code: int | None = None
    process: subprocess.Popen[bytes] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    depends_on: list[str] = field(default_factory=list)
    array_size: int | None = None  # a parent: how many children
    array_index: int | None = None  # a child: its index
    children: list[LocalJob] = field(default_factory=list)
    status_reason: str | None = None
    terminated: bool = False

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "jobId": self.job_id,
            "jobName": self.name,
            "jobArn": f"arn:local:batch:job/{self.job_id}",
            "status": self.status,
            "createdAt": int(self.created_at * 1000),
            "container": {"exitCode": self.exit_code},
        }
        if self.status_reason:
            out["statusReason"] = self.status_reason
        if self.array_size is not None:
            counts = {s: 0 for s in ("PENDING", "RUNNABLE", "STARTING", "RUNNING", *DONE_STATES)}
            for child in self.children:
                counts[child.status if child.status in counts else "PENDING"] += 1
            out["arrayProperties"] = {"size": self.array_size, "statusSummary": counts}
        elif self.array_index is not None:
            out["arrayProperties"] = {"index": self.array_index}
        return out


class LocalBatch:
    """A Batch job queue whose jobs are local subprocesses of `batch.process_video`.

    `env` is the job definition's environment (the four variables, plus whatever the local
    process needs to reach the emulator: `AWS_ENDPOINT_URL`, credentials, `DATABASE_URL`).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        max_jobs: int = 2,
        log_dir: str | Path | None = None,
        python: str = sys.executable,
        command: Sequence[str] | None = None,
    ) -> None:
        """`command`: what a job runs (the job definition's command; default
        `python -m batch.process_video`), in the repository root."""
        self.env = dict(env)
        self.python = python
        self.command = list(command) if command else [python, "-m", "batch.process_video"]
        if log_dir is None:
            from capstone.config import get_settings

            log_dir = get_settings().home / "stack" / "jobs"  # whatever the working directory
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._slots = threading.Semaphore(max_jobs)
        self._jobs: dict[str, LocalJob] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- the Batch API subset the handler uses ------------------------------------------
    def submit_job(
        self,
        *,
        jobName: str,
        jobQueue: str,
        jobDefinition: str,
        parameters: Mapping[str, str] | None = None,
        containerOverrides: Mapping[str, Any] | None = None,
        arrayProperties: Mapping[str, Any] | None = None,
        dependsOn: Sequence[Mapping[str, Any]] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        """Queue a job (an array of `arrayProperties.size` children); it starts as soon as its
        dependencies succeeded and a slot is free. Bad arguments raise `ValueError`, as AWS
        answers ClientException."""
        if self._closed:
            raise RuntimeError("local Batch runner is shut down")
        size = None
        if arrayProperties:
            size = arrayProperties.get("size")
            if not isinstance(size, int) or not ARRAY_SIZE[0] <= size <= ARRAY_SIZE[1]:
                raise ValueError(f"array size must be {ARRAY_SIZE[0]}..{ARRAY_SIZE[1]}: {size!r}")
        deps: list[str] = []
        for dep in dependsOn or []:
            if dep.get("type") not in (None, ""):
                raise ValueError(f"dependency type {dep['type']} is not supported locally")
            with self._lock:
                known = dep.get("jobId") in self._jobs
            if not known:
                raise ValueError(f"dependsOn names an unknown job {dep.get('jobId')!r}")
            deps.append(dep["jobId"])
        env = dict(self.env)
        for item in (containerOverrides or {}).get("environment", []):
            env[item["name"]] = item["value"]
        job_id = uuid.uuid4().hex
        job = LocalJob(
            job_id,
            jobName,
            {**env, "AWS_BATCH_JOB_ID": job_id},
            dict(parameters or {}),
            self.log_dir / f"{jobName}-{job_id}.log",
            depends_on=deps,
            array_size=size,
        )
        for i in range(size or 0):
            child_id = f"{job_id}:{i}"
            child_env = {**env, "AWS_BATCH_JOB_ID": child_id, "AWS_BATCH_JOB_ARRAY_INDEX": str(i)}
            job.children.append(
                LocalJob(
                    child_id,
                    jobName,
                    child_env,
                    job.parameters,
                    self.log_dir / f"{jobName}-{job_id}-{i}.log",
                    array_index=i,
                )
            )
        with self._lock:
            self._jobs[job_id] = job
            for child in job.children:
                self._jobs[child.job_id] = child
        threading.Thread(target=self._run, args=(job,), name=f"job-{jobName}", daemon=True).start()
        log.info("submitted job %s (%s)%s", jobName, job_id, f", {size} children" if size else "")
        return {"jobId": job_id, "jobName": jobName, "jobArn": job.summary()["jobArn"]}

    def list_jobs(
        self,
        *,
        jobQueue: str | None = None,
        arrayJobId: str | None = None,
        filters: list[dict[str, Any]] | None = None,
        jobStatus: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        """Jobs by name filter (every status, like AWS) or by status (default RUNNING);
        array children only with `arrayJobId`."""
        names = {v for f in filters or [] if f.get("name") == "JOB_NAME" for v in f["values"]}
        with self._lock:
            if arrayJobId is not None:
                parent = self._jobs.get(arrayJobId)
                jobs = list(parent.children) if parent is not None else []
            else:
                jobs = [j for j in self._jobs.values() if j.array_index is None]
        if names:
            selected = [j for j in jobs if j.name in names]
        else:
            selected = [j for j in jobs if j.status == (jobStatus or "RUNNING")]
        return {"jobSummaryList": [j.summary() for j in selected]}

    def describe_jobs(self, *, jobs: list[str]) -> dict[str, Any]:
        with self._lock:
            found = [self._jobs[j] for j in jobs if j in self._jobs]
        return {
            "jobs": [
                {
                    **j.summary(),
                    "parameters": j.parameters,
                    "dependsOn": [{"jobId": d} for d in j.depends_on],
                }
                for j in found
            ]
        }

    def terminate_job(self, *, jobId: str, reason: str) -> dict[str, Any]:
        """End a job as AWS does: one not started never runs, a running one gets SIGTERM;
        either ends FAILED with `reason` (an array parent: its children too)."""
        with self._lock:
            job = self._jobs.get(jobId)
        if job is None:
            raise ValueError(f"unknown job {jobId!r}")
        for target in (job, *job.children):
            if target.status in DONE_STATES:
                continue
            target.terminated, target.status_reason = True, reason
            if target.process is not None and target.process.poll() is None:
                target.process.send_signal(signal.SIGTERM)
        return {}

    # -- local helpers ------------------------------------------------------------------
    def jobs(self) -> list[LocalJob]:
        """Submitted jobs in order (array children are in their parent's `children`)."""
        with self._lock:
            top = [j for j in self._jobs.values() if j.array_index is None]
        return sorted(top, key=lambda j: j.created_at)

    def wait(self, job_id: str, timeout: float | None = None) -> LocalJob:
        """Block until the job ended (or `timeout` passed); returns it."""
        job = self._jobs[job_id]
        job.done.wait(timeout)
        return job

    def wait_all(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(job.done.wait(max(0.0, deadline - time.monotonic())) for job in self.jobs())

    def signal(self, job_id: str, signum: int) -> None:
        """Send a signal to a running job's process (SIGKILL: a lost worker)."""
        process = self._jobs[job_id].process
        if process is not None and process.poll() is None:
            process.send_signal(signum)

    def shutdown(self, timeout: float = 20.0) -> None:
        """Stop taking jobs; SIGTERM running ones and wait for them (then SIGKILL)."""
        self._closed = True
        with self._lock:
            every = list(self._jobs.values())
        running = [j for j in every if j.process is not None and j.process.poll() is None]
        for job in running:
            job.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        for job in running:
            try:
                job.process.wait(max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                job.process.kill()  # type: ignore[union-attr]

    def _run(self, job: LocalJob) -> None:
        """A job's life: wait for its dependencies, then run (a parent: its children)."""
        job.status = "PENDING" if job.depends_on or job.children else "SUBMITTED"
        for dep in job.depends_on:
            self._jobs[dep].done.wait()
        failed = [d for d in job.depends_on if self._jobs[d].status != "SUCCEEDED"]
        if failed:
            reason = job.status_reason if job.terminated else None
            self._finish(job, "FAILED", None, reason or f"Dependent Job failed: {failed[0]}")
            return
        if job.children:
            threads = [
                threading.Thread(target=self._run_process, args=(c,), daemon=True)
                for c in job.children
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            ok = all(c.status == "SUCCEEDED" for c in job.children) and not job.terminated
            self._finish(job, "SUCCEEDED" if ok else "FAILED", None, job.status_reason)
            return
        self._run_process(job)

    def _run_process(self, job: LocalJob) -> None:
        job.status = "RUNNABLE"
        with self._slots:
            if self._closed or job.terminated:
                self._finish(job, "FAILED", None, job.status_reason or "runner shut down")
                return
            job.status = "STARTING"
            self._note_parent_running(job)
            with job.log_path.open("ab") as out:
                job.process = subprocess.Popen(
                    self.command,
                    cwd=REPO_ROOT,
                    env=job.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
                job.status = "RUNNING"
                if job.terminated:  # terminate_job ran before there was a process to signal
                    job.process.send_signal(signal.SIGTERM)
                code = job.process.wait()
        ok = code == 0 and not job.terminated
        self._finish(job, "SUCCEEDED" if ok else "FAILED", code, job.status_reason)

    def _note_parent_running(self, child: LocalJob) -> None:
        if child.array_index is not None:
            parent = self._jobs.get(child.job_id.rsplit(":", 1)[0])
            if parent is not None and parent.status not in DONE_STATES:
                parent.status = "RUNNING"

    def _finish(self, job: LocalJob, status: str, code: int | None, reason: str | None = None):
        job.exit_code, job.status_reason, job.status = code, reason, status
        log.info("job %s %s (exit %s)", job.job_id, status.lower(), code)
        job.done.set()


class QueuePoller:
    """The Lambda SQS event source mapping, locally: receive, invoke, delete the successes."""

    def __init__(
        self,
        queue_url: str,
        batch: Any,
        *,
        job_queue: str = LOCAL_QUEUE,
        job_definition: str = LOCAL_DEFINITION,
        batch_size: int = 10,
        wait_s: int = 1,
        sqs: Any = None,
        split: lambda_handler.Split | None = None,
    ) -> None:
        import boto3

        self.queue_url = queue_url
        self.split = split
        self.batch = batch
        self.job_queue, self.job_definition = job_queue, job_definition
        self.batch_size, self.wait_s = batch_size, wait_s
        self.sqs = sqs or boto3.client("sqs", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> dict[str, Any] | None:
        """One receive + invoke + delete round; the handler's answer (None: no messages)."""
        got = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = got.get("Messages", [])
        if not messages:
            return None
        event = {"Records": [self._record(m) for m in messages]}
        try:
            answer = lambda_handler.handle(
                event, self.batch, self.job_queue, self.job_definition, self.split
            )
        except Exception:  # a crashed invocation: every message returns after its timeout
            log.exception("handler failed; %d message(s) will be redelivered", len(messages))
            return None
        failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return answer

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_url,
        }

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # emulator restarting, network blip
                log.warning("poll failed: %s", exc)
                self._stop.wait(1.0)

    def start(self) -> QueuePoller:
        self._thread = threading.Thread(target=self.run, name="sqs-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.wait_s + 10)


JOB_ENV = ("SQS_QUEUE_URL", "S3_BUCKET_RAW", "FASTAPI_ENDPOINT", "DB_SECRET_ARN")


def job_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a local job's process gets: this process's environment (the four job
    variables, the emulator endpoint and credentials, PATH, ...)."""
    env = dict(base if base is not None else os.environ)
    missing = [name for name in JOB_ENV[:3] if not env.get(name)]
    if missing:
        raise SystemExit(f"local_runner: set {', '.join(missing)}")
    return env


def main(argv: list[str] | None = None) -> int:
    """Poll `SQS_QUEUE_URL` and run jobs until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m batch.local_runner", description=__doc__)
    parser.add_argument("--max-jobs", type=int, default=2, help="jobs running at once")
    parser.add_argument("--log-dir", type=Path, default=None, help="one log file per job")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    env = job_environment()
    import boto3

    runner = LocalBatch(env, max_jobs=args.max_jobs, log_dir=args.log_dir)
    s3 = boto3.client("s3", endpoint_url=env.get("AWS_ENDPOINT_URL") or None)
    split = lambda_handler.Split.from_env(env, s3)
    poller = QueuePoller(env["SQS_QUEUE_URL"], runner, split=split)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    poller.start()
    log.info("polling %s; at most %d job(s) at once", env["SQS_QUEUE_URL"], args.max_jobs)
    stop.wait()
    poller.stop()
    runner.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
