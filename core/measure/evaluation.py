"""Run variants over a labelled dataset: mAP, latency, and agreement with the reference variant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.data import DatasetInventory, LabelledImage, YoloDataset, load_image
from core.errors import InputError
from core.measure.accuracy import MapAccumulator, MapResult
from core.measure.bench import fingerprint
from core.measure.bootstrap import MapDelta, Matches, paired_delta
from core.measure.metrics import (
    AGREEMENT_COLUMNS,
    Agreement,
    LatencyStats,
    agreement_cells,
    agreement_parts,
    merge_agreements,
    pareto_front,
)
from core.progress import Progress, no_progress
from core.results import Result
from core.runtime import EVAL_PARAMS, Detections, Detector, PostParams
from core.tables import Column, Table
from core.variants import Shape

WORST_IMAGES = 12  # images listed per variant where it disagrees most with the reference


@dataclass(frozen=True)
class Disagreement:
    image: Path
    missed: int  # reference boxes this variant did not find (same class, IoU >= 0.5, display threshold)
    extra: int  # boxes only this variant found

    @property
    def total(self) -> int:
        return self.missed + self.extra


@dataclass(frozen=True)
class VariantEval:
    variant: str
    accuracy: MapResult
    latency: LatencyStats  # end to end per image (letterbox + inference + NMS at eval settings)
    agreement: Agreement | None  # vs the reference, at the display thresholds; None for the reference
    batch_size: int = 1  # images per runtime call; inference latency is the batch's, divided by its size
    delta: MapDelta | None = None  # mAP minus the reference's, with its paired bootstrap interval
    reference_accuracy: MapResult | None = None  # the reference's, on the same images (for per-class deltas)
    latency_samples: tuple[float, ...] = field(default=(), repr=False)  # ms per image, for spreads and speed-ups
    disagreements: tuple[Disagreement, ...] = ()  # the images where it differs most from the reference, worst first
    matches: Matches | None = field(default=None, repr=False, compare=False)  # per image, for a later paired test
    image_files: tuple[str, ...] = field(default=(), repr=False, compare=False)  # the images of ``matches``, in order

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "map50": round(self.accuracy.map50, 4),
            "map50_95": round(self.accuracy.map50_95, 4),
            "images": self.accuracy.images,
            "instances": self.accuracy.instances,
            "latency_ms": self.latency.to_dict(),
            "batch_size": self.batch_size,
            "agreement_vs_fp32": self.agreement.to_dict() if self.agreement else None,
            "delta_vs_reference": self.delta.to_dict() if self.delta else None,
            "most_different_images": [
                {"image": str(d.image), "missed": d.missed, "extra": d.extra} for d in self.disagreements
            ],
            # what `gate --baseline` pairs two runs with: each image's matches, compactly (Matches.to_record)
            "per_image": self.matches.to_record() if self.matches is not None else None,
        }


@dataclass
class Collected:
    """What running the images gives for one variant, before any statistic: per-image matches (mAP), the
    latency of each image, and the detections at the display thresholds (agreement). Shards of a dataset
    give one each; :meth:`merge` joins them in image order, so the statistics equal a single run's."""

    variant: str
    names: tuple[str, ...]
    maps: MapAccumulator
    latency: list[float] = field(default_factory=list)
    shown: list[Detections] = field(default_factory=list)

    @classmethod
    def merge(cls, parts: Sequence[Collected]) -> Collected:
        first = parts[0]
        return cls(
            first.variant,
            first.names,
            MapAccumulator.merge([p.maps for p in parts]),
            [x for p in parts for x in p.latency],
            [d for p in parts for d in p.shown],
        )


def collect(
    detectors: Sequence[Detector],
    items: Sequence[LabelledImage],
    display_params: PostParams,
    with_shown: bool,
    progress: Progress = no_progress,
    batch_size: int = 1,
) -> tuple[list[Collected], list[Path], list[str]]:
    """Each image decoded once and run through every detector (interleaved, so all see the same load).

    Returns one :class:`Collected` per detector, the images they hold (in order) and the unreadable ones."""
    got = [Collected(str(d.variant), d.names, MapAccumulator()) for d in detectors]
    shown_images: list[Path] = []  # the image of each entry of ``shown`` (unreadable ones are skipped)
    unreadable: list[str] = []
    # Candidates below both thresholds can never count: the decode may drop them (core.runtime.head).
    min_conf = min(EVAL_PARAMS.conf, display_params.conf)
    if batch_size > 1 and any(getattr(d, "shape", Shape.SQUARE) is Shape.RECT for d in detectors):
        items = sorted(items, key=_aspect)  # rect: a batch holds images of one input shape (val.py's rect batches)
    n = len(items)
    for start in range(0, n, batch_size):
        chunk = []
        for item in items[start : start + batch_size]:
            try:
                chunk.append((item, load_image(item.image)))
            except InputError:
                unreadable.append(item.image.name)
        images = [image for _, image in chunk]
        shown_images += [item.image for item, _ in chunk]
        for det, c in zip(detectors, got, strict=True):
            for (item, image), raw in zip(chunk, det.infer_raw_batch(images, min_conf), strict=True):
                h, w = image.shape[:2]
                dets, post_ms = det.postprocess(raw, EVAL_PARAMS)
                c.latency.append(raw.preprocess_ms + raw.inference_ms + post_ms)
                c.maps.add(dets, item.labels, w, h)
                if with_shown:
                    c.shown.append(det.postprocess(raw, display_params)[0])
        done = min(start + batch_size, n)
        progress(done / n, f"evaluated {done}/{n} images")
    return got, shown_images, unreadable


