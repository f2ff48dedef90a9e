"""Conversion steps, each a typed path-in -> path-out function: export, FP16, INT8 Q/DQ.

They know nothing about caching; :mod:`core.model.store` composes them into cached artefacts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

from core.errors import ConversionError, InputError, ModelError
from core.formats import IMAGE_SUFFIXES
from core.progress import Progress, no_progress
from core.runtime import METADATA_KEY as HEAD_METADATA_KEY
from core.runtime import YoloV5Head
from core.variants import Int8Flavour

ONNX_OPSET = 17  # >= 13 is what TensorRT's explicit quantization (per-channel Q/DQ) needs


@contextlib.contextmanager
def chatter_to_stderr() -> Iterator[None]:
    """What libraries print while converting goes to stderr: stdout is kept for results (the CLI's ``--json``).

    ``print`` follows ``sys.stdout``, but a logging handler made with ``StreamHandler(sys.stdout)`` (ultralytics'
    export banner) holds the stream it was made with: such handlers are pointed at stderr too, and back after.
    Import the library before entering, or its handler would keep stderr for good.
    """
    stdouts = {id(sys.stdout), id(sys.__stdout__)}
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    moved: list[tuple[logging.StreamHandler, object]] = []
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):  # placeholders have none
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in stdouts:
                moved.append((handler, handler.setStream(sys.stderr)))
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for handler, stream in reversed(moved):
            handler.setStream(stream)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# FP32 export


def export_legacy(pt: Path, out: Path, imgsz: int) -> None:
    """Legacy YOLOv5 checkpoint -> FP32 ONNX with one output ``[1, N, 5 + nc]``."""
    import torch

    from core.runtime import load_legacy

    ckpt = load_legacy(pt)
    if imgsz % ckpt.stride:
        raise InputError(f"image size {imgsz} is not a multiple of the model stride {ckpt.stride}")
    dummy = torch.zeros(1, 3, imgsz, imgsz)
    with torch.no_grad(), warnings.catch_warnings(), chatter_to_stderr():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            ckpt.model,
            (dummy,),
            str(out),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["images"],
            output_names=["output0"],
            do_constant_folding=True,
        )
    meta = {"names": json.dumps(ckpt.names), "stride": str(ckpt.stride), "source": pt.name}
    head = _legacy_head(ckpt, out)
    if head is not None:
        meta[HEAD_METADATA_KEY] = head.to_json()
    _set_metadata(out, meta)


def _legacy_head(ckpt: object, onnx_path: Path) -> YoloV5Head | None:
    """The Detect head's conv outputs, strides and pixel anchors, for the decode outside the graph.

    The TorchScript exporter names the head's convs ``/model.<i>/m.<level>/Conv``; if this export
    named them otherwise, no metadata is written and the file simply runs whole.
    """
    import onnx

    layers = ckpt.model.model  # type: ignore[attr-defined]
    detect = layers[-1]
    names = [f"/model.{len(layers) - 1}/m.{i}/Conv_output_0" for i in range(detect.nl)]
    produced = {o for n in onnx.load(str(onnx_path)).graph.node if n.op_type == "Conv" for o in n.output}
    if not all(n in produced for n in names):
        return None
    strides = [float(s) for s in detect.stride]
    anchors = (detect.anchors.detach().float() * detect.stride.view(-1, 1, 1).float()).numpy()
    return YoloV5Head(tuple(names), tuple(strides), anchors.astype(np.float32), int(detect.no))


def export_ultralytics(pt: Path, out: Path, imgsz: int) -> None:
    """Ultralytics checkpoint (YOLOv5u, v8, 11...) -> FP32 ONNX ``[1, 4 + nc, N]`` via ultralytics' exporter.

    This unpickles the file: callers must have the user's explicit trust first.
    """
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")  # never pip-install at run time
    os.environ.setdefault("YOLO_OFFLINE", "true")
    from ultralytics import YOLO

    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        local = Path(tmp) / pt.name
        shutil.copyfile(pt, local)
        try:
            with chatter_to_stderr():
                model = YOLO(str(local))
        except Exception as exc:
            raise ModelError(f"{pt.name}: ultralytics could not load it: {exc}") from exc
        if model.task != "detect":
            raise ModelError(f"{pt.name}: a {model.task} model; only detection models are supported")
        try:
            with chatter_to_stderr():  # its banner and export log ("Ultralytics 8.4 ...", "ONNX: starting export")
                exported = model.export(format="onnx", imgsz=imgsz, opset=ONNX_OPSET, dynamic=False, simplify=False)
        except Exception as exc:
            raise ConversionError(f"{pt.name}: ultralytics ONNX export failed: {exc}") from exc
        shutil.copyfile(exported, out)


def _set_metadata(path: Path, values: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    _merge_metadata(model, values)
    onnx.save(model, str(path))


def _merge_metadata(model: object, values: dict[str, str]) -> None:
    props = model.metadata_props  # type: ignore[attr-defined]
    existing = {p.key: p for p in props}
    for key, value in values.items():
        if key in existing:
            existing[key].value = value
        else:
            entry = props.add()
            entry.key, entry.value = key, value


def _metadata(path: Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


# ---------------------------------------------------------------------------------------------
# FP16


def to_fp16(src: Path, dst: Path) -> None:
    """FP32 ONNX -> FP16 ONNX whose inputs and outputs stay FP32 (casts at the edges).

    Constants are folded first (onnxslim): the exported graph computes the Resize sizes of
    ``/model.11`` and ``/model.15`` at run time (``Constant(40.)`` → Floor → Concat → Cast), which
    a plain conversion would turn into FP16 arithmetic feeding a shape input — refused by TensorRT's
    strongly typed networks. The result is checked: no FP16 tensor feeds a shape input.
    """
    import onnx
    import onnxslim
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from core.runtime import fp16_shape_inputs

    model = onnx.load(str(src))
    try:
        with chatter_to_stderr():
            folded = onnxslim.slim(model)
            half = convert_float_to_float16(folded, keep_io_types=True)
    except Exception as exc:
        raise ConversionError(f"FP16 conversion of {src.name} failed: {exc}") from exc
    if offenders := fp16_shape_inputs(half):
        raise ConversionError(
            f"FP16 conversion of {src.name}: FP16 arithmetic still feeds shape inputs ({', '.join(offenders[:5])})"
        )
    _merge_metadata(half, {"precision": "fp16"})
    onnx.save(half, str(dst))


# ---------------------------------------------------------------------------------------------
# INT8


class CalibrationMethod(StrEnum):
    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"


def default_weight_bits() -> int:
    """The INT8 cpu flavour's weight range on this CPU: 8 bits with VNNI (AVX512-VNNI, AVX-VNNI or AMX), else 7."""
    from core.runtime import cpu_features

    return 8 if cpu_features().vnni else 7


@dataclass(frozen=True)
class Int8Options:
    """Everything that changes an INT8 artefact (part of its cache key)."""

    flavour: Int8Flavour = Int8Flavour.CPU
    method: CalibrationMethod = CalibrationMethod.MINMAX
    max_images: int = 128
    percentile: float = 99.999
    keep_head_float: bool = True  # the Detect head's last convs and decode stay in float
    keep_stem_float: bool = True  # the first conv (3 input channels: slow and lossy in int8) stays float
    # cpu flavour: 7-bit weights where 8-bit ones can overflow (u8 x s8 pairs summed in int16 saturate on AVX2's
    # vpmaddubsw; VNNI's vpdpbusd sums in int32), so 8-bit on a VNNI CPU; the cache key carries the choice
    reduce_range: bool = field(default_factory=lambda: default_weight_bits() == 7)
    # Calibration ranges: the mean of per-image min/max instead of the extremes of all images (MinMax only).
    # Outliers in a few images no longer widen a tensor's range for all: -0.61 mAP50-95 points against FP32
    # on coco-val128 instead of -1.18, at the same speed (bench/int8_sweep.py).
    moving_average: bool = True
    float_nodes: tuple[str, ...] = ()  # node-name prefixes kept in float, e.g. "/model.9/" (SPPF)
    quantize_silu: bool = True  # False: SiLU (Sigmoid, Mul) stays float between DQ and Q
    per_channel: bool = True  # one weight scale per output channel (False: one per tensor)

    def calibration_key(self) -> tuple[object, ...]:
        """What the activation ranges depend on: candidates that share it share one calibration run."""
        return (self.flavour.value, self.method.value, self.max_images, self.percentile, self.moving_average)


def list_images(folder: Path) -> list[Path]:
    """Images of a folder (its ``images/`` subfolder if it has one), sorted by name."""
    root = folder / "images" if (folder / "images").is_dir() else folder
    if not root.is_dir():
        raise InputError(f"calibration folder {folder} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"calibration folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


_ACTIVATIONS = {"Sigmoid", "Mul", "Relu", "LeakyRelu", "HardSwish", "HardSigmoid", "Clip", "Tanh"}


def _float_stem(model: object) -> list[str]:
    """The first convolution and the activation right after it (e.g. SiLU = Sigmoid + Mul)."""
    nodes = list(model.graph.node)  # type: ignore[attr-defined]
    first = next((n for n in nodes if n.op_type == "Conv"), None)
    if first is None:
        return []
    names, frontier = [first.name], set(first.output)
    for node in nodes:
        if node.op_type in _ACTIVATIONS and frontier.intersection(node.input):
            names.append(node.name)
            frontier.update(node.output)
    return names


def _silu_nodes(model: object) -> list[str]:
    """The Sigmoid and Mul nodes of every SiLU (``x * sigmoid(x)``)."""
    nodes = list(model.graph.node)  # type: ignore[attr-defined]
    sigmoid_of = {n.output[0]: n for n in nodes if n.op_type == "Sigmoid"}
    names = []
    for node in nodes:
        if node.op_type == "Mul" and len(node.input) == 2:
            for a, b in (node.input, node.input[::-1]):
                sig = sigmoid_of.get(b)
                if sig is not None and sig.input[0] == a:
                    names += [sig.name, node.name]
                    break
    return names


def _float_tail(model: object, keep_head_convs: bool) -> list[str]:
    """Nodes after the last convolutions (the box decode), plus those convs if asked: kept in float.

    Quantizing the decode (sigmoid, grid offsets, anchor scaling, concat of xywh with scores) squeezes
    pixel coordinates and probabilities into one 8-bit scale and destroys the confidences.
    """
    nodes = list(model.graph.node)  # type: ignore[attr-defined]
    consumers: dict[str, list[int]] = {}
    for idx, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(idx)
    conv_below = [False] * len(nodes)
    for idx in range(len(nodes) - 1, -1, -1):  # ONNX graphs are topologically sorted
        below = [c for out in nodes[idx].output for c in consumers.get(out, [])]
        conv_below[idx] = any(nodes[c].op_type == "Conv" or conv_below[c] for c in below)
    tail = [n.name for i, n in enumerate(nodes) if not conv_below[i] and n.op_type != "Conv"]
    if keep_head_convs:
        tail += [n.name for i, n in enumerate(nodes) if not conv_below[i] and n.op_type == "Conv"]
    return tail


def _opset19_folded(src: Path, tmp: Path) -> Path:
    """``src`` with its constants folded and at opset 19, the first whose Q/DQ take FP16 scales."""
    import onnx
    import onnxslim
    from onnx import version_converter

    out = tmp / "opset19.onnx"
    with chatter_to_stderr():
        onnx.save(version_converter.convert_version(onnxslim.slim(onnx.load(str(src))), 19), str(out))
    return out


def _qdq_to_fp16(src: Path, dst: Path) -> None:
    """The TensorRT flavour's float parts in FP16: Q/DQ scales, SiLU, Concat, Add, Resize, stem and head.

    Under TensorRT's strong typing every layer runs the type its tensors carry: left in FP32, the layers
    between the INT8 convolutions would run in FP32/TF32 and INT8 could lose to FP16. Inputs and outputs
    stay FP32; no FP16 arithmetic feeds a shape input (checked).
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from core.runtime import fp16_shape_inputs

    with chatter_to_stderr():
        half = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    if offenders := fp16_shape_inputs(half):
        raise ConversionError(f"INT8 (trt flavour): FP16 arithmetic feeds shape inputs ({', '.join(offenders[:5])})")
    onnx.save(half, str(dst))


class _ImageReader:
    """Feeds letterboxed calibration images, exactly as inference preprocesses them."""

    def __init__(self, files: Sequence[Path], input_name: str, input_hw: tuple[int, int], progress: Progress):
        self._files = list(files)
        self._input_name = input_name
        self._input_hw = input_hw
        self._progress = progress
        self._iter: Iterator[Path] = iter(self._files)
        self._done = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        from core.data import load_image
        from core.runtime import preprocess

        path = next(self._iter, None)
        if path is None:
            return None
        self._done += 1
        self._progress(0.1 + 0.8 * self._done / len(self._files), f"calibrating on {path.name}")
        tensor, _ = preprocess(load_image(path), self._input_hw)
        return {self._input_name: tensor}

    def rewind(self) -> None:
        self._iter = iter(self._files)
        self._done = 0


def quantize_int8(
    src: Path,
    dst: Path,
    calib_images: Sequence[Path],
    options: Int8Options,
    input_hw: tuple[int, int],
    progress: Progress = no_progress,
    ranges: Path | None = None,
) -> None:
    """FP32 ONNX -> static INT8 Q/DQ ONNX, calibrated on ``calib_images``.

    ``ranges``: where the activation ranges of this calibration setting are kept (onnxruntime's calibration
    cache). When the file exists no image is run: what a search over exclusion sets relies on. The caller
    names the file by everything ranges depend on (:meth:`Int8Options.calibration_key`, the images, the model).
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization import CalibrationMethod as OrtMethod
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from core.runtime import inspect_onnx

    info = inspect_onnx(src)
    files = list(calib_images)[: options.max_images]
    if not files:
        raise InputError("INT8 calibration needs at least one image")

    reader_cls = type("Reader", (_ImageReader, CalibrationDataReader), {})
    reader = reader_cls(files, info.input_name, input_hw, progress)
    method = {
        CalibrationMethod.MINMAX: OrtMethod.MinMax,
        CalibrationMethod.ENTROPY: OrtMethod.Entropy,
        CalibrationMethod.PERCENTILE: OrtMethod.Percentile,
    }[options.method]
    extra: dict[str, object] = {}
    if options.method is CalibrationMethod.PERCENTILE:
        extra["CalibPercentile"] = options.percentile
    if options.moving_average and options.method is CalibrationMethod.MINMAX:
        extra["CalibMovingAverage"] = True
    trt = options.flavour is Int8Flavour.TRT
    if trt:
        # TensorRT's Q/DQ placement: quantize the inputs of weighted layers (activation and weights of each
        # Conv), not every Conv output; the graph around them runs in FP16 (below), not FP32.
        act_type, op_types = QuantType.QInt8, ["Conv"]
        extra.update(
            ActivationSymmetric=True,
            WeightSymmetric=True,
            QuantizeBias=False,
            OpTypesToExcludeOutputQuantization=["Conv"],
        )
    else:
        act_type, op_types = QuantType.QUInt8, None

    progress(0.02, "preparing the graph for quantization")
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quantized = Path(tmp) / "quantized.onnx" if trt else dst
        try:
            with chatter_to_stderr():
                quant_pre_process(str(_opset19_folded(src, Path(tmp)) if trt else src), str(prepared))
        except Exception as exc:
            raise ConversionError(f"INT8 preparation of {src.name} failed: {exc}") from exc
        import onnx

        graph = onnx.load(str(prepared))
        exclude = _float_tail(graph, options.keep_head_float)
        if options.keep_stem_float:
            exclude += _float_stem(graph)
        exclude += [n.name for n in graph.graph.node if n.name.startswith(tuple(options.float_nodes))]
        if not options.quantize_silu:
            exclude += _silu_nodes(graph)
        cache = ranges if ranges is not None and ranges.is_file() else None
        fresh = Path(tmp) / "ranges.json" if ranges is not None and cache is None else None
        if cache is not None:
            progress(0.5, f"reusing the calibration ranges in {ranges.name}")  # type: ignore[union-attr]
        try:
            with chatter_to_stderr():  # its calibrators print progress
                quantize_static(
                    str(prepared),
                    str(quantized),
                    reader,
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=op_types,
                    per_channel=options.per_channel,
                    reduce_range=options.reduce_range and options.flavour is Int8Flavour.CPU,
                    activation_type=act_type,
                    weight_type=QuantType.QInt8,
                    nodes_to_exclude=exclude,
                    calibrate_method=method,
                    extra_options=extra,
                    calibration_cache_path=cache or fresh,
                )
        except Exception as exc:
            raise ConversionError(f"INT8 quantization of {src.name} failed: {exc}") from exc
        if fresh is not None and fresh.is_file() and ranges is not None:
            ranges.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(fresh, ranges.with_suffix(".part"))
            os.replace(ranges.with_suffix(".part"), ranges)  # whole or absent, never half written
        if trt:
            progress(0.9, "FP16 between the Q/DQ pairs")
            _qdq_to_fp16(quantized, dst)
    progress(0.95, "writing the INT8 model")
    meta = _metadata(src)
    meta.update(precision="int8", int8_flavour=options.flavour.value, calibration=options.method.value)
    _set_metadata(dst, meta)
