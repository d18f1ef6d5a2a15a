"""Cut a track where the tracker gave it back to someone else after a gap.

A frame-by-frame tracker keeps a lost track for a while and hands it to the next box its
motion model predicts. After a short miss that box is nearly always the same object; after
a longer one (a person hidden behind another) it is often the neighbour who walked into
the predicted place. `ReassociationCheck` watches the tracker's output: when a track comes
back after more than `min_gap` frames and its new box looks unlike its last boxes (cosine
distance of re-id features above `max_distance`), the track continues under a new id from
that frame on. Identity repair may still link the two parts later on its own evidence.

Only these moments are embedded (the last `window` crops before the gap and the box that
came back, in one batch), so the check costs a few re-id calls per re-association, not
one per box. `bench/identity_repair.py --reassociation` chose the thresholds on
PETS09-S2L1 and scored them on TUD-Campus (README, "Which tracker, and why").

>>> import numpy as np
>>> from capstone.core.detections import Detections
>>> features = {"A": [1.0, 0.0], "B": [0.0, 1.0]}  # each box "crop" is who it shows
>>> check = ReassociationCheck(lambda crops: np.array([features[c] for c in crops]),
...                            min_gap=2, classes=None)
>>> def frame(who):  # one box of track 7
...     return Detections([[0, 0, 10, 20]], [0.9], [0], [7], {0: "person"}), [who]
>>> ids = []
>>> for index, who in [(0, "A"), (1, "A"), (5, "B"), (6, "B")]:
...     boxes, crops = frame(who)
...     ids.append(int(check.update(index, boxes, crops.__getitem__).tracker_id[0]))
>>> ids[:2], ids[2] == ids[3] != 7
([7, 7], True)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from capstone.core.detections import Detections

# Ids given to the parts after a cut: above any id a tracker hands out in one chunk, within
# a 32-bit signed column.
CUT_ID_BASE = 1 << 30

Embed = Callable[[Sequence[Any]], np.ndarray]


@dataclass
class _Seen:
    out_id: int
    last_index: int
    crops: deque[Any] = field(default_factory=deque)


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return 1.0 - float(a @ b) / norm if norm > 0 else 0.0


class ReassociationCheck:
    """Stateful, one per tracker; call `update` with every frame's tracked boxes in order.

    Args:
        embed: re-id features of a list of crops, one row each (e.g. OSNet's `embed`).
        min_gap: frames a track must have been missing before its return is checked
            (sampled frames: the frames `update` sees).
        max_distance: cosine distance between the mean feature of the last `window`
            crops before the gap and the returning box's feature above which it is cut.
        window: crops kept per track.
        classes: class names checked (the re-id model is trained on people); None: all.
    """

    def __init__(
        self,
        embed: Embed,
        *,
        min_gap: int = 2,
        max_distance: float = 0.4,
        window: int = 4,
        classes: frozenset[str] | None = frozenset({"person"}),
        forget_after: int = 1000,
    ) -> None:
        self.embed = embed
        self.min_gap, self.max_distance, self.window = min_gap, max_distance, window
        self.classes = classes
        self.forget_after = forget_after
        self.cuts: list[tuple[int, int, int, float]] = []  # (frame, old id, new id, distance)
        self._seen: dict[int, _Seen] = {}
        self._next_id = CUT_ID_BASE

    def update(
        self, index: int, tracked: Detections, crop: Callable[[int], Any | None]
    ) -> Detections:
        """`tracked` with ids renamed where a part was cut. `crop(i)` gives box `i`'s crop
        (anything `embed` takes; None where there is none); frames must come in order."""
        if tracked.tracker_id is None or not len(tracked):
            self._forget(index)
            return tracked
        labels = tracked.labels
        ids = tracked.tracker_id.copy()
        returning: list[tuple[int, _Seen, list[Any], Any]] = []
        for i, tid in enumerate(tracked.tracker_id.tolist()):
            checked = self.classes is None or labels[i] in self.classes
            image = crop(i) if checked else None  # no crop kept of what is never checked
            seen = self._seen.get(tid)
            if seen is None:
                seen = self._seen[tid] = _Seen(tid, index, deque(maxlen=self.window))
            elif index - seen.last_index > self.min_gap and seen.crops and image is not None:
                returning.append((i, seen, list(seen.crops), image))
            seen.last_index = index
            ids[i] = seen.out_id
            if image is not None:
                seen.crops.append(image)
        if returning:
            self._check(index, returning, ids)
        self._forget(index)
        out = tracked[np.arange(len(tracked))]
        out.tracker_id = ids
        return out

    def _check(
        self, index: int, returning: list[tuple[int, _Seen, list[Any], Any]], ids: np.ndarray
    ) -> None:
        batch: list[Any] = []
        spans = []
        for _, _, before, image in returning:
            spans.append((len(batch), len(batch) + len(before)))
            batch.extend(before)
            batch.append(image)
        feats = np.asarray(self.embed(batch), np.float64)
        for (i, seen, _, _), (a, b) in zip(returning, spans, strict=True):
            distance = _cosine_distance(feats[a:b].mean(axis=0), feats[b])
            if distance > self.max_distance:
                self._next_id += 1
                self.cuts.append((index, seen.out_id, self._next_id, round(distance, 3)))
                seen.out_id = ids[i] = self._next_id
                seen.crops = deque([seen.crops[-1]], maxlen=self.window)

    def _forget(self, index: int) -> None:
        """Tracks no tracker keeps this long are dropped (bounded memory)."""
        if len(self._seen) < 64:
            return
        for tid in [t for t, s in self._seen.items() if index - s.last_index > self.forget_after]:
            del self._seen[tid]
