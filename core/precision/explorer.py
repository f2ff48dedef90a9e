"""The precision explorer: where INT8 drifts, what keeping each block in float buys and costs, and a searched
recipe, chosen on fidelity (agreement with FP32 on many unlabelled images) and confirmed on the labelled set.

Steps (each reports progress; ``should_stop`` ends the run between two steps and keeps what was measured):

1. **Drift** of the default recipe's file from FP32, per tensor and block (:func:`~.drift.layer_drift`).
2. **FP16 range check** of the FP16 file (:func:`~.fp16.fp16_check`).
3. **Fidelity images**: unlabelled images (frames of a clip, a folder, or the calibration folder's images that
   calibration does not use), FP32's detections on them the reference (:mod:`~.fidelity`).
4. **Sensitivity**: per block (all, or the K of lowest SQNR), the default recipe with that block kept in float:
   its fidelity against FP32's, and against the default's, each with a paired 95 % interval over the images.
5. **Search**: calibration settings (method, images), weight bits and per-channel on the default exclusions,
   then a greedy walk down the sensitivity ranking, a step kept only when it is measurably more faithful. The
   activation ranges of a calibration setting are computed once and reused by every candidate that shares it
   (onnxruntime's calibration cache, :meth:`core.model.store.ModelStore.ranges_path`).
6. **Timing**: every candidate, FP32 and the default recipe in interleaved rounds (``core.measure.bench``), end to end
   per image (letterbox + inference + decode + NMS), the definition every page uses.
7. **Choice and confirmation**: for a largest mAP drop, the fastest candidate not measurably less faithful than the
   most faithful one; for a smallest speed-up, the most faithful that reaches it. Then the labels: the chosen
   recipe, FP32 and the default on the whole labelled set, with the paired bootstrap interval of the mAP
   difference, and whether the target held there (if it did not, the most faithful candidate is confirmed too).

Calibration images that calibration uses are never fidelity images; labels never rank candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.data import LabelledImage, YoloDataset, load_image
from core.errors import CoreError, InputError, Setting
from core.measure import (
    Interval,
    LatencySpread,
    MapAccumulator,
    MapDelta,
    MapResult,
    Speedup,
    benchmark_variants,
    paired_delta,
    profile_variants,
)
from core.model import CalibrationMethod, Int8Options, Recipe, describe_options, list_images, recipe_variant
from core.precision.drift import DriftReport, layer_drift
from core.precision.fidelity import (
    DEFAULT_FIDELITY_IMAGES,
    FIDELITY_WORDS,
    MIN_FIDELITY_IMAGES,
    FidelityScores,
    FidelitySet,
    fidelity_images,
    versus,
)
from core.precision.fp16 import Fp16Report, fp16_check
from core.progress import Progress, no_progress, scaled
from core.results import Result
from core.runtime import EVAL_PARAMS, BackendOptions, preprocess
from core.tables import Column, Table
from core.variants import REFERENCE, Artefact, Int8Flavour, Precision, Runtime, Variant

if TYPE_CHECKING:
    from core.model import ModelStore
    from core.runtime import Detector

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
    fidelity_video: Path | None = None  # unlabelled frames for fidelity: spread over this clip
    fidelity_images: Path | None = None  # ... or this folder's images (else the calibration folder's unused ones)
    fidelity_count: int = DEFAULT_FIDELITY_IMAGES
    drift_images: int = 16  # calibration images for the drift
    fp16_images: int = 4  # calibration images for the FP16 range check
    blocks: int | None = None  # sensitivity over the K blocks of lowest SQNR (None: every block)
    max_images: int | None = None  # of the labelled set (None: all)
    search_steps: int = 8  # greedy steps at most
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
        if self.fidelity_count < 16:
            raise InputError(f"fidelity needs at least 16 images, got {self.fidelity_count}")
        if self.fidelity_video is not None and self.fidelity_images is not None:
            raise InputError("give one source of fidelity images: a clip or a folder, not both")
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


@dataclass
class _Labelled:
    """The labelled set decoded once: it confirms the chosen recipe (it never ranks candidates)."""

    name: str
    items: list[tuple[np.ndarray, np.ndarray]]  # (image, labels)

    @classmethod
    def load(cls, name: str, items: Sequence[LabelledImage]) -> _Labelled:
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
    """One INT8 file the explorer tried: a point on the speed/fidelity plot."""

    key: str  # c0, c1... (also the variant label it ran under)
    label: str  # what a user reads: "default", "model.8 in float", "entropy 32", "search step 2"
    kind: str  # default | sensitivity | calibration | search
    options: Int8Options
    path: Path
    fidelity: Interval  # fidelity minus FP32's (100), in points, with its 95 % paired interval (negative: a loss)
    scores: FidelityScores = field(repr=False)  # per image, for paired comparisons with other candidates
    block: str = ""  # sensitivity: the block kept in float
    p50_ms: float | None = None
    spread: LatencySpread | None = None
    speedup: Speedup | None = None
    pareto: bool = False

    @property
    def delta_points(self) -> float:
        """Fidelity points against FP32 (negative: a loss): the y of every plot."""
        return self.fidelity.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "kind": self.kind,
            "recipe": describe_options(self.options),
            "float_blocks": [n.strip("/") for n in self.options.float_nodes],
            "fidelity_points": round(self.fidelity.value, 3),
            "fidelity_ci95": [round(self.fidelity.lo, 3), round(self.fidelity.hi, 3)],
            "fidelity_images": self.scores.images,
            "boxes_missed": self.scores.missed,
            "boxes_extra": self.scores.extra,
            "p50_ms": None if self.p50_ms is None else round(self.p50_ms, 3),
            "speedup": None if self.speedup is None else round(self.speedup.value, 3),
            "speedup_range": None if self.speedup is None else [round(self.speedup.lo, 3), round(self.speedup.hi, 3)],
            "pareto": self.pareto,
        }


@dataclass
class Best:
    candidate: Candidate
    variant: str  # ort:int8@NAME once saved, else ""
    meets_target: bool  # confirmed on the labelled set (a speed-up target: reached in the timing run)
    report: MapDelta  # against FP32 on the whole labelled set
    report_map50_95: float
    default_report: MapDelta  # the default recipe on the labelled set, for the dominance check
    dominates_default: bool  # measurably more faithful, more accurate on the labels, not slower
    why: str = ""  # how it was chosen, in words

    @property
    def recipe(self) -> str:
        return describe_options(self.candidate.options)

    @property
    def delta_report(self) -> float:
        """mAP50-95 points against FP32 on the labelled set (negative: a loss)."""
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
            "why": self.why,
            "meets_target": self.meets_target,
            "confirmed_on_labels": self.meets_target,
            "fidelity_points": round(c.fidelity.value, 3),
            "fidelity_ci95": [round(c.fidelity.lo, 3), round(c.fidelity.hi, 3)],
            "delta_points_labelled": round(self.report.map50_95.value, 3),
            "delta_points_labelled_ci95": [round(self.report.map50_95.lo, 3), round(self.report.map50_95.hi, 3)],
            "labelled_images": self.report.images,
            "map50_95_labelled": round(self.report_map50_95, 5),
            "default_delta_points_labelled": round(self.default_report.map50_95.value, 3),
            "default_delta_points_labelled_ci95": [
                round(self.default_report.map50_95.lo, 3),
                round(self.default_report.map50_95.hi, 3),
            ],
            "dominates_default": self.dominates_default,
            "speedup": None if c.speedup is None else round(c.speedup.value, 3),
            "speedup_range": None if c.speedup is None else [round(c.speedup.lo, 3), round(c.speedup.hi, 3)],
            "p50_ms": None if c.p50_ms is None else round(c.p50_ms, 3),
        }


@dataclass(frozen=True)
class BlockSensitivity:
    """What keeping one block in float does to fidelity, against FP32 and against the default recipe."""

    block: str
    fidelity: Interval  # against FP32, points
    recovers: Interval | None  # against the default INT8 recipe (None: no default measured)
    p50_ms: float | None
    costs_ms: float | None  # latency it adds to the default's
    # what the default INT8 file saves in this block against FP32, by the runtimes' profiler (core.measure.profile):
    # what keeping the block in float gives back at most
    int8_saves_ms: float | None = None

    @property
    def recovers_points(self) -> float | None:
        return None if self.recovers is None else self.recovers.value

    @property
    def measurable(self) -> bool:
        """Its change against the default is measurable (the paired interval excludes 0)."""
        return self.recovers is not None and not self.recovers.holds_zero

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "block": self.block,
            "fidelity_points": r(self.fidelity.value),
            "fidelity_ci95": [r(self.fidelity.lo), r(self.fidelity.hi)],
            "recovers_points": r(self.recovers_points),
            "recovers_ci95": None if self.recovers is None else [r(self.recovers.lo), r(self.recovers.hi)],
            "measurable": self.measurable,
            "p50_ms": r(self.p50_ms),
            "costs_ms": r(self.costs_ms),
            "int8_saves_ms": r(self.int8_saves_ms),
        }

    def words(self) -> str:
        """e.g. "keeping model.8 in float changes fidelity by +0.42 points (+0.10 to +0.75) and costs +1.3 ms", or
        "no measurable difference" when the interval holds 0."""
        cost = "" if self.costs_ms is None else f" and costs {self.costs_ms:+.1f} ms"
        if self.int8_saves_ms is not None:
            cost += f" (INT8 saves {self.int8_saves_ms:.2f} ms in this block, by the profiler)"
        if self.recovers is None:
            return f"keeping {self.block} in float: fidelity {self.fidelity.words()} vs FP32{cost}"
        if self.recovers.holds_zero:
            return (
                f"keeping {self.block} in float: no measurable difference in fidelity from the default INT8 recipe "
                f"({self.recovers.words()}){cost}"
            )
        return f"keeping {self.block} in float changes fidelity by {self.recovers.words()}{cost}"


@dataclass
class ExploreResult(Result):
    kind = "explore"

    model: str
    settings: ExploreSettings
    labelled: dict[str, Any] = field(default_factory=dict)  # the labelled set that confirms: images, data
    fidelity_source: str = ""  # where the fidelity images came from, in words
    fidelity_images: int = 0
    fp32_labelled: MapResult | None = None
    fp32_p50_ms: float | None = None
    drift: DriftReport | None = None
    fp16: Fp16Report | None = None
    candidates: list[Candidate] = field(default_factory=list)
    best: Best | None = None
    stopped: bool = False
    notes: list[str] = field(default_factory=list)
    int8_saves_ms: dict[str, float] = field(default_factory=dict)  # block -> FP32 ms minus default INT8 ms

    def table(self) -> Table:
        """Every candidate: what it keeps in float or changes, its fidelity and speed against FP32."""
        columns = (Column("candidate"), Column("kind"), Column("Δ fidelity points", 2), Column("95 % interval"),
                   Column("p50 ms", 2), Column("speed-up", 2), Column("Pareto"))  # fmt: skip
        rows = [
            (
                c.label,
                c.kind,
                c.fidelity.value,
                f"{c.fidelity.lo:+.2f} to {c.fidelity.hi:+.2f}",
                c.p50_ms,
                c.speedup.value if c.speedup else None,
                "yes" if c.pareto else "",
            )
            for c in self.candidates
        ]
        return Table(columns, rows, (f"fidelity: {FIDELITY_WORDS}; on {self.fidelity_source}",))

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
            gain = None if default is None else versus(default.scores, c.scores)
            cost = None if default is None or c.p50_ms is None or default.p50_ms is None else c.p50_ms - default.p50_ms
            rows.append(BlockSensitivity(c.block, c.fidelity, gain, c.p50_ms, cost, self.int8_saves_ms.get(c.block)))
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
            "fidelity": {"images": self.fidelity_images, "source": self.fidelity_source, "signal": FIDELITY_WORDS},
            "labelled": self.labelled,
            "latency": "end to end per image on bus.jpg (letterbox + inference + decode + NMS), median of "
            f"{s.timing_calls} calls in interleaved rounds",
            "fp32": {
                "map50_95_labelled": None if self.fp32_labelled is None else round(self.fp32_labelled.map50_95, 5),
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
        self._fid: FidelitySet | None = None

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

    def _calibration_images_used(self) -> int:
        """How many of the calibration folder's images (in its order) some calibration of this search reads."""
        counts = [self._base.max_images, *(c.images for c in self.settings.calibrations)]
        return max(counts)

    def _candidate(self, label: str, kind: str, options: Int8Options, progress: Progress, block: str = "") -> Candidate:
        """Build ``options``' file (ranges reused), score its fidelity; already tried: the same one."""
        for c in self.result.candidates:
            if c.options == options:
                return c
        self._check()
        fid = self._fid
        assert fid is not None
        progress(0.0, f"{label}: building")
        path = self.store.artefact(self._artefact, scaled(progress, 0.0, 0.3), options, self.store.calib_dir)
        progress(0.3, f"{label}: fidelity on {len(fid)} images")
        key = f"c{len(self.result.candidates)}"
        with self._open(key, path) as det:
            scores = fid.score(det, scaled(progress, 0.3, 1.0))
        cand = Candidate(key, label, kind, options, path, versus(None, scores), scores, block)
        self.result.candidates.append(cand)
        progress(1.0, f"{label}: fidelity {cand.fidelity.words()}")
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
        """The front of points that differ measurably: a candidate is off it when another is measurably more
        faithful and not measurably slower, or measurably faster and not measurably less faithful."""
        cands = self.result.candidates
        trt = self.settings.flavour is Int8Flavour.TRT  # no speed here: the front is the most faithful

        def better(d: Candidate, c: Candidate) -> tuple[bool, bool]:
            gap = versus(c.scores, d.scores)  # d minus c
            return gap.lo > 0, gap.hi >= 0  # measurably more faithful, not measurably less

        for c in cands:
            if not trt and c.p50_ms is None:
                c.pareto = False
                continue
            dominated = False
            for d in cands:
                if d is c or (not trt and d.p50_ms is None):
                    continue
                more, not_less = better(d, c)
                if trt:
                    dominated = more
                else:
                    faster, not_slower = _faster(d, c), not _faster(c, d)
                    dominated = (more and not_slower) or (faster and not_less)
                if dominated:
                    break
            c.pareto = not dominated

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> ExploreResult:
        s, store, r = self.settings, self.store, self.result
        step = self.progress
        try:
            items = self.dataset.items[: s.max_images] if s.max_images else self.dataset.items
            if not items:
                raise InputError(f"the labelled set {self.dataset.root} has no images")
            r.labelled = {"images": len(items), "data": str(self.dataset.root), "use": "confirms the chosen recipe"}
            step(0.0, "preparing FP32 and the default INT8 file")
            self._fp32 = store.open_detector(REFERENCE, BackendOptions.for_turns(True))
            default_path = store.artefact(self._artefact, scaled(step, 0.0, 0.03), self._base, store.calib_dir)
            calib = list_images(Path(store.calib_dir))  # type: ignore[arg-type]
            tensors = [preprocess(load_image(f), store.input_hw)[0] for f in calib[: s.drift_images]]

            self._check()
            r.drift = layer_drift(store.fp32(), default_path, tensors, scaled(step, 0.03, 0.12))
            if s.fp16_images:
                self._check()
                fp16 = store.artefact(Artefact.ONNX_FP16)
                r.fp16 = fp16_check(store.fp32(), fp16, tensors[: s.fp16_images], scaled(step, 0.12, 0.15))

            self._check()
            step(0.15, "reading the fidelity images")
            images, source = fidelity_images(
                s.fidelity_count, video=s.fidelity_video, folder=s.fidelity_images, calib_dir=Path(store.calib_dir),  # type: ignore[arg-type]
                calib_used=self._calibration_images_used(), labelled=[i.image for i in items],
                progress=scaled(step, 0.15, 0.17),
            )  # fmt: skip
            self._fid = FidelitySet(images, source, self._fp32, scaled(step, 0.17, 0.2))
            r.fidelity_source, r.fidelity_images = source, len(images)
            if len(images) < MIN_FIDELITY_IMAGES:
                r.notes.append(
                    f"fidelity on {len(images)} images (fewer than {MIN_FIDELITY_IMAGES}): intervals are wider; give a "
                    "clip or a folder of your own images (the CLI's --fidelity-video / --fidelity-images)"
                )
            self._candidate("default", "default", self._base, scaled(step, 0.2, 0.22))
            if s.flavour is Int8Flavour.CPU:  # the trt flavour's speed is a GPU's: no CPU profile speaks for it
                self._profile_blocks(default_path)

            blocks = self._sensitivity_blocks(r.drift)
            for i, block in enumerate(blocks):
                part = scaled(step, 0.22 + 0.38 * i / len(blocks), 0.22 + 0.38 * (i + 1) / len(blocks))
                opts = replace(self._base, float_nodes=(*self._base.float_nodes, f"/{block}/"))
                self._candidate(f"{block} in float", "sensitivity", opts, part, block)
            if s.target_speedup is not None:  # the greedy walk weighs each block's gain by its cost
                self._time(self.result.sensitivity(), scaled(step, 0.6, 0.64))
            self._search_recipes(scaled(step, 0.64, 0.82))
            if s.flavour is Int8Flavour.CPU:  # every point of the plot from one run, so their speeds compare
                self._time(self.result.candidates, scaled(step, 0.82, 0.88))
            else:
                r.notes.append(f"trt flavour: {TRT_NOTE}; candidates are compared on fidelity only")
            self._mark_front()
            self._choose(items, scaled(step, 0.88, 1.0))
        except StoppedError:
            r.stopped = True
            r.notes.append("stopped by the user: what was measured is kept")
            self._mark_front()
        finally:
            if self._fp32 is not None:
                self._fp32.close()
            self._fid = None  # hundreds of decoded frames: not kept with the result
        step(1.0, "stopped" if r.stopped else "done")
        return r

    def _profile_blocks(self, default_path: Path) -> None:
        """What the default INT8 file saves in each block against FP32 (one fidelity image, the runtimes' own
        profiler, both in turn): beside each block's sensitivity, what keeping it in float would give back."""
        assert self._fp32 is not None and self._fid is not None
        int8 = self._open("profile", default_path)
        try:
            fp32_prof, int8_prof = profile_variants([self._fp32, int8], self._fid.images[0], runs=10)
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
        best_cal = _measurably_better(default, tried)
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
        current = _measurably_better(best_cal, tried[len(s.calibrations) :])
        # greedy: keep in float, one by one, the blocks whose float copy was more faithful than the default, best
        # first (per ms it cost, when the target is a speed-up); a step stays only if it is measurably more
        # faithful than where it started
        default_ms = default.p50_ms or 0.0
        gains = {c.key: versus(default.scores, c.scores) for c in r.sensitivity()}
        sens = [c for c in r.sensitivity() if gains[c.key].value > 0]
        if s.target_speedup is not None:
            sens.sort(key=lambda c: -gains[c.key].value / max((c.p50_ms or 0) - default_ms, 0.05))
        else:
            sens.sort(key=lambda c: -gains[c.key].value)
        steps = 0
        for c in sens:
            if steps >= s.search_steps:
                break
            if c.options.float_nodes[-1] in current.options.float_nodes:
                continue
            opts = replace(current.options, float_nodes=(*current.options.float_nodes, c.options.float_nodes[-1]))
            steps += 1
            cand = self._candidate(f"search step {steps}: + {c.block}", "search", opts, part())
            tried.append(cand)
            if versus(current.scores, cand.scores).lo > 0:
                current = cand

    def _choose(self, items: Sequence[LabelledImage], progress: Progress) -> None:
        """Chosen on fidelity, confirmed on the labels (see the module's step 7)."""
        r, s = self.result, self.settings
        trt = s.flavour is Int8Flavour.TRT
        timed = list(r.candidates) if trt else [c for c in r.candidates if c.speedup is not None]
        if not timed:
            return
        most = _most_faithful(timed)
        if s.target_speedup is not None:
            reaching = [c for c in timed if c.speedup is not None and c.speedup.value >= s.target_speedup]
            if reaching:
                pick = _most_faithful(reaching)
                why = f"the most faithful of the {len(reaching)} candidates at least {s.target_speedup:g}x FP32"
            else:
                pick = max(timed, key=lambda c: c.speedup.value)  # type: ignore[union-attr]
                why = f"no candidate reaches {s.target_speedup:g}x FP32: the fastest"
                r.notes.append(f"no candidate met the target ({s.target_words()}); the fastest is reported")
        else:
            # not measurably less faithful than the most faithful one; of those the fastest, but not by noise:
            # of those with no measurable speed difference from the fastest, the most faithful
            equal = [c for c in timed if c is most or versus(most.scores, c.scores).hi >= 0]
            if trt:
                pick = most
            else:
                fastest = max(equal, key=lambda c: c.speedup.value)  # type: ignore[union-attr]
                pick = _most_faithful([c for c in equal if c is fastest or not _faster(fastest, c)])
            why = (
                f"the fastest of the {len(equal)} candidates not measurably less faithful than the most faithful "
                f"({most.label}, {most.fidelity.words()})"
                if len(equal) > 1
                else f"the most faithful candidate ({most.fidelity.words()}), measurably ahead of every other"
            )
        self._check()
        progress(0.0, f"confirming on the {len(items)} labelled images")
        labelled = _Labelled.load("labelled", items)
        default = r.default
        assert default is not None and self._fp32 is not None
        fp32_acc = labelled.evaluate(self._fp32)
        names = self._fp32.names
        ref = fp32_acc.result(names)
        r.fp32_labelled = ref
        accs: dict[str, MapAccumulator] = {}

        def delta(c: Candidate) -> tuple[MapDelta, float]:
            if c.key not in accs:
                with self._open(c.key, c.path) as det:
                    accs[c.key] = labelled.evaluate(det)
            res = accs[c.key].result(names)
            return paired_delta(fp32_acc.matches(), accs[c.key].matches(),
                                (res.map50_95 - ref.map50_95, res.map50 - ref.map50)), res.map50_95  # fmt: skip

        def holds(d: MapDelta) -> bool:
            return s.target_speedup is not None or -d.map50_95.value <= s.drop

        pick_delta, pick_map = delta(pick)
        if not holds(pick_delta) and pick is not most:
            most_delta, most_map = delta(most)
            r.notes.append(
                f"{pick.label} (chosen on fidelity) loses {-pick_delta.map50_95.value:.2f} mAP50-95 points on the "
                f"labelled set, more than the target; the most faithful candidate, {most.label}, "
                f"{'holds it' if holds(most_delta) else 'does not either'} ({most_delta.map50_95.words()})"
            )
            if holds(most_delta) or most_delta.map50_95.value > pick_delta.map50_95.value:
                pick, pick_delta, pick_map = most, most_delta, most_map
                why = "the most faithful candidate: the fastest faithful one did not hold the target on the labels"
        default_delta, _ = delta(default)
        progress(0.9, "confirmed")
        not_slower = trt or (pick.speedup is not None and default.speedup is not None and not _faster(default, pick))
        dominates = (
            pick is not default
            and versus(default.scores, pick.scores).lo > 0
            and pick_delta.map50_95.value > default_delta.map50_95.value
            and not_slower
        )
        meets = holds(pick_delta) and (s.target_speedup is None or pick.speedup is None
                                       or pick.speedup.value >= s.target_speedup)  # fmt: skip
        if not meets:
            r.notes.append(f"the chosen recipe does not meet the target ({s.target_words()}) on the labelled set")
        r.best = Best(pick, "", meets, pick_delta, pick_map, default_delta, dominates, why)
        progress(1.0, "reported")


