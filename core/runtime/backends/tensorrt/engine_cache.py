"""The engine cache, pure (testable without TensorRT): what an engine depends on, where it lives, and
loading it or (re)building it when it is missing, damaged or stale."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from core.cache import cached_build, read_verified, remove_artefact, sha256_text
from core.errors import ConversionError
from core.variants import Precision

ENGINE_FORMAT = "1"  # bump when the build settings change, so engines built the old way are not reused

# A dynamic input (an ONNX exported with dynamic axes) gets one optimization profile: batch 1 and
# this range of sides. Changing these changes the engines: bump ENGINE_FORMAT with them.
DYNAMIC_SIDE_MIN, DYNAMIC_SIDE_OPT, DYNAMIC_SIDE_MAX = 32, 640, 1280


def dynamic_profile(input_shape: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) shapes for a dynamic input (-1 dimensions): batch 1, 3 channels, sides in a fixed range."""
    fixed = [1, 3]
    shapes = []
    for side in (DYNAMIC_SIDE_MIN, DYNAMIC_SIDE_OPT, DYNAMIC_SIDE_MAX):
        shapes.append(tuple(d if d >= 0 else (fixed[i] if i < 2 else side) for i, d in enumerate(input_shape)))
    return shapes[0], shapes[1], shapes[2]


def engine_cache_key(
    onnx_sha256: str,
    precision: Precision | str,
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    input_shape: Sequence[int],
) -> str:
    """What an engine depends on: an engine is only valid for this exact model, precision,
    TensorRT build, GPU model and input shape (TensorRT refuses or misbehaves otherwise)."""
    return sha256_text(
        "trt-engine",
        ENGINE_FORMAT,
        onnx_sha256,
        Precision(precision).value,
        trt_version,
        gpu_name,
        compute_capability,
        "x".join(str(int(d)) for d in input_shape),
    )[:32]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "gpu"


def engine_path(cache_dir: Path, onnx_path: Path, precision: Precision | str, key: str) -> Path:
    return Path(cache_dir) / "trt" / f"{onnx_path.stem}.{Precision(precision).value}.{key[:16]}.engine"


def timing_cache_path(cache_dir: Path, trt_version: str, gpu_name: str, compute_capability: str) -> Path:
    """One timing cache per TensorRT version and GPU model, shared by all engines built there."""
    return Path(cache_dir) / "trt" / f"timing-trt{trt_version}-{_slug(gpu_name)}-sm{compute_capability}.cache"


T = TypeVar("T")


@dataclass(frozen=True)
class EngineLoad:
    path: Path
    built: bool  # False: taken from the cache as it was
    reason: str  # why it was (re)built: "not cached", "damaged ...", "stale ..."
    seconds: float


def load_or_build(
    target: Path,
    build: Callable[[Path], None],
    deserialize: Callable[[bytes], T | None],
    meta: dict[str, Any],
) -> tuple[T, EngineLoad]:
    """Deserialize the cached engine at ``target``; build it when missing, damaged or stale.

    Damaged = its bytes no longer match the sidecar hash (truncated, edited); stale = intact but
    TensorRT will not deserialize it (another TensorRT build, driver, or a corrupt build with a
    matching hash). Either way it is rebuilt once; a fresh build that cannot be loaded is an error.
    """
    started = time.perf_counter()
    reason = ""
    last_error = ""
    for _attempt in range(2):
        if read_verified(target) is None:
            reason = reason or ("not cached" if not target.exists() else "damaged (hash mismatch)")
        cached_build(target, build, meta)
        try:
            obj = deserialize(target.read_bytes())
        except Exception as exc:  # TensorRT raises on some corrupt plans and returns None on others
            obj, last_error = None, f"{type(exc).__name__}: {exc}"
        if obj is not None:
            return obj, EngineLoad(target, bool(reason), reason, time.perf_counter() - started)
        reason = f"stale (TensorRT could not deserialize it{': ' + last_error if last_error else ''})"
        remove_artefact(target)
    raise ConversionError(
        f"TensorRT built {target.name} but cannot deserialize it ({last_error or 'deserialize returned None'}); "
        "check the TensorRT and driver installation (python -m core doctor)"
    )
