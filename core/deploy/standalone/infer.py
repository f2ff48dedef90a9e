"""Run the model of this deployment bundle on images: letterbox, the runtime, box decode and NMS.

Standalone: needs only the runtime named in bundle.json (onnxruntime or openvino), numpy and opencv
(``pip install -r requirements.txt``). It reproduces, step for step, what the tool that made the bundle ran when
it measured the variant, so the detections are the recorded ones (``python verify.py`` checks them).

    python infer.py IMAGE [IMAGE ...] [--json]
    python infer.py bus.jpg --conf 0.4

As a module: ``model = load(); model.detect(cv2.imread("bus.jpg"))`` gives boxes (x1, y1, x2, y2 in the image's
pixels), confidences and class ids, best first.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the network input: scale, then padding (left, top) in pixels."""

    ratio: float
    pad_x: float
    pad_y: float
    src_h: int
    src_w: int


def letterbox(image: np.ndarray, new_shape: tuple[int, int], pad_value: int) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio (bilinear) and pad, centred, to ``new_shape`` (h, w)."""
    h, w = image.shape[:2]
    nh, nw = new_shape
    r = min(nh / h, nw / w)
    uw, uh = max(1, round(w * r)), max(1, round(h * r))
    dw, dh = (nw - uw) / 2, (nh - uh) / 2
    if (uw, uh) != (w, h):
        image = cv2.resize(image, (uw, uh), interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    if top or bottom or left or right:
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad_value,) * 3)
    return image, Letterbox(r, dw, dh, h, w)


def rect_hw(h: int, w: int, size: int, stride: int) -> tuple[int, int]:
    """The rect input: long side ``size``, each side padded up to the next multiple of ``stride``."""
    r = min(size / h, size / w)
    uw, uh = max(1, round(w * r)), max(1, round(h * r))
    return uh + (size - uh) % stride, uw + (size - uw) % stride


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    out = np.empty_like(xywh)
    half_w, half_h = xywh[:, 2] / 2, xywh[:, 3] / 2
    out[:, 0] = xywh[:, 0] - half_w
    out[:, 1] = xywh[:, 1] - half_h
    out[:, 2] = xywh[:, 0] + half_w
    out[:, 3] = xywh[:, 1] + half_h
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int) -> np.ndarray:
    """Greedy NMS; kept indices, best first."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        if len(keep) >= max_keep:
            break
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


