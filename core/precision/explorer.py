"""The precision explorer: where INT8 drifts, what keeping each block in float buys and costs, and a searched
recipe, chosen on one half of the labelled set and reported on the other.

Steps (each reports progress; ``should_stop`` ends the run between two steps and keeps what was measured):

1. **Drift** of the default recipe's file from FP32, per tensor and block (:func:`~.drift.layer_drift`).
2. **FP16 range check** of the FP16 file (:func:`~.fp16.fp16_check`).
3. **Sensitivity**: per block (all, or the K of lowest SQNR), the default recipe with that block kept in float:
   its mAP50-95 on the search split against FP32's, in points, and its latency.
4. **Search**: calibration settings (method, images), weight bits and per-channel on the default exclusions,
   then a greedy walk down the sensitivity ranking from the best of them, until the target holds. The
   activation ranges of a calibration setting are computed once and reused by every candidate that shares it
   (onnxruntime's calibration cache, :meth:`core.model.store.ModelStore.ranges_path`).
5. **Timing**: every candidate, FP32 and the default recipe in interleaved rounds (``core.measure.bench``), end to end
   per image (letterbox + inference + decode + NMS), the definition every page uses.
6. **Report**: the chosen recipe, FP32 and the default on the report split (never seen by the search), with
   the paired bootstrap interval of the mAP difference.

Never calibrates on either split: calibration images come from the calibration folder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.data import LabelledImage, YoloDataset, load_image
from core.errors import CoreError, InputError, Setting
from core.measure import (
    LatencySpread,
    MapAccumulator,
    MapDelta,
    MapResult,
    Speedup,
    benchmark_variants,
    paired_delta,
    pareto_front,
    profile_variants,
)
from core.model import CalibrationMethod, Int8Options, Recipe, describe_options, list_images, recipe_variant
from core.precision.drift import DriftReport, layer_drift
from core.precision.fp16 import Fp16Report, fp16_check
from core.progress import Progress, no_progress, scaled
from core.results import Result
from core.runtime import EVAL_PARAMS, BackendOptions, preprocess
from core.tables import Column, Table
from core.variants import REFERENCE, Artefact, Int8Flavour, Precision, Runtime, Variant

if TYPE_CHECKING:
    from core.model import ModelStore
    from core.runtime import Detector

SPLIT_RULE = "images ordered by sha256 of their file name; the first share is the search split, the rest the report"
TRT_NOTE = "accuracy of the TensorRT-format file, measured on CPU; speed needs a GPU"


class StoppedError(Exception):
    """Raised between steps when the caller asked to stop."""


@dataclass(frozen=True)
class Calibration:
    """One calibration setting the search tries (everything the activation ranges depend on)."""

    method: CalibrationMethod
    images: int
    moving_average: bool = True
    percentile: float = 99.999

    def apply(self, options: Int8Options) -> Int8Options:
        return replace(
            options,
            method=self.method,
            max_images=self.images,
            moving_average=self.moving_average,
            percentile=self.percentile,
        )


CALIBRATIONS = (
    Calibration(CalibrationMethod.MINMAX, 32),
    Calibration(CalibrationMethod.MINMAX, 128, moving_average=False),
    Calibration(CalibrationMethod.PERCENTILE, 32),
    Calibration(CalibrationMethod.ENTROPY, 32),
)


@dataclass(frozen=True)
class ExploreSettings:
    flavour: Int8Flavour = Int8Flavour.CPU
    target_drop: float | None = None  # the most mAP50-95 points the recipe may lose against FP32
    target_speedup: float | None = None  # or: at least this speed-up over FP32, as accurate as possible
    search_split: float = 0.5  # share of the labelled images the search sees
    drift_images: int = 16  # calibration images for the drift
    fp16_images: int = 4  # calibration images for the FP16 range check
    blocks: int | None = None  # sensitivity over the K blocks of lowest SQNR (None: every block)
    max_images: int | None = None  # of the labelled set (None: all)
    search_steps: int = 6  # greedy steps at most
    timing_calls: int = 60  # timed calls per candidate, in interleaved rounds (10 rounds)
    calibrations: tuple[Calibration, ...] = CALIBRATIONS

    def __post_init__(self) -> None:
        if self.target_drop is not None and self.target_speedup is not None:
            raise InputError("give one target: a largest mAP drop or a smallest speed-up, not both")
        if self.target_drop is not None and self.target_drop < 0:
            raise InputError(
                f"the largest mAP drop is in points and cannot be negative, got {self.target_drop}",
                setting=Setting.TARGET,
            )
        if self.target_speedup is not None and self.target_speedup <= 0:
            raise InputError(
                f"the smallest speed-up must be positive, got {self.target_speedup}", setting=Setting.TARGET
            )
        if not 0.05 <= self.search_split <= 0.95:
            raise InputError(f"the search split must be between 0.05 and 0.95, got {self.search_split}")
        if self.drift_images < 1 or self.fp16_images < 0 or self.timing_calls < 5:
            raise InputError("drift needs at least 1 image, the FP16 check 0 or more, timing at least 5 calls")
        if self.flavour is Int8Flavour.TRT and self.target_speedup is not None:
            raise InputError(
                f"the trt flavour is searched for accuracy only ({TRT_NOTE}): give a largest mAP drop as the target",
                setting=Setting.TARGET,
            )

    @property
    def drop(self) -> float:
        """The accuracy target in points (0.5 when neither target is given)."""
        if self.target_drop is not None:
            return self.target_drop
        return 0.5 if self.target_speedup is None else float("inf")

    def target_words(self) -> str:
        if self.target_speedup is not None:
            return f"at least {self.target_speedup:g}x FP32's speed, then the smallest mAP loss"
        return f"lose at most {self.drop:g} mAP50-95 points against FP32, then the fastest"


def split_items(items: Sequence[LabelledImage], fraction: float) -> tuple[list[LabelledImage], list[LabelledImage]]:
    """Deterministic split (:data:`SPLIT_RULE`): the same images always split the same way, whatever the order
    they were listed in."""
    if len(items) < 2:
        raise InputError(f"the labelled set needs at least 2 images to split into search and report, got {len(items)}")

    def key(item: LabelledImage) -> str:
        return hashlib.sha256(item.image.name.encode()).hexdigest()

    ordered = sorted(items, key=key)
    n = min(max(1, round(len(ordered) * fraction)), len(ordered) - 1)
    by_name = sorted(ordered[:n], key=lambda i: i.image.name), sorted(ordered[n:], key=lambda i: i.image.name)
    return by_name


@dataclass
class _Split:
    """A split's images decoded once, run by every candidate."""

    name: str
    items: list[tuple[np.ndarray, np.ndarray]]  # (image, labels)

    @classmethod
    def load(cls, name: str, items: Sequence[LabelledImage]) -> _Split:
        return cls(name, [(load_image(i.image), i.labels) for i in items])

    def evaluate(self, det: Detector) -> MapAccumulator:
        acc = MapAccumulator()
        for image, labels in self.items:
            raw = det.infer_raw(image, EVAL_PARAMS.conf)
            dets, _ = det.postprocess(raw, EVAL_PARAMS)
            h, w = image.shape[:2]
            acc.add(dets, labels, w, h)
        return acc


