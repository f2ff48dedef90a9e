"""Inference backends: one interface, one class per runtime, imported lazily."""

from __future__ import annotations

from core.runtime.backends.base import (
    Availability,
    Backend,
    BackendOptions,
    NodeProfiler,
    NodeTime,
    OrtOptions,
    TensorrtOptions,
    availability,
    create_backend,
    runnable_cpu_variants,
    runtime_availability,
)

__all__ = [
    "Availability",
    "Backend",
    "BackendOptions",
    "NodeProfiler",
    "NodeTime",
    "OrtOptions",
    "TensorrtOptions",
    "availability",
    "create_backend",
    "runnable_cpu_variants",
    "runtime_availability",
]
