"""Run one model file: backends (one module per runtime), the Detector, detections, letterbox, NMS,
the Detect head's decode, reading ONNX files and legacy YOLOv5 checkpoints, and the machine's facts.
"""

from __future__ import annotations

from core.runtime.backends import (
    Availability,
    BackendOptions,
    NodeProfiler,
    NodeTime,
    OrtOptions,
    availability,
    create_backend,
    runnable_cpu_variants,
    runtime_availability,
)
from core.runtime.backends.gpu import GpuInfo, probe_gpu
from core.runtime.backends.onnxruntime import physical_cores
from core.runtime.blocks import block_in, block_index, module_of
from core.runtime.cpu import CpuFeatures, cpu_features
from core.runtime.detections import DetectionResult, Detections, StageTimings
from core.runtime.detector import Detector, RawOutput
from core.runtime.geometry import box_iou
from core.runtime.head import METADATA_KEY, HeadGraphs, YoloV5Head, head_from_model
from core.runtime.legacy_yolov5 import ULTRALYTICS_PREFIX, checkpoint_globals, load_legacy
from core.runtime.onnx_file import ModelInfo, fp16_shape_inputs, inspect_onnx
from core.runtime.placement import Node
from core.runtime.processing import EVAL_PARAMS, OutputLayout, PostParams, postprocess, preprocess
from core.runtime.system import machine_line, system_info

__all__ = [
    "EVAL_PARAMS",
    "METADATA_KEY",
    "ULTRALYTICS_PREFIX",
    "Availability",
    "BackendOptions",
    "CpuFeatures",
    "DetectionResult",
    "Detections",
    "Detector",
    "GpuInfo",
    "HeadGraphs",
    "ModelInfo",
    "Node",
    "NodeProfiler",
    "NodeTime",
    "OrtOptions",
    "OutputLayout",
    "PostParams",
    "RawOutput",
    "StageTimings",
    "YoloV5Head",
    "availability",
    "block_in",
    "block_index",
    "box_iou",
    "checkpoint_globals",
    "cpu_features",
    "create_backend",
    "fp16_shape_inputs",
    "head_from_model",
    "inspect_onnx",
    "load_legacy",
    "machine_line",
    "module_of",
    "physical_cores",
    "postprocess",
    "preprocess",
    "probe_gpu",
    "runnable_cpu_variants",
    "runtime_availability",
    "system_info",
]
