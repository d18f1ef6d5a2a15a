"""Dashboard pages under `streamlit.testing.v1.AppTest`, against a real database.

Two real clips (bikes.mp4 and the PETS09 sequence, 40 frames each) are analysed once per
module with every stage into a fresh migrated database; each page is then run headless and
what it renders is checked against what `capstone.store.queries` / `capstone.search.query` return.
"""

from __future__ import annotations

import io
import os
import re
import time
import uuid
from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, VIDEOS, _clear_caches, _with_db, require

APP = str(ROOT / "dashboards" / "app.py")
STAGES = ("detect", "track", "depth", "events", "display", "embed", "attributes")
CLIPS = {"bikes": "bikes.mp4", "pets09": "pets09-s2l1.avi"}


def _env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def test_ask_page_answers_through_the_same_function(dash_db: str) -> None:
    from dashboards import data
    from dashboards.ui import md

    at = run_page("ask")
    assert "Ask in English" in texts(at)
    question = "how many people are there?"
    at.text_input(key="ask_q").set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    answer = data.ask(question)
    assert answer["kind"] == "count" and answer["query"] == "person"
    assert md(answer["text"]) in texts(at)
    assert at.code[0].value == "person"
    assert metric(at, "Answer") == str(answer["count"])
    shown = [m.value for m in at.metric if m.label == "At least"]
    assert shown == ([str(answer["at_least"])] if answer["at_least"] < answer["count"] else [])
    assert len([c for c in at.caption if "moments" in c.value]) == (1 if answer["items"] else 0)

    question = "where were the people?"
    at.text_input(key="ask_q").set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    answer = data.ask(question)
    assert answer["kind"] == "where" and answer["heatmaps"], answer["text"]
    assert md(answer["text"]) in texts(at)
    pictures = at.get("image")
    assert len(pictures) >= len(answer["heatmaps"])
    assert data.answer_heatmap(answer["heatmaps"][0]).startswith(b"\x89PNG")

    question = "on average, how many people were in view?"
    at.text_input(key="ask_q").set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    answer = data.ask(question)
    shown = [m.value for m in at.metric if m.label == "In view at a time, on average"]
    if answer["in_view"] is not None:  # one video with people: its average
        assert shown == [f"{answer['in_view']:.1f}"]
        assert metric(at, "At most at once") == str(answer["at_least"])
    else:  # several videos: one sentence each
        assert shown == [] and answer["text"].count("in view at a time on average") >= 2

    at.selectbox(key="ask_video").set_value("bikes").run()
    at.text_input(key="ask_q").set_value("car colr:red").run()
    assert not at.exception
    assert md("'colr:red'") in texts(at)  # the bad token is named, as one sentence


_ANALYZED: dict[str, str] = {}


def analyzed_database(request: pytest.FixtureRequest, pg_server_url: str, template_db: str) -> str:
    """URL of a database holding bikes and pets09 (40 frames each) analysed with every stage.

    Built once per test session and shared by the AppTest and browser modules (analysing
    costs ~30 s); dropped when the session ends.
    """
    from capstone.runtime.pipeline import analyze
    from capstone.stages.params import AnalysisParams

    if "url" in _ANALYZED:
        return _ANALYZED["url"]
    name = f"dash_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {template_db}"))

    def drop() -> None:
        _ANALYZED.clear()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()

    request.addfinalizer(drop)
    url = _with_db(pg_server_url, name)
    saved = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    _clear_caches()
    try:
        params = AnalysisParams(stages=STAGES, max_frames=40)
        for video_id, file in CLIPS.items():
            result = analyze(require(VIDEOS / file), video_id=video_id, params=params)
            assert result.status == "completed", result.error
    finally:
        _env("DATABASE_URL", saved)
        _clear_caches()
    _ANALYZED["url"] = url
    return url


@pytest.fixture(scope="session")
def analyzed_db(
    request: pytest.FixtureRequest, pg_server_url: str, template_db: str
) -> Iterator[str]:
    """The shared analysed database (see `analyzed_database`)."""
    url = analyzed_database(request, pg_server_url, template_db)
    yield url