def _most_faithful(cands: Sequence[Candidate]) -> Candidate:
    return max(cands, key=lambda c: c.fidelity.value)


def _measurably_better(current: Candidate, others: Sequence[Candidate]) -> Candidate:
    """The most faithful of ``others`` if it is measurably more faithful than ``current`` (paired interval above
    0), else ``current``: a difference inside the noise does not move the search."""
    if not others:
        return current
    top = _most_faithful(others)
    return top if versus(current.scores, top.scores).lo > 0 else current


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
        f"explorer, target: {s.target_words()}; labelled set ({best.report.images} images): "
        f"{rep.value:+.2f} points ({rep.lo:+.2f} to {rep.hi:+.2f}){speed}; fidelity {best.candidate.fidelity.words()}"
    )
    recipe = Recipe(name, best.candidate.options, str(store.calib_dir), note=note)
    store.recipes.save(recipe)
    best.variant = recipe_variant(recipe)
    return recipe


def chosen_words(best: Best) -> str:
    """The chosen recipe's confirmation in one sentence (the page, the CLI and the report say it so)."""
    lo, hi = best.delta_report_ci95
    c = best.candidate
    speed = f"{c.speedup.value:.2f}x FP32 ({c.p50_ms or 0:.1f} ms)" if c.speedup else "speed needs a GPU"
    return (
        f"fidelity {c.fidelity.words()} vs FP32; on the labelled set ({best.report.images} images) "
        f"{best.delta_report:+.2f} mAP50-95 points vs FP32 (95 % interval {lo:+.2f} to {hi:+.2f}); {speed}; "
        + ("the labels confirm the target" if best.meets_target else "the labels do NOT confirm the target")
    )


