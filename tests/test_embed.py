"""Embedders and the embed stage: real weights, real pipeline, real pgvector."""

from __future__ import annotations

import io
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import create_engine, text

from capstone.core.video import iter_frames
from capstone.models import embedders
from capstone.runtime.pipeline import analyze
from capstone.stages.embed import describe_frame, embed_event_descriptions
from capstone.stages.params import AnalysisParams
from tests.conftest import MOT, VIDEOS, _clear_caches, require

PETS = VIDEOS / "pets09-s2l1.avi"
BIKES = VIDEOS / "bikes.mp4"
PETS_GT = MOT / "PETS09-S2L1" / "gt" / "gt.txt"


def _rows(url: str, sql: str, **params: object) -> list:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(sql), params).all()
    engine.dispose()
    return rows


def _vec(value: str) -> np.ndarray:
    return np.array([float(x) for x in value.strip("[]").split(",")], np.float32)


def test_mobilenet_weights_are_hash_checked(tmp_path: Path) -> None:
    good = embedders.mobilenet_weights_path()
    assert embedders.sha256_of(good) == embedders.MOBILENET_SHA256
    assert embedders.MOBILENET_SHA256.startswith("b0353104")
    tampered = tmp_path / embedders.MOBILENET_FILE
    shutil.copyfile(good, tampered)
    with tampered.open("r+b") as fh:
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(embedders.WeightsIntegrityError, match="sha256"):
        embedders.ImageEmbedder(tampered)


def test_embedders_shapes_norms_and_labels() -> None:
    frame = next(iter_frames(require(BIKES)))
    image = embedders.image_embedder()
    vectors, labels = image.embed_and_classify([frame.image, frame.image[:100, :50]], top_k=3)
    assert vectors.shape == (2, 1280) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert all(len(top) == 3 and top[0][0] in image.categories for top in labels)
    assert image.embed([]).shape == (0, 1280)
    with pytest.raises(ValueError, match="BGR"):
        image.embed([np.zeros((10, 10), np.uint8)])

    texts = embedders.text_embedder().embed(["a red car", "a crimson automobile", "a kitten"])
    assert texts.shape == (3, 384)
    assert texts[0] @ texts[1] > texts[0] @ texts[2]  # meaning, not spelling

    reid = embedders.reid_embedder()
    assert reid is not None
    assert reid.embed([frame.image[:200, :80]] * 3).shape == (3, 512)


@pytest.mark.usefixtures("cold_model_cache")
def test_text_embedder_openvino_matches_sentence_transformers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from capstone.config import get_settings

    monkeypatch.setenv("CAPSTONE_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        texts = [
            "person 3 entered at 00:01.2",
            "car 17 crossed line A northbound at 00:12.4",
            "2 persons, 1 car; scene looks like: street sign, traffic light",
            "person 3 entered at 00:01.2",  # a repeat is encoded once, returned twice
            "a much longer description " * 40,  # past max_seq_length: truncated like torch
        ]
        fast = embedders.TextEmbedder()
        assert fast.backend == "openvino"
        cached = list((tmp_path / "cache" / "openvino").glob("minilm-*.xml"))
        assert len(cached) == 1 and cached[0].with_suffix(".bin").stat().st_size > 1_000_000
        reference = embedders.TextEmbedder(backend="torch").embed(texts)
        vectors = fast.embed(texts)
        assert vectors.shape == (5, 384) and vectors.dtype == np.float32
        assert np.allclose(vectors[0], vectors[3])
        assert ((vectors * reference).sum(axis=1) > 0.9999).all()
        again = embedders.TextEmbedder()  # read back from the IR cache, same numbers
        assert again.backend == "openvino"
        assert np.allclose(again.embed(texts), vectors, atol=1e-5)
    finally:
        get_settings.cache_clear()


def test_optional_models_are_none_when_they_do_not_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPSTONE_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr("capstone.models.weights.USER_CACHE", tmp_path / "cache")
    monkeypatch.delenv("CAPSTONE_CLIP_WEIGHTS", raising=False)
    _clear_caches()
    try:
        assert embedders.reid_embedder() is None
        assert embedders.clip_embedder() is None
        assert embedders.clip_weights_path() is None
    finally:
        monkeypatch.undo()
        _clear_caches()


