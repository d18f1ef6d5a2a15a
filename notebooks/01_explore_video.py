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
# # Explore a video, one stage at a time
#
# Load a clip, probe it, and run each analysis stage on a few frames with the same
# `capstone` functions the pipeline uses: detect, track, depth, events. The last section
# has a frame scrubber and sliders (confidence, stride, tracker) that re-run detection and
# tracking.

# %% tags=["parameters"]
video = "../../shared/data/videos/pets09-s2l1.avi"
model = "yolo11n"
conf = 0.25
stride = 2  # keep every Nth frame
max_frames = 24  # sampled frames to load
tracker = "botsort"  # or bytetrack
show = 4  # frames shown per grid
run_events = True  # run the pipeline (detect, track, events) and store it, to list events

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from capstone.core.drawing import draw_detections, draw_trails, to_rgb, trails_of
from capstone.models.detector import get_detector
from capstone.core.video import iter_frames, probe
from capstone.tracking.tracker import TRACKERS, Tracker

info = probe(video)
pd.Series(info.as_dict(), name=info.path.name).to_frame()

# %% [markdown]
# ## Decode
# Sampled frames with their index and timestamp (BGR images, decoded ahead by a thread).

# %%
frames = list(iter_frames(info.path, stride=stride, max_frames=max_frames))
picked = np.linspace(0, len(frames) - 1, min(show, len(frames))).round().astype(int)


def grid(images, titles):
    fig, axes = plt.subplots(1, len(images), figsize=(4 * len(images), 3.2), squeeze=False)
    for ax, image, title in zip(axes[0], images, titles):
        ax.imshow(to_rgb(image))
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    plt.tight_layout()
    plt.show()


grid([frames[i].image for i in picked], [f"#{frames[i].index} t={frames[i].timestamp:.2f}s" for i in picked])

# %% [markdown]
# ## Detect

# %%
detector = get_detector(model)
detector.conf = conf
detections = detector([f.image for f in frames])
grid(
    [draw_detections(frames[i].image, detections[i]) for i in picked],
    [f"#{frames[i].index}: {len(detections[i])} boxes" for i in picked],
)
pd.Series([label for d in detections for label in d.labels]).value_counts().rename("boxes").to_frame()

# %% [markdown]
# ## Track
# The tracker sees the sampled stream, so its frame rate is the video's rate / stride.


# %%
def run_tracker(kind, dets):
    tracker_ = Tracker(kind, frame_rate=info.fps / stride)
    return [tracker_.update(d, f.image) for f, d in zip(frames, dets)]


tracked = run_tracker(tracker, detections)
trails = trails_of(tracked)
last = len(frames) - 1
grid(
    [draw_trails(draw_detections(frames[last].image, tracked[last]), trails)],
    [f"{tracker}: {len(trails)} tracks over {len(frames)} frames"],
)
pd.DataFrame(
    [(tid, len(points)) for tid, points in sorted(trails.items())], columns=["track", "frames"]
).set_index("track").T

# %% [markdown]
# ## Depth
# The geometric estimate (pinhole camera, flat ground, typical object heights), calibrated
# on the person boxes of these frames when there are enough of them. With depth weights
# installed, the `depth` stage uses the model instead (`options={"depth_model": ...}`).

# %%
from capstone.stages.depth import GeometricDepth

estimator = GeometricDepth(info.width, info.height)
people = [d[np.array(d.labels) == "person"].xyxy for d in tracked if len(d)]
ground = estimator.calibrate(np.concatenate(people) if people else np.zeros((0, 4)))
depths = [estimator.estimate(d.xyxy, d.labels)[0] for d in tracked]
grid(
    [
        draw_detections(frames[i].image, tracked[i], extra=[f"{z:.1f}m" for z in depths[i]])
        for i in picked
    ],
    [f"#{frames[i].index}" for i in picked],
)
print("ground plane:", ground or "not calibrated (class heights only)")
fig, ax = plt.subplots(figsize=(5, 3))
foot = np.concatenate([d.xyxy[:, 3] for d in tracked]) if tracked else np.zeros(0)
ax.scatter(foot, np.concatenate(depths) if depths else [], s=8)
ax.set_xlabel("box bottom row (px)")
ax.set_ylabel("depth (m)")
plt.show()

# %% [markdown]
# ## Events
# Semantic events come from whole tracks, so they are computed by the pipeline: analyze the
# same frames with the `events` stage and read the stored events back.

