"""The local stack: the whole event-driven pipeline on 127.0.0.1, no AWS account.

`up()` starts the S3/SQS emulator (moto server) with the raw bucket, its ObjectCreated
notification to the main queue and a dead-letter queue (redrive policy); the embedded
database; the API (`capstone serve`); the queue poller that drives the Lambda handler with
the local Batch runner (`python -m batch.local_runner`); and the dashboard when
`dashboards/app.py` exists. What it started is recorded in `CAPSTONE_HOME/stack/state.json`;
`down()` stops only that (and the embedded database only if `up()` started it).

>>> from capstone.runtime.local_stack import state_path
>>> state_path().name
'state.json'
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from capstone.config import get_settings
from capstone.errors import CapstoneError

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
BUCKET = "capstone-raw"
QUEUE, DLQ = "capstone-videos", "capstone-videos-dlq"
SECRET = "capstone/db"


class StackError(CapstoneError):
    """The local stack cannot be started, stopped or used."""

    http_status = 503
    retryable = True
    code = "stack_unavailable"


def stack_dir() -> Path:
    return get_settings().home / "stack"


def state_path() -> Path:
    return stack_dir() / "state.json"


def read_state() -> dict[str, Any] | None:
    path = state_path()
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_state(state: dict[str, Any]) -> None:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2))
    path.chmod(0o600)  # holds the local API token


def alive(proc: dict[str, Any]) -> bool:
    """Whether a recorded process still runs and is the one we started (pid reuse)."""
    pid = int(proc["pid"])
    try:
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ProcessLookupError):
        return False
    return proc["marker"] in cmdline


def _spawn(name: str, argv: list[str], env: dict[str, str], marker: str) -> dict[str, Any]:
    logs = stack_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: down() stops it and its children
        )
    return {"name": name, "pid": process.pid, "marker": marker, "log": str(log)}


def _exited(proc: dict[str, Any]) -> bool:
    """Whether a process this one has just started is gone. `waitpid`, not `alive()`: until
    the child has exec'd, /proc shows the parent's command line, which `alive()` would read
    as "not ours" (seen under load as a false "exited during start")."""
    try:
        pid, _ = os.waitpid(int(proc["pid"]), os.WNOHANG)
    except ChildProcessError:  # not (or no longer) our child: ask /proc
        return not alive(proc)
    return pid != 0


def _wait_http(url: str, proc: dict[str, Any], timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _exited(proc):
            raise StackError(f"{proc['name']} exited during start; see {proc['log']}")
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise StackError(
        f"{proc['name']} did not answer at {url} in {timeout:.0f} s; see {proc['log']}"
    )


def _aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _configure_emulator(
    endpoint: str, db_url: str, token: str, visibility_s: int, max_receive: int
) -> dict[str, str]:
    import boto3

    kwargs: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",
    }
    s3, sqs = boto3.client("s3", **kwargs), boto3.client("sqs", **kwargs)
    s3.create_bucket(Bucket=BUCKET)
    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    redrive = {
        "deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
        "maxReceiveCount": str(max_receive),
    }
    queue_url = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={"VisibilityTimeout": str(visibility_s), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn["Attributes"]["QueueArn"],
                    "Events": ["s3:ObjectCreated:*"],
                }
            ]
        },
    )
    secret = boto3.client("secretsmanager", **kwargs).create_secret(
        Name=SECRET, SecretString=json.dumps({"url": db_url, "api_token": token})
    )
    return {"queue_url": queue_url, "dlq_url": dlq_url, "secret_arn": secret["ARN"]}


def up(
    *,
    api_port: int = 8087,
    s3_port: int = 4566,
    dashboard_port: int = 8501,
    max_jobs: int = 2,
    visibility_s: int = 120,
    max_receive: int = 3,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Start the stack; returns its state (URLs, processes). Raises if it already runs."""
    from capstone.store.engine import resolve_database_url
    from capstone.store.migrate import ensure_schema
    from capstone.store.server import embedded_running

    current = read_state()
    if current and any(alive(p) for p in current["processes"]):
        raise StackError("the stack is already running (capstone stack status / down)")
    settings = get_settings()
    processes: list[dict[str, Any]] = []
    state: dict[str, Any] = {"processes": processes, "started_db": False}
    try:
        endpoint = f"http://{HOST}:{s3_port}"
        moto = _spawn(
            "s3-sqs-emulator",
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(s3_port)],
            dict(os.environ),
            "moto.server",
        )
        processes.append(moto)
        _wait_http(endpoint, moto, 30)

        db_running = settings.database_url or embedded_running(settings.pgdata)
        db_url = resolve_database_url()
        state["started_db"] = not db_running
        ensure_schema(db_url)

        token = secrets.token_urlsafe(24)
        names = _configure_emulator(endpoint, db_url, token, visibility_s, max_receive)
        from capstone.core.ids import hash_api_key

        api = f"http://{HOST}:{api_port}"
        common = {**os.environ, **_aws_env(endpoint), "S3_BUCKET_RAW": BUCKET}
        api_env = {
            **common,
            "DATABASE_URL": db_url,
            "API_KEY_HASHES": hash_api_key(token),
            "SQS_QUEUE_URL": names["queue_url"],
        }
        api_proc = _spawn(
            "api",
            [sys.executable, "-m", "capstone", "serve", "--host", HOST, "--port", str(api_port)],
            api_env,
            "capstone serve",
        )
        processes.append(api_proc)
        _wait_http(f"{api}/healthz", api_proc, 60)

        job_env = {
            **common,
            "SQS_QUEUE_URL": names["queue_url"],
            "FASTAPI_ENDPOINT": api,
            "DB_SECRET_ARN": names["secret_arn"],
        }
        job_env.pop("DATABASE_URL", None)
        if params:
            job_env["CAPSTONE_ANALYSIS_PARAMS"] = json.dumps(params)
        jobs_dir = stack_dir() / "jobs"
        processes.append(
            _spawn(
                "queue-poller-and-batch-runner",
                [
                    sys.executable,
                    "-m",
                    "batch.local_runner",
                    "--max-jobs",
                    str(max_jobs),
                    "--log-dir",
                    str(jobs_dir),
                ],
                job_env,
                "batch.local_runner",
            )
        )
        urls = {"api": api, "docs": f"{api}/docs", "s3_sqs": endpoint, "database": db_url}
        dashboard = REPO_ROOT / "dashboards" / "app.py"
        if dashboard.is_file():
            processes.append(
                _spawn(
                    "dashboard",
                    [
                        sys.executable, "-m", "streamlit", "run", str(dashboard),
                        "--server.address", HOST, "--server.port", str(dashboard_port),
                        "--server.headless", "true",
                    ],
                    {**api_env},
                    "streamlit",
                )
            )  # fmt: skip
            urls["dashboard"] = f"http://{HOST}:{dashboard_port}"
        state.update(
            urls=urls,
            bucket=BUCKET,
            token=token,
            jobs_dir=str(jobs_dir),
            aws=_aws_env(endpoint),
            **names,
        )
        _write_state(state)
        return state
    except BaseException:
        _stop_processes(processes)
        if state["started_db"]:
            from capstone.store.server import stop_embedded

            stop_embedded(settings.pgdata)
        raise


