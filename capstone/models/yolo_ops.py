"""YOLO pre- and post-processing in NumPy and OpenCV: letterbox, non-maximum suppression
and boxes back to the frame, with Ultralytics' arithmetic (`LetterBox`, `non_max_suppression`,
`scale_boxes`) but without importing torch or Ultralytics, which took about a second of
every analysis's start (`tests/test_detect.py` checks the boxes against Ultralytics'
`predict()` on real frames).

>>> image = np.zeros((272, 640, 3), np.uint8)
>>> letterbox(image, (640, 640)).shape
(640, 640, 3)
>>> boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]], np.float32)
>>> nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), 0.5).tolist()
[0, 2]
"""

from __future__ import annotations

import numpy as np

PAD_VALUE = 114
MAX_WH = 7680  # class offset of the per-class suppression (boxes of two classes never touch)
MAX_NMS = 30000  # boxes considered by the suppression, best first


def input_size(imgsz: int | tuple[int, int], stride: int) -> tuple[int, int]:
    """(height, width) of a dynamic model's input: `imgsz` rounded up to the stride.

    >>> input_size(630, 32), input_size((480, 641), 32)
    ((640, 640), (480, 672))
    """
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    return (max(stride, -(-h // stride) * stride), max(stride, -(-w // stride) * stride))


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` resized to fit `size` (height, width) keeping its aspect ratio, centred on a
    grey (114) canvas."""
    import cv2

    h, w = image.shape[:2]
    ratio = min(size[0] / h, size[1] / w)
    new_w, new_h = max(round(w * ratio), 1), max(round(h * ratio), 1)
    if (w, h) != (new_w, new_h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = (size[1] - new_w) / 2, (size[0] - new_h) / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    return cv2.copyMakeBorder(
        image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
    )


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes kept by greedy suppression, best score first: a box is dropped
    when it overlaps a kept one by more than `iou`."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[:, k].astype(np.float64) for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.array(keep, np.int64)


def postprocess(
    output: np.ndarray,
    input_hw: tuple[int, int],
    image_hw: tuple[int, int],
    *,
    conf: float,
    iou: float,
    classes: list[int] | None,
    max_det: int,
    end2end: bool = False,
) -> np.ndarray:
    """(N, 6) rows `x1 y1 x2 y2 confidence class` in frame pixels from one image's raw
    output: (4 + classes, anchors) boxes as centre/size with per-class scores, or for an
    end-to-end model (anchors, 6) rows already suppressed."""
    if end2end:
        rows = output.reshape(-1, output.shape[-1])[:, :6].astype(np.float32)
        rows = rows[rows[:, 4] > conf]
        if classes is not None:
            rows = rows[np.isin(rows[:, 5].astype(np.int64), classes)]
        rows = rows[:max_det]
    else:
        pred = output.reshape(output.shape[-2], output.shape[-1]).T  # (anchors, 4 + nc)
        scores = pred[:, 4:]
        best = scores.max(axis=1)
        pred, scores, best = pred[best > conf], scores[best > conf], best[best > conf]
        cls = scores.argmax(axis=1)
        if classes is not None:
            wanted = np.isin(cls, classes)
            pred, best, cls = pred[wanted], best[wanted], cls[wanted]
        if len(pred) > MAX_NMS:
            top = np.argsort(-best, kind="stable")[:MAX_NMS]
            pred, best, cls = pred[top], best[top], cls[top]
        xy, wh = pred[:, :2], pred[:, 2:4]
        xyxy = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
        keep = nms(xyxy + (cls * MAX_WH)[:, None], best, iou)[:max_det]
        rows = np.concatenate(
            [xyxy[keep], best[keep, None], cls[keep, None].astype(np.float32)], axis=1
        ).astype(np.float32)
    return _to_frame(rows, input_hw, image_hw)


def _to_frame(rows: np.ndarray, input_hw: tuple[int, int], image_hw: tuple[int, int]) -> np.ndarray:
    """Boxes from the letterboxed input back to the frame (padding off, scaled, clipped)."""
    gain = min(input_hw[0] / image_hw[0], input_hw[1] / image_hw[1])
    new_h, new_w = (max(round(x * gain), 1) for x in image_hw)
    pad_x = round((input_hw[1] - new_w) / 2 - 0.1)
    pad_y = round((input_hw[0] - new_h) / 2 - 0.1)
    out = rows.copy()
    out[:, [0, 2]] = (out[:, [0, 2]] - pad_x) / (new_w / image_hw[1])
    out[:, [1, 3]] = (out[:, [1, 3]] - pad_y) / (new_h / image_hw[0])
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, image_hw[1])
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, image_hw[0])
    return out