@pytest.fixture
def dash_db(analyzed_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", analyzed_db)
    _clear_caches()
    return analyzed_db


def run_page(page: str | None = None, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    if page is not None:
        at.switch_page(f"views/{page}.py")
        for key, value in (query or {}).items():
            at.query_params[key] = value
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    """Everything the page shows as text (markdown, captions, alerts, titles)."""
    parts: list[str] = []
    for kind in (
        "title",
        "subheader",
        "markdown",
        "caption",
        "info",
        "error",
        "warning",
        "success",
    ):
        parts.extend(str(e.value) for e in getattr(at, kind))
    return "\n".join(parts)


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r} in {[m.label for m in at.metric]}"
    return found[0]


def test_videos_page_lists_stored_videos(dash_db: str) -> None:
    from capstone.store import queries

    at = run_page()
    stored = queries.list_videos()["items"]
    assert metric(at, "Videos") == str(len(stored)) == "2"
    assert metric(at, "Completed analyses") == str(queries.analysis_status_counts()["completed"])
    table = at.dataframe[0].value
    assert set(table["video"]) == {v["video_id"] for v in stored}
    assert list(table["progress"]) == [100, 100]
    assert all("completed" in s for s in table["status"])
    assert not at.error


def test_video_detail_shows_tracks_keyframes_and_charts(dash_db: str) -> None:
    from capstone.store import queries

    at = run_page("video_detail", {"video": "bikes"})
    video = queries.get_video("bikes")
    assert at.title[0].value == video["title"]
    assert metric(at, "Frames analyzed") == str(video["latest_analysis"]["frames_processed"])
    thumbs = queries.list_thumbnails("bikes")
    tracks = queries.list_tracks("bikes")
    shown = texts(at)
    assert f"{len(thumbs)} keyframe thumbnails" in shown
    assert f"{tracks['total']} tracks" in shown
    tracks_table = next(d.value for d in at.dataframe if "duration_s" in d.value.columns)
    assert sorted(tracks_table["track_id"]) == sorted(t["track_id"] for t in tracks["items"])
    assert len(at.image) >= min(len(thumbs), 24) > 0
    overlay_captions = [c for img in at.image for c in img.captions]
    assert any(c.startswith("occupancy heatmap and ") for c in overlay_captions)
    assert f"frame {thumbs[0]['frame_number']} · 0:00.0" in overlay_captions
    # one chart per stored series: the events timeline (only when the clip has semantic
    # events: which objects are confirmed, and when, depends on the detector), counts, depth
    from dashboards import data

    series = [
        bool(data.semantic_events("bikes")),
        not data.counts_frame("bikes").empty,
        not data.depth_frame("bikes").empty,
    ]
    charts = at.get("vega_lite_chart")
    assert series[1:] == [True, True]
    assert len(charts) >= sum(series), [e.type for e in at.main]
    # another video: different data
    at.selectbox(key="detail_video").set_value("pets09").run()
    assert not at.exception
    other = texts(at)
    assert f"{queries.list_tracks('pets09')['total']} tracks" in other
    assert at.title[0].value == queries.get_video("pets09")["title"]


def test_events_page_filters_and_pages(dash_db: str) -> None:
    from capstone.store import queries

    at = run_page("events", {"video": "pets09"})
    everything = queries.list_events("pets09", limit=1)["total"]
    assert metric(at, "Matching events") == str(everything)
    table = at.dataframe[0].value
    assert len(table) == min(100, everything)
    assert set(table["video_id"]) == {"pets09"}

    at.selectbox(key="ev_type").set_value("detection").run()
    detections = queries.list_events("pets09", event_type="detection", limit=1)["total"]
    assert metric(at, "Matching events") == str(detections)

    track = at.selectbox(key="ev_track").options[1]
    at.selectbox(key="ev_track").set_value(int(track)).run()
    assert not at.exception
    per_track = queries.list_events("pets09", event_type="detection", track_id=int(track), limit=1)[
        "total"
    ]
    assert metric(at, "Matching events") == str(per_track)
    assert per_track < detections
    assert set(at.dataframe[0].value["track_id"]) == {int(track)}

    at.selectbox(key="ev_track").set_value("(any)")
    at.selectbox(key="ev_size").set_value(25).run()
    assert len(at.dataframe[0].value) == 25
    at.number_input(key="ev_page").set_value(2).run()
    page2 = at.dataframe[0].value
    expected = queries.list_events("pets09", event_type="detection", limit=25, offset=25)
    assert list(page2["id"]) == [e["id"] for e in expected["items"]]
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Export CSV", "Export Parquet"] or len(labels) == 2


def test_event_exports_round_trip(dash_db: str) -> None:
    from dashboards import data

    frame, total = data.events_page("bikes", page_size=30)
    assert total > 30 and len(frame) == 30
    back_csv = pd.read_csv(io.BytesIO(data.to_csv(frame)))
    back_parquet = pd.read_parquet(io.BytesIO(data.to_parquet(frame)))
    assert list(back_csv["id"]) == list(frame["id"]) == list(back_parquet["id"])
    assert list(back_parquet["class_name"]) == list(frame["class_name"])


def test_search_page_text_hybrid_and_filters(dash_db: str) -> None:
    from capstone.store import queries
    from dashboards import data

    at = run_page("search")
    assert "Type a query" in texts(at)
    # a class seen in both clips, so that the video filter has something to remove
    seen = [{t["class_name"] for t in queries.list_tracks(v)["items"]} for v in CLIPS]
    word = sorted(set.intersection(*seen))[0]
    at.text_input(key="q_text").set_value(word).run()
    assert not at.exception
    expected = data.search(text=word, mode="hybrid", k=12)
    assert expected
    assert at.subheader[0].value == f"{len(expected)} results"
    found_by = [m.value for m in at.markdown if "found by" in m.value]
    assert len(found_by) == len(expected)
    assert f"**{expected[0]['score']:.3f}** · found by *{expected[0]['retriever']}*" == found_by[0]
    assert len(at.image) >= 1

    at.radio(key="q_mode").set_value("text").run()
    text_hits = data.search(text=word, mode="text", k=12)
    assert at.subheader[0].value == f"{len(text_hits)} results"
    assert all("found by *text*" in m.value for m in at.markdown if "found by" in m.value)
    assert {h["video_id"] for h in text_hits} == set(CLIPS)

    at.multiselect(key="q_videos").set_value(["bikes"]).run()
    assert not at.exception
    only_bikes = data.search(text=word, mode="text", k=12, video_ids=["bikes"])
    assert at.subheader[0].value == f"{len(only_bikes)} results"
    captions = [c.value for c in at.caption if " · frame " in c.value]
    assert len(captions) == len(only_bikes) > 0
    assert all(c.startswith("bikes · frame") for c in captions)


def test_more_like_this_from_a_keyframe(dash_db: str) -> None:
    from capstone.store import queries

    at = run_page("video_detail", {"video": "pets09"})
    first = queries.list_thumbnails("pets09")[0]["frame_number"]
    at.button(key=f"mlt-frame-{first}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"More like this: frame {first} of pets09" in texts(at)
    assert at.subheader[0].value.endswith("results")
    scores = [m.value for m in at.markdown if "found by *vector*" in m.value]
    assert scores and scores[0].startswith("**1.000**")  # the example itself comes first


def test_pipeline_page_without_queue(dash_db: str) -> None:
    from capstone.store import queries

    at = run_page("pipeline")
    assert "No queue configured" in texts(at)
    assert metric(at, "Analyses completed") == str(queries.analysis_status_counts()["completed"])
    table = at.dataframe[0].value
    assert set(table["video"]) == {"bikes", "pets09"}
    assert all(s == "completed" for s in table["status"])
    assert all(f > 0 for f in table["fps"])


def test_pipeline_page_shows_queue_and_dead_letters(
    dash_db: str, aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    suffix = uuid.uuid4().hex[:8]
    dlq = sqs.create_queue(QueueName=f"dash-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    main = sqs.create_queue(
        QueueName=f"dash-main-{suffix}",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})
        },
    )["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=main, MessageBody=f"job {i}")
    sqs.send_message(QueueUrl=dlq, MessageBody="poison")
    monkeypatch.setenv("SQS_QUEUE_URL", main)
    _clear_caches()
    at = run_page("pipeline")
    assert metric(at, "Queue: waiting") == "3"
    assert metric(at, "Dead letters") == "1"
    assert dlq in texts(at)


def test_upload_goes_to_the_raw_bucket_when_a_queue_is_configured(
    dash_db: str, aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from dashboards.ui import md

    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = f"dash-raw-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    monkeypatch.setenv("S3_BUCKET_RAW", bucket)
    monkeypatch.setenv("SQS_QUEUE_URL", "http://127.0.0.1:1/queue/unused")
    monkeypatch.setenv("DASHBOARD_ALLOW_WRITES", "1")  # writes on, no token: local development
    monkeypatch.setenv("CAPSTONE_AUTH_DISABLED", "1")
    _clear_caches()
    at = run_page()
    assert "event-driven pipeline" in texts(at)
    content = require(VIDEOS / "bikes.mp4").read_bytes()
    at.get("file_uploader")[0].set_value(("clip.mp4", content, "video/mp4"))  # type: ignore[attr-defined]
    at.text_input[0].set_value("dash-upload")
    at.button[-1].click().run()
    assert not at.exception
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert len(keys) == 1 and re.fullmatch(r"videos/dash-upload/[0-9a-f]{16}-clip\.mp4", keys[0])
    assert md("dash-upload: uploaded (s3://") in texts(at)  # user text is escaped markdown


def test_failed_analysis_shows_reason_and_retries(
    db_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from capstone.runtime.pipeline import analyze
    from capstone.store import queries
    from dashboards import data
    from dashboards.ui import md

    monkeypatch.setenv("DASHBOARD_ALLOW_WRITES", "1")  # writes on, no token: local development
    monkeypatch.setenv("CAPSTONE_AUTH_DISABLED", "1")
    _clear_caches()

    bogus = tmp_path / "notes.mp4"
    bogus.write_text("this is not a video")
    first = analyze(bogus, video_id="broken")
    assert first.status == "failed"
    at = run_page()
    shown = texts(at)
    assert md(f"broken: analysis failed — {first.error}") in shown
    at.button(key="retry-broken").click().run()
    assert not at.exception
    job = next(j for j in data.local_jobs() if j.video_id == "broken")
    assert job.wait(60)
    assert job.status == "failed" and job.error
    assert queries.get_video("broken")["latest_analysis"]["status"] == "failed"


def test_empty_database_shows_empty_states(db_url: str) -> None:
    for page in (None, "video_detail", "events", "search", "pipeline"):
        at = run_page(page)
        assert "No videos yet" in texts(at), page
        assert not at.error, page


def test_unreachable_database_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://capstone@127.0.0.1:1/nothing")
    _clear_caches()
    try:
        for page in (None, "video_detail", "events", "search", "pipeline"):
            started = time.monotonic()
            at = run_page(page)
            errors = [e.value for e in at.error]
            assert errors and all("database not reachable" in e for e in errors), (page, errors)
            assert time.monotonic() - started < 30
    finally:
        _clear_caches()
