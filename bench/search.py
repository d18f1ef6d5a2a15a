"""Search benchmark: recall@k against exact search and p50/p99 latency of `capstone.search.query`.

Synthetic, clustered data at the real embedding sizes, loaded with binary COPY into a fresh
database on the bench-only embedded server (`.capstone/bench/pgdata`):

- keyframes (`frame_embeddings`): `--image-rows` (default 100 000) x 1280-d image
  embeddings with short descriptions, spread over 100 videos (one video = a 1% filter);
- events (`apps_db_event`): `--text-rows` (default 1 000 000) x 384-d text embeddings
  with descriptions, over the same 100 videos.

The HNSW (cosine) indexes are built after the load, with the schema's settings (m 16 /
ef_construction 64 for images, 32 / 128 for text; `--m`, `--ef-construction` override
both), and their build times reported; the other vector indexes of `frame_embeddings`
(L2, text, CLIP) are not built (unused here).
For each target and for vector / text / hybrid queries, with and without a 1% filter
(`video_ids=[one of 100]`): recall@k of the HNSW query against the same query with index
scans off (`SearchQuery(exact=True)`), and p50/p99 latency of `search()` (one session per
query, settings + one statement). Then `halfvec`: a `halfvec(1280)` expression index on the
image embeddings, its size against the `vector` index, and its recall.

    .venv/bin/python -m bench.search                                # 100k images, 1M texts
    .venv/bin/python -m bench.search --image-rows 100000 --text-rows 200000 --queries 50
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench import drop_database, fresh_database, machine_note, setup_environment, table
from capstone.store.tables import TEXT_HNSW

N_VIDEOS = 100
CLUSTERS = 64
WORDS = [
    "car",
    "truck",
    "bus",
    "person",
    "bicycle",
    "motorcycle",
    "dog",
    "cat",
    "bird",
    "street",
    "highway",
    "crossing",
    "parking",
    "night",
    "rain",
    "crowd",
    "red",
    "blue",
    "white",
    "black",
    "walking",
    "running",
    "standing",
    "turning",
    "stopped",
    "fast",
]


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clustered(
    rng: np.random.Generator, n: int, dim: int, centres: np.ndarray, spread: float
) -> np.ndarray:
    """Unit vectors around `centres` (N(0,1) per dimension) with N(0, spread) noise.

    `spread` 1.0: the noise is as large as the centre (nearest neighbours still mostly
    share a cluster); small values make tight clusters of near-ties (hard for HNSW).
    """
    labels = rng.integers(0, len(centres), n)
    return _unit(centres[labels] + rng.normal(scale=spread, size=(n, dim)))


def _descriptions(rng: np.random.Generator, n: int) -> list[str]:
    picks = rng.integers(0, len(WORDS), size=(n, 4))
    return [" ".join(WORDS[j] for j in row) for row in picks]


def _load(url: str, table_name: str, columns: list[str], types: list[str], rows: Any) -> float:
    """Binary COPY (pgvector's psycopg dumpers); returns seconds."""
    import psycopg
    from pgvector.psycopg import register_vector

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    t = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        with conn.cursor() as cur:
            cols = ", ".join(columns)
            with cur.copy(f"COPY {table_name} ({cols}) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
    return time.perf_counter() - t


def _sql(url: str, statement: str) -> float:
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    t = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(text("SET maintenance_work_mem = '3GB'"))
        conn.execute(text("SET max_parallel_maintenance_workers = 2"))
        conn.execute(text(statement))
    engine.dispose()
    return time.perf_counter() - t


def _scalar(statement: str, params: dict[str, Any] | None = None) -> Any:
    from sqlalchemy import text

    from capstone.store.engine import session_scope

    with session_scope() as session:
        return session.execute(text(statement), params or {}).scalar_one()


def _setup_videos() -> dict[str, int]:
    from sqlalchemy import text

    from capstone.store.engine import session_scope

    ids = {}
    with session_scope() as session:
        for i in range(N_VIDEOS):
            vid = f"bench-{i:03d}"
            session.execute(
                text("INSERT INTO apps_db_video (video_id, status) VALUES (:v, 'completed')"),
                {"v": vid},
            )
            ids[vid] = int(
                session.execute(
                    text(
                        "INSERT INTO apps_db_videoanalysis (video_id, status, progress, params, "
                        "params_hash, frames_processed, attempts, finished_at) VALUES "
                        "(:v, 'completed', 100, '{}'::jsonb, 'bench', 0, 1, now()) RETURNING id"
                    ),
                    {"v": vid},
                ).scalar_one()
            )
    return ids


def _percentiles(times: list[float]) -> tuple[float, float]:
    arr = np.asarray(times) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def measure(
    label: str, queries: list[Any], results: list[list[Any]], *, exact: bool = True
) -> list[Any]:
    """Run each query (HNSW) and, for recall, the same with exact=True."""
    from capstone.search import query as S

    times, recalls, counts = [], [], []
    for q in queries:
        S.search(q)  # warm caches for this query shape (first run not timed)
        hits, dt = _timed(lambda q=q: S.search(q))
        times.append(dt)
        counts.append(len(hits))
        if exact:
            truth = S.search(q.model_copy(update={"exact": True}))
            got = {h.id for h in hits}
            want = {h.id for h in truth}
            recalls.append(len(got & want) / max(1, len(want)))
    p50, p99 = _percentiles(times)
    recall = float(np.mean(recalls)) if recalls else float("nan")
    row = [label, len(queries), round(recall, 4), round(p50, 2), round(p99, 2), min(counts)]
    results.append(row)
    print(" | ".join(str(v) for v in row), flush=True)
    return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    setup_environment()
    url = fresh_database("search")
    from capstone.search import query as S

    out: dict[str, Any] = {"machine": machine_note(), "args": vars(args), "build": {}}
    rng = np.random.default_rng(args.seed)
    try:
        analyses = _setup_videos()
        vids = list(analyses)
        # drop what the bench does not use or builds itself after the load
        _sql(
            url,
            "DROP INDEX ix_frame_embeddings_hnsw, ix_frame_embeddings_cos_hnsw, "
            "ix_frame_text_embedding_hnsw, ix_frame_clip_embedding_hnsw, "
            "ix_event_text_embedding_hnsw, ix_event_tsv, ix_frame_description_tsv, "
            "ix_event_video_frame, ix_event_analysis_type, ix_apps_db_event_event_type",
        )

        # ---------------------------------------------------------------- images
        n_img, n_txt, k = args.image_rows, args.text_rows, args.k
        # the schema's own settings unless --m / --ef-construction say otherwise
        image_hnsw = f"WITH (m = {args.m or 16}, ef_construction = {args.ef_construction or 64})"
        m, ef_c = args.m or TEXT_HNSW["m"], args.ef_construction or TEXT_HNSW["ef_construction"]
        text_hnsw = f"WITH (m = {m}, ef_construction = {ef_c})"
        img_centres = rng.normal(size=(CLUSTERS, 1280))
        txt_centres = rng.normal(size=(CLUSTERS, 384))
        images = clustered(rng, n_img, 1280, img_centres, args.spread)
        img_desc = _descriptions(rng, n_img)

        def image_rows() -> Any:
            for i in range(n_img):
                vid = vids[i % N_VIDEOS]
                yield (vid, analyses[vid], i, i / 25.0, "bench", images[i], img_desc[i])

        out["build"]["load_frames_s"] = _load(
            url,
            "frame_embeddings",
            [
                "video_id",
                "analysis_id",
                "frame_number",
                "timestamp",
                "model",
                "embedding",
                "description",
            ],
            ["text", "int8", "int4", "float8", "text", "vector", "text"],
            image_rows(),
        )
        print(f"loaded {n_img} keyframes in {out['build']['load_frames_s']:.1f} s", flush=True)
        out["build"]["frames_hnsw_s"] = _sql(
            url,
            "CREATE INDEX ix_frame_embeddings_cos_hnsw ON frame_embeddings USING hnsw "
            f"(embedding vector_cosine_ops) {image_hnsw}",
        )
        print(f"HNSW 1280-d vector index: {out['build']['frames_hnsw_s']:.1f} s", flush=True)
        out["build"]["frames_gin_s"] = _sql(
            url,
            "CREATE INDEX ix_frame_description_tsv ON frame_embeddings USING gin (description_tsv)",
        )

        # ---------------------------------------------------------------- events (text)
        texts = clustered(rng, n_txt, 384, txt_centres, args.spread)
        ev_desc = _descriptions(rng, n_txt)

        def event_rows() -> Any:
            for i in range(n_txt):
                vid = vids[i % N_VIDEOS]
                yield (vid, analyses[vid], i, i / 25.0, "enter", "person", texts[i], ev_desc[i])

        out["build"]["load_events_s"] = _load(
            url,
            "apps_db_event",
            [
                "video_id",
                "analysis_id",
                "frame_number",
                "timestamp",
                "event_type",
                "class_name",
                "text_embedding",
                "description",
            ],
            ["text", "int8", "int4", "float8", "text", "text", "vector", "text"],
            event_rows(),
        )
        print(f"loaded {n_txt} events in {out['build']['load_events_s']:.1f} s", flush=True)
        out["build"]["events_hnsw_s"] = _sql(
            url,
            "CREATE INDEX ix_event_text_embedding_hnsw ON apps_db_event USING hnsw "
            f"(text_embedding vector_cosine_ops) {text_hnsw}",
        )
        print(f"HNSW 384-d index: {out['build']['events_hnsw_s']:.1f} s", flush=True)
        out["build"]["events_gin_s"] = _sql(
            url, "CREATE INDEX ix_event_tsv ON apps_db_event USING gin (description_tsv)"
        )
        _sql(url, "VACUUM ANALYZE")

        # ---------------------------------------------------------------- queries
        nq = args.queries
        qi = rng.integers(0, n_img, nq)
        img_q = _unit(images[qi] + rng.normal(scale=0.02, size=(nq, 1280)))
        ti = rng.integers(0, n_txt, nq)
        txt_q = _unit(texts[ti] + rng.normal(scale=0.02, size=(nq, 384)))
        words = [WORDS[int(j)] for j in rng.integers(0, len(WORDS), nq)]
        one_video = [S.SearchFilters(video_ids=[vids[int(i) % N_VIDEOS]]) for i in range(nq)]
        none = [S.SearchFilters() for _ in range(nq)]
        results: list[list[Any]] = []
        print("query | n | recall@k | p50 ms | p99 ms | min rows", flush=True)
        for target, qv in (("frames", img_q), ("events", txt_q)):
            size = n_img if target == "frames" else n_txt
            for fname, filters in (("no filter", none), ("1% filter", one_video)):
                tag = f"{target} ({size}) {fname}"
                vq = [
                    S.SearchQuery(vector=qv[i].tolist(), target=target, k=k, filters=filters[i])
                    for i in range(nq)
                ]
                measure(f"{tag}: vector", vq, results)
                tq = [
                    S.SearchQuery(
                        text=words[i], mode="text", target=target, k=k, filters=filters[i]
                    )
                    for i in range(nq)
                ]
                measure(f"{tag}: text", tq, results, exact=False)
                hq = [
                    S.SearchQuery(
                        text=words[i],
                        vector=qv[i].tolist(),
                        mode="hybrid",
                        target=target,
                        k=k,
                        filters=filters[i],
                    )
                    for i in range(nq)
                ]
                measure(f"{tag}: hybrid", hq, results)
        # ef_search sweep (unfiltered vector queries, default scan depth): recall vs latency
        for target, qv in (("frames", img_q), ("events", txt_q)):
            for ef in args.ef_search:
                vq = [
                    S.SearchQuery(vector=qv[i].tolist(), target=target, k=k, ef_search=ef)
                    for i in range(nq)
                ]
                measure(f"{target} no filter: vector, ef_search={ef}", vq, results)
            # scan depth: rows the iterative scan returns (past ef_search), re-ranked exactly
            for depth in args.scan_depth:
                for fname, filters in (("no filter", none), ("1% filter", one_video)):
                    vq = [
                        S.SearchQuery(
                            vector=qv[i].tolist(),
                            target=target,
                            k=k,
                            scan_depth=depth,
                            filters=filters[i],
                        )
                        for i in range(nq)
                    ]
                    measure(f"{target} {fname}: vector, scan_depth={depth}", vq, results)
        out["queries"] = results

        # ---------------------------------------------------------------- halfvec
        if not args.skip_halfvec:
            out["build"]["frames_halfvec_hnsw_s"] = _sql(
                url,
                "CREATE INDEX ix_frame_embeddings_half_hnsw ON frame_embeddings USING hnsw "
                "((embedding::halfvec(1280)) halfvec_cosine_ops) "
                "WITH (m = 16, ef_construction = 64)",
            )
            out["halfvec"] = _halfvec(img_q, k)
        out["sizes_mb"] = {
            name: round(
                _scalar("SELECT pg_relation_size(CAST(:n AS regclass))", {"n": name}) / 2**20, 1
            )
            for name in (
                "frame_embeddings",
                "ix_frame_embeddings_cos_hnsw",
                "apps_db_event",
                "ix_event_text_embedding_hnsw",
            )
            + (() if args.skip_halfvec else ("ix_frame_embeddings_half_hnsw",))
        }
    finally:
        if not args.keep:
            drop_database(url)
    return out


def _halfvec(queries: np.ndarray, k: int) -> dict[str, Any]:
    """Recall@k and latency of the halfvec index against exact search on full vectors."""
    from sqlalchemy import text

    from capstone.store.engine import session_scope

    half_sql = text(
        "SELECT id FROM frame_embeddings ORDER BY embedding::halfvec(1280) <=> "
        "CAST(:q AS halfvec(1280)) LIMIT :k"
    )
    exact_sql = text(
        "SELECT id FROM frame_embeddings ORDER BY embedding <=> CAST(:q AS vector(1280)) LIMIT :k"
    )
    times, recalls = [], []
    for q in queries:
        literal = "[" + ",".join(f"{x:.7g}" for x in q.tolist()) + "]"
        with session_scope() as session:
            session.execute(text("SET LOCAL hnsw.ef_search = 80"))
            session.execute(half_sql, {"q": literal, "k": k})  # warm
            t = time.perf_counter()
            got = {r[0] for r in session.execute(half_sql, {"q": literal, "k": k})}
            times.append(time.perf_counter() - t)
            plan = "\n".join(
                r[0]
                for r in session.execute(text("EXPLAIN " + str(half_sql)), {"q": literal, "k": k})
            )
            session.execute(text("SET LOCAL enable_indexscan = off"))
            want = {r[0] for r in session.execute(exact_sql, {"q": literal, "k": k})}
        recalls.append(len(got & want) / k)
    p50, p99 = _percentiles(times)
    row = {
        "recall": round(float(np.mean(recalls)), 4),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "uses_index": "ix_frame_embeddings_half_hnsw" in plan,
    }
    print(f"halfvec: {row}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-rows", type=int, default=100_000)
    parser.add_argument("--text-rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spread", type=float, default=0.7, help="cluster noise (see clustered)")
    parser.add_argument(
        "--ef-search",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[40, 100, 200, 400],
        help="hnsw.ef_search values to sweep (comma-separated)",
    )
    parser.add_argument(
        "--scan-depth",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=[],
        help="vector scan depths to sweep (comma-separated), with and without the filter",
    )
    parser.add_argument(
        "--m", type=int, default=None, help="HNSW m (default: the schema's, 16 / 32 for text)"
    )
    parser.add_argument(
        "--ef-construction",
        type=int,
        default=None,
        help="HNSW ef_construction (default: the schema's, 64 / 128 for text)",
    )
    parser.add_argument("--skip-halfvec", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    out = run(args)
    print()
    print(out["machine"])
    print("build (s):", json.dumps({k: round(v, 1) for k, v in out["build"].items()}))
    print(
        table(
            out["queries"],
            ["query", "queries", f"recall@{args.k}", "p50 ms", "p99 ms", "min rows"],
        )
    )
    if "halfvec" in out:
        print("halfvec vs vector (frames):", json.dumps(out["halfvec"]))
    print("sizes (MiB):", json.dumps(out["sizes_mb"]))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