def test_clip_path_builds_from_config_with_random_weights() -> None:
    clip = embedders.clip_embedder(allow_random=True)
    assert clip is not None and clip.random_weights and "random" in clip.name
    frame = next(iter_frames(require(BIKES)))
    images = clip.embed_images([frame.image, frame.image[::2, ::2]])
    texts = clip.embed_texts(["a cyclist", "a car"])
    assert images.shape == texts.shape == (2, 512)
    assert np.allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)


def test_event_descriptions_get_text_embeddings() -> None:
    rows = [
        {"event_type": "enter", "description": "person 3 enters the scene"},
        {"event_type": "detection", "description": None},
        {"event_type": "line_cross", "description": "car 5 crosses line A"},
    ]
    assert embed_event_descriptions(rows) == 2
    assert rows[0]["text_embedding"].shape == (384,) and "text_embedding" not in rows[1]
    assert embed_event_descriptions(rows) == 0  # already embedded: left alone
    assert describe_frame([], []) == "no detected objects"


def _pets_crops(max_frame: int = 200, step: int = 25) -> dict[int, list[np.ndarray]]:
    """Ground-truth person crops of PETS09-S2L1: id -> crops every `step` frames."""
    boxes: dict[int, dict[int, tuple[float, float, float, float]]] = defaultdict(dict)
    for line in require(PETS_GT).read_text().splitlines():
        f, pid, x, y, w, h = (float(v) for v in line.split(",")[:6])
        if f <= max_frame and h >= 50:  # MOT frames are 1-based
            boxes[int(f) - 1][int(pid)] = (x, y, x + w, y + h)
    crops: dict[int, list[np.ndarray]] = defaultdict(list)
    for frame in iter_frames(require(PETS), max_frames=max_frame):
        if frame.index % step:
            continue
        for pid, (x1, y1, x2, y2) in boxes.get(frame.index, {}).items():
            crop = frame.image[max(0, int(y1)) : int(y2), max(0, int(x1)) : int(x2)]
            if crop.size:
                crops[pid].append(crop)
    return {pid: c for pid, c in crops.items() if len(c) >= 4}


def _same_vs_different(vectors: dict[int, np.ndarray]) -> tuple[float, float]:
    same, different = [], []
    ids = sorted(vectors)
    for a in ids:
        d = 1.0 - vectors[a] @ vectors[a].T
        same.extend(d[np.triu_indices(len(d), 1)].tolist())
        for b in ids:
            if b > a:
                different.extend((1.0 - vectors[a] @ vectors[b].T).ravel().tolist())
    return float(np.mean(same)), float(np.mean(different))


def test_same_person_is_closer_than_different_people() -> None:
    crops = _pets_crops()
    assert len(crops) >= 5
    image = embedders.image_embedder()
    same, different = _same_vs_different({p: image.embed(c) for p, c in crops.items()})
    print(f"MobileNetV2 cosine distance: same person {same:.3f}, different {different:.3f}")
    assert same < different
    reid = embedders.reid_embedder()
    assert reid is not None
    r_same, r_diff = _same_vs_different({p: reid.embed(c) for p, c in crops.items()})
    print(f"OSNet cosine distance: same person {r_same:.3f}, different {r_diff:.3f}")
    assert r_same < r_diff


