"""Issue 29, the dashboard (findings 8, 9 and 14's dashboard part), against a real database.

Pages run headless under `streamlit.testing.v1.AppTest` (as in tests/test_dashboard.py) over
the embedded PostgreSQL, with data written through the production write paths (the upload
route's `register_video`, `analyze`, `store_result` -> publish) and S3 on a moto server.

- Writes need rights: upload and retry are off unless `DASHBOARD_ALLOW_WRITES=1`, and then
  need an API token matching `API_KEY_HASHES` (the API's own check).
- The dashboard's own analyses run in a bounded pool: 20 uploads at once from 20 threads
  start at most `DASHBOARD_MAX_ANALYSES` analyses (threads), queue `DASHBOARD_MAX_QUEUED`,
  and refuse the rest with a message naming the limits.
- No presigned S3 URL reaches the browser unless `DASHBOARD_PRESIGNED_URLS=1`.
- User text (titles, errors, event descriptions) is escaped markdown: no link, no image.
- `?t=inf`, `nan`, negative or junk start times show a message, never an error.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from sqlalchemy import create_engine, text
from streamlit.testing.v1 import AppTest

from tests.conftest import _clear_caches, store_result
from tests.test_dashboard import APP

EVIL = (
    "[click](http://evil.example) ![x](http://evil.example/x.png) <img src=x>"
    " www.evil.example mail@evil.example :red[x] $x^2$ **b**"
)
TOKEN = "dash-s3cret"


@pytest.fixture
def home(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh database and CAPSTONE_HOME; no queue, default dashboard settings."""
    monkeypatch.setenv("CAPSTONE_HOME", str(tmp_path / "home"))
    for name in (
        "SQS_QUEUE_URL",
        "API_KEY_HASHES",
        "CAPSTONE_AUTH_DISABLED",
        "DASHBOARD_ALLOW_WRITES",
        "DASHBOARD_PRESIGNED_URLS",
        "DASHBOARD_MAX_VIDEO_BYTES",
        "DASHBOARD_MAX_ANALYSES",
        "DASHBOARD_MAX_QUEUED",
    ):
        monkeypatch.delenv(name, raising=False)
    _clear_caches()
    return tmp_path