@dataclass
class Candidate:
    """One INT8 file the explorer tried: a point on the speed/accuracy plot."""

    key: str  # c0, c1... (also the variant label it ran under)
    label: str  # what a user reads: "default", "model.8 in float", "entropy 32", "search step 2"
    kind: str  # default | sensitivity | calibration | search
    options: Int8Options
    path: Path
    map50_95: float  # search split
    delta_points: float  # against FP32 on the search split (negative: a loss)
    block: str = ""  # sensitivity: the block kept in float
    p50_ms: float | None = None
    spread: LatencySpread | None = None
    speedup: Speedup | None = None
    pareto: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "kind": self.kind,
            "recipe": describe_options(self.options),
            "float_blocks": [n.strip("/") for n in self.options.float_nodes],
            "delta_points": round(self.delta_points, 3),
            "map50_95": round(self.map50_95, 5),
            "p50_ms": None if self.p50_ms is None else round(self.p50_ms, 3),
            "speedup": None if self.speedup is None else round(self.speedup.value, 3),
            "speedup_range": None if self.speedup is None else [round(self.speedup.lo, 3), round(self.speedup.hi, 3)],
            "pareto": self.pareto,
        }


@dataclass
class Best:
    candidate: Candidate
    variant: str  # ort:int8@NAME once saved, else ""
    meets_target: bool
    report: MapDelta  # against FP32 on the report split
    report_map50_95: float
    default_report: MapDelta  # the default recipe on the report split, for the dominance check
    dominates_default: bool  # better on both splits and not slower

    @property
    def recipe(self) -> str:
        return describe_options(self.candidate.options)

    @property
    def delta_report(self) -> float:
        """mAP50-95 points against FP32 on the report split (negative: a loss)."""
        return self.report.map50_95.value

    @property
    def delta_report_ci95(self) -> tuple[float, float]:
        return self.report.map50_95.lo, self.report.map50_95.hi

    @property
    def speedup(self) -> Speedup | None:
        return self.candidate.speedup

    def to_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "recipe": self.recipe,
            "options": Recipe("x", c.options, "").to_dict()["options"],
            "variant": self.variant,
            "label": c.label,
            "meets_target": self.meets_target,
            "delta_points_search": round(c.delta_points, 3),
            "delta_points_report": round(self.report.map50_95.value, 3),
            "delta_points_report_ci95": [round(self.report.map50_95.lo, 3), round(self.report.map50_95.hi, 3)],
            "report_images": self.report.images,
            "map50_95_report": round(self.report_map50_95, 5),
            "default_delta_points_report": round(self.default_report.map50_95.value, 3),
            "dominates_default": self.dominates_default,
            "speedup": None if c.speedup is None else round(c.speedup.value, 3),
            "speedup_range": None if c.speedup is None else [round(c.speedup.lo, 3), round(c.speedup.hi, 3)],
            "p50_ms": None if c.p50_ms is None else round(c.p50_ms, 3),
        }


