"""Search: vector, full-text and hybrid in one statement, filters, validation, API and CLI.

Rows are written the way production writes them (`tests.conftest.store_result`: staged,
then published) into a fresh migrated
database; the expected rankings are computed independently with NumPy / from the rows.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from capstone.search import query as S
from capstone.store.engine import session_scope
from capstone.store.tables import IMAGE_DIM, REID_DIM, TEXT_DIM
from tests.conftest import store_result

RNG_SEED = 7


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _clustered(rng: np.random.Generator, n: int, dim: int, clusters: int = 8) -> np.ndarray:
    centres = rng.normal(size=(clusters, dim))
    labels = rng.integers(0, clusters, n)
    return _unit(centres[labels] + 0.6 * rng.normal(size=(n, dim)))


CLASSES = ["car", "person", "bicycle", "truck"]


def _seed(n_frames: int = 60, seed: int = RNG_SEED) -> dict:
    """Two videos: frames with image/text embeddings + descriptions, tracks, events, thumbs."""
    rng = np.random.default_rng(seed)
    data: dict = {"videos": {}}
    for v_i, video_id in enumerate(("cam-a", "cam-b")):
        image = _clustered(rng, n_frames, IMAGE_DIM)
        textv = _clustered(rng, n_frames, TEXT_DIM)
        frames, events, thumbs = [], [], []
        for i in range(n_frames):
            cls = CLASSES[(i + v_i) % len(CLASSES)]
            frames.append(
                {
                    "frame_number": i * 5,
                    "timestamp": i * 0.2,
                    "model": "test",
                    "embedding": image[i],
                    "text_embedding": textv[i],
                    "description": f"{1 + i % 3} {cls}s; scene looks like: street",
                }
            )
            thumbs.append(
                {
                    "kind": "thumbnail",
                    "frame_number": i * 5,
                    "timestamp": i * 0.2,
                    "image": b"x",
                }
            )
            events.append(
                {
                    "frame_number": i * 5,
                    "timestamp": i * 0.2,
                    "event_type": "detection",
                    "class_name": cls,
                    "confidence": 0.9,
                    "bbox": [1.0, 2.0, 30.0, 40.0],
                    # a track of the box's class (published boxes carry their track's class)
                    "track_id": (i + v_i) % 4 or 4,
                }
            )
        for t in range(6):
            events.append(
                {
                    "frame_number": t * 10,
                    "timestamp": t * 0.4,
                    "event_type": "enter" if t % 2 == 0 else "exit",
                    "class_name": CLASSES[t % 4],
                    "track_id": t,
                    "description": f"{CLASSES[t % 4]} {t} enters from the left",
                    "text_embedding": _unit(rng.normal(size=TEXT_DIM)),
                }
            )
        track_vecs = _clustered(rng, 6, IMAGE_DIM)
        tracks = [
            {
                "track_id": t,  # publish numbers tracks from 1, in order of first frame
                "class_name": CLASSES[t % 4],
                "first_frame": t * 10,
                "last_frame": t * 10 + 50,
                "first_timestamp": t * 0.4,
                "last_timestamp": t * 0.4 + 2.0,
                "length": 5 + 10 * t,
                "mean_confidence": 0.8,
                "best_frame": t * 10 + 25,
                "best_bbox": [1.0, 2.0, 3.0, 4.0],
                "best_crop": b"\xff\xd8jpeg",
                "avg_depth": 2.0 + t,
                "embedding": track_vecs[t - 1],
                "reid_embedding": _unit(rng.normal(size=REID_DIM)),
            }
            for t in range(1, 7)
        ]
        aid = store_result(
            video_id,
            {
                "frame_embeddings": frames,
                "apps_db_event": events,
                "apps_db_track": tracks,
                "apps_db_displaydata": thumbs,
            },
        )
        data["videos"][video_id] = {
            "analysis_id": aid,
            "image": image,
            "text": textv,
            "frames": frames,
            "tracks": tracks,
        }
    with session_scope() as session:
        session.execute(text("ANALYZE"))
    return data


@pytest.fixture
def seeded(db_url: str) -> dict:
    return _seed()


def _exact_frames(data: dict, query: np.ndarray, space: str = "image") -> list[tuple[str, int]]:
    scored = []
    for video_id, v in data["videos"].items():
        sims = v[space] @ query
        scored += [
            (float(s), video_id, f["frame_number"]) for s, f in zip(sims, v["frames"], strict=True)
        ]
    scored.sort(key=lambda x: -x[0])
    return [(v, f) for _, v, f in scored]


# --------------------------------------------------------------------------- vector


def test_vector_search_matches_numpy_ranking(seeded: dict) -> None:
    query = seeded["videos"]["cam-a"]["image"][3]
    hits = S.search(S.SearchQuery(vector=query.tolist(), k=10))
    expected = _exact_frames(seeded, query)[:10]
    assert [(h.video_id, h.frame_number) for h in hits] == expected
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert all(h.retriever == "vector" and h.target == "frames" for h in hits)
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    top = hits[0]
    assert top.thumbnail is not None and top.thumbnail.kind == "thumbnail"
    assert top.thumbnail.frame_number == top.frame_number
    assert top.description and top.timestamp == pytest.approx(top.frame_number / 25)


def test_query_by_frame_and_by_track(seeded: dict) -> None:
    a = seeded["videos"]["cam-a"]
    hits = S.search(S.SearchQuery(frame=S.FrameRef(video_id="cam-a", frame_number=20), k=5))
    assert (hits[0].video_id, hits[0].frame_number) == ("cam-a", 20)
    assert [(h.video_id, h.frame_number) for h in hits] == _exact_frames(seeded, a["image"][4])[:5]

    hits = S.search(
        S.SearchQuery(track=S.TrackRef(video_id="cam-b", track_id=3), target="tracks", k=3)
    )
    assert (hits[0].video_id, hits[0].track_id) == ("cam-b", 3)
    assert hits[0].distance == pytest.approx(0.0, abs=1e-5)
    assert hits[0].thumbnail is not None and hits[0].thumbnail.kind == "track_crop"
    assert hits[0].bbox == [1.0, 2.0, 3.0, 4.0] and hits[0].frame_number == 55
    # by row id, in the re-id space
    row_id = hits[0].id
    reid = S.search(S.SearchQuery(track=S.TrackRef(id=row_id), target="tracks", space="reid", k=2))
    assert reid[0].id == row_id

    with pytest.raises(S.SearchReferenceNotFound, match="nearest keyframes: 20, 25"):
        S.search(S.SearchQuery(frame=S.FrameRef(video_id="cam-a", frame_number=22)))
    with pytest.raises(S.SearchReferenceNotFound, match="not found"):
        S.search(S.SearchQuery(track=S.TrackRef(id=10**9), target="tracks"))


def test_query_by_uploaded_image(db_url: str) -> None:
    """A real picture embedded on the fly with MobileNetV2 finds the frame it came from."""
    import cv2

    from capstone.models.embedders import image_embedder

    rng = np.random.default_rng(1)
    pictures = []
    for i in range(4):
        img = np.zeros((96, 128, 3), np.uint8)
        cv2.rectangle(img, (10 + 20 * i, 10), (60 + 10 * i, 80), (40 * i, 255 - 50 * i, 90), -1)
        cv2.circle(img, (100 - 15 * i, 40), 10 + 5 * i, (200, 30 * i, 10), -1)
        pictures.append(img + rng.integers(0, 20, img.shape, dtype=np.uint8))
    vectors = image_embedder().embed(pictures)
    frames = [
        {"frame_number": i, "timestamp": float(i), "model": "m", "embedding": vectors[i]}
        for i in range(4)
    ]
    store_result("pics", {"frame_embeddings": frames})
    _, jpeg = cv2.imencode(".png", pictures[2])
    hits = S.search(S.SearchQuery(image=jpeg.tobytes(), k=4))
    assert hits[0].frame_number == 2 and hits[0].score > 0.99
    hits = S.search(S.SearchQuery(image=pictures[1], k=1))  # an array works too
    assert hits[0].frame_number == 1
    with pytest.raises(S.SearchInputError, match="could not be decoded"):
        S.search(S.SearchQuery(image=b"not an image"))


# --------------------------------------------------------------------------- text and hybrid


def test_full_text_over_descriptions_and_event_classes(seeded: dict) -> None:
    hits = S.search(S.SearchQuery(text="bicycle", mode="text", k=100))
    expected = {
        (vid, f["frame_number"])
        for vid, v in seeded["videos"].items()
        for f in v["frames"]
        if "bicycle" in f["description"]
    }
    assert {(h.video_id, h.frame_number) for h in hits} == expected
    assert all(h.retriever == "text" and h.score > 0 for h in hits)
    # websearch syntax: a negation and an OR
    hits = S.search(S.SearchQuery(text="car or truck", mode="text", k=100))
    assert {h.description.split(";")[0].split()[1] for h in hits} == {"cars", "trucks"}
    assert len(hits) == 60  # half of the 120 frames
    assert S.search(S.SearchQuery(text="car -street", mode="text", k=100)) == []
    # events: detection rows match through their class name; semantic events by description
    hits = S.search(
        S.SearchQuery(
            text="enters left",
            mode="text",
            target="events",
            k=50,
            filters=S.SearchFilters(video_ids=["cam-a"]),
        )
    )
    assert len(hits) == 6 and {h.event_type for h in hits} == {"enter", "exit"}
    assert all(h.thumbnail is not None for h in hits)
    cars = S.search(S.SearchQuery(text="cars", mode="text", target="events", k=1000))
    assert cars and all(h.class_name == "car" for h in cars)


def test_hybrid_is_rrf_of_both_rankings_in_one_statement(seeded: dict) -> None:
    query = seeded["videos"]["cam-b"]["text"][10]
    q = S.SearchQuery(text="truck", vector=query.tolist(), mode="hybrid", k=10, weights=(1.0, 2.0))
    hits = S.search(q)
    vec = S.search(S.SearchQuery(vector=query.tolist(), k=40))
    txt = S.search(S.SearchQuery(text="truck", mode="text", k=40))
    v_rank = {h.id: i + 1 for i, h in enumerate(vec)}
    t_rank = {h.id: i + 1 for i, h in enumerate(txt)}
    expected = {
        i: (1.0 / (60 + v_rank[i]) if i in v_rank else 0)
        + (2.0 / (60 + t_rank[i]) if i in t_rank else 0)
        for i in set(v_rank) | set(t_rank)
    }
    best = sorted(expected.values(), reverse=True)[:10]
    assert [h.score for h in hits] == pytest.approx(best)
    for h in hits:
        assert h.score == pytest.approx(expected[h.id])
        assert (
            h.retriever
            == {(True, True): "both", (True, False): "vector", (False, True): "text"}[
                (h.id in v_rank, h.id in t_rank)
            ]
        )
    assert any(h.retriever == "both" for h in hits)
    with session_scope() as session:
        p = S.plan(q, session)
    assert p.sql.count("SELECT") >= 4 and "FULL OUTER JOIN" in p.sql and ";" not in p.sql


def test_text_query_defaults_to_hybrid_with_text_embeddings(seeded: dict) -> None:
    """Text on frames without CLIP weights: MiniLM embedding of the query + full text."""
    hits = S.search(S.SearchQuery(text="persons", k=5))
    assert len(hits) == 5 and {h.retriever for h in hits} <= {"vector", "text", "both"}
    assert any(h.retriever in ("text", "both") for h in hits)
    # events have text embeddings too; tracks have none
    ev = S.search(S.SearchQuery(text="car enters", target="events", mode="vector", k=3))
    assert len(ev) == 3 and all(h.event_type in ("enter", "exit") for h in ev)
    with pytest.raises(S.SearchInputError, match="tracks have no text embeddings"):
        S.search(S.SearchQuery(text="car", target="tracks", mode="vector"))
    tr = S.search(S.SearchQuery(text="car", target="tracks", mode="text", k=10))
    assert tr and all(h.class_name == "car" for h in tr)


def test_clip_space_on_frames(db_url: str) -> None:
    """Stored CLIP embeddings are searchable with a raw 512-d vector (space inferred)."""
    rng = np.random.default_rng(3)
    clip = _unit(rng.normal(size=(20, 512)))
    rows = [
        {
            "frame_number": i,
            "timestamp": float(i),
            "model": "m",
            "embedding": _unit(rng.normal(size=IMAGE_DIM)),
            "clip_embedding": clip[i],
        }
        for i in range(20)
    ]
    store_result("clipvid", {"frame_embeddings": rows})
    hits = S.search(S.SearchQuery(vector=clip[7].tolist(), k=3))
    assert hits[0].frame_number == 7
    expected = np.argsort(-(clip @ clip[7]))[:3].tolist()
    assert [h.frame_number for h in hits] == expected


# --------------------------------------------------------------------------- filters


def test_filters_on_frames_tracks_and_events(seeded: dict) -> None:
    q = seeded["videos"]["cam-a"]["image"][0].tolist()
    f = S.SearchFilters(video_ids=["cam-b"], t_from=2.0, t_to=6.0, class_names=["car"])
    hits = S.search(S.SearchQuery(vector=q, k=100, filters=f))
    b = seeded["videos"]["cam-b"]["frames"]
    expected = {
        fr["frame_number"]
        for fr in b
        if 2.0 <= fr["timestamp"] <= 6.0
        and fr["description"].endswith("cars; scene looks like: street")
    }
    assert expected and {h.frame_number for h in hits} == expected
    assert all(h.video_id == "cam-b" for h in hits)

    tracks = S.search(
        S.SearchQuery(
            vector=q,
            target="tracks",
            k=100,
            filters=S.SearchFilters(min_track_length=25, depth_min=4.0, depth_max=6.5),
        )
    )
    assert sorted({h.track_id for h in tracks}) == [2, 3, 4]
    assert len(tracks) == 6

    events = S.search(
        S.SearchQuery(
            text="enters",
            target="events",
            k=100,
            filters=S.SearchFilters(event_types=["enter"], min_track_length=20),
        )
    )
    assert events and all(h.event_type == "enter" and h.track_id in (2, 4) for h in events)

    near_enter = S.search(
        S.SearchQuery(
            vector=q,
            k=100,
            filters=S.SearchFilters(video_ids=["cam-a"], event_types=["exit"], event_window_s=0.0),
        )
    )
    exits = {t * 10 for t in range(6) if t % 2 == 1}
    assert {h.frame_number for h in near_enter} == exits


def test_only_latest_completed_analysis_unless_named(seeded: dict) -> None:
    a = seeded["videos"]["cam-a"]
    store_result("cam-a", {"frame_embeddings": [dict(a["frames"][0], frame_number=999)]}, variant=2)
    store_result(
        "cam-a",
        {"frame_embeddings": [dict(a["frames"][0], frame_number=555)]},
        variant=3,
        status="failed",
    )
    q = a["image"][0].tolist()
    hits = S.search(S.SearchQuery(vector=q, k=200, filters=S.SearchFilters(video_ids=["cam-a"])))
    assert [h.frame_number for h in hits] == [999]
    old = S.search(
        S.SearchQuery(vector=q, k=200, filters=S.SearchFilters(analysis_ids=[a["analysis_id"]]))
    )
    assert len(old) == 60 and old[0].frame_number == 0


def _text_keyframes(video_id: str, vectors: np.ndarray, descriptions: list[str]) -> None:
    """One analysis of keyframes 0..n-1 (timestamp = frame) with these text embeddings."""
    with session_scope() as session:
        # these tests are about the text index; skip maintaining the two 1280-d image indexes
        session.execute(text("DROP INDEX ix_frame_embeddings_hnsw, ix_frame_embeddings_cos_hnsw"))
    one_hot = np.eye(1, IMAGE_DIM, dtype=np.float32)[0]
    rows = [
        {
            "frame_number": i,
            "timestamp": float(i),
            "model": "m",
            "embedding": one_hot,
            "text_embedding": vector,
            "description": description,
        }
        for i, (vector, description) in enumerate(zip(vectors, descriptions, strict=True))
    ]
    store_result(video_id, {"frame_embeddings": rows})
    with session_scope() as session:
        session.execute(text("ANALYZE frame_embeddings"))


def test_selective_filter_returns_k_equal_to_exact_search(db_url: str) -> None:
    """A filter matching 1% of 4000 rows still returns k rows, equal to exact search.

    Run twice: with the planner's own choice, and with the HNSW index forced (seq, bitmap
    scans and sorts off: on 4000 rows, reading the 40 matching rows and sorting them is the
    cheaper plan, and the right one); there, the iterative index scan is what keeps k rows
    coming, shown by the same query with `hnsw.iterative_scan=off` running dry.
    """
    n, k = 4000, 10
    rng = np.random.default_rng(11)
    vectors = _clustered(rng, n, TEXT_DIM, clusters=16)
    descriptions = [
        f"{1 + i % 5} {CLASSES[i % 4]}s" + (" ambulance" if i % 100 == 5 else "") for i in range(n)
    ]
    _text_keyframes("big", vectors, descriptions)
    window = S.SearchFilters(t_from=1000.0, t_to=1039.0)  # 40 of 4000 rows = 1%
    for forced in (False, True):
        recalls = []
        for qi in range(5):
            query = _unit(rng.normal(size=TEXT_DIM) + vectors[qi * 7])
            q = S.SearchQuery(vector=query.tolist(), k=k, filters=window)
            truth = (np.argsort(-(vectors[1000:1040] @ query))[:k] + 1000).tolist()
            with session_scope() as session:
                if forced:
                    session.execute(text("SET LOCAL enable_seqscan = off"))
                    session.execute(text("SET LOCAL enable_bitmapscan = off"))
                    session.execute(text("SET LOCAL enable_sort = off"))  # vs btree + sort
                    assert "ix_frame_text_embedding_hnsw" in S.explain(q, session=session)
                approx = S.search(q, session=session)
                if forced:
                    p = S.plan(q, session)
                    off = {"hnsw.iterative_scan": "off", "hnsw.ef_search": "40"}  # 40 candidates
                    S._apply_settings(session, {**p.settings, **off})
                    starved = session.execute(text(p.sql), p.params).all()
                    assert len(starved) < k
                # last: exact=True turns index scans off for the rest of this transaction
                exact = S.search(q.model_copy(update={"exact": True}), session=session)
            assert [h.frame_number for h in exact] == truth
            assert len(approx) == k
            recalls.append(len({h.frame_number for h in approx} & set(truth)) / k)
        assert min(recalls) == 1.0
    # unfiltered hybrid on the same table: the planner picks HNSW and GIN on its own. (With
    # the default ef_search of 400 and scan depth of 1000, a 4000-row seq scan is cheaper and
    # PostgreSQL rightly takes it; at 100k rows, bench/search.py, the default plan uses the
    # index.)
    hybrid = S.SearchQuery(
        text="ambulance",
        vector=vectors[5].tolist(),
        mode="hybrid",
        k=k,
        ef_search=40,
        scan_depth=40,
    )
    plan_text = S.explain(hybrid)
    assert "Index Scan using ix_frame_text_embedding_hnsw" in plan_text
    assert "Bitmap Index Scan on ix_frame_description_tsv" in plan_text
    hits = S.search(hybrid)
    assert len(hits) == k and hits[0].frame_number == 5 and hits[0].retriever == "both"


def test_scan_depth_reads_past_ef_search_and_reranks_exactly(db_url: str) -> None:
    """The vector retriever takes `scan_depth` rows from the HNSW index (the iterative scan
    goes on past ef_search) and the outer query reads them all: a CTE is evaluated lazily, so
    an outer ranking that trusted its ORDER BY would stop after the first `candidates`."""
    n, k = 3000, 10
    rng = np.random.default_rng(5)
    vectors = _clustered(rng, n, TEXT_DIM, clusters=4)
    _text_keyframes("deep", vectors, ["x"] * n)
    query = _unit(vectors[17] + rng.normal(scale=0.05, size=TEXT_DIM))
    truth = np.argsort(-(vectors @ query))[:k].tolist()
    q = S.SearchQuery(vector=query.tolist(), k=k, ef_search=40, scan_depth=600)
    with session_scope() as session:
        for plan_node in ("seqscan", "bitmapscan"):  # on 3000 rows: keep to the index
            session.execute(text(f"SET LOCAL enable_{plan_node} = off"))
        plan_text = S.explain(q, session=session, analyze=True)
        hits = S.search(q, session=session)
    scan = next(line for line in plan_text.splitlines() if "Index Scan using ix_frame_text" in line)
    assert "rows=600" in scan  # not 40 (ef_search) nor 40 (candidates)
    assert [h.frame_number for h in hits] == truth
    with pytest.raises(ValidationError):
        S.SearchQuery(vector=query.tolist(), scan_depth=S.MAX_SCAN_DEPTH + 1)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"vector": [0.1] * 100}, "length 100"),
        ({"vector": [0.1] * 100, "target": "events"}, "events are searchable by text \\(384\\)"),
        (
            {"vector": [math.nan] + [0.1] * (IMAGE_DIM - 1)},
            "NaN or infinity \\(first at index 0\\)",
        ),
        ({"vector": [0.0] * TEXT_DIM}, "all zeros"),
        ({"text": "   "}, "empty query"),
        ({}, "empty query"),
        ({"text": "car", "mode": "text", "vector": [0.1] * TEXT_DIM}, "mode 'text' takes no"),
        ({"vector": [0.1] * TEXT_DIM, "mode": "hybrid"}, "needs a text query"),
        (
            {"vector": [0.1] * TEXT_DIM, "frame": {"video_id": "a", "frame_number": 1}},
            "one example",
        ),
        ({"text": "car", "filters": {"t_from": 5, "t_to": 1}}, "after t_to"),
        ({"text": "car", "weights": [0, 0]}, "not both 0"),
        ({"vector": [0.1] * REID_DIM, "space": "clip", "target": "tracks"}, "no clip embeddings"),
        ({"k": 0, "text": "x"}, "invalid search query: k"),
    ],
)
def test_bad_queries_raise_input_errors(db_url: str, fields: dict, message: str) -> None:
    with pytest.raises(S.SearchInputError, match=message):
        S.search(S.SearchQuery.parse(**fields))


# --------------------------------------------------------------------------- API and CLI


def test_post_search_api(seeded: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app

    client = TestClient(create_app())
    query = seeded["videos"]["cam-a"]["image"][5].tolist()
    r = client.post("/search", json={"vector": query, "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hits"][0]["frame_number"] == 25 and body["mode"] == "vector"
    assert body["hits"][0]["thumbnail"]["kind"] == "thumbnail"
    r = client.post(
        "/search",
        json={"text": "truck", "filters": {"video_ids": ["cam-b"]}, "k": 5, "mode": "hybrid"},
    )
    assert r.status_code == 200 and all(h["video_id"] == "cam-b" for h in r.json()["hits"])

    bad = client.post("/search", json={"vector": [0.1, 0.2], "k": 3})
    assert bad.status_code == 422 and "length 2" in bad.json()["detail"]
    nan = client.post(
        "/search",
        content=json.dumps({"vector": [float("nan")] * IMAGE_DIM}),
        headers={"content-type": "application/json"},
    )
    assert nan.status_code == 422 and "NaN" in nan.json()["detail"]
    empty = client.post("/search", json={"text": ""})
    assert empty.status_code == 422 and "empty query" in empty.json()["detail"]
    missing = client.post("/search", json={"frame": {"video_id": "cam-a", "frame_number": 3}})
    assert missing.status_code == 404 and "nearest keyframes" in missing.json()["detail"]
    assert client.post("/search", json={"text": "x", "k": 5000}).status_code == 422

    monkeypatch.setenv("REQUIRE_AUTH_FOR_READS", "1")
    monkeypatch.setenv("API_KEY_HASHES", "0" * 64)
    from capstone.config import get_settings

    get_settings.cache_clear()
    assert client.post("/search", json={"text": "car"}).status_code == 401
    get_settings.cache_clear()


def test_cli_search(seeded: dict, capsys: pytest.CaptureFixture[str]) -> None:
    from capstone.cli import main

    main(["search", "truck", "--mode", "text", "--video", "cam-b", "-k", "3", "--json"])
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and all(
        h["video_id"] == "cam-b" and "truck" in h["description"] for h in hits
    )

    main(["search", "--frame", "cam-a:25", "-k", "2"])
    out = capsys.readouterr().out
    assert "cam-a" in out and "25" in out

    with pytest.raises(SystemExit) as exc:
        main(["search", "--frame", "cam-a"])
    assert exc.value.code == 4
    assert "VIDEO:FRAME" in capsys.readouterr().err
