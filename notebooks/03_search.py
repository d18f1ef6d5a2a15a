# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (capstone)
#     language: python
#     name: capstone
# ---

# %% [markdown]
# # Search an analyzed video
#
# Analyze a clip with the `display`, `embed` and `attributes` stages (keyframe thumbnails,
# MobileNetV2 image embeddings, descriptions with MiniLM text embeddings, best-crop
# embeddings of tracks; each track's colour, direction, speed and place), look at the
# embedding space in 2-D, query it with `capstone.search.query`: by example frame, by text,
# and hybrid with filters, then ask it questions in English (`capstone.search.ask`).

# %% tags=["parameters"]
video = "../../shared/data/videos/bikes.mp4"
video_id = ""  # default: from the file name
stride = 4
max_frames = 40
keyframe_every_s = 0.5  # denser keyframes than the default, for a fuller picture
query_text = "car"  # full text: every word must match; "or" between words for any
filter_classes = ["car"]  # hybrid query: only frames with these classes
k = 5
questions = [
    "how many cars?",
    "show me the black cars",
    "when did the cars leave?",
    "which was the fastest car?",  # a superlative: sort:-speed limit:1, with its speed
    "how many cars were in view at the same time?",  # the busiest moment, and when
    "how long were the cars in the last 10 seconds in view?",  # t:-0:10.., seconds each
    "where were the cars?",
    "were there any cars that were not black?",  # yes or no; `-color:black` excludes
    "how many cars in the first half of the video?",  # t:0%..50%: a share of its length
    "did any car stop?",  # pause>=2: stood still 2 s or more between moves
    "how many cars were there while a person was there?",  # during:person: another's times
    "how many people wearing hats?",  # words it cannot map: it says so, and guesses
]

# %%
import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sqlmodel import select

from capstone.store import queries
from capstone.store import session_scope
from capstone.store.tables import FrameEmbedding
from capstone.stages.params import AnalysisParams
from capstone.core.ids import default_video_id
from capstone.runtime.pipeline import analyze
from capstone.search.query import FrameRef, SearchFilters, SearchQuery, hits_table, search

video_id = video_id or default_video_id(video)
params = AnalysisParams(
    stride=stride,
    max_frames=max_frames,
    stages=("track", "identity", "display", "embed", "attributes"),
    options={"keyframe_every_s": keyframe_every_s},
)
result = analyze(video, video_id=video_id, params=params)
if result.status != "completed":
    raise RuntimeError(f"analysis failed: {result.error}")
pd.Series(result.counts, name="rows").to_frame()

# %% [markdown]
# ## The embedding space
# Keyframe image embeddings projected on their first two principal components; colour is
# time, so scenes of the clip show up as clusters.

# %%
with session_scope() as session:
    keyframes = session.exec(
        select(FrameEmbedding)
        .where(FrameEmbedding.analysis_id == result.analysis_id)
        .order_by(FrameEmbedding.frame_number)
    ).all()
    frame_numbers = [row.frame_number for row in keyframes]
    descriptions = [row.description for row in keyframes]
    matrix = np.array([np.asarray(row.embedding, dtype=np.float32) for row in keyframes])
centred = matrix - matrix.mean(axis=0)
_, singular, axes = np.linalg.svd(centred, full_matrices=False)
xy = centred @ axes[:2].T
explained = (singular[:2] ** 2).sum() / max((singular**2).sum(), 1e-12)
fig, ax = plt.subplots(figsize=(6, 4.5))
points = ax.scatter(xy[:, 0], xy[:, 1], c=frame_numbers, cmap="viridis", s=40)
for (x, y), number in zip(xy, frame_numbers):
    ax.annotate(str(number), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
fig.colorbar(points, label="frame")
ax.set_title(f"{len(keyframes)} keyframes, PCA ({explained:.0%} of the variance)")
plt.show()
pd.DataFrame({"frame": frame_numbers, "description": descriptions}).head(10)


# %%
def show(hits, title):
    """The hits' stored keyframe thumbnails, best first."""
    shown = [h for h in hits if h.frame_number is not None][:k]
    if not shown:
        print(f"{title}: no hits")
        return
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 2.4), squeeze=False)
    for ax, hit in zip(axes[0], shown):
        jpeg = queries.get_thumbnail(hit.video_id, hit.frame_number, analysis_id=hit.analysis_id)
        if jpeg:
            ax.imshow(plt.imread(io.BytesIO(jpeg), format="jpeg"))
        ax.set_title(f"#{hit.frame_number} {hit.retriever} {hit.score:.3f}", fontsize=8)
        ax.axis("off")
    fig.suptitle(title)
    plt.tight_layout()
    plt.show()


