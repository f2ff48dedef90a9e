"""What can run on this machine, and why not (``python -m core doctor``).

``--gpu-check`` goes further on a GPU machine: it builds every GPU variant that can run here, runs
the sample images (and the first frames of ``--video``) through each, and compares the detections
with ``ort:fp32`` on the CPU. A variant passes when it reproduces at least a set share of the
reference boxes (recall) and adds at most that share of boxes of its own (precision; thresholds in
:data:`RECALL_THRESHOLDS`). Every variant gets its row whatever goes wrong in it (ok, wrong result,
or the error's text). Exit status: 0 when every checked variant passes, and when there is no GPU
at all (nothing to check: the reasons are printed); 1 when a variant fails or cannot be built or
run, and when a GPU is present but no GPU runtime can use it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.cli import options
from core.errors import CoreError, InputError
from core.measure import Agreement, agreement_over
from core.progress import Progress, TqdmProgress, no_progress
from core.results import Result
from core.runtime import GpuInfo, availability, probe_gpu, runtime_availability, system_info
from core.tables import Column, Table
from core.variants import REFERENCE, VARIANTS, Precision, Runtime, Variant

if TYPE_CHECKING:
    from core.model import ModelStore

# Share of ort:fp32's boxes (conf >= 0.25, same class, IoU >= 0.5) a GPU variant must reproduce.
# Set from CPU measurements on the two sample images plus 60 video frames (259 reference boxes):
# ort:fp16 reproduces 0.988 of them, the TensorRT-flavour INT8 model run by ONNX Runtime 0.919,
# ONNX Runtime's CPU INT8 0.904. GPU kernels (TF32, FP16 accumulation, fused INT8) move boxes
# near the 0.25 threshold across it, so the bars sit below those figures.
RECALL_THRESHOLDS: dict[Precision, float] = {
    Precision.FP32: 0.95,
    Precision.FP16: 0.93,
    Precision.BF16: 0.93,  # 8 bits of mantissa against FP16's 11: unmeasured on a GPU here, FP16's bar until then
    Precision.INT8: 0.80,
}
TOLERATED_MISSES = 1  # on a few images one box flipping across the threshold is noise, not a fault
DEFAULT_FRAMES = 30


# ---------------------------------------------------------------------------------------------
# the GPU self-check


@dataclass(frozen=True)
class CheckRow:
    """One variant's result in the GPU check."""

    variant: str
    status: str  # "pass" | "fail" | "error" (could not build or run) | "skipped" (e.g. INT8 without --calib)
    threshold: float | None = None
    agreement: Agreement | None = None
    load_seconds: float | None = None
    inference_ms_p50: float | None = None
    description: str = ""
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "error")

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "status": self.status,
            "recall_threshold": self.threshold,
            "agreement": self.agreement.to_dict() if self.agreement else None,
            "load_seconds": None if self.load_seconds is None else round(self.load_seconds, 2),
            "inference_ms_p50": None if self.inference_ms_p50 is None else round(self.inference_ms_p50, 3),
            "description": self.description,
            "message": self.message,
        }


@dataclass(frozen=True)
class GpuCheckResult:
    status: str  # "nothing-to-check" (no GPU) | "no-gpu-runtime" (a GPU nothing can use) | "passed" | "failed"
    unavailable: dict[str, str]  # runtime -> why it cannot run here
    rows: list[CheckRow] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)  # what the variants were run on
    reference_boxes: int = 0
    model: str = ""
    gpu: str = ""  # the driver's word on the GPU, when no runtime could be checked

    @property
    def exit_code(self) -> int:
        return 1 if self.status in ("failed", "no-gpu-runtime") else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "model": self.model,
            "reference": str(REFERENCE),
            "inputs": self.inputs,
            "reference_boxes": self.reference_boxes,
            "recall_thresholds": {p.value: t for p, t in RECALL_THRESHOLDS.items()},
            "tolerated_misses": TOLERATED_MISSES,
            "unavailable": self.unavailable,
            "gpu": self.gpu,
            "variants": [r.to_dict() for r in self.rows],
        }


def judge(precision: Precision, agreement: Agreement) -> tuple[bool, float]:
    """(passed, threshold): both recall and precision vs ort:fp32 at least the precision's threshold (or at
    most one box missed, and at most one extra): a variant that finds everything plus boxes of its own is wrong
    too."""
    threshold = RECALL_THRESHOLDS[precision]
    found = agreement.recall >= threshold or agreement.missed <= TOLERATED_MISSES
    clean = agreement.precision >= threshold or agreement.extra <= TOLERATED_MISSES
    return found and clean, threshold


def _error_text(exc: BaseException) -> str:
    """The project's errors are sentences already; anything else (ONNX Runtime's Fail or RuntimeException,
    a TensorRT or CUDA binding error) keeps its type, which says whose it is."""
    return str(exc) if isinstance(exc, CoreError) else f"{type(exc).__module__}.{type(exc).__name__}: {exc}"