def _stop_processes(processes: list[dict[str, Any]], timeout: float = 20.0) -> list[str]:
    stopped = []
    for proc in reversed(processes):
        if not alive(proc):
            continue
        try:
            os.killpg(int(proc["pid"]), signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout
        while alive(proc) and time.monotonic() < deadline:
            time.sleep(0.2)
        if alive(proc):
            os.killpg(int(proc["pid"]), signal.SIGKILL)
        stopped.append(proc["name"])
    return stopped


def down() -> list[str]:
    """Stop what `up()` started; the names of what was stopped."""
    state = read_state()
    if state is None:
        return []
    stopped = _stop_processes(state["processes"])
    if state.get("started_db"):
        from capstone.store.server import stop_embedded

        if stop_embedded(get_settings().pgdata):
            stopped.append("embedded database")
    state_path().unlink(missing_ok=True)
    return stopped


def status() -> dict[str, Any] | None:
    """The recorded state with each process's liveness and the queue depths (None: not up)."""
    state = read_state()
    if state is None:
        return None
    for proc in state["processes"]:
        proc["alive"] = alive(proc)
    try:
        import boto3

        sqs = boto3.client(
            "sqs",
            endpoint_url=state["aws"]["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        depth = {}
        for name in ("queue_url", "dlq_url"):
            attrs = sqs.get_queue_attributes(
                QueueUrl=state[name],
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            depth[name.removesuffix("_url")] = {
                "visible": int(attrs["ApproximateNumberOfMessages"]),
                "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
            }
        state["queues"] = depth
    except Exception as exc:  # emulator down: say so instead of failing
        state["queues"] = {"error": str(exc).splitlines()[0]}
    return state


def upload(path: str | Path, video_id: str | None = None) -> tuple[str, str]:
    """Put a video into the running stack's raw bucket; (video_id, key)."""
    from capstone.core.ids import default_video_id
    from capstone.errors import InputError
    from capstone.io.s3 import upload_video

    state = read_state()
    if state is None or not any(alive(p) for p in state["processes"]):
        raise StackError("the stack is not running (start it with `capstone stack up`)")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    video_id = video_id or default_video_id(path)
    saved = {k: os.environ.get(k) for k in state["aws"]}
    os.environ.update(state["aws"])
    get_settings.cache_clear()
    try:
        key = upload_video(path, state["bucket"], video_id)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
    return video_id, key