@dataclass(frozen=True)
class BlockSensitivity:
    """What keeping one block in float does, against the default recipe (search split)."""

    block: str
    delta_points: float  # against FP32
    recovers_points: float | None  # against the default INT8 recipe (None: no default measured)
    p50_ms: float | None
    costs_ms: float | None  # latency it adds to the default's
    # what the default INT8 file saves in this block against FP32, by the runtimes' profiler (core.measure.profile):
    # what keeping the block in float gives back at most
    int8_saves_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "block": self.block,
            "delta_points": round(self.delta_points, 3),
            "recovers_points": r(self.recovers_points),
            "p50_ms": r(self.p50_ms),
            "costs_ms": r(self.costs_ms),
            "int8_saves_ms": r(self.int8_saves_ms),
        }

    def words(self) -> str:
        """e.g. "keeping model.8 in float recovers +0.42 points and costs +1.3 ms"; a block whose float copy
        does no better than the default says so instead of "recovers -0.42 points"."""
        cost = "" if self.costs_ms is None else f" and costs {self.costs_ms:+.1f} ms"
        if self.int8_saves_ms is not None:
            cost += f" (INT8 saves {self.int8_saves_ms:.2f} ms in this block, by the profiler)"
        if self.recovers_points is None:
            return f"keeping {self.block} in float: {self.delta_points:+.2f} points vs FP32{cost}"
        if self.recovers_points <= 0:
            return (
                f"keeping {self.block} in float recovers nothing here ({self.recovers_points:+.2f} points against "
                f"the default INT8 recipe, search split){cost}"
            )
        return f"keeping {self.block} in float recovers {self.recovers_points:+.2f} points{cost}"


