"""Zero-shot nouns: words that are neither a detector class nor a fine type, matched to what
the image classifier saw in each track (ConSE, Norouzi et al. 2014).

No joint image-text model can be had offline here, so a noun reaches the images through the
classifier's own vocabulary. Each track stores the 10 likeliest ImageNet labels of its best
crop with their probabilities (`apps_db_trackattributes.imagenet`, the attributes stage).
A noun ("lorry", "suv", "backpack") is embedded with MiniLM, as are those labels; the labels
within `MIN_SIMILARITY` of it (at most `MAX_LABELS`) become its `Expansion`, and a track's
score is the sum over them of probability x similarity, in SQL
(`capstone.search.tracks.run(..., zero_shot=...)`). A track matches when its score reaches
`MIN_SCORE`. Answers built on it say they are guessing and which labels stood in.

>>> e = Expansion("lorry", {"trailer_truck": 0.62, "moving_van": 0.55})
>>> e.describe()
"'lorry' ~ trailer truck (0.62), moving van (0.55)"
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_SIMILARITY = 0.45  # cosine of MiniLM embeddings: a label that close may stand in
MAX_LABELS = 6
MIN_SCORE = 0.05  # sum of probability x similarity for a track to match
MIN_WORD = 3  # shorter words ("a", "in", "of") are never looked up

_vectors: dict[str, np.ndarray] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Expansion:
    """A noun and the ImageNet labels standing in for it (label -> similarity)."""

    word: str
    labels: dict[str, float]

    def describe(self) -> str:
        named = ", ".join(f"{k.replace('_', ' ')} ({v:.2f})" for k, v in self.labels.items())
        return f"{self.word!r} ~ {named}"


def _embed(texts: Sequence[str]) -> np.ndarray:
    """MiniLM vectors of `texts` (underscores read as spaces), cached for the process."""
    missing = [t for t in dict.fromkeys(texts) if t not in _vectors]
    if missing:
        from capstone.models.embedders import text_embedder

        vectors = text_embedder().embed([t.replace("_", " ") for t in missing])
        with _lock:
            _vectors.update(zip(missing, vectors, strict=True))
    return np.stack([_vectors[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


def expand(words: Sequence[str], labels: Sequence[str]) -> list[Expansion]:
    """The expansions of `words` over the stored `labels`; words with no label close enough
    are left out (an empty list: nothing to guess with)."""
    words = [w for w in dict.fromkeys(w.lower() for w in words) if len(w) >= MIN_WORD]
    labels = sorted(set(labels))
    if not words or not labels:
        return []
    similarity = _embed(words) @ _embed(labels).T
    out = []
    for word, row in zip(words, similarity, strict=True):
        best = np.argsort(-row)[:MAX_LABELS]
        chosen = {labels[i]: round(float(row[i]), 3) for i in best if row[i] >= MIN_SIMILARITY}
        if chosen:
            out.append(Expansion(word, chosen))
    return out


def weights(expansions: Sequence[Expansion]) -> dict[str, float]:
    """label -> weight over all expansions (a label standing in for two words counts twice).

    >>> weights([Expansion("a", {"x": 0.5}), Expansion("b", {"x": 0.25, "y": 0.5})])
    {'x': 0.75, 'y': 0.5}
    """
    out: dict[str, float] = {}
    for e in expansions:
        for label, sim in e.labels.items():
            out[label] = round(out.get(label, 0.0) + sim, 4)
    return out