@pytest.mark.slow
def test_embed_stage_stores_searchable_vectors(db_url: str) -> None:
    result = analyze(
        require(PETS),
        video_id="pets-embed",
        params=AnalysisParams(stages=("detect", "track", "display", "embed"), max_frames=50),
    )
    assert result.status == "completed", result.error
    assert {"embed", "embed.keyframes", "embed.tracks", "display"} <= set(result.timings)
    aid = result.analysis_id
    frames = _rows(
        db_url,
        "SELECT frame_number, embedding::text, text_embedding::text, clip_embedding, "
        "description, model FROM frame_embeddings WHERE analysis_id=:a ORDER BY frame_number",
        a=aid,
    )
    thumbs = _rows(
        db_url,
        "SELECT frame_number FROM apps_db_displaydata WHERE analysis_id=:a AND kind='thumbnail' "
        "ORDER BY frame_number",
        a=aid,
    )
    assert [f[0] for f in frames] == [t[0] for t in thumbs] == [0, 20, 40]  # same keyframes
    for _, emb, txt, clip, description, model in frames:
        assert _vec(emb).shape == (1280,) and _vec(txt).shape == (384,)
        assert np.linalg.norm(_vec(emb)) == pytest.approx(1.0, abs=1e-4)
        assert clip is None and model == "mobilenet_v2"  # no CLIP weights offline
        assert "person" in description and "scene looks like:" in description

    tracks = _rows(
        db_url,
        "SELECT track_id, class_name, embedding::text, reid_embedding::text, best_crop "
        "FROM apps_db_track WHERE analysis_id=:a",
        a=aid,
    )
    assert tracks
    for _, cls, emb, reid, crop in tracks:
        assert _vec(emb).shape == (1280,)
        assert Image.open(io.BytesIO(crop)).format == "JPEG"
        assert (reid is not None) == (cls == "person")
        if reid is not None:
            assert _vec(reid).shape == (512,)

    # cosine search on the HNSW indexes: a frame finds itself first; a text query finds frames
    engine = create_engine(db_url)
    with engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        query = frames[1][1]
        sql = (
            "SELECT frame_number FROM frame_embeddings ORDER BY embedding <=> CAST(:q AS vector) "
            "LIMIT 3"
        )
        plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + sql), {"q": query}))
        assert "ix_frame_embeddings_cos_hnsw" in plan
        assert conn.execute(text(sql), {"q": query}).scalars().first() == frames[1][0]
        words = embedders.text_embedder().embed(["people walking"])[0]
        hits = conn.execute(
            text(
                "SELECT frame_number FROM frame_embeddings "
                "ORDER BY text_embedding <=> CAST(:q AS vector) LIMIT 3"
            ),
            {"q": "[" + ",".join(map(str, words.tolist())) + "]"},
        ).scalars()
        assert set(hits) <= {0, 20, 40}
        track_sql = (
            "SELECT track_id FROM apps_db_track ORDER BY embedding <=> "
            "(SELECT embedding FROM apps_db_track WHERE track_id = :t) LIMIT 1"
        )
        assert conn.execute(text(track_sql), {"t": tracks[0][0]}).scalar_one() == tracks[0][0]
    engine.dispose()


@pytest.mark.slow
def test_clip_embeddings_stored_when_clip_runs(db_url: str) -> None:
    result = analyze(
        require(BIKES),
        params=AnalysisParams(
            stages=("detect", "track", "embed"),
            max_frames=20,
            options={"embed_clip": "random", "embed_tracks": False},
        ),
    )
    assert result.status == "completed", result.error
    rows = _rows(
        db_url,
        "SELECT clip_embedding::text, model FROM frame_embeddings WHERE analysis_id=:a",
        a=result.analysis_id,
    )
    assert rows and all(_vec(c).shape == (512,) and "random weights" in m for c, m in rows)
    no_crops = _rows(
        db_url,
        "SELECT count(*) FROM apps_db_track WHERE analysis_id=:a AND embedding IS NOT NULL",
        a=result.analysis_id,
    )
    assert no_crops[0][0] == 0


def test_bad_embed_option_is_refused_before_the_analysis_starts() -> None:
    with pytest.raises(ValueError) as err:
        AnalysisParams(stages=("detect", "embed"), max_frames=2, options={"embed_clip": 1})
    assert "embed_clip" in err.value.errors()[0]["msg"]  # type: ignore[attr-defined]


def test_pipeline_embeds_semantic_event_descriptions(db_url: str) -> None:
    result = analyze(
        require(VIDEOS / "pets09-s2l1.avi"),
        video_id="pets-events",
        params=AnalysisParams(stages=("detect", "track", "events", "embed"), max_frames=20),
    )
    assert result.status == "completed", result.error
    engine = create_engine(db_url)
    with engine.connect() as conn:
        described, embedded = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE description IS NOT NULL), "
                "count(*) FILTER (WHERE description IS NOT NULL AND text_embedding IS NOT NULL) "
                "FROM apps_db_event WHERE analysis_id = :a AND event_type <> 'detection'"
            ),
            {"a": result.analysis_id},
        ).one()
    engine.dispose()
    assert described > 0 and embedded == described
