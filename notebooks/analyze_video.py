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
# # Analyze one video
#
# The parameterized analysis notebook that the Batch job runs in `notebook` mode (and that
# `capstone run-notebook analyze_video -p video clip.mp4` runs locally). It calls the same
# `capstone.runtime.pipeline.analyze` as the CLI and the API, stores every result in PostgreSQL +
# pgvector, and shows a short summary: counts, a keyframe, a timeline. The cell after the
# analysis publishes its result (tag `result`, also when it failed) so the caller can store
# this executed copy with the analysis row.

# %% tags=["parameters"]
video = "../../shared/data/videos/bikes.mp4"  # local path or s3://bucket/key
bucket = ""  # S3 bucket and key (used instead of `video` when both are given)
key = ""
video_id = ""  # default: from the S3 object or the file name
model = "yolo11n"
tracker = "botsort"
stride = 1
conf = 0.25
target_fps = None  # sample about this many frames per second (instead of stride)
imgsz = 640
classes = None  # e.g. ["person", "car"]: keep only these classes
max_frames = None  # stop after this many sampled frames
stages = ["track", "depth", "events", "display"]
options = {}  # stage options: lines, zones, keyframe_every_s, ...
detect_every = 1  # run the detector on every Nth sampled frame, or "auto"
chunk_s = 60.0  # seconds of video per staged (resumable) chunk

# %%
import io

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from capstone.store import queries

from capstone.io import s3 as storage
from capstone.stages.params import AnalysisParams
from capstone.core.ids import default_video_id
from capstone.runtime.pipeline import analyze

source = f"s3://{bucket}/{key}" if bucket and key else video
if not video_id:
    video_id = storage.object_video_id(bucket, key) if bucket and key else default_video_id(source)
params = AnalysisParams(
    model=model,
    tracker=tracker,
    stride=stride,
    target_fps=target_fps,
    conf=conf,
    imgsz=imgsz,
    classes=classes,
    max_frames=max_frames,
    stages=tuple(stages),
    options=options,
    detect_every=detect_every,
    chunk_s=chunk_s,
)
params.canonical()

# %%
result = analyze(source, video_id=video_id, params=params)

# %% tags=["result"]
display(
    {
        "application/json": {
            "video_id": result.video_id,
            "analysis_id": result.analysis_id,
            "status": result.status,
            "error": result.error,
            "frames_processed": result.frames_processed,
            "counts": result.counts,
        }
    },
    raw=True,
)

# %%
if result.status != "completed":
    raise RuntimeError(f"analysis of {source} failed: {result.error}")
summary = pd.Series(
    {
        "video_id": result.video_id,
        "analysis_id": result.analysis_id,
        "frames": f"{result.frames_processed} of {result.frames_expected}",
        "throughput (frames/s)": round(result.fps, 1),
        "wall time (s)": round(result.wall_time, 1),
        **{f"tracks: {k}": v for k, v in sorted(result.tracks_per_class.items())},
        **{f"events: {k}": v for k, v in sorted(result.events_per_type.items())},
        **{f"rows: {k}": v for k, v in result.counts.items() if v},
    },
    name="summary",
)
summary.to_frame()

# %% [markdown]
# ## A keyframe
# The stored thumbnail of the keyframe with the most objects (display stage), else the
# busiest frame drawn from the stored detections.

# %%
from capstone.core.drawing import draw_detections, to_rgb
from capstone.core.detections import Detections
from capstone.core.video import iter_frames



def all_events(**filters):
    """Every stored event of this analysis (the query pages by at most MAX_PAGE rows)."""
    rows, offset = [], 0
    while True:
        page = queries.list_events(
            video_id, analysis_id=result.analysis_id, limit=queries.MAX_PAGE, offset=offset, **filters
        )
        rows += page["items"]
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return rows


events = all_events(event_type="detection")
per_frame = pd.Series([e["frame_number"] for e in events], dtype="int64").value_counts()
thumbnails = queries.list_thumbnails(video_id, analysis_id=result.analysis_id)
fig, ax = plt.subplots(figsize=(8, 4.5))
if thumbnails:
    busiest = max(thumbnails, key=lambda t: per_frame.get(t["frame_number"], 0))
    jpeg = queries.get_thumbnail(video_id, busiest["frame_number"], analysis_id=result.analysis_id)
    ax.imshow(plt.imread(io.BytesIO(jpeg), format="jpeg"))
    ax.set_title(f"keyframe {busiest['frame_number']} (stored thumbnail)")
elif len(per_frame):
    frame_number = int(per_frame.idxmax())
    path, _ = storage.fetch(source)
    frame = next(f for f in iter_frames(path, max_frames=frame_number + 1) if f.index == frame_number)
    boxes = [e for e in events if e["frame_number"] == frame_number]
    names = sorted({e["class_name"] for e in boxes})
    dets = Detections(
        [e["bbox"] for e in boxes],
        [e["confidence"] for e in boxes],
        [names.index(e["class_name"]) for e in boxes],
        [e["track_id"] if e["track_id"] is not None else -1 for e in boxes],
        dict(enumerate(names)),
    )
    ax.imshow(to_rgb(draw_detections(frame.image, dets)))
    ax.set_title(f"frame {frame_number}: {len(dets)} objects")
else:
    ax.text(0.5, 0.5, "no detections", ha="center")
ax.axis("off")
plt.show()

# %% [markdown]
# ## Timeline
# Objects per class over time: the display stage's count timeline (mean per frame in each
# time bucket) when it ran, else counted from the stored detections; the semantic events
# (enter, exit, line crossing, dwell) as grey lines.

# %%
semantic = [e for e in all_events() if e["event_type"] != "detection"]
timeline = queries.get_display_data(video_id, "counts", analysis_id=result.analysis_id)
fig, ax = plt.subplots(figsize=(9, 3))
if timeline:
    data = timeline[0]["data"]
    counts = pd.DataFrame(data["mean"], index=pd.Index(data["t"], name="time (s)"))
elif events:
    detections = pd.DataFrame(events, columns=["timestamp", "class_name"])
    counts = detections.groupby(["timestamp", "class_name"]).size().unstack(fill_value=0)
else:
    counts = pd.DataFrame()
if len(counts.columns):
    counts.plot(ax=ax, drawstyle="steps-post")
for e in semantic:
    ax.axvline(e["timestamp"], color="grey", alpha=0.3, linewidth=1)
ax.set_xlabel("time (s)")
ax.set_ylabel("objects per frame")
ax.set_title(f"{video_id}: {len(semantic)} semantic events (grey lines)")
plt.show()
pd.DataFrame(
    semantic, columns=["timestamp", "event_type", "class_name", "track_id", "description"]
).head(20)
