# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python (capstone)
#     language: python
#     name: capstone
# ---

# %% [markdown]
# # Search an analyzed video
#
# Analyze a clip with the `display` and `embed` stages (keyframe thumbnails, MobileNetV2
# image embeddings, descriptions with MiniLM text embeddings, best-crop embeddings of
# tracks), look at the embedding space in 2-D, then query it with `capstone.search.query`: by
# example frame, by text, and hybrid with filters.

# %% tags=["parameters"]
video = "../../shared/data/videos/bikes.mp4"
video_id = ""  # default: from the file name
stride = 4
max_frames = 40
keyframe_every_s = 0.5  # denser keyframes than the default, for a fuller picture
query_text = "car"  # full text: every word must match; "or" between words for any
filter_classes = ["car"]  # hybrid query: only frames with these classes
k = 5

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
    stages=("track", "display", "embed"),
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