@dataclass
class ExploreResult(Result):
    kind = "explore"

    model: str
    settings: ExploreSettings
    splits: dict[str, Any] = field(default_factory=dict)
    fp32_search: MapResult | None = None
    fp32_p50_ms: float | None = None
    drift: DriftReport | None = None
    fp16: Fp16Report | None = None
    candidates: list[Candidate] = field(default_factory=list)
    best: Best | None = None
    stopped: bool = False
    notes: list[str] = field(default_factory=list)
    int8_saves_ms: dict[str, float] = field(default_factory=dict)  # block -> FP32 ms minus default INT8 ms

    def table(self) -> Table:
        """Every candidate: what it keeps in float or changes, its accuracy and speed against FP32."""
        columns = (Column("candidate"), Column("kind"), Column("ΔmAP50-95 points (search)", 2), Column("p50 ms", 2),
                   Column("speed-up", 2), Column("Pareto"))  # fmt: skip
        rows = [
            (
                c.label,
                c.kind,
                c.delta_points,
                c.p50_ms,
                c.speedup.value if c.speedup else None,
                "yes" if c.pareto else "",
            )
            for c in self.candidates
        ]
        return Table(columns, rows)

    def text(self) -> str:
        return explore_text(self)

    @property
    def default(self) -> Candidate | None:
        return next((c for c in self.candidates if c.kind == "default"), None)

    def sensitivity(self) -> list[Candidate]:
        return [c for c in self.candidates if c.kind == "sensitivity"]

    def sensitivity_rows(self) -> list[BlockSensitivity]:
        default = self.default
        rows = []
        for c in self.sensitivity():
            gain = None if default is None else c.delta_points - default.delta_points
            cost = None if default is None or c.p50_ms is None or default.p50_ms is None else c.p50_ms - default.p50_ms
            rows.append(
                BlockSensitivity(c.block, c.delta_points, gain, c.p50_ms, cost, self.int8_saves_ms.get(c.block))
            )
        return rows

    def payload(self) -> dict[str, Any]:
        s = self.settings
        return {
            "model": self.model,
            "reference": str(REFERENCE),
            "flavour": s.flavour.value,
            "flavour_note": TRT_NOTE if s.flavour is Int8Flavour.TRT else "",
            "target": {
                "drop_points": s.drop if s.target_speedup is None else None,
                "speedup": s.target_speedup,
                "words": s.target_words(),
            },
            "splits": self.splits,
            "latency": "end to end per image on bus.jpg (letterbox + inference + decode + NMS), median of "
            f"{s.timing_calls} calls in interleaved rounds",
            "fp32": {
                "map50_95_search": None if self.fp32_search is None else round(self.fp32_search.map50_95, 5),
                "p50_ms": None if self.fp32_p50_ms is None else round(self.fp32_p50_ms, 3),
            },
            "layers": [
                {"tensor": t.tensor, "block": t.block, "op": op_of(t.tensor), "sqnr_db": round(t.sqnr_db, 2)}
                for t in (self.drift.tensors if self.drift else [])
            ],
            "blocks": [
                {"block": b.block, "module": b.module, "worst_db": round(b.worst_db, 2), "tensors": b.tensors}
                for b in (self.drift.blocks if self.drift else [])
            ],
            "sensitivity": [r.to_dict() for r in self.sensitivity_rows()],
            "candidates": [c.to_dict() for c in self.candidates],
            "best": None if self.best is None else self.best.to_dict(),
            "fp16": [r.to_dict() for r in (self.fp16.ranges if self.fp16 else [])[:50]],
            "fp16_summary": self.fp16.summary() if self.fp16 else "",
            "fp16_blocks": [
                {"block": b.block, "module": b.module, "worst_db": round(b.worst_db, 2)}
                for b in (self.fp16.blocks if self.fp16 else [])
            ],
            "stopped": self.stopped,
            "notes": self.notes,
        }


def op_of(tensor: str) -> str:
    """``/model.8/cv1/act/Mul_output_0`` -> ``Mul``."""
    last = tensor.rsplit("/", 1)[-1]
    return last.split("_output")[0].split("_")[0]


