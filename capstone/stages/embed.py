"""Embed stage: image and text embeddings of keyframes, and of each track's best crop.

- Keyframes (every `keyframe_every_s` seconds plus scene changes, the same frames the
  display stage thumbnails) get a MobileNetV2 embedding, a description (confident
  detections counted per class, doubtful ones apart, + the top-3 ImageNet labels), the
  description's MiniLM text embedding and, when CLIP weights resolve, a CLIP image
  embedding -> `frame_embeddings`.
- Each track's best crop (in its chunk) is captured while its frame is in memory and, at the
  chunk's end, embedded in one batch (the publish step keeps the best over all chunks):
  `best_crop` (JPEG), `embedding` (MobileNetV2, 1280-d) and, for persons when the OSNet
  model resolves, `reid_embedding` (512-d) -> `apps_db_track`.
- `embed_event_descriptions(rows)` fills `text_embedding` of rows that carry a
  description: keyframe rows at the end of their chunk, and in `publish` the events the
  other stages made for the whole video.

Nothing runs per detection: the cost is one forward pass per keyframe and per track.
Timings: `embed` (this stage's share of the pass) breaks down into `embed.keyframes`,
`embed.text` (keyframe and event descriptions, one call) and `embed.tracks`; `embed.load`
(model loading, once per process) is part of the pipeline's `setup`.
Options: `keyframe_every_s`, `scene_change_threshold` (see `keyframes.py`),
`embed_clip` (`"auto"`: when weights resolve; `"off"`; `"random"`: build the CLIP
architecture with random weights, for shape/storage tests only), `clip_model`
(`MobileCLIP2-S0`), `embed_reid` (true), `embed_tracks` (true).

>>> rows = [{"event_type": "enter", "description": "person 3 enters"}]
>>> embed_event_descriptions(rows)  # doctest: +SKIP
1
>>> len(rows[0]["text_embedding"])  # doctest: +SKIP
384
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, StrictBool

from capstone.core.detections import Detections
from capstone.core.records import Record
from capstone.core.video import Frame
from capstone.models import embedders
from capstone.stages.base import RunContext, Stage, VideoResult
from capstone.stages.keyframes import KeyframeOptions, is_keyframe, selector_for

CROP_MAX_SIDE = 256  # best crops are kept (and stored) at most this large
CROP_JPEG_QUALITY = 85
BATCH = 32


CONFIDENT = 0.5  # detections at least this confident are counted in keyframe descriptions


def _counted(counts: Counter[str]) -> str:
    ranked = sorted(counts.items(), key=lambda x: (-x[1], x[0]))
    return ", ".join(f"{n} {c}{'s' if n > 1 else ''}" for c, n in ranked)


def describe_frame(
    labels: Sequence[str],
    imagenet: Sequence[tuple[str, float]],
    confidences: Sequence[float] | None = None,
    confident: float = CONFIDENT,
) -> str:
    """A searchable sentence for a keyframe: how many of each class it shows for sure,
    the doubtful detections (below `confident`) apart, and the top ImageNet labels.

    A crowd of confident people reads "7 persons", one doubtful box "no confident
    detections (doubtful: 1 person)", so a search for people ranks the crowd first.

    >>> describe_frame(["person", "car", "person"], [("unicycle", 0.4), ("crash helmet", 0.1)])
    '2 persons, 1 car; scene looks like: unicycle, crash helmet'
    >>> describe_frame(["person", "person", "dog"], [], [0.9, 0.3, 0.2])
    '1 person (doubtful: 1 dog, 1 person)'
    >>> describe_frame(["person"], [("unicycle", 0.4)], [0.29])
    'no confident detections (doubtful: 1 person); scene looks like: unicycle'
    """
    scores = list(confidences) if confidences is not None else [1.0] * len(labels)
    sure = Counter(c for c, p in zip(labels, scores, strict=True) if p >= confident)
    doubtful = Counter(c for c, p in zip(labels, scores, strict=True) if p < confident)
    if sure:
        objects = _counted(sure)
    elif doubtful:
        objects = "no confident detections"
    else:
        objects = "no detected objects"
    if doubtful:
        objects += f" (doubtful: {_counted(doubtful)})"
    scene = ", ".join(name for name, _ in imagenet)
    return f"{objects}; scene looks like: {scene}" if scene else objects


def crop_box(image: np.ndarray, box: Sequence[float], max_side: int = CROP_MAX_SIDE) -> np.ndarray:
    """The pixels inside `box` (x1, y1, x2, y2), clipped to the image, at most `max_side` px."""
    import cv2

    h, w = image.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    crop = image[y1 : max(y2, y1 + 1), x1 : max(x2, x1 + 1)]
    scale = max_side / max(crop.shape[:2])
    if scale < 1:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    return crop.copy()


def embed_event_descriptions(
    rows: list[dict[str, Any]], model: embedders.TextEmbedder | None = None
) -> int:
    """Set `text_embedding` (384-d) on every row with a description and none yet.

    Returns how many rows were embedded. Order-independent: call it once on the merged
    `apps_db_event` rows after every stage has finished.
    """
    todo = [r for r in rows if r.get("description") and r.get("text_embedding") is None]
    if not todo:
        return 0
    vectors = (model or embedders.text_embedder()).embed(
        [str(r["description"]) for r in todo], threads=embedders.all_threads()
    )
    for row, vector in zip(todo, vectors, strict=True):
        row["text_embedding"] = vector
    return len(todo)


class EmbedOptions(KeyframeOptions):
    """Which embeddings: CLIP (`auto`: when its weights are present), per-track best-crop
    image embeddings and OSNet re-id vectors."""

    embed_clip: Literal["auto", "off", "random"] = "auto"
    clip_model: Annotated[str, Field(min_length=1)] = embedders.DEFAULT_CLIP_MODEL
    embed_tracks: StrictBool = True
    embed_reid: StrictBool = True


class EmbedStage(Stage):
    """Keyframe embeddings during the pass; best-crop embeddings in one batch at the end."""

    name = "embed"
    Options = EmbedOptions
    after = ("identity", "events")  # embeds the event descriptions made by `events`
    emits = (Record.FRAME_EMBEDDING,)
    track_extras = ("embedding", "reid_embedding")

    def __init__(self, ctx: RunContext) -> None:
        options = EmbedOptions.pick(ctx.params.options)
        self.keyframes = selector_for(ctx)
        clip_mode, clip_model = options.embed_clip, options.clip_model
        self.embed_tracks = options.embed_tracks
        use_reid = options.embed_reid

        t = time.perf_counter()
        # Models take seconds to import and load: they load in the background while the
        # detector works; keyframes seen before the image model is ready wait in a list.
        self._loader = ThreadPoolExecutor(2, thread_name_prefix="capstone-embed-load")
        self._image_model = self._loader.submit(embedders.image_embedder)
        self._text_model = self._loader.submit(embedders.text_embedder)
        self._reid_model = self._loader.submit(
            embedders.reid_embedder if use_reid and self.embed_tracks else lambda: None
        )
        self._loader.shutdown(wait=False)
        self.clip = (
            None
            if clip_mode == "off"
            else embedders.clip_embedder(clip_model, allow_random=clip_mode == "random")
        )
        ctx.timings["embed.load"] = time.perf_counter() - t
        self.rows: list[dict[str, Any]] = []
        self.crops: dict[int, np.ndarray] = {}
        self._waiting: list[tuple[Frame, list[str], list[float]]] = []

    @property
    def image(self) -> embedders.ImageEmbedder:
        """The image model, waiting for its background load if it is still running."""
        return self._image_model.result()

    @property
    def reid(self) -> embedders.ReidEmbedder | None:
        """The re-id model (None when off or absent), waiting for its background load."""
        return self._reid_model.result()

    @property
    def text(self) -> embedders.TextEmbedder:
        """The text model, waiting for its background load if it is still running."""
        return self._text_model.result()

    def process(self, frame: Frame, detections: Detections, ctx: RunContext) -> None:
        if self.embed_tracks and detections.tracker_id is not None:
            for i, tid in enumerate(detections.tracker_id.tolist()):
                summary = ctx.tracks.get(tid)
                if summary is not None and summary.best_frame == frame.index:
                    self.crops[tid] = crop_box(frame.image, detections.xyxy[i])
        if not is_keyframe(frame, ctx):
            return
        self._waiting.append((frame, detections.labels, detections.confidence.tolist()))
        if self._image_model.done():
            self._embed_keyframes(ctx)

    def _embed_keyframes(self, ctx: RunContext) -> None:
        started = time.perf_counter()
        model_label = self.image.name + (f" + {self.clip.name}" if self.clip else "")
        for frame, labels_seen, scores in self._waiting:
            vectors, labels = self.image.embed_and_classify([frame.image], top_k=3)
            row: dict[str, Any] = {
                "frame_number": frame.index,
                "timestamp": round(frame.timestamp, 4),
                "model": model_label,
                "embedding": vectors[0],
                "description": describe_frame(labels_seen, labels[0], scores),
            }
            if self.clip is not None:
                row["clip_embedding"] = self.clip.embed_images([frame.image])[0]
            self.rows.append(row)
        self._waiting.clear()
        self._add_time(ctx, "embed.keyframes", started)

    @staticmethod
    def _add_time(ctx: RunContext, key: str, started: float) -> None:
        ctx.timings[key] = ctx.timings.get(key, 0.0) + time.perf_counter() - started

    def end_chunk(self, ctx: RunContext) -> dict[str, Any]:
        """The chunk's keyframe rows (with their description's text embedding), and the
        embeddings of its tracks' best crops (on the track summaries)."""
        self._embed_keyframes(ctx)
        if self.embed_tracks:
            started = time.perf_counter()
            self._embed_tracks(ctx)
            self._add_time(ctx, "embed.tracks", started)
        started = time.perf_counter()
        embed_event_descriptions(self.rows, self.text)
        self._add_time(ctx, "embed.text", started)
        for row in self.rows:
            ctx.emit(Record.FRAME_EMBEDDING, row)
        self.rows = []
        return {}

    @classmethod
    def publish(cls, video: VideoResult) -> None:
        """Text embeddings of the event descriptions made for the whole video, in one call
        with every core (no detector runs any more)."""
        started = time.perf_counter()
        embed_event_descriptions(video.rows.get(Record.EVENT, []))
        video.timings["embed.text"] = video.timings.get("embed.text", 0.0) + (
            time.perf_counter() - started
        )

    def _embed_tracks(self, ctx: RunContext) -> None:
        import cv2

        tids = [tid for tid in sorted(self.crops) if tid in ctx.tracks]
        for start in range(0, len(tids), BATCH):
            chunk = tids[start : start + BATCH]
            crops = [self.crops[tid] for tid in chunk]
            vectors = self.image.embed(crops)
            for tid, crop, vector in zip(chunk, crops, vectors, strict=True):
                extra = ctx.tracks[tid].extra
                extra["embedding"] = vector
                ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, CROP_JPEG_QUALITY])
                if ok:
                    extra["best_crop"] = jpeg.tobytes()
            persons = [tid for tid in chunk if ctx.tracks[tid].class_name == "person"]
            if self.reid is not None and persons:
                reid = self.reid.embed([self.crops[tid] for tid in persons])
                for tid, vector in zip(persons, reid, strict=True):
                    ctx.tracks[tid].extra["reid_embedding"] = vector
        self.crops.clear()
