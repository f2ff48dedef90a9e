"""core.backends: the contract every runtime implements, and ONNX Runtime's CPU backend against it."""

import numpy as np
import pytest

from core.backends import BackendOptions, OrtOptions, create_backend
from core.backends.base import Availability, Backend
from core.errors import CoreError
from core.variants import Runtime


def test_the_backend_contract_has_safe_defaults():
    """A new runtime that declares nothing more runs whole graphs, one image per call, under a lock."""

    class Minimal(Backend):
        runtime = Runtime.ORT

        @classmethod
        def available(cls) -> Availability:
            return Availability(True)

        def _load(self, model_path, precision, progress) -> None: ...

        def _infer(self, batch):
            return batch

    b = Minimal()
    assert b.head is None and b.max_batch == 1 and b.thread_safe is False
    with pytest.raises(CoreError, match="no head outputs"):
        b.infer_heads(None)


def test_the_cpu_backend_declares_what_the_detector_uses(detectors, bus_image):
    """ort:fp32 cuts the graph before the decode: any batch size, thread-safe, head outputs per level."""
    backend = detectors["ort:fp32"].backend
    assert backend.thread_safe and backend.head is not None and backend.max_batch is None
    batch = np.zeros((2, 3, 640, 640), np.float32)
    outs = backend.infer_heads(batch)
    assert len(outs) == len(backend.head.outputs) and all(o.shape[0] == 2 for o in outs)


def test_runtime_options_have_their_own_homes():
    opts = BackendOptions.for_turns(in_turn=True, threads=1)
    assert opts.threads == 1 and opts.ort == OrtOptions(spin=False) and opts.tensorrt.workspace_mb == 1024
    assert BackendOptions.for_turns(in_turn=False).ort.spin
    backend = create_backend(Runtime.ORT, opts)
    assert backend.options.ort.spin is False and backend.head is None  # nothing loaded yet
    with pytest.raises(CoreError, match="before load"):
        backend.infer(np.zeros((1, 3, 32, 32), np.float32))
