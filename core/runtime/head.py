"""The YOLOv5 Detect head's box decode in numpy, on the candidate cells only, and the graph cut it needs.

The exported ONNX ends with the anchor-grid decode (reshape, transpose, sigmoid over all 25,200 x 85
values at 640, grid offsets, anchor scaling, concat into ``[1, N, 5 + nc]``). On a small CPU that
costs ~3 ms per image in every variant, although post-processing then throws away all but the few
hundred rows whose objectness passes the confidence threshold. A CPU backend may instead stop the
graph at the head's three 1x1 convolutions and call :meth:`YoloV5Head.decode`, which reads the
objectness plane, keeps the cells above ``min_conf`` and decodes only those: the same rows, the same
float32 arithmetic (``(2s - 0.5 + grid) * stride``, ``(2s)^2 * anchor``), same order. Only sigmoid's
last bits can differ (numpy's exp vs ONNX Runtime's), far below what changes a detection.

The exported FP32 file itself keeps its decode and its ``[1, N, 5 + nc]`` output (users, TensorRT):
the export writes the head's facts into the file's metadata (:data:`METADATA_KEY`, copied to the
FP16 and INT8 files), and the cut happens in memory when a session is created. A file without that
metadata (a user's own ONNX) runs whole, as before.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

METADATA_KEY = "yololab_head"  # JSON: {"outputs": [...], "strides": [...], "anchors": [[[w, h], ...], ...]}


@dataclass(frozen=True)
class YoloV5Head:
    """Where the Detect head's convolutions end, and how their outputs become boxes."""

    outputs: tuple[str, ...]  # the three conv output tensors, finest level first
    strides: tuple[float, ...]  # input pixels per cell, per level
    anchors: np.ndarray  # (levels, anchors per cell, 2): anchor w, h in input pixels
    num_outputs: int  # 5 + number of classes

    @property
    def num_anchors(self) -> int:
        return int(self.anchors.shape[1])

    def to_json(self) -> str:
        return json.dumps(
            {
                "outputs": list(self.outputs),
                "strides": list(self.strides),
                "anchors": self.anchors.tolist(),
                "no": self.num_outputs,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> YoloV5Head | None:
        """Parse the metadata entry; None if it is absent or malformed (the file then runs whole)."""
        try:
            d = json.loads(text)
            anchors = np.asarray(d["anchors"], dtype=np.float32)
            outputs, strides = tuple(str(o) for o in d["outputs"]), tuple(float(s) for s in d["strides"])
            head = cls(outputs, strides, anchors, int(d["no"]))
        except (ValueError, KeyError, TypeError):
            return None
        ok = anchors.ndim == 3 and anchors.shape[2] == 2 and len(head.outputs) == len(head.strides) == len(anchors)
        return head if ok and head.num_outputs > 5 else None

    def decode(self, outputs: Sequence[np.ndarray], min_conf: float = 0.0, index: int = 0) -> np.ndarray:
        """Rows ``[x, y, w, h, objectness, class scores...]`` (input pixels, after sigmoid) of image ``index``
        of the batch, for the cells whose objectness exceeds ``min_conf``; shape ``[1, M, 5 + nc]``.

        Post-processing keeps a row only if its objectness is above the confidence threshold, so any
        threshold >= ``min_conf`` gives the same detections as the full graph's output.
        """
        na, no = self.num_anchors, self.num_outputs
        # sigmoid(l) > c  <=>  l > log(c / (1 - c)); a hair lower so rounding never drops a row that
        # post-processing (which compares the sigmoid itself) would keep.
        if min_conf <= 0.0:
            threshold = -math.inf
        elif min_conf >= 1.0:
            threshold = math.inf
        else:
            threshold = math.log(min_conf / (1.0 - min_conf)) - 1e-4
        parts = []
        for level, out in enumerate(outputs):
            _, _, ny, nx = out.shape
            p = out[index].reshape(na, no, ny * nx)
            anchor, cell = np.nonzero(p[:, 4, :] > threshold)  # C order: anchor, then row-major cell (as the graph)
            if len(cell) == 0:
                continue
            rows = p[anchor, :, cell].astype(np.float32, copy=False)  # (M, no)
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
            return np.zeros((1, 0, no), np.float32)
        return np.concatenate(parts)[None]


def head_from_model(model: Any) -> YoloV5Head | None:
    """The head described in an ONNX ModelProto's metadata, if its tensors are all in the graph."""
    meta = {p.key: p.value for p in model.metadata_props}
    head = YoloV5Head.from_json(meta.get(METADATA_KEY, ""))
    if head is None:
        return None
    produced = {o for n in model.graph.node for o in n.output}
    return head if all(o in produced for o in head.outputs) else None


def cut_at_head(model: Any, head: YoloV5Head, batch: int = 1, hw: tuple[int, int] | None = None) -> bytes:
    """The model ending at the head's conv outputs (the decode pruned), serialized; batch ``batch``, and input
    height and width ``hw`` (None: the file's own).

    Everything above the head is convolutions, activations, concat, resize and pooling, none of which
    hard-codes the batch, so the same graph runs a batch of N once its input says N. Only the upsampling
    Resizes carry the file's spatial size (their output sizes are constants of the export): for another
    ``hw`` pass a model from :func:`resize_by_scales`, whose Resizes scale whatever comes in.
    """
    import onnx

    graph = model.graph
    producer = {o: k for k, n in enumerate(graph.node) for o in n.output}
    keep: set[int] = set()
    stack = [producer[o] for o in head.outputs]
    while stack:  # walk back from the outputs (node lists need not be sorted: FP16 casts come last)
        k = stack.pop()
        if k in keep:
            continue
        keep.add(k)
        stack.extend(producer[i] for i in graph.node[k].input if i in producer)
    kept = [n for k, n in enumerate(graph.node) if k in keep]

    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    del cut.graph.node[:]
    cut.graph.node.extend(kept)
    used = {i for n in kept for i in n.input}
    inits = [t for t in graph.initializer if t.name in used]
    del cut.graph.initializer[:]
    cut.graph.initializer.extend(inits)
    del cut.graph.value_info[:]  # shapes inferred for batch 1 (quantization's pre-processing adds them)
    elem = _elem_types(model, head.outputs)
    del cut.graph.output[:]
    for name in head.outputs:
        cut.graph.output.append(onnx.helper.make_tensor_value_info(name, elem[name], None))
    if batch != 1:
        dim = cut.graph.input[0].type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = batch
        _rebatch_resize_sizes(cut.graph, batch)
    if hw is not None and hw != input_hw(model):
        if input_hw(model) is not None and any(n.op_type == "Resize" and len(n.input) > 3 and n.input[3] for n in kept):
            raise ValueError("cut_at_head: another input size needs a model from resize_by_scales()")
        dims = cut.graph.input[0].type.tensor_type.shape.dim
        for axis, side in zip((2, 3), hw, strict=True):
            dims[axis].Clear()
            dims[axis].dim_value = int(side)
    return bytes(cut.SerializeToString())


class HeadGraphs:
    """One model cut at its head, serialized for any batch and input size: the file's own size as exported,
    any other (a multiple of the stride) from the :func:`resize_by_scales` copy, made once on first need."""

    def __init__(self, model: Any, head: YoloV5Head) -> None:
        self.model, self.head = model, head
        self.own_hw = input_hw(model)
        self._scaled: Any = None
        self._lock = threading.Lock()

    def graph(self, batch: int = 1, hw: tuple[int, int] | None = None, dynamic_sides: bool = False) -> bytes:
        """Batch ``batch`` at ``hw`` (None: the file's own); ``dynamic_sides``: height and width left open (one graph
        for every other size: what ONNX Runtime runs fastest, bench/shape_sessions.py)."""
        if (hw is None or hw == self.own_hw) and not dynamic_sides:
            return cut_at_head(self.model, self.head, batch)
        with self._lock:
            if self._scaled is None:
                self._scaled = resize_by_scales(self.model) if self.own_hw is not None else self.model
        data = cut_at_head(self._scaled, self.head, batch, hw)
        if not dynamic_sides:
            return data
        import onnx

        model = onnx.ModelProto()
        model.ParseFromString(data)
        dims = model.graph.input[0].type.tensor_type.shape.dim
        for axis, name in ((2, "height"), (3, "width")):
            dims[axis].Clear()
            dims[axis].dim_param = name
        return bytes(model.SerializeToString())


def input_hw(model: Any) -> tuple[int, int] | None:
    """The (height, width) an ONNX ModelProto's image input declares; None when either is dynamic."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or not (dims[2].dim_value and dims[3].dim_value):
        return None
    return int(dims[2].dim_value), int(dims[3].dim_value)


def resize_by_scales(model: Any) -> Any:
    """A copy of ``model`` whose Resize nodes scale their input (``scales``, e.g. [1, 1, 2, 2]) instead of producing
    the constant output size the export wrote for the file's own input: the graph above the head then runs any
    input size that is a multiple of the stride (the rect shape policy), with the same arithmetic (a nearest
    upsampling by 2 is the same whether asked as a size or as a scale).

    The scales are read by running the file once at its own input size (ONNX Runtime, a probe that outputs
    each Resize's input shape and size argument): the sizes may be computed in the graph, not stored.
    """
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    resizes = [n for n in model.graph.node if n.op_type == "Resize" and len(n.input) > 3 and n.input[3]]
    out = onnx.ModelProto()
    out.CopyFrom(model)
    if not resizes:
        return out
    hw = input_hw(model)
    if hw is None:
        raise ValueError("resize_by_scales: the model's input size is dynamic")
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    wanted = []
    for k, node in enumerate(resizes):
        shape = f"yololab_probe_shape_{k}"
        probe.graph.node.append(onnx.helper.make_node("Shape", [node.input[0]], [shape]))
        wanted += [shape, node.input[3]]
    for name in wanted:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT64, None))
    so = ort.SessionOptions()
    so.log_severity_level = 4
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the probe's own outputs stay
    session = ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feed = np.zeros((1, 3, *hw), np.float32)
    values = dict(zip(wanted, session.run(wanted, {session.get_inputs()[0].name: feed}), strict=True))
    nodes = [n for n in out.graph.node if n.op_type == "Resize" and len(n.input) > 3 and n.input[3]]
    for k, node in enumerate(nodes):
        shape, sizes = values[f"yololab_probe_shape_{k}"], values[node.input[3]]
        scales = (np.asarray(sizes, np.float64) / np.maximum(np.asarray(shape, np.float64), 1)).astype(np.float32)
        name = f"{node.name or node.output[0]}_yololab_scales"
        out.graph.initializer.append(numpy_helper.from_array(scales, name))
        x = node.input[0]
        del node.input[:]
        node.input.extend([x, "", name])  # roi unused; scales, and no sizes
    return out


def _rebatch_resize_sizes(graph: Any, batch: int) -> None:
    """Point every Resize whose output size is a constant ``[1, C, H, W]`` at ``[batch, C, H, W]``.

    The exporter computes the upsampling sizes from the tensor's shape, but quantization's
    pre-processing folds that into a constant that fixes the batch at 1.
    """
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type != "Resize" or len(node.input) < 4 or node.input[3] not in inits:
            continue
        sizes = numpy_helper.to_array(inits[node.input[3]]).copy()
        if sizes.ndim != 1 or len(sizes) != 4 or sizes[0] != 1:
            continue
        sizes[0] = batch
        name = f"{node.input[3]}_batch{batch}_{node.name}"
        graph.initializer.append(numpy_helper.from_array(sizes, name))
        node.input[3] = name


def _elem_types(model: Any, names: Sequence[str]) -> dict[str, int]:
    """Element type of each tensor: FLOAT16 in an FP16 graph's head, else FLOAT."""
    import onnx

    inits = {t.name: t.data_type for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    out = {}
    for name in names:
        node = producers[name]
        weight = node.input[1] if len(node.input) > 1 else ""
        half = inits.get(weight) == onnx.TensorProto.FLOAT16
        out[name] = onnx.TensorProto.FLOAT16 if half else onnx.TensorProto.FLOAT
    return out
