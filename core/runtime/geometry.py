"""Pure-numpy geometry: letterbox, box conversion, IoU, class-aware NMS, rescaling.

Matches YOLOv5's own pre/post-processing (``utils/augmentations.letterbox``,
``utils/general.non_max_suppression`` and ``scale_coords``) so detections agree with the
official pipeline to within a pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114  # YOLOv5's gray letterbox padding
MAX_WH = 7680  # class offset for class-aware NMS in one pass (as YOLOv5)


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the network input: scale, then padding (left, top) in pixels."""

    ratio: float
    pad_x: float
    pad_y: float
    src_h: int
    src_w: int

    @property
    def input_hw(self) -> tuple[int, int]:
        """The network input it made (height, width): the scaled picture plus the padding on both sides."""
        uh, uw = max(1, round(self.src_h * self.ratio)), max(1, round(self.src_w * self.ratio))
        return round(uh + 2 * self.pad_y), round(uw + 2 * self.pad_x)


def letterbox(image: np.ndarray, new_shape: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad (centred, gray 114) to ``new_shape`` (h, w)."""
    h, w = image.shape[:2]
    nh, nw = new_shape
    r = min(nh / h, nw / w)
    uw, uh = max(1, round(w * r)), max(1, round(h * r))  # a 1-pixel-high strip must not vanish
    dw, dh = (nw - uw) / 2, (nh - uh) / 2
    if (uw, uh) != (w, h):
        image = cv2.resize(image, (uw, uh), interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    if top or bottom or left or right:
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return image, Letterbox(ratio=r, pad_x=dw, pad_y=dh, src_h=h, src_w=w)


def rect_hw(h: int, w: int, size: int, stride: int = 32) -> tuple[int, int]:
    """The minimal-padding network input for an ``h`` x ``w`` image: scaled so its long side is ``size``, each
    side then padded up to the next multiple of ``stride`` (YOLOv5 ``letterbox(auto=True)``, as ``detect.py``
    runs a ``.pt``): 1080x810 -> 640x480, 720x1280 -> 384x640."""
    r = min(size / h, size / w)
    uw, uh = max(1, round(w * r)), max(1, round(h * r))
    return uh + (size - uh) % stride, uw + (size - uw) % stride


def unletterbox(boxes: np.ndarray, lb: Letterbox) -> np.ndarray:
    """Map xyxy boxes from network-input pixels back to the source image, clipped to it."""
    out = boxes.astype(np.float32, copy=True)
    out[:, [0, 2]] = (out[:, [0, 2]] - lb.pad_x) / lb.ratio
    out[:, [1, 3]] = (out[:, [1, 3]] - lb.pad_y) / lb.ratio
    return clip_boxes(out, lb.src_h, lb.src_w)


def clip_boxes(boxes: np.ndarray, h: int, w: int) -> np.ndarray:
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return boxes


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    out = np.empty_like(xywh)
    half_w, half_h = xywh[:, 2] / 2, xywh[:, 3] / 2
    out[:, 0] = xywh[:, 0] - half_w
    out[:, 1] = xywh[:, 1] - half_h
    out[:, 2] = xywh[:, 0] + half_w
    out[:, 3] = xywh[:, 1] + half_h
    return out


def box_area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes: (N, 4) x (M, 4) -> (N, M)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return (inter / np.maximum(union, 1e-9)).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Greedy NMS; returns kept indices in descending score order (like torchvision.ops.nms)."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        if max_keep is not None and len(keep) >= max_keep:
            break
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float, max_keep: int | None = None
) -> np.ndarray:
    """Class-aware NMS in one pass: boxes of different classes never suppress each other."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    offset = class_ids.astype(np.float32)[:, None] * MAX_WH
    return nms(boxes + offset, scores, iou_threshold, max_keep)
