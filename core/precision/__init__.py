"""The precision explorer: where INT8 hurts and what keeping parts in float buys.

- :mod:`.drift`: per tensor and per YOLOv5 block, how far a quantized model's activations drift from FP32's
"""

from __future__ import annotations

from core.precision.charts import drift_by_block, explore_front, sensitivity_chart
from core.precision.drift import BlockDrift, DriftReport, TensorDrift, block_of, layer_drift
from core.precision.explorer import (
    CALIBRATIONS,
    SPLIT_RULE,
    TRT_NOTE,
    Calibration,
    Explorer,
    ExploreResult,
    ExploreSettings,
    _faster,
    _Split,
    chosen_words,
    explore,
    explore_text,
    save_best,
    split_items,
)
from core.precision.job import ExploreJob

__all__ = [
    "CALIBRATIONS",
    "SPLIT_RULE",
    "TRT_NOTE",
    "BlockDrift",
    "Calibration",
    "DriftReport",
    "ExploreJob",
    "ExploreResult",
    "ExploreSettings",
    "Explorer",
    "TensorDrift",
    "_Split",
    "_faster",
    "block_of",
    "chosen_words",
    "drift_by_block",
    "explore",
    "explore_front",
    "explore_text",
    "layer_drift",
    "save_best",
    "sensitivity_chart",
    "split_items",
]