columns = ["frame_number", "timestamp", "score", "distance", "retriever", "description"]

# %% [markdown]
# ## Similar frames, by example
# The first keyframe is the query; it finds itself first (distance 0), then frames of the
# same scene.

# %%
example = FrameRef(video_id=video_id, frame_number=frame_numbers[0])
similar = search(SearchQuery(frame=example, k=k, filters=SearchFilters(video_ids=[video_id])))
show(similar, f"like frame {example.frame_number}")
pd.DataFrame(hits_table(similar), columns=columns)

# %% [markdown]
# ## Text
# Full-text over the keyframe descriptions (detected classes and ImageNet labels).

# %%
by_text = search(SearchQuery(text=query_text, mode="text", k=k))
show(by_text, f"text: {query_text!r}")
pd.DataFrame(hits_table(by_text), columns=columns)

# %% [markdown]
# ## Hybrid, with filters
# Vector (the query's text embedding) and full text fused by Reciprocal Rank Fusion, only
# frames of this video that contain the filter classes, in one SQL statement.

# %%
filters = SearchFilters(video_ids=[video_id], class_names=filter_classes or None)
hybrid = search(SearchQuery(text=query_text, mode="hybrid", k=k, filters=filters))
show(hybrid, f"hybrid: {query_text!r}, classes {filter_classes}")
pd.DataFrame(hits_table(hybrid), columns=[*columns, "vector_rank", "text_rank"])

# %% [markdown]
# ## Questions
# `ask` maps a question onto the query language (printed back as the canonical query), runs
# it in SQL over the stored track attributes, and answers from plausible tracks only; the
# same function answers `capstone ask`, `GET /ask` and the dashboard's Ask page. A
# *how many* answer counts identities and gives `at_least`, the most of them in view at
# once: a range when a person the tracker lost and found again may be counted twice;
# *how many ... at once* gives the most in view together, and `Answer.moment`, when. A
# *where* question also returns a heatmap of where the tracks were. *were there any ...?*
# is answered yes or no (`Answer.yes`), and *not* / *except* exclude what follows them.
# Times can be another object's: *while the bus was there* (`during:bus`), *after the white
# van left*, *before the truck came*, *when the van left* (`at_exit:`).

# %%
from capstone.core.drawing import draw_heat, to_rgb
from capstone.search.ask import ask

for question in questions:
    answer = ask(question, video_id=video_id)
    print(f"Q: {question}\n   query: {answer.query!r} ({answer.kind})\n   {answer.text}")
    if answer.note:
        print(f"   note: {answer.note}")
    for heatmap in answer.heatmaps:
        thumbs = queries.list_thumbnails(heatmap.video_id)
        jpeg = queries.get_thumbnail(heatmap.video_id, thumbs[0]["frame_number"]) if thumbs else None
        frame = plt.imread(io.BytesIO(jpeg), format="jpeg")[..., ::-1] if jpeg else np.zeros(
            (heatmap.height or 360, heatmap.width or 640, 3), np.uint8
        )
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.imshow(to_rgb(draw_heat(np.ascontiguousarray(frame), heatmap.counts)))
        ax.set_title(f"where: {answer.query}")
        ax.axis("off")
        plt.show()

# %% [markdown]
# The tracks behind the last answer with a list of moments, with their attributes and best
# crops (`AnswerItem.thumbnail` is the API path of the same crop).

# %%
answer = ask("show me the cars", video_id=video_id)
rows = [
    {
        "track": item.track_id,
        "class": item.class_name,
        "from_s": item.t_start,
        "to_s": item.t_end,
        "colour": item.attributes.get("color"),
        "direction": item.attributes.get("direction"),
        "speed_px_s": item.attributes.get("speed_px_s"),
    }
    for item in answer.items
]
crops = [
    queries.get_track_crop(item.video_id, item.track_id, analysis_id=item.attributes["analysis_id"])
    for item in answer.items[:k]
]
crops = [c for c in crops if c]
if crops:
    fig, axes = plt.subplots(1, len(crops), figsize=(2.4 * len(crops), 2.4), squeeze=False)
    for ax, jpeg in zip(axes[0], crops):
        ax.imshow(plt.imread(io.BytesIO(jpeg), format="jpeg"))
        ax.axis("off")
    plt.show()
print(answer.text)
pd.DataFrame(rows)