def gpu_variants() -> tuple[list[Variant], dict[str, str]]:
    """The GPU variants that can run here, and for each GPU runtime that cannot, why not."""
    runnable: list[Variant] = []
    unavailable: dict[str, str] = {}
    for runtime in Runtime:
        variants = [v for v, spec in VARIANTS.items() if v.runtime is runtime and spec.needs_gpu]
        if not variants:
            continue
        status = availability(runtime)
        if status:
            runnable += variants
        else:
            unavailable[runtime.value] = status.reason
    return runnable, unavailable


def check_variants(
    store: ModelStore,
    variants: Sequence[Variant],
    images: Sequence[np.ndarray],
    progress: Progress = no_progress,
) -> tuple[list[CheckRow], int]:
    """Run ``images`` through ``ort:fp32`` and each variant; one row per variant and the reference box count.

    Variants are opened and closed one at a time, so only one engine occupies the GPU at once.
    """
    from core.runtime import PostParams

    params = PostParams()
    with store.open_detector(REFERENCE) as ref:
        reference = [ref.detect(im, params).detections for im in images]
    rows: list[CheckRow] = []
    for i, variant in enumerate(variants):
        progress(i / max(len(variants), 1), f"checking {variant}")
        missing = store.missing_input(variant)
        if missing:
            rows.append(CheckRow(str(variant), "skipped", message=f"{missing}: pass --calib DIR"))
            continue
        started = time.perf_counter()
        try:  # a variant's failure, whoever raises it, is that variant's row: the report goes on
            det = store.open_detector(variant)
        except Exception as exc:
            rows.append(CheckRow(str(variant), "error", message=_error_text(exc)))
            continue
        load_s = time.perf_counter() - started
        try:
            with det:
                det.warmup(2)
                results = [det.detect(im, params) for im in images]
                description = det.backend.description
        except Exception as exc:
            rows.append(CheckRow(str(variant), "error", load_seconds=load_s, message=_error_text(exc)))
            continue
        agree = agreement_over(reference, [r.detections for r in results])
        passed, threshold = judge(variant.precision, agree)
        p50 = float(np.median([r.timings.inference for r in results]))
        rows.append(CheckRow(str(variant), "pass" if passed else "fail", threshold, agree, load_s, p50, description))
    progress(1.0, "GPU check done")
    return rows, sum(len(r) for r in reference)


def gpu_check(
    open_store: Callable[[], ModelStore],
    video: Path | None = None,
    frames: int = DEFAULT_FRAMES,
    progress: Progress = no_progress,
    gpu: GpuInfo | None = None,
) -> GpuCheckResult:
    """Check every GPU variant that can run here against ``ort:fp32`` on the CPU.

    ``open_store`` is called only when there is something to check: nothing is resolved, downloaded or built
    on a machine where no GPU variant can run. ``gpu``: what the driver reports (default: asked now); a GPU
    that no runtime can use fails the check, with every runtime's reason."""
    if frames < 1:
        raise InputError(f"--frames must be at least 1, got {frames}")
    variants, unavailable = gpu_variants()
    if not variants:
        gpu = gpu if gpu is not None else probe_gpu()
        status = "no-gpu-runtime" if gpu.ok else "nothing-to-check"
        return GpuCheckResult(status, unavailable, gpu=gpu.name or "present" if gpu.ok else gpu.reason)

    from core.data import load_image, sample_images
    from core.video import iter_frames

    store = open_store()
    paths = sample_images()
    images = [load_image(p) for p in paths]
    inputs = [p.name for p in paths]
    if video is not None:
        clip = list(iter_frames(video, max_frames=frames))
        images += clip
        inputs.append(f"{video.name} (first {len(clip)} frames)")
    if not images:
        raise InputError("no sample images found (ultralytics' assets are missing: reinstall requirements)")
    rows, boxes = check_variants(store, variants, images, progress)
    status = "failed" if any(r.failed for r in rows) else "passed"
    return GpuCheckResult(status, unavailable, rows, inputs, boxes, store.source.name)