def _aspect(item: LabelledImage) -> float:
    """Height over width from the file's header (no decode); unreadable files sort first and fail when loaded."""
    from PIL import Image

    try:
        with Image.open(item.image) as im:
            w, h = im.size
    except Exception:
        return 0.0
    return h / max(w, 1)


def evaluate(
    detectors: Sequence[Detector],
    dataset: YoloDataset,
    *,
    reference: Detector | None = None,
    display_params: PostParams | None = None,
    progress: Progress = no_progress,
    batch_size: int = 1,
    resamples: int = 1000,
) -> list[VariantEval]:
    """Each image is decoded once and run through every detector (interleaved, so all see the same load).

    ``batch_size`` > 1 runs that many images per runtime call on backends that take batches (the
    others run them one by one); mAP is the same, latency per image is the batch's share.

    ``reference`` (usually ``ort:fp32``) is the baseline for agreement; it may be one of ``detectors``.
    Agreement is measured at ``display_params`` (what a user sees, conf 0.25), mAP at val.py's settings.
    Each other variant's mAP difference gets a 95 % paired bootstrap interval over images (``resamples``
    resamples, seeded; 0: none).
    """
    if not dataset.items:
        raise InputError(f"dataset {dataset.root} has no images to evaluate")
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    display_params = display_params or PostParams()
    runs = list(detectors)
    if reference is not None and reference not in runs:
        runs.append(reference)
    got, shown_images, unreadable = collect(
        runs, dataset.items, display_params, reference is not None, progress, batch_size
    )
    dataset.inventory.unreadable_images += unreadable
    ref = got[runs.index(reference)] if reference is not None else None
    return summarize(got[: len(detectors)], ref, shown_images, batch_size, resamples, progress)


def summarize(
    variants: Sequence[Collected],
    reference: Collected | None,
    shown_images: Sequence[Path],
    batch_size: int = 1,
    resamples: int = 1000,
    progress: Progress = no_progress,
) -> list[VariantEval]:
    """The statistics of :func:`collect`'s output (one process's, or the merge of a cluster's shards)."""
    everyone = [*variants, *([reference] if reference else [])]
    results = {id(c): c.maps.result(c.names) for c in everyone}
    matches = {id(c): c.maps.matches() for c in everyone}
    names = tuple(Path(p).name for p in shown_images)
    if len(set(names)) < len(names):  # two folders with the same file names: the paths tell them apart
        names = tuple(str(p) for p in shown_images)
    out = []
    for i, c in enumerate(variants):
        agree = delta = None
        worst: tuple[Disagreement, ...] = ()
        if reference is not None and c is not reference:
            parts = [agreement_parts(r, x, 0.5) for r, x in zip(reference.shown, c.shown, strict=True)]
            agree = merge_agreements(parts)
            ranked = sorted(
                (Disagreement(path, p[1], p[2]) for path, p in zip(shown_images, parts, strict=True) if p[1] + p[2]),
                key=lambda d: (-d.total, -d.missed, d.image.name),
            )
            worst = tuple(ranked[:WORST_IMAGES])
            if resamples > 0 and reference.maps.images > 0:  # no readable image: nothing to resample
                progress(1.0, f"{c.variant}: bootstrap interval of the mAP difference ({i + 1}/{len(variants)})")
                ref, var = results[id(reference)], results[id(c)]
                reported = (var.map50_95 - ref.map50_95, var.map50 - ref.map50)
                delta = paired_delta(matches[id(reference)], matches[id(c)], reported, resamples)
        out.append(
            VariantEval(
                c.variant,
                results[id(c)],
                LatencyStats.from_samples(c.latency),
                agree,
                batch_size,
                delta,
                results[id(reference)] if reference is not None and c is not reference else None,
                tuple(c.latency),
                worst,
                matches[id(c)],
                names if len(names) == matches[id(c)].images else (),
            )
        )
    return out


