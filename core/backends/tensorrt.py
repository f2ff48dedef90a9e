"""Native TensorRT backend (strongly typed networks built from ONNX files that carry their precision).

Placeholder until the TensorRT issue lands: reports why it cannot run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import RuntimeUnavailableError
from ..progress import Progress
from ..variants import Precision, Runtime
from .base import Availability, Backend
from .gpu import probe_gpu


class TensorrtBackend(Backend):
    runtime = Runtime.TRT

    @classmethod
    def available(cls) -> Availability:
        gpu = probe_gpu()
        if not gpu.ok:
            return Availability(False, gpu.reason)
        return Availability(False, "the native TensorRT backend is not implemented yet")

    def _load(self, model_path: Path, precision: Precision, progress: Progress) -> None:
        raise RuntimeUnavailableError("TensorRT backend not implemented")

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        raise RuntimeUnavailableError("TensorRT backend not implemented")