def explore_text(result: ExploreResult) -> str:
    """What the CLI prints without --json."""
    d = result.to_dict()
    s = result.settings
    lines = [
        f"{result.model}, {s.flavour.value} flavour"
        + (f" ({TRT_NOTE})" if s.flavour is Int8Flavour.TRT else "")
        + f"; target: {s.target_words()}",
        f"fidelity ({FIDELITY_WORDS}) on {result.fidelity_source}",
        f"labelled set: {d['labelled'].get('images')} images of {d['labelled'].get('data')}, confirming the choice",
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
        lines.append("\nSensitivity (default recipe + one block in float; fidelity points, 95 % paired intervals):")
        for row in sorted(result.sensitivity_rows(), key=lambda r: -(r.recovers_points or 0)):
            lines.append(f"  {row.words()}")
    if d["candidates"]:
        lines.append("\nCandidates (Δ fidelity vs FP32 with its 95 % interval; * = on the measurable front):")
        for c in d["candidates"]:
            speed = "" if c["speedup"] is None else f"{c['speedup']:.2f}x ({c['p50_ms']:.1f} ms)"
            lo, hi = c["fidelity_ci95"]
            lines.append(f"  {'*' if c['pareto'] else ' '} {c['fidelity_points']:+6.2f} ({lo:+.2f} to {hi:+.2f})  "
                         f"{speed:<18} {c['label']}")  # fmt: skip
    best = result.best
    if best is not None:
        lines.append(f"\nChosen: {best.recipe}\n  {best.why}\n  " + chosen_words(best))
        verdict = "does not dominate it"
        if best.dominates_default:
            verdict = "dominates it (measurably more faithful, more accurate on the labels" + (
                ", not slower)" if best.speedup else ")"
            )
        lines.append(
            f"  default recipe on the labelled set: {best.default_report.map50_95.words()}; the chosen one " + verdict
        )
        if best.variant:
            lines.append(f"  run it as {best.variant}")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)