def eval_table(results: Sequence[VariantEval], reference: str) -> Table:
    """The Accuracy page's table, the CLI's and the CSV's; Pareto: no other variant is both faster and more accurate."""
    pareto = pareto_front([r.latency.p50 for r in results], [r.accuracy.map50_95 for r in results])
    columns = (Column("variant"), Column("mAP50", 4), Column("mAP50-95", 4))
    columns += (Column("ΔmAP50-95 pts", 2), Column("95 % interval"), Column("ΔmAP50 pts", 2), Column("p50 ms", 2))
    columns += (*AGREEMENT_COLUMNS, Column("Pareto"))
    rows = []
    for r, front in zip(results, pareto, strict=True):
        d = r.delta
        interval = f"{d.map50_95.lo:+.2f} to {d.map50_95.hi:+.2f}" if d else "(reference)"
        rows.append(
            (r.variant, r.accuracy.map50, r.accuracy.map50_95, d.map50_95.value if d else None, interval,
             d.map50.value if d else None, r.latency.p50, *agreement_cells(r.agreement), front)
        )  # fmt: skip
    batch = results[0].batch_size if results else 1
    images = results[0].accuracy.images if results else 0
    notes = (
        f"Δ: mAP minus {reference}'s in points, 95 % paired bootstrap interval over the {images} images "
        + (
            "(an interval holding 0: no measurable difference on this set)"
            if any(r.delta and r.delta.map50_95.holds_zero for r in results)
            else ""
        )
        + (f"; only {images} images: expect wide intervals" if images < 100 else ""),
        f"agreement vs {reference} at conf 0.25, IoU 0.5, same class; mAP at conf 0.001, NMS IoU 0.6 (YOLOv5 val.py)",
        "p50 ms: per image, end to end (letterbox + inference + NMS)"
        + (f"; batch size {batch}: the batch's time shared out" if batch > 1 else ""),
    )
    return Table(columns, rows, notes)


def per_class_table(result: VariantEval, reference: str) -> Table:
    """Per class: the reference's AP and this variant's side by side, the largest loss first."""
    ref = {c.class_id: c for c in (result.reference_accuracy.per_class if result.reference_accuracy else [])}
    rows = []
    for c in result.accuracy.per_class:
        r = ref.get(c.class_id)
        delta = 100 * (c.ap50_95 - r.ap50_95) if r else None
        rows.append((c.name, c.instances, r.ap50_95 if r else None, c.ap50_95, delta, c.ap50))
    rows.sort(key=lambda row: (row[4] is None, row[4] if row[4] is not None else 0.0))
    columns = (
        Column("class"),
        Column("instances"),
        Column(f"AP50-95 {reference}", 4),
        Column(f"AP50-95 {result.variant}", 4),
        Column("Δ points", 2),
        Column(f"AP50 {result.variant}", 4),
    )
    note = f"sorted by Δ (AP50-95 of {result.variant} minus {reference}'s, in points): largest loss first"
    return Table(columns, rows, (note,))


SHARDED_LATENCY = (
    "p50 ms of a sharded eval comes from its shards: each chunk of 16 images ran on whichever node took it, "
    "one CPU thread, its own fresh sessions; it is no machine's latency (python -m core bench measures that)"
)


@dataclass
class EvalRun(Result):
    """Variants evaluated on one labelled set against the reference: their results, the set and the settings."""

    kind = "eval"
    model: str
    imgsz: int
    data: str
    inventory: DatasetInventory
    reference: str
    batch_size: int
    results: list[VariantEval]
    latency_source: str = ""  # why the latency is not a latency (a sharded eval), when it is not
    shape: str = "square"  # the input shape policy it ran (core.variants.Shape)
    system: dict[str, Any] = field(default_factory=dict)  # the machine (core.runtime.system_info); {}: not recorded
    threads: int | None = None  # CPU inference threads asked for (None: one per physical core)
    model_sha256: str = ""  # the model source's hash ("": not recorded)

    def data_dict(self) -> dict[str, Any]:
        rep = self.inventory
        return {
            "summary": rep.summary(),
            "images": rep.images,
            "background": rep.background,
            "boxes": rep.boxes,
            "orphan_labels": rep.orphan_labels,
            "bad_lines": rep.bad_lines,
            "unreadable_images": rep.unreadable_images,
            "other_files": rep.other_files,
        } | ({"pairing_warning": rep.pairing_warning} if rep.pairing_warning else {})

    def payload(self) -> dict[str, Any]:
        out = {
            "model": self.model,
            "imgsz": self.imgsz,
            "shape": self.shape,
            "data": self.data,
            "dataset": self.data_dict(),
            "reference": self.reference,
            "batch_size": self.batch_size,
            "variants": [r.to_dict() for r in self.results],
            "image_files": list(self.results[0].image_files) if self.results else [],
        }
        if self.system:
            out["system"] = self.system
            out["fingerprint"] = fingerprint(self.system, self.threads, self.imgsz, self.shape, self.model_sha256)
        if self.latency_source:
            out["latency_source"] = self.latency_source
        return out

    def table(self) -> Table:
        return eval_table(self.results, self.reference)

    def text(self) -> str:
        lines = [
            f"{self.model} @ {self.shape} {self.imgsz} on {self.data}: {self.inventory.summary()}; "
            f"batch size {self.batch_size}",
            self.table().to_text(),
        ]
        if self.latency_source:
            lines.append(f"note: {self.latency_source}")
        return "\n".join(lines)