def _set(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _clear_caches()


def page(name: str | None = None, query: dict[str, str] | None = None) -> AppTest:
    """Run the app (and switch to page `name`) with `query` as the URL's query string."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    if name is not None:
        at.switch_page(f"views/{name}.py")
        for key, value in (query or {}).items():
            at.query_params[key] = value
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def bodies(at: AppTest) -> list[str]:
    """Every markdown body the page renders (texts, alerts, image captions, toasts)."""
    found: list[str] = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "info",
        "error",
        "warning",
        "success",
        "toast",
    ):
        found.extend(str(e.value) for e in at.get(kind))
    for image in at.get("imgs"):
        found.extend(str(c) for c in getattr(image, "captions", []))
    return found


def shown(at: AppTest) -> str:
    return "\n".join(bodies(at))


def buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.get("button")]


def failed_video(video_id: str, tmp_path: Path) -> str:
    """A video whose analysis failed, analysed the production way (`analyze`)."""
    from capstone.runtime.pipeline import analyze

    bogus = tmp_path / f"{video_id}.mp4"
    bogus.write_text("this is not a video")
    result = analyze(bogus, video_id=video_id)
    assert result.status == "failed"
    return result.error or ""


def jobs_of(*video_ids: str) -> list[tuple[str, float]]:
    from dashboards import data

    return [(j.video_id, j.started) for j in data.local_jobs() if j.video_id in video_ids]


def attempts(video_id: str) -> int:
    from capstone.store import queries

    return sum(a["attempts"] or 0 for a in queries.list_analyses(video_id))


# --------------------------------------------------------------------------- finding 8


def test_upload_and_retry_need_writes_on_and_a_valid_token(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from capstone.core.ids import hash_api_key
    from dashboards import data

    failed_video("broken", home)
    before = attempts("broken")
    jobs_before = jobs_of("broken", "no-rights")  # other tests' jobs live in this process

    # Default: writes are off. No Retry button, no uploader, a message; the data layer
    # refuses too (a crafted rerun cannot reach it).
    at = page()
    assert "Retry" not in buttons(at) and not at.get("file_uploader")
    assert "Uploads and retries are off" in shown(at)
    with pytest.raises(data.DashboardError, match="DASHBOARD_ALLOW_WRITES"):
        data.retry("broken")
    with pytest.raises(data.DashboardError, match="DASHBOARD_ALLOW_WRITES"):
        data.submit_upload("clip.mp4", b"not a video", "no-rights")

    # Writes on: still a token, checked against API_KEY_HASHES like the API's.
    _set(monkeypatch, DASHBOARD_ALLOW_WRITES="1", API_KEY_HASHES=hash_api_key(TOKEN))
    at = page()
    assert "Retry" not in buttons(at) and not at.get("file_uploader")
    assert "Enter an API token" in shown(at)
    at.text_input(key="api_token").set_value("wrong").run()
    assert "Retry" not in buttons(at) and not at.get("file_uploader")
    assert "not valid" in shown(at)
    for token in (None, "", "wrong", TOKEN + "\n"):
        with pytest.raises(data.DashboardError):
            data.retry("broken", token=token)
        with pytest.raises(data.DashboardError):
            data.submit_upload("clip.mp4", b"not a video", "no-rights", token=token)
    assert attempts("broken") == before
    assert jobs_of("broken", "no-rights") == jobs_before  # nothing was started
    assert not list((home / "home").glob("uploads/*/clip.mp4"))  # nothing was even saved

    # With the token: retry and upload work.
    at.text_input(key="api_token").set_value(TOKEN).run()
    assert not at.exception
    at.button(key="retry-broken").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = next(j for j in data.local_jobs() if j.video_id == "broken")
    assert job.wait(60) and job.status == "failed"
    assert attempts("broken") > before

    at.get("file_uploader")[0].set_value(("clip.mp4", b"not a video", "video/mp4"))  # type: ignore[attr-defined]
    id_box = next(t for t in at.text_input if t.label.startswith("Video id"))
    id_box.set_value("tok-upload")
    at.button[-1].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "uploaded" in shown(at)
    job = next(j for j in data.local_jobs() if j.video_id == "tok-upload")
    assert job.wait(60)
    assert attempts("tok-upload") == 1


def test_dashboard_analyses_run_in_a_bounded_pool(
    home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 uploads at once: at most N analyses (threads) run, Q wait, the rest are refused."""
    from dashboards import data

    workers, queued = 2, 3
    _set(
        monkeypatch,
        DASHBOARD_ALLOW_WRITES="1",
        CAPSTONE_AUTH_DISABLED="1",
        DASHBOARD_MAX_ANALYSES=str(workers),
        DASHBOARD_MAX_QUEUED=str(queued),
        DB_LOCK_TIMEOUT_S="0",  # the analyses wait for the table lock below, however long
    )
    # Hold the videos table: every analysis blocks at its first write, so none finishes
    # while the 20 uploads arrive (what is running and waiting is then exact, not a race).
    locker = create_engine(db_url)
    conn = locker.connect()
    conn.execute(text("LOCK TABLE apps_db_video IN ACCESS EXCLUSIVE MODE"))
    threads_before = threading.active_count()
    ids = [f"pool-{i:02d}" for i in range(20)]

    def upload(video_id: str) -> str:
        try:
            data.submit_upload(f"{video_id}.mp4", b"not a video", video_id)
            return "accepted"
        except data.DashboardError as exc:
            return str(exc)

    try:
        with ThreadPoolExecutor(len(ids)) as clients:
            outcomes = list(clients.map(upload, ids))
        time.sleep(1.0)  # let the pool start what it may
        grown = threading.active_count() - threads_before
        accepted = [v for v, o in zip(ids, outcomes, strict=True) if o == "accepted"]
        refused = [o for o in outcomes if o != "accepted"]
        # each running analysis is one pool thread (+ at most one short import thread)
        assert grown <= 2 * workers + 1, f"{grown} new threads for 20 uploads"
        assert len(accepted) == workers + queued, outcomes
        assert len(refused) == len(ids) - workers - queued
        assert all("DASHBOARD_MAX_ANALYSES=2" in r and "try again later" in r for r in refused)
        running = [j for j in data.local_jobs() if j.video_id in ids and not j.done.is_set()]
        assert len(running) == workers + queued
        state = data.analysis_pool().state()
        assert state["running"] <= workers and state["threads"] <= workers
    finally:
        conn.rollback()
        conn.close()
        locker.dispose()

    for job in [j for j in data.local_jobs() if j.video_id in accepted]:
        assert job.wait(60), job
    state = data.analysis_pool().state()
    assert state["peak_running"] <= workers and state["threads"] <= workers
    assert state["running"] == state["queued"] == 0
    assert len({j.worker for j in data.local_jobs() if j.video_id in accepted}) <= workers
    assert all(attempts(v) == 1 for v in accepted)  # each accepted upload was analysed
    assert all(attempts(v) == 0 for v in set(ids) - set(accepted))
    # drained: a new upload is taken again
    assert upload("pool-late") == "accepted"
    assert next(j for j in data.local_jobs() if j.video_id == "pool-late").wait(60)


def _video_elements(at: AppTest) -> list[str]:
    """The protos of the page's video elements, as text."""
    return [str(getattr(e, "proto", e)) for e in at.get("video")]


def test_no_presigned_url_reaches_the_browser_unless_configured(
    home: Path, aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from capstone.io.s3 import s3_client
    from capstone.store.analyses import register_video

    bucket = f"dash-raw-{uuid.uuid4().hex[:8]}"
    s3_client().create_bucket(Bucket=bucket)
    clip = b"\x00\x00\x00\x18ftypmp42" + bytes(2000)
    s3_client().put_object(Bucket=bucket, Key="videos/s3clip/clip.mp4", Body=clip)
    register_video("s3clip", source_uri=f"s3://{bucket}/videos/s3clip/clip.mp4", status="pending")

    def everything(at: AppTest) -> str:
        return shown(at) + "\n".join(_video_elements(at))

    at = page("video_detail", {"video": "s3clip"})
    videos = _video_elements(at)
    assert len(videos) == 1, "the player shows the video (its bytes, served by the dashboard)"
    seen = everything(at)
    for secret in ("X-Amz-", "Signature", "AWSAccessKeyId", aws_env, bucket):
        assert secret not in seen, secret

    _set(monkeypatch, DASHBOARD_MAX_VIDEO_BYTES="1000")
    at = page("video_detail", {"video": "s3clip"})
    assert not _video_elements(at)
    assert "larger than the player's limit" in shown(at)

    _set(monkeypatch, DASHBOARD_PRESIGNED_URLS="1", DASHBOARD_MAX_VIDEO_BYTES="0")
    at = page("video_detail", {"video": "s3clip"})
    assert any("X-Amz-" in v or "Signature" in v for v in _video_elements(at))  # only when asked


# --------------------------------------------------------------------------- finding 9

_MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def active_markdown(body: str) -> list[str]:
    """Links, images and HTML that `body` renders to: CommonMark's, and the bare URLs and
    e-mail addresses that remark-gfm (Streamlit's renderer) links in the parsed text."""
    found: list[str] = []
    stack = list(_MD.parse(body))
    while stack:
        token = stack.pop()
        if token.type in ("link_open", "image", "html_inline", "html_block"):
            found.append(f"{token.type}: {token.attrs or token.content}")
        if token.type == "text":  # what mdast-util-gfm-autolink-literal searches
            found += _GFM_AUTOLINK.findall(token.content)
        stack.extend(token.children or [])
    return found


_GFM_AUTOLINK = re.compile(r"https?://|www(?=\.)|[-.\w+]+@[-\w]+(?:\.[-\w]+)+", re.I)


def test_user_text_is_shown_as_text_not_markdown(home: Path, tmp_path: Path) -> None:
    from capstone.stages.params import AnalysisParams
    from capstone.store import analyses
    from capstone.store.analyses import register_video

    # the title as the upload route stores it, and a failed analysis whose reason is user text
    register_video("evil", title=EVIL, source_uri="evil.mp4", status="pending")
    lease = analyses.claim_analysis("evil", AnalysisParams(), analyses.worker_id())
    assert analyses.mark_failed(lease, f"line {EVIL} failed", retryable=False)
    # an event whose description names a user's line
    store_result(
        "evil-events",
        {
            "apps_db_event": [
                {
                    "frame_number": 1,
                    "timestamp": 0.04,
                    "event_type": "line_cross",
                    "class_name": "person",
                    "confidence": 0.9,
                    "bbox": [1.0, 2.0, 3.0, 4.0],
                    "track_id": 1,
                    "description": f"person crossed {EVIL}",
                    "attributes": {"line": EVIL},
                }
            ]
        },
    )

    checked = 0
    for at in (
        page("video_detail", {"video": "evil"}),
        page(),
        page("pipeline"),
    ):
        assert not at.exception
        for body in bodies(at):
            assert not active_markdown(body), body
        checked += 1
    from dashboards.ui import md

    at = page("video_detail", {"video": "evil"})
    assert at.title[0].value == md(EVIL)  # shown literally: escaped, not rendered
    assert re.sub(r"\\(.)", r"\1", at.title[0].value).replace("\u2060", "") == EVIL
    assert any("failed" in b and "click" in b for b in bodies(at))

    at = page("search")  # text mode: no model to load
    at.radio(key="q_mode").set_value("text")
    at.radio(key="q_target").set_value("events")
    at.text_input(key="q_text").set_value("crossed").run()
    assert not at.exception, [e.value for e in at.exception]
    described = [b for b in bodies(at) if "crossed" in b]
    assert described, shown(at)
    for body in bodies(at):
        assert not active_markdown(body), body
    assert checked == 3


# --------------------------------------------------------------------------- finding 14


@pytest.mark.parametrize("t", ["inf", "nan", "-inf", "-5", "1e999", "abc", "0x10"])
def test_bad_start_time_shows_a_message(home: Path, t: str) -> None:
    _seed_plain_video()
    at = page("video_detail", {"video": "plain", "t": t})
    text_shown = shown(at)
    assert "internal error" not in text_shown and not at.error, text_shown
    assert any(w.value.startswith("Ignoring t") for w in at.warning), text_shown
    assert "playing from 0:00.0" in text_shown


def test_start_time_is_clamped_to_the_duration(home: Path) -> None:
    from capstone.store import queries
    from dashboards.ui import fmt_seconds

    _seed_plain_video()
    duration = queries.get_video("plain")["duration"]
    assert duration == 2.0
    at = page("video_detail", {"video": "plain", "t": "1e9"})
    assert not at.warning and not at.error
    assert f"playing from {fmt_seconds(duration)}" in shown(at)
    at = page("video_detail", {"video": "plain", "t": "0.5"})
    assert "playing from 0:00.5" in shown(at)


def _seed_plain_video() -> dict[str, Any]:
    """A completed 2-second video (its row as the upload route registers it, then a result)."""
    from capstone.core.video import VideoInfo
    from capstone.store.analyses import register_video

    info = VideoInfo(Path("plain.mp4"), 2.0, 25.0, 50, 640, 480, "h264", 0, "")
    register_video("plain", info=info, title="plain", source_uri="plain.mp4", status="pending")
    rows = [
        {
            "frame_number": i,
            "timestamp": i / 25.0,
            "event_type": "detection",
            "class_name": "car",
            "confidence": 0.5,
            "bbox": [1.0, 2.0, 3.0, 4.0],
            "track_id": 1,
        }
        for i in range(50)
    ]
    store_result("plain", {"apps_db_event": rows})
    return {"video_id": "plain"}
