"""What machine the numbers were measured on."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

from core.runtime.cpu import cpu_features

PACKAGES = (
    "onnxruntime",
    "onnxruntime-gpu",
    "openvino",
    "onnx",
    "numpy",
    "opencv-python",
    "torch",
    "ultralytics",
    "tensorrt",
    "streamlit",
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def system_info() -> dict[str, Any]:
    import psutil

    from core.runtime.backends.gpu import probe_gpu

    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
    except ImportError:
        providers = []
    gpu = probe_gpu()
    return {
        "cpu": cpu_model(),
        "cpu_features": cpu_features().names,
        "cpu_summary": cpu_features().summary(),
        "cores_physical": psutil.cpu_count(logical=False),
        "cores_logical": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "gpu": f"{gpu.name} (compute {gpu.compute_capability})" if gpu.ok else f"none: {gpu.reason}",
        "execution_providers": providers,
        "versions": {p: v for p in PACKAGES if (v := _version(p))},
    }


def machine_line(system: dict[str, Any]) -> str:
    """'AMD EPYC (2 physical cores; AVX2, AVX-512, VNNI, BF16), GPU: none: …' — a result's "measured on" line."""
    cores = system.get("cores_physical") or system.get("cores_logical")
    sets = system.get("cpu_summary") or "instruction sets not recorded"
    return f"{system.get('cpu')} ({cores} cores; {sets}), GPU: {system.get('gpu')}"