# %%
from capstone.store import queries
from capstone.stages.params import AnalysisParams
from capstone.core.ids import default_video_id
from capstone.runtime.pipeline import analyze

if run_events:
    params = AnalysisParams(
        model=model,
        conf=conf,
        stride=stride,
        max_frames=max_frames,
        tracker=tracker,
        stages=("track", "events"),
    )
    result = analyze(info.path, video_id=f"explore-{default_video_id(info.path)}", params=params)
    print(result.status, result.events_per_type)
    stored = queries.list_events(result.video_id, analysis_id=result.analysis_id, limit=500)["items"]
    semantic = pd.DataFrame(
        [e for e in stored if e["event_type"] != "detection"],
        columns=["frame_number", "timestamp", "event_type", "class_name", "track_id", "description"],
    )
else:
    semantic = pd.DataFrame()
semantic.head(20)

# %% [markdown]
# ## Move a counting line, look again
# Lines, zones and `confirm_s` only change the events, so a second analysis with a moved
# line reuses the stored detections and tracks (no frame decoded) and recomputes the
# events: seconds instead of a full run. `reuse=False` would run everything again.

# %%
if run_events:
    height, width = info.height, info.width
    crossings = []
    for name, row in (("L1", 0.5), ("L2", 0.7)):
        y = round(height * row)
        line = {"name": name, "points": [[0, y], [width, y]]}
        moved = params.model_copy(update={"options": {"lines": [line]}})
        again = analyze(info.path, video_id=result.video_id, params=moved)
        crossings.append(
            {
                "line": f"{name} at y={y}",
                "frames decoded": again.frames_run,
                "seconds": round(again.wall_time, 2),
                "reused analysis": again.reused_from,
                "recomputed": ", ".join(again.recomputed) or "everything",
                "line crossings": again.events_per_type.get("line_cross", 0),
            }
        )
    reuse_table = pd.DataFrame(crossings)
else:
    reuse_table = pd.DataFrame()
reuse_table

# %% [markdown]
# ## Interactive
# Scrub through the frames; change confidence, stride or tracker to re-run detection and
# tracking on the loaded clip.

# %%
import ipywidgets as widgets
from IPython.display import display

_decoded = {stride: frames}


def explore(frame=0, conf=conf, stride=stride, tracker=tracker):
    if stride not in _decoded:
        _decoded[stride] = list(iter_frames(info.path, stride=stride, max_frames=max_frames))
    clip = _decoded[stride]
    detector.conf = conf
    dets = detector([f.image for f in clip])
    kind_tracker = Tracker(tracker, frame_rate=info.fps / stride)
    tracks = [kind_tracker.update(d, f.image) for f, d in zip(clip, dets)]
    i = min(frame, len(clip) - 1)
    image = draw_trails(draw_detections(clip[i].image, tracks[i]), trails_of(tracks[: i + 1]))
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.imshow(to_rgb(image))
    ax.set_title(
        f"frame #{clip[i].index} (t={clip[i].timestamp:.2f}s): {len(dets[i])} boxes, "
        f"{len(trails_of(tracks[: i + 1]))} tracks so far; conf={conf:.2f} stride={stride} {tracker}"
    )
    ax.axis("off")
    plt.show()


controls = dict(
    frame=widgets.IntSlider(value=0, min=0, max=max_frames - 1, description="frame"),
    conf=widgets.FloatSlider(value=conf, min=0.05, max=0.95, step=0.05, description="confidence"),
    stride=widgets.IntSlider(value=stride, min=1, max=10, description="stride"),
    tracker=widgets.Dropdown(options=list(TRACKERS), value=tracker, description="tracker"),
)
view = widgets.Output()


def refresh(change=None):
    """Re-run detection and tracking with the controls' values (on release of a slider)."""
    with view:
        view.clear_output(wait=True)
        explore(**{name: control.value for name, control in controls.items()})


for control in controls.values():
    control.continuous_update = False
    control.observe(refresh, names="value")
display(widgets.VBox([widgets.HBox(list(controls.values())[:2]), widgets.HBox(list(controls.values())[2:]), view]))

# %% [markdown]
# The same view drawn once without widgets (what a papermill run records): the last frame,
# with a stricter confidence. In JupyterLab, move a control above to draw it there.

# %%
explore(frame=len(frames) - 1, conf=min(0.95, conf + 0.25), stride=stride, tracker=tracker)
