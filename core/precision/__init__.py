"""The precision explorer: where INT8 hurts and what keeping parts in float buys.

- :mod:`.drift`: per tensor and per YOLOv5 block, how far a quantized model's activations drift from FP32's
"""

from .drift import BlockDrift, DriftReport, TensorDrift, block_of, layer_drift

__all__ = ["BlockDrift", "DriftReport", "TensorDrift", "block_of", "layer_drift"]
