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
# # Tracking evaluation on MOTChallenge sequences
#
# Compare trackers and tracker parameters on the public detections of a MOT15 sequence
# (MOTA, IDF1, HOTA from `trackeval`, through `capstone.eval.mot`). Every variant tracks the
# same detections, so differences come from the tracker alone.

# %% tags=["parameters"]
sequences = ["../../shared/data/mot/TUD-Campus"]  # MOTChallenge folders (gt/, det/)
trackers = ["bytetrack", "botsort"]
min_score = None  # drop public detections below this score
sweep_parameter = "track_high_thresh"  # a tracker setting to vary (ByteTrack)
sweep_values = [0.3, 0.5, 0.7]

# %%
import matplotlib.pyplot as plt
import pandas as pd

from capstone.eval import mot as evaluate
from capstone.io import mot as mot_files

loaded = {}
for folder in sequences:
    seq = mot_files.load_sequence(folder)
    dets = mot_files.load_mot_detections(seq.det_path, num_frames=seq.length, min_score=min_score)
    loaded[seq.name] = (seq, dets)
pd.DataFrame(
    [
        {
            "sequence": name,
            "frames": seq.length,
            "fps": seq.frame_rate,
            "gt boxes": len(mot_files.load_mot_gt(seq.gt_path)),
            "detections": sum(len(d) for d in dets),
            "frames for BoT-SORT motion compensation": "yes" if seq.video or seq.image_dir else "no",
        }
        for name, (seq, dets) in loaded.items()
    ]
).set_index("sequence")

# %% [markdown]
# ## Trackers

# %%
rows = []
for name, (seq, dets) in loaded.items():
    runs = {
        kind: evaluate.track_detections(
            dets, kind, seq.frame_rate, mot_files.sequence_images(seq) if kind == "botsort" else None
        )
        for kind in trackers
    }
    for kind, metrics in evaluate.evaluate_many(seq.root, runs).items():
        rows.append({"sequence": name, "tracker": kind, **metrics})
results = pd.DataFrame(rows).set_index(["sequence", "tracker"])
results[["MOTA", "IDF1", "HOTA", "IDSW", "DetA", "AssA", "FP", "FN"]].round(3)

# %%
ax = results[["MOTA", "IDF1", "HOTA"]].plot.bar(figsize=(8, 3.5), rot=0)
ax.set_ylim(0, 1)
ax.set_title("trackers on public detections")
plt.show()

# %% [markdown]
# ## A tracker parameter
# ByteTrack with one setting varied (any key of Ultralytics' tracker YAML works).

# %%
sweep = []
for name, (seq, dets) in loaded.items():
    runs = {
        value: evaluate.track_detections(dets, "bytetrack", seq.frame_rate, **{sweep_parameter: value})
        for value in sweep_values
    }
    for value, metrics in evaluate.evaluate_many(seq.root, runs).items():
        sweep.append({"sequence": name, sweep_parameter: value, **metrics})
swept = pd.DataFrame(sweep)
fig, ax = plt.subplots(figsize=(6, 3.5))
for (name,), group in swept.groupby(["sequence"]):
    for metric in ("MOTA", "IDF1", "HOTA"):
        ax.plot(group[sweep_parameter], group[metric], marker="o", label=f"{name} {metric}")
ax.set_xlabel(sweep_parameter)
ax.set_ylabel("score")
ax.legend(fontsize=8)
plt.show()
swept.set_index(["sequence", sweep_parameter])[["MOTA", "IDF1", "HOTA", "IDSW"]].round(3)
