"""How much memory a variant needs: what loading it adds to a process, and the peak while it runs.

Measured in a fresh Python process per variant (``python -m core.measure.footprint``), so one variant's
allocations, caches and thread pools never hide another's: the child imports the runtime, reads its resident
set (the baseline), loads the variant's file, reads it again (what loading adds), runs ``runs`` inferences on a
zero image while sampling its resident set every 2 ms (the peak). The file size is the artefact's on disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.errors import RuntimeUnavailableError
from core.runtime import Detector

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Footprint:
    variant: str
    file_mb: float  # the file it runs from, on disk
    load_mb: float  # resident memory loading it added to a fresh process (runtime already imported)
    peak_mb: float  # peak resident memory while running, above the same baseline
    runs: int
    gpu_mb: float | None = None  # GPU runtimes: device memory it holds after the runs (None on the CPU)

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 1) if isinstance(v, float) else v for k, v in asdict(self).items()}

    def words(self) -> str:
        gpu = "" if self.gpu_mb is None else f"; it holds {self.gpu_mb:.0f} MB of GPU memory"
        head = f"{self.variant}: file {self.file_mb:.1f} MB; loading adds {self.load_mb:.0f} MB of resident memory"
        return f"{head}, {self.peak_mb:.0f} MB at the peak of {self.runs} inferences (fresh process per variant){gpu}"


def measure_footprint(det: Detector, path: Path, runs: int = 10, timeout_s: float = 300) -> Footprint:
    """``det``'s variant, loaded from ``path`` (the file it runs from) in a fresh process."""
    job = {"runtime": det.variant.runtime.value, "precision": det.variant.precision.value, "path": str(path),
           "hw": list(det.input_hw), "runs": runs, "threads": det.backend.options.threads}  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "core.measure.footprint", json.dumps(job)], capture_output=True,
                          text=True, timeout=timeout_s, env=env, cwd=ROOT)  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeUnavailableError(f"{det.variant}: could not measure its memory in a fresh process: {last}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    # rounded as to_dict() writes them, so the words and the JSON's figures never differ by a rounding
    gpu = got.get("gpu_mb")
    return Footprint(str(det.variant), round(path.stat().st_size / 2**20, 1), round(got["load_mb"], 1),
                     round(got["peak_mb"], 1), runs, None if gpu is None else round(gpu, 1))  # fmt: skip


def _gpu_used_mb() -> float | None:
    """Device memory in use on the current GPU (cuda-python's cudaMemGetInfo), or None without it."""
    try:
        from cuda.bindings import runtime as cudart

        cudart.cudaFree(0)  # the context exists before the baseline is read
        err, free, total = cudart.cudaMemGetInfo()
        return (total - free) / 2**20 if int(err) == 0 else None
    except Exception:
        return None


def _child(job: dict[str, Any]) -> dict[str, float | None]:
    import threading

    import numpy as np
    import psutil

    from core.runtime import BackendOptions, create_backend
    from core.variants import VARIANTS, Precision, Runtime, Variant

    runtime, precision = Runtime(job["runtime"]), Precision(job["precision"])
    backend = create_backend(runtime, BackendOptions(threads=job["threads"]))
    if runtime.value.startswith("torch"):
        import torch  # noqa: F401  (the runtime itself is not what the variant adds)
    elif runtime is Runtime.OV:
        import openvino  # noqa: F401
    else:
        import onnxruntime  # noqa: F401
    me = psutil.Process()
    gpu_base = _gpu_used_mb() if VARIANTS[Variant(runtime, precision)].needs_gpu else None
    base = me.memory_info().rss
    backend.load(Path(job["path"]), precision)
    loaded = me.memory_info().rss
    batch = np.zeros((1, 3, *job["hw"]), np.float32)
    # the process's lifetime peak (ru_maxrss) includes the imports' transient peaks: sample the resident set
    # every 2 ms while the inferences run instead
    peak = loaded
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, me.memory_info().rss)
            done.wait(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for _ in range(int(job["runs"])):
            if backend.head is not None:
                backend.infer_heads(batch)
            else:
                backend.infer(batch)
    finally:
        done.set()
        sampler.join()
    peak = max(peak, me.memory_info().rss)
    gpu_now = _gpu_used_mb() if gpu_base is not None else None
    gpu = None if gpu_base is None or gpu_now is None else gpu_now - gpu_base
    return {"load_mb": (loaded - base) / 2**20, "peak_mb": (peak - base) / 2**20, "gpu_mb": gpu}


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
