"""The precision explorer: where INT8 hurts and what keeping parts in float buys.

- :mod:`.fidelity`: how closely a candidate's detections follow FP32's on unlabelled images, with intervals
- :mod:`.drift`: per tensor and per YOLOv5 block, how far a quantized model's activations drift from FP32's
"""

from __future__ import annotations

from core.precision.charts import drift_by_block, explore_front, sensitivity_chart
from core.precision.drift import BlockDrift, DriftReport, TensorDrift, block_of, layer_drift
from core.precision.explorer import (
    CALIBRATIONS,
    TRT_NOTE,
    Calibration,
    Explorer,
    ExploreResult,
    ExploreSettings,
    _faster,
    chosen_words,
    explore,
    explore_text,
    save_best,
)
from core.precision.fidelity import (
    DEFAULT_FIDELITY_IMAGES,
    FIDELITY_WORDS,
    FidelityScores,
    FidelitySet,
    fidelity_images,
    versus,
)
from core.precision.job import ExploreJob

__all__ = [
    "CALIBRATIONS",
    "DEFAULT_FIDELITY_IMAGES",
    "FIDELITY_WORDS",
    "TRT_NOTE",
    "BlockDrift",
    "Calibration",
    "DriftReport",
    "ExploreJob",
    "ExploreResult",
    "ExploreSettings",
    "Explorer",
    "FidelityScores",
    "FidelitySet",
    "TensorDrift",
    "_faster",
    "block_of",
    "chosen_words",
    "drift_by_block",
    "explore",
    "explore_front",
    "explore_text",
    "fidelity_images",
    "layer_drift",
    "save_best",
    "sensitivity_chart",
    "versus",
]