@dataclass(frozen=True)
class Head:
    """The YOLOv5 Detect head's box decode, for a graph that stops at the head's three convolutions."""

    outputs: tuple[str, ...]
    strides: tuple[float, ...]
    anchors: np.ndarray  # (levels, anchors per cell, 2)
    num_outputs: int  # 5 + classes

    def decode(self, outputs: list[np.ndarray], min_conf: float) -> np.ndarray:
        """Rows [x, y, w, h, objectness, class scores...] of the cells whose objectness exceeds ``min_conf``."""
        na, no = int(self.anchors.shape[1]), self.num_outputs
        if min_conf <= 0.0:
            threshold = -math.inf
        elif min_conf >= 1.0:
            threshold = math.inf
        else:
            threshold = math.log(min_conf / (1.0 - min_conf)) - 1e-4
        parts = []
        for level, out in enumerate(outputs):
            _, _, ny, nx = out.shape
            p = out[0].reshape(na, no, ny * nx)
            anchor, cell = np.nonzero(p[:, 4, :] > threshold)
            if len(cell) == 0:
                continue
            rows = p[anchor, :, cell].astype(np.float32, copy=False)
            s = np.empty_like(rows)
            np.negative(rows, out=s)
            np.exp(s, out=s)
            s += 1.0
            np.reciprocal(s, out=s)
            stride = np.float32(self.strides[level])
            gx = (cell % nx).astype(np.float32)
            gy = (cell // nx).astype(np.float32)
            s[:, 0] = (s[:, 0] * 2 - 0.5 + gx) * stride
            s[:, 1] = (s[:, 1] * 2 - 0.5 + gy) * stride
            wh = self.anchors[level][anchor]
            s[:, 2] = (s[:, 2] * 2) ** 2 * wh[:, 0]
            s[:, 3] = (s[:, 3] * 2) ** 2 * wh[:, 1]
            parts.append(s)
        if not parts:
            return np.zeros((0, no), np.float32)
        return np.concatenate(parts)


@dataclass(frozen=True)
class Detections:
    xyxy: np.ndarray  # (N, 4) float32, image pixels
    confidence: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int64

    def records(self, names: list[str]) -> list[dict]:
        return [
            {
                "class_id": int(c),
                "class_name": names[int(c)] if 0 <= int(c) < len(names) else str(int(c)),
                "confidence": float(s),
                "xyxy": [float(v) for v in box],
            }
            for box, s, c in zip(self.xyxy, self.confidence, self.class_id, strict=True)
        ]


class Runner:
    """One runtime session per input size: ``run(tensor)`` -> the graph's outputs, in the bundle's order."""

    def __init__(self, model_path: Path, spec: dict, outputs: list[str]) -> None:
        self.model_path, self.spec, self.outputs = model_path, spec, outputs
        self.runtime = spec["package"]
        if self.runtime == "onnxruntime":
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.log_severity_level = 3
            present = ort.get_available_providers()
            providers = [p for p in spec.get("providers", ["CPUExecutionProvider"]) if p in present]
            if not providers:
                raise SystemExit(
                    f"error: this onnxruntime has none of {', '.join(spec['providers'])} "
                    f"(it has {', '.join(ort.get_available_providers())})"
                )
            self.session = ort.InferenceSession(str(model_path), so, providers=providers)
            self.input = self.session.get_inputs()[0].name
        elif self.runtime == "openvino":
            import openvino as ov

            self.core = ov.Core()
            self.model = self.core.read_model(str(model_path))
            self.config = dict(spec.get("config", {}))
            self.compiled: dict[tuple[int, int], object] = {}
        else:
            raise SystemExit(f"error: bundle.json names {self.runtime!r}; infer.py runs onnxruntime or openvino")

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        if self.runtime == "onnxruntime":
            return self.session.run(self.outputs, {self.input: tensor})
        hw = (int(tensor.shape[2]), int(tensor.shape[3]))
        request = self.compiled.get(hw)
        if request is None:
            model = self.model.clone()
            model.reshape({model.inputs[0]: [1, 3, *hw]})
            request = self.core.compile_model(model, "CPU", self.config).create_infer_request()
            self.compiled[hw] = request
        request.infer({0: np.ascontiguousarray(tensor, np.float32)})
        return [request.get_tensor(name).data.copy() for name in self.outputs]


class Model:
    """The bundle's model with its pre- and post-processing settings (bundle.json)."""

    def __init__(self, folder: Path = HERE) -> None:
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / "bundle.json").read_text())
        m = self.manifest
        self.names: list[str] = list(m["class_names"])
        self.size: int = int(m["input"]["size"])
        self.input_hw: tuple[int, int] = tuple(m["input"]["hw"])  # type: ignore[assignment]
        self.stride: int = int(m["input"]["stride"])
        self.shape: str = m["input"]["shape"]
        self.pad_value: int = int(m["letterbox"]["pad_value"])
        post = m["postprocess"]
        self.conf, self.iou, self.max_det = float(post["conf"]), float(post["iou"]), int(post["max_det"])
        self.classes = post.get("classes")
        self.max_candidates = int(post["max_nms_candidates"])
        self.class_offset = float(post["class_offset"])
        decode = m["decode"]
        self.layout: str = decode["layout"]
        self.head: Head | None = None
        if decode["kind"] == "head":
            self.head = Head(
                tuple(decode["outputs"]),
                tuple(float(s) for s in decode["strides"]),
                np.asarray(decode["anchors"], dtype=np.float32),
                int(decode["num_outputs"]),
            )
            outputs = list(decode["outputs"])
        else:
            outputs = [decode["output"]]
        self.runner = Runner(self.folder / m["model"]["file"], m["runtime"], outputs)

    def hw_for(self, h: int, w: int) -> tuple[int, int]:
        return self.input_hw if self.shape == "square" else rect_hw(h, w, self.size, self.stride)

    def detect(self, image_bgr: np.ndarray, conf: float | None = None, iou: float | None = None) -> Detections:
        """Detections in one BGR uint8 image (as ``cv2.imread`` gives it)."""
        conf = self.conf if conf is None else conf
        iou = self.iou if iou is None else iou
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        hw = self.hw_for(*rgb.shape[:2])
        boxed, lb = letterbox(rgb, hw, self.pad_value)
        tensor = np.empty((1, 3, *hw), dtype=np.float32)
        np.multiply(boxed.transpose(2, 0, 1), np.float32(1 / 255), out=tensor[0], casting="unsafe")
        outs = self.runner.run(tensor)
        pred = self.head.decode(outs, conf) if self.head is not None else outs[0][0]
        return self.postprocess(pred, lb, conf, iou)

    def postprocess(self, pred: np.ndarray, lb: Letterbox, conf: float, iou: float) -> Detections:
        empty = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
        if self.layout == "anchor-free":
            pred = pred[:, pred[4:].max(axis=0) > conf].T
            boxes_xywh, scores = pred[:, :4], pred[:, 4:]
        else:
            pred = pred[pred[:, 4] > conf]
            boxes_xywh, scores = pred[:, :4], pred[:, 5:] * pred[:, 4:5]
        if len(pred) == 0:
            return empty
        boxes = xywh_to_xyxy(boxes_xywh.astype(np.float32, copy=False))
        cls = scores.argmax(axis=1)
        score = scores[np.arange(len(scores)), cls]
        mask = score > conf
        boxes, score, cls = boxes[mask], score[mask], cls[mask]
        if self.classes is not None:
            mask = np.isin(cls, np.asarray(self.classes))
            boxes, score, cls = boxes[mask], score[mask], cls[mask]
        if len(boxes) == 0:
            return empty
        if len(boxes) > self.max_candidates:
            top = np.argsort(-score, kind="stable")[: self.max_candidates]
            boxes, score, cls = boxes[top], score[top], cls[top]
        offset = cls.astype(np.float32)[:, None] * self.class_offset
        keep = nms(boxes + offset, score, iou, self.max_det)
        out = boxes[keep].astype(np.float32, copy=True)
        out[:, [0, 2]] = ((out[:, [0, 2]] - lb.pad_x) / lb.ratio).clip(0, lb.src_w)
        out[:, [1, 3]] = ((out[:, [1, 3]] - lb.pad_y) / lb.ratio).clip(0, lb.src_h)
        return Detections(out, score[keep].astype(np.float32), cls[keep].astype(np.int64))


def load(folder: Path = HERE) -> Model:
    return Model(folder)


def read_image(path: Path) -> np.ndarray:
    """BGR uint8, EXIF orientation applied (as the picture is seen); exits with one line if unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"error: {path}: not an image opencv can read")
    return image


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--conf", type=float, default=None, help="confidence threshold (default: the bundle's)")
    p.add_argument("--iou", type=float, default=None, help="NMS IoU threshold (default: the bundle's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    args = p.parse_args(argv)
    model = load()
    results = []
    for path in args.images:
        dets = model.detect(read_image(path), args.conf, args.iou)
        results.append({"image": str(path), "detections": dets.records(model.names)})
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"{r['image']}: {len(r['detections'])} objects")
            for d in r["detections"]:
                box = ", ".join(f"{v:.1f}" for v in d["xyxy"])
                print(f"  {d['class_name']:<16} {d['confidence']:.3f}  [{box}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