class Explorer:
    """One exploration of ``store``'s model; :meth:`run` fills and returns :attr:`result` (also when stopped)."""

    def __init__(
        self,
        store: ModelStore,
        dataset: YoloDataset,
        settings: ExploreSettings | None = None,
        progress: Progress = no_progress,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        if store.calib_dir is None or store.calib_bundled:
            raise InputError(
                "the explorer needs calibration images of your own (the bundled pictures are too few to compare "
                "recipes on)",
                setting=Setting.CALIBRATION,
            )
        self.store = store
        self.dataset = dataset
        self.settings = settings or ExploreSettings()
        self.progress = progress
        self.should_stop = should_stop
        self.result = ExploreResult(store.source.name, self.settings)
        self._fp32: Detector | None = None
        self._search: _Split | None = None
        self._fp32_acc: MapAccumulator | None = None

    # -- helpers ---------------------------------------------------------------------------

    def _check(self) -> None:
        if self.should_stop():
            raise StoppedError

    @property
    def _base(self) -> Int8Options:
        return replace(self.store.int8, flavour=self.settings.flavour)

    @property
    def _artefact(self) -> Artefact:
        return Artefact.of(Precision.INT8, self.settings.flavour)

    def _open(self, key: str, path: Path) -> Detector:
        variant = Variant(Runtime.ORT, Precision.INT8, key)
        return self.store.open_detector(variant, BackendOptions.for_turns(True), path=path)

    def _candidate(self, label: str, kind: str, options: Int8Options, progress: Progress, block: str = "") -> Candidate:
        """Build ``options``' file (ranges reused), evaluate it on the search split; already tried: the same one."""
        for c in self.result.candidates:
            if c.options == options:
                return c
        self._check()
        progress(0.0, f"{label}: building")
        path = self.store.artefact(self._artefact, scaled(progress, 0.0, 0.5), options, self.store.calib_dir)
        progress(0.5, f"{label}: evaluating on {len(self._search.items)} images")  # type: ignore[union-attr]
        with self._open(f"c{len(self.result.candidates)}", path) as det:
            acc = self._search.evaluate(det)  # type: ignore[union-attr]
        res = acc.result(det.names)
        ref = self.result.fp32_search
        assert ref is not None
        cand = Candidate(
            f"c{len(self.result.candidates)}",
            label,
            kind,
            options,
            path,
            res.map50_95,
            100.0 * (res.map50_95 - ref.map50_95),
            block,
        )
        self.result.candidates.append(cand)
        progress(1.0, f"{label}: {cand.delta_points:+.2f} points")
        return cand

    def _time(self, candidates: Sequence[Candidate], progress: Progress) -> None:
        """Candidates, FP32 and the default in interleaved rounds; speed-ups against FP32 of the same rounds."""
        from core.data import default_sample

        self._check()
        image = load_image(default_sample())
        default = self.result.default
        group = list({c.key: c for c in [*([default] if default is not None else []), *candidates]}.values())
        dets = [self._open(c.key, c.path) for c in group]
        fp32 = self._fp32
        assert fp32 is not None
        try:
            rows = benchmark_variants(
                [fp32, *dets], image, warmup=2, iterations=self.settings.timing_calls, progress=progress
            )
        finally:
            for d in dets:
                d.close()
        base = rows[0].spread
        self.result.fp32_p50_ms = base.p50
        for c, row in zip(group, rows[1:], strict=True):
            c.spread = row.spread
            c.p50_ms = row.spread.p50
            c.speedup = Speedup.of(base, row.spread)

    def _mark_front(self) -> None:
        if self.settings.flavour is Int8Flavour.TRT:  # no speed here: the front is the most accurate
            top = max((c.delta_points for c in self.result.candidates), default=None)
            for c in self.result.candidates:
                c.pareto = c.delta_points == top
            return
        timed = [c for c in self.result.candidates if c.p50_ms is not None]
        front = pareto_front([c.p50_ms for c in timed], [c.delta_points for c in timed])  # type: ignore[misc]
        for c, on in zip(timed, front, strict=True):
            c.pareto = on

    def _meets(self, c: Candidate) -> bool:
        s = self.settings
        if s.target_speedup is not None:
            return c.speedup is not None and c.speedup.value >= s.target_speedup
        return -c.delta_points <= s.drop

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> ExploreResult:
        s, store, r = self.settings, self.store, self.result
        step = self.progress
        try:
            items = self.dataset.items[: s.max_images] if s.max_images else self.dataset.items
            search, report = split_items(items, s.search_split)
            r.splits = {"search": len(search), "report": len(report), "fraction": s.search_split,
                        "rule": SPLIT_RULE, "data": str(self.dataset.root)}  # fmt: skip
            step(0.0, "preparing FP32 and the default INT8 file")
            self._fp32 = store.open_detector(REFERENCE, BackendOptions.for_turns(True))
            default_path = store.artefact(self._artefact, scaled(step, 0.0, 0.03), self._base, store.calib_dir)
            calib = list_images(Path(store.calib_dir))  # type: ignore[arg-type]
            tensors = [preprocess(load_image(f), store.input_hw)[0] for f in calib[: s.drift_images]]

            self._check()
            r.drift = layer_drift(store.fp32(), default_path, tensors, scaled(step, 0.03, 0.18))
            if s.fp16_images:
                self._check()
                fp16 = store.artefact(Artefact.ONNX_FP16)
                r.fp16 = fp16_check(store.fp32(), fp16, tensors[: s.fp16_images], scaled(step, 0.18, 0.23))

            self._check()
            step(0.23, f"decoding the {len(search)} search-split images")
            self._search = _Split.load("search", search)
            self._fp32_acc = self._search.evaluate(self._fp32)
            r.fp32_search = self._fp32_acc.result(self._fp32.names)
            self._candidate("default", "default", self._base, scaled(step, 0.24, 0.25))
            if s.flavour is Int8Flavour.CPU:  # the trt flavour's speed is a GPU's: no CPU profile speaks for it
                self._profile_blocks(default_path)

            blocks = self._sensitivity_blocks(r.drift)
            for i, block in enumerate(blocks):
                part = scaled(step, 0.25 + 0.35 * i / len(blocks), 0.25 + 0.35 * (i + 1) / len(blocks))
                opts = replace(self._base, float_nodes=(*self._base.float_nodes, f"/{block}/"))
                self._candidate(f"{block} in float", "sensitivity", opts, part, block)
            if s.target_speedup is not None:  # the greedy walk weighs each block's gain by its cost
                self._time(self.result.sensitivity(), scaled(step, 0.6, 0.64))
            self._search_recipes(scaled(step, 0.64, 0.8))
            if s.flavour is Int8Flavour.CPU:  # every point of the plot from one run, so their speeds compare
                self._time(self.result.candidates, scaled(step, 0.8, 0.88))
            else:
                r.notes.append(f"trt flavour: {TRT_NOTE}; candidates are compared on accuracy only")
            self._mark_front()
            self._choose(report, scaled(step, 0.88, 1.0))
        except StoppedError:
            r.stopped = True
            r.notes.append("stopped by the user: what was measured is kept")
            self._mark_front()
        finally:
            if self._fp32 is not None:
                self._fp32.close()
        step(1.0, "stopped" if r.stopped else "done")
        return r

    def _profile_blocks(self, default_path: Path) -> None:
        """What the default INT8 file saves in each block against FP32 (one search image, the runtimes' own
        profiler, both in turn): beside each block's sensitivity, what keeping it in float would give back."""
        assert self._fp32 is not None and self._search is not None
        int8 = self._open("profile", default_path)
        try:
            fp32_prof, int8_prof = profile_variants([self._fp32, int8], self._search.items[0][0], runs=10)
        except CoreError as exc:  # a runtime without a profiler: the rows go without it
            self.result.notes.append(f"no per-block profile: {exc}")
            return
        finally:
            int8.close()
        fp32_ms = {b.block: b.ms for b in fp32_prof.blocks}
        self.result.int8_saves_ms = {b.block: fp32_ms[b.block] - b.ms for b in int8_prof.blocks if b.block in fp32_ms}

    def _sensitivity_blocks(self, drift: DriftReport) -> list[str]:
        """The blocks worth keeping in float, lowest SQNR first: not those that only move data (Concat,
        Upsample: nearest-neighbour resize and concatenation give the same numbers in float), nor the stem when
        the recipe keeps it in float already, nor blocks the recipe already keeps in float."""
        base = self._base
        skipped, out = [], []
        for b in drift.blocks:
            already = f"/{b.block}/" in base.float_nodes or (b.block == "model.0" and base.keep_stem_float)
            if b.module in ("Concat", "Upsample") or already:
                skipped.append(b.block)
            else:
                out.append(b.block)
        if skipped:
            self.result.notes.append(
                f"not tried in float (only move data, or already float): {', '.join(sorted(skipped, key=_order))}"
            )
        return out[: self.settings.blocks] if self.settings.blocks else out

    def _search_recipes(self, progress: Progress) -> None:
        s, r = self.settings, self.result
        default = r.default
        assert default is not None
        tried: list[Candidate] = []
        n_cal = len(s.calibrations) + (4 if s.flavour is Int8Flavour.CPU else 1)
        total = n_cal + s.search_steps
        k = 0

        def part() -> Progress:
            nonlocal k
            k += 1
            return scaled(progress, (k - 1) / total, k / total)

        for cal in s.calibrations:
            label = f"{cal.method.value} {cal.images}" + ("" if cal.moving_average else " extremes")
            tried.append(self._candidate(label, "calibration", cal.apply(self._base), part()))
        best_cal = max([default, *tried], key=lambda c: c.delta_points)
        # weight levers on the best calibration, and (cpu flavour) the speed levers: stem and Detect convs in INT8
        levers: list[tuple[str, dict[str, bool]]] = [("per-tensor weights", {"per_channel": False})]
        if s.flavour is Int8Flavour.CPU:
            levers += [
                # the other weight range than this CPU's default (8-bit with VNNI, else 7-bit)
                (
                    "7-bit weights" if not best_cal.options.reduce_range else "8-bit weights",
                    {"reduce_range": not best_cal.options.reduce_range},
                ),
                ("stem in INT8", {"keep_stem_float": False}),
                ("head in INT8", {"keep_head_float": False}),
            ]
        for label, change in levers:
            tried.append(self._candidate(label, "calibration", replace(best_cal.options, **change), part()))  # type: ignore[arg-type]
        current = max([best_cal, *tried], key=lambda c: c.delta_points)
        # greedy: keep in float the block that recovered most in the sensitivity run (per ms it cost, when the
        # target is a speed-up), as long as it helps and the target is not met
        default_ms = default.p50_ms or 0.0
        sens = [c for c in r.sensitivity() if c.delta_points > default.delta_points]
        if s.target_speedup is not None:
            sens.sort(key=lambda c: -(c.delta_points - default.delta_points) / max((c.p50_ms or 0) - default_ms, 0.05))
        else:
            sens.sort(key=lambda c: -c.delta_points)
        steps = 0
        for c in sens:
            if steps >= s.search_steps or (s.target_speedup is None and self._meets(current)):
                break
            if c.options.float_nodes[-1] in current.options.float_nodes:
                continue
            opts = replace(current.options, float_nodes=(*current.options.float_nodes, c.options.float_nodes[-1]))
            steps += 1
            cand = self._candidate(f"search step {steps}: + {c.block}", "search", opts, part())
            tried.append(cand)
            if cand.delta_points > current.delta_points:
                current = cand

    def _choose(self, report_items: Sequence[LabelledImage], progress: Progress) -> None:
        r = self.result
        s = self.settings
        trt = s.flavour is Int8Flavour.TRT
        timed = list(r.candidates) if trt else [c for c in r.candidates if c.speedup is not None]
        meeting = [c for c in timed if self._meets(c)]
        if meeting:
            if s.target_speedup is not None or trt:
                pick = max(meeting, key=lambda c: c.delta_points)
            else:
                # the fastest, but not by noise: of those with no measurable speed difference from the fastest,
                # the most accurate
                fastest = max(meeting, key=lambda c: c.speedup.value)  # type: ignore[union-attr]
                as_fast = [c for c in meeting if c is fastest or not _faster(fastest, c)]
                pick = max(as_fast, key=lambda c: c.delta_points)
        else:
            r.notes.append(
                f"no candidate met the target ({s.target_words()}) on the search split; the closest on the "
                "front is reported, and the target was not loosened"
            )
            front = [c for c in timed if c.pareto] or timed
            if not front:
                return
            if s.target_speedup is not None:
                pick = max(front, key=lambda c: c.speedup.value)  # type: ignore[union-attr]
            else:
                pick = max(front, key=lambda c: c.delta_points)
        self._check()
        progress(0.0, f"the chosen recipe on the {len(report_items)} report-split images")
        report = _Split.load("report", report_items)
        default = r.default
        assert default is not None and self._fp32 is not None
        fp32_acc = report.evaluate(self._fp32)
        accs = {}
        for c in {c.key: c for c in (pick, default)}.values():
            with self._open(c.key, c.path) as det:
                accs[c.key] = report.evaluate(det)
        names = self._fp32.names
        ref = fp32_acc.result(names)

        def delta(c: Candidate) -> tuple[MapDelta, float]:
            res = accs[c.key].result(names)
            return paired_delta(fp32_acc.matches(), accs[c.key].matches(),
                                (res.map50_95 - ref.map50_95, res.map50 - ref.map50)), res.map50_95  # fmt: skip

        pick_delta, pick_map = delta(pick)
        default_delta, _ = delta(default)
        not_slower = (
            pick.speedup is not None
            and default.speedup is not None
            and (
                pick.speedup.value >= default.speedup.value or not Speedup.of(default.spread, pick.spread).measurable  # type: ignore[arg-type]
            )
        )
        dominates = (
            pick is not default
            and pick.delta_points > default.delta_points
            and pick_delta.map50_95.value > default_delta.map50_95.value
            and not_slower
        )
        meets = self._meets(pick) and (s.target_speedup is not None or -pick_delta.map50_95.value <= s.drop)
        if self._meets(pick) and not meets:
            r.notes.append(
                f"the chosen recipe met the target on the search split ({pick.delta_points:+.2f} points) but not on "
                f"the report split ({pick_delta.map50_95.value:+.2f}): reported as is"
            )
        r.best = Best(pick, "", meets, pick_delta, pick_map, default_delta, dominates)
        progress(1.0, "reported")


def _order(block: str) -> int:
    tail = block.rpartition(".")[2]
    return int(tail) if tail.isdigit() else 999


def _faster(a: Candidate, b: Candidate) -> bool:
    """``a`` measurably faster than ``b`` (same timing run)."""
    if a.spread is None or b.spread is None:
        return False
    sp = Speedup.of(b.spread, a.spread)
    return sp.measurable and sp.value > 1


def explore(
    store: ModelStore,
    dataset: YoloDataset,
    settings: ExploreSettings | None = None,
    progress: Progress = no_progress,
    should_stop: Callable[[], bool] = lambda: False,
) -> ExploreResult:
    return Explorer(store, dataset, settings, progress, should_stop).run()


def save_best(store: ModelStore, result: ExploreResult, name: str | None = None) -> Recipe:
    """Save the chosen recipe under ``name`` (default ``auto-<flavour>-<target>``, made unique)."""
    best = result.best
    if best is None:
        raise InputError("this exploration chose no recipe (it was stopped before the search ended)")
    s = result.settings
    if name is None:
        target = f"speedup{s.target_speedup:g}" if s.target_speedup is not None else f"drop{s.drop:g}"
        name = store.recipes.unique_name(f"auto-{s.flavour.value}-{target}")
    rep = best.report.map50_95
    speed = f", {best.candidate.speedup.value:.2f}x FP32" if best.candidate.speedup else ""
    note = (
        f"explorer, target: {s.target_words()}; report split ({best.report.images} images): "
        f"{rep.value:+.2f} points ({rep.lo:+.2f} to {rep.hi:+.2f}){speed}"
    )
    recipe = Recipe(name, best.candidate.options, str(store.calib_dir), note=note)
    store.recipes.save(recipe)
    best.variant = recipe_variant(recipe)
    return recipe


def chosen_words(best: Best) -> str:
    """The chosen recipe's report-split figures in one sentence (the page, the CLI and the report say it so)."""
    lo, hi = best.delta_report_ci95
    c = best.candidate
    speed = f"{c.speedup.value:.2f}x FP32 ({c.p50_ms or 0:.1f} ms)" if c.speedup else "speed needs a GPU"
    return (
        f"report split ({best.report.images} images): {best.delta_report:+.2f} mAP50-95 points vs FP32 "
        f"(95 % interval {lo:+.2f} to {hi:+.2f}); {speed}; "
        + ("meets the target" if best.meets_target else "does NOT meet the target")
    )


def explore_text(result: ExploreResult) -> str:
    """What the CLI prints without --json."""
    d = result.to_dict()
    s = result.settings
    lines = [
        f"{result.model}, {s.flavour.value} flavour"
        + (f" ({TRT_NOTE})" if s.flavour is Int8Flavour.TRT else "")
        + f"; target: {s.target_words()}",
        f"labelled set split: {d['splits'].get('search')} search / {d['splits'].get('report')} report images "
        f"({SPLIT_RULE})",
        f"latency: {d['latency']}",
    ]
    if result.drift is not None:
        n = result.drift.images
        lines.append(f"\nDrift of the default recipe from FP32 ({n} calibration images), worst blocks:")
        for b in result.drift.blocks[:8]:
            lines.append(f"  {b.block:<9} {b.module:<8} {b.worst_db:6.1f} dB  at {b.worst_tensor}")
    if result.fp16 is not None:
        lines.append(f"\nFP16: {result.fp16.summary()}")
    if d["sensitivity"]:
        lines.append("\nSensitivity (default recipe + one block in float; search split; points of mAP50-95 vs FP32):")
        for row in sorted(result.sensitivity_rows(), key=lambda r: -(r.recovers_points or 0)):
            lines.append(f"  {row.words()}")
    if d["candidates"]:
        lines.append("\nCandidates (search split; * = on the speed/accuracy front):")
        for c in d["candidates"]:
            speed = "" if c["speedup"] is None else f"{c['speedup']:.2f}x ({c['p50_ms']:.1f} ms)"
            lines.append(f"  {'*' if c['pareto'] else ' '} {c['delta_points']:+6.2f}  {speed:<18} {c['label']}")
    best = result.best
    if best is not None:
        lines.append(
            f"\nChosen: {best.recipe}\n  search split {best.candidate.delta_points:+.2f} points; " + chosen_words(best)
        )
        verdict = "does not dominate it"
        if best.dominates_default:
            verdict = "dominates it (more accurate on both splits" + (", not slower)" if best.speedup else ")")
        lines.append(
            f"  default recipe on the report split: {best.default_report.map50_95.value:+.2f} points; the chosen one "
            + verdict
        )
        if best.variant:
            lines.append(f"  run it as {best.variant}")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)