def gpu_check_lines(report: GpuCheckResult) -> list[str]:
    lines: list[str] = []
    say = lines.append
    if report.status == "no-gpu-runtime":
        say(f"\nGPU check FAILED: there is a GPU ({report.gpu}) but no GPU runtime can use it:")
        for runtime, reason in report.unavailable.items():
            say(f"  {runtime:<9} {reason}")
        say("  install the GPU requirements into a fresh venv (README, GPU machines)")
        return lines
    if report.status == "nothing-to-check":
        say("\nGPU check: no GPU variant can run on this machine, so there is nothing to check:")
        for runtime, reason in report.unavailable.items():
            say(f"  {runtime:<9} {reason}")
        return lines
    say(
        f"\nGPU check: {report.model} on {', '.join(report.inputs)}; "
        f"reference {REFERENCE} on the CPU found {report.reference_boxes} boxes"
    )
    head = f"  {'variant':<14} {'result':<8} {'recall':>6} {'need':>5} {'matched':>7} {'missed':>6} {'extra':>5}"
    say(f"{head} {'|dconf|':>7} {'load s':>7} {'infer ms':>8}")
    for r in report.rows:
        if r.agreement is None:
            say(f"  {r.variant:<14} {r.status.upper():<8} {r.message}")
            continue
        a = r.agreement
        load_s, infer_ms = r.load_seconds or 0.0, r.inference_ms_p50 or 0.0
        say(
            f"  {r.variant:<14} {r.status.upper():<8} {a.recall:6.3f} {r.threshold or 0:5.2f} {a.matched:7d} "
            f"{a.missed:6d} {a.extra:5d} {a.mean_abs_dconf:7.4f} {load_s:7.1f} {infer_ms:8.2f}"
        )
    if report.reference_boxes < 50:
        say(f"  note: only {report.reference_boxes} reference boxes; add --video FILE for a more telling check")
    for runtime, reason in report.unavailable.items():
        say(f"  not checked: {runtime}: {reason}")
    say(
        f"  pass = recall and precision vs {REFERENCE} >= need (fp32 {RECALL_THRESHOLDS[Precision.FP32]}, "
        f"fp16 {RECALL_THRESHOLDS[Precision.FP16]}, int8 {RECALL_THRESHOLDS[Precision.INT8]}) "
        f"or at most {TOLERATED_MISSES} box missed / extra; matching at conf 0.25, IoU 0.5, same class"
    )
    say(f"GPU check {report.status.upper()}")
    return lines


def print_gpu_check(report: GpuCheckResult) -> None:
    print("\n".join(gpu_check_lines(report)))


# ---------------------------------------------------------------------------------------------
# command

GROUPS = (options.output,)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--gpu-check",
        action="store_true",
        help="build every GPU variant that can run here and compare its detections with ort:fp32 on the CPU "
        "(exit 0: all pass, or no GPU variant can run here; 1: a variant failed)",
    )
    options.model()(p)
    g = p.add_argument_group("--gpu-check inputs (beside the sample images)")
    g.add_argument("--video", type=Path, help="also run the first frames of this clip")
    g.add_argument("--frames", type=options.at_least(1), default=DEFAULT_FRAMES,
                   help=f"frames of --video (default {DEFAULT_FRAMES})")  # fmt: skip


@dataclass
class DoctorReport(Result):
    """What can run on this machine and why not, and (with ``--gpu-check``) how each GPU variant did."""

    kind = "doctor"
    system: dict[str, Any]
    runtimes: list[dict[str, Any]]
    check: GpuCheckResult | None = None

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"system": self.system, "runtimes": self.runtimes}
        if self.check is not None:
            out["gpu_check"] = self.check.to_dict()
        return out

    def table(self) -> Table:
        columns = (Column("runtime"), Column("what"), Column("precisions"), Column("runs here"))
        rows = [(r["runtime"], r["label"], ",".join(r["precisions"]), _runs_here(r)) for r in self.runtimes]
        return Table(columns, rows)

    def text(self) -> str:
        s = self.system
        lines = [
            f"{s['cpu']} ({s['cores_physical']} cores), {s['memory_gb']} GB, GPU: {s['gpu']}",
            f"Instruction sets: {s.get('cpu_summary', '?')} ({' '.join(s.get('cpu_features', [])) or 'none of note'})",
        ]
        for r in self.runtimes:
            mark = "ok " if r["available"] else "no "
            line = f"  [{mark}] {r['runtime']:<10} {r['label']:<28} {','.join(r['precisions'])}"
            lines.append(line + ("" if r["available"] else f"  — {r['reason']}"))
            lines += [
                f"         {r['runtime']}:{p} not here: {why}" for p, why in r.get("unavailable_precisions", {}).items()
            ]
        if self.check is not None:
            lines += gpu_check_lines(self.check)
        return "\n".join(lines)

    @property
    def exit_code(self) -> int:
        return self.check.exit_code if self.check else 0


def _runs_here(row: dict[str, Any]) -> str:
    if not row["available"]:
        return f"no: {row['reason']}"
    missing = row.get("unavailable_precisions", {})
    return "yes" + "".join(f"; not {p}: {why}" for p, why in missing.items())


def report(check: GpuCheckResult | None = None) -> DoctorReport:
    return DoctorReport(system_info(), runtime_availability(), check)


def run(args: argparse.Namespace) -> DoctorReport:
    check = None
    if args.gpu_check:
        with TqdmProgress("GPU check", enabled=not args.json) as bar:
            check = gpu_check(lambda: options.store(args), args.video, args.frames, bar)
    return report(check)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Run ``doctor`` and print its result; its exit status."""
    from core.cli.registry import show

    return show(run(args), args.json)
