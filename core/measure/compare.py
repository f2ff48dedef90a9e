"""Compare images: the same pictures through several variants, each diffed against a reference variant.

Used by the Compare images page and ``python -m core compare``, so both show the same numbers. Inference
runs once per (model, variant, image) and its raw output is kept (compacted at the lowest confidence that
will be asked for); new thresholds only re-run post-processing.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.data import load_image
from core.errors import InputError
from core.measure.metrics import (
    AGREEMENT_COLUMNS,
    Agreement,
    LatencySpread,
    Speedup,
    agreement,
    agreement_cells,
)
from core.progress import Progress, no_progress
from core.results import Result
from core.runtime import Detections, Detector, PostParams, RawOutput
from core.tables import Column, Table
from core.variants import Variant

MIN_CONF = 0.01  # the lowest confidence threshold offered: raw outputs are compacted at this level
DEFAULT_RUNS = 5  # timed runs per image and variant: enough for a median and its spread at these sizes


def digest(data: bytes) -> str:
    """A short content hash: the same picture uploaded twice (under any name) is one image."""
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class InputImage:
    key: str  # content digest
    name: str
    image: np.ndarray  # RGB uint8


@dataclass
class ImageSet:
    """The readable, distinct images of what a user gave, and what was said about the rest."""

    images: list[InputImage] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # "b.jpg is the same picture as a.jpg; shown once."
    errors: list[str] = field(default_factory=list)  # one line per file that is not a readable image


def read_images(
    sources: Sequence[tuple[str, bytes]],
    decoded: MutableMapping[str, tuple[str, np.ndarray]] | None = None,
) -> ImageSet:
    """Decode ``(name, bytes)`` pairs once each, keeping order and dropping repeats of the same content.

    ``decoded`` (digest -> (name, image)) keeps decoded pictures between calls (a page's session state); entries
    of pictures no longer given are removed from it, so only the current ones stay in memory.
    """
    cache: MutableMapping[str, tuple[str, np.ndarray]] = {} if decoded is None else decoded
    out = ImageSet()
    for name, data in sources:
        key = digest(data)
        if any(img.key == key for img in out.images):
            out.duplicates.append(f"{name} is the same picture as {cache[key][0]}; shown once.")
            continue
        if key not in cache:
            try:
                cache[key] = (name, load_image(data, name))
            except InputError as exc:
                out.errors.append(str(exc))
                continue
        out.images.append(InputImage(key, *cache[key]))
    for stale in set(cache) - {img.key for img in out.images}:
        del cache[stale]
    return out


def read_image_files(paths: Sequence[Path]) -> ImageSet:
    """:func:`read_images` for files on disk; a missing file is an error line like an unreadable one."""
    sources, missing = [], []
    for p in paths:
        try:
            sources.append((str(p), Path(p).read_bytes()))
        except OSError as exc:
            missing.append(f"{p}: cannot be read ({exc.strerror or exc})")
    images = read_images(sources)
    images.errors[:0] = missing
    return images


@dataclass(frozen=True)
class VariantOnImage:
    variant: str
    detections: Detections
    latency: LatencySpread  # end to end per image: letterbox + inference + NMS
    agreement: Agreement | None  # vs the reference; None for the reference itself
    input_hw: tuple[int, int] = (0, 0)  # the network input this image ran at (rect: its own)

    def to_dict(self) -> dict[str, Any]:
        a = self.agreement
        return {
            "variant": self.variant,
            "input_hw": list(self.input_hw),
            "detections": self.detections.to_records(),
            "latency_ms": self.latency.to_dict(),
            "agreement": None
            if a is None
            else {
                "matched": a.matched,
                "missed": a.missed,
                "extra": a.extra,
                "mean_abs_dconf": round(a.mean_abs_dconf, 4),
            },
        }


@dataclass(frozen=True)
class ImageResult:
    key: str
    name: str
    variants: list[VariantOnImage]

    def of(self, variant: Variant | str) -> VariantOnImage:
        return next(v for v in self.variants if v.variant == str(variant))


@dataclass(frozen=True)
class CompareResult:
    reference: str
    params: PostParams
    images: list[ImageResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "conf": self.params.conf,
            "iou": self.params.iou,
            "classes": list(self.params.classes) if self.params.classes else None,
            "max_det": self.params.max_det,
            "images": [
                {"image": im.name, "digest": im.key, "variants": [v.to_dict() for v in im.variants]}
                for im in self.images
            ],
        }

    def headline(self, variant: str) -> str:
        """One line over every image: speed vs the reference (their runs pooled) and boxes missed / extra."""
        ref = LatencySpread.from_samples([x for im in self.images for x in im.of(self.reference).latency.samples])
        own = LatencySpread.from_samples([x for im in self.images for x in im.of(variant).latency.samples])
        up = Speedup.of(ref, own)
        speed = up.words(self.reference)
        parts = [im.of(variant).agreement for im in self.images]
        matched = sum(a.matched for a in parts if a)
        missed = sum(a.missed for a in parts if a)
        extra = sum(a.extra for a in parts if a)
        images = f"{len(self.images)} image" + ("s" if len(self.images) != 1 else "")
        return (
            f"{variant} — {speed} on {images}; finds {matched} of {self.reference}'s {matched + missed} boxes"
            f"{f', {extra} extra' if extra else ''} at conf {self.params.conf:g}"
        )

    def speedup(self, image: ImageResult, variant: str) -> Speedup:
        return Speedup.of(image.of(self.reference).latency, image.of(variant).latency)

    def table(self) -> Table:
        rows = []
        for im in self.images:
            for v in im.variants:
                lat = v.latency
                verdict = "(reference)" if v.agreement is None else self.speedup(im, v.variant).words()
                rows.append(
                    (im.name, v.variant, len(v.detections), lat.p50, lat.p10, lat.p90, verdict,
                     *agreement_cells(v.agreement))
                )  # fmt: skip
        columns = (Column("image"), Column("variant"), Column("objects"), Column("latency ms", 2))
        columns += (Column("p10 ms", 2), Column("p90 ms", 2), Column(f"speed vs {self.reference}"), *AGREEMENT_COLUMNS)
        runs = self.images[0].variants[0].latency.runs if self.images else 0
        inputs = ", ".join(f"{im.name} {im.variants[0].input_hw[1]}x{im.variants[0].input_hw[0]}" for im in self.images)
        notes = (
            f"network input (width x height): {inputs}",
            f"latency: median ms per image of {runs} timed runs (variants in turn, after an untimed one), end to end "
            "(letterbox + inference + NMS); speed: ratio of medians with its 95 % bootstrap interval",
            f"agreement vs {self.reference}: same class and IoU >= 0.5, at conf {self.params.conf}",
        )
        return Table(columns, rows, notes)


RawKey = tuple[str, str, str, str]  # (model directory, variant, "rect 640", image digest)


@dataclass
class _Raw:
    output: RawOutput  # the first run's output, compacted
    samples_ms: list[float]  # letterbox + inference of every timed run


class ImageComparison:
    """Runs detectors over images once each and gives a :class:`CompareResult` for any thresholds.

    ``cache`` (a page's session state, or a plain dict) keeps raw outputs between calls, keyed by
    ``model_key`` (which model the detectors belong to), variant and image digest.
    """

    def __init__(
        self,
        detectors: Sequence[Detector],
        reference: Variant,
        *,
        model_key: str = "",
        cache: MutableMapping[RawKey, _Raw] | None = None,
        min_conf: float = MIN_CONF,
        runs: int = DEFAULT_RUNS,
    ) -> None:
        if not any(d.variant == reference for d in detectors):
            raise InputError(f"reference {reference} is not among the variants compared")
        if runs < 1:
            raise InputError(f"runs must be at least 1, got {runs}")
        self.detectors = list(detectors)
        self.reference = reference
        self.model_key = model_key
        self.cache: MutableMapping[RawKey, _Raw] = {} if cache is None else cache
        self.min_conf = min_conf
        self.runs = runs

    def _key(self, det: Detector, image: InputImage) -> RawKey:
        return (self.model_key, str(det.variant), det.shape_words, image.key)  # another size or shape: another run

    def keep_only(self, images: Sequence[InputImage]) -> None:
        """Forget the raw outputs of other models, variants and images: a session's cache stays bounded by
        what it shows now (at most 4 variants x its current images)."""
        wanted = {self._key(d, im) for d in self.detectors for im in images}
        for key in [k for k in self.cache if k not in wanted]:
            del self.cache[key]

    def missing(self, images: Sequence[InputImage]) -> list[tuple[Detector, InputImage]]:
        return [(d, im) for im in images for d in self.detectors if self._key(d, im) not in self.cache]

    def run(self, images: Sequence[InputImage], progress: Progress = no_progress) -> None:
        """Infer what is not cached yet. Per image: one untimed call of each variant (so the first image of a
        session pays no first-call cost), then ``runs`` timed rounds with the variants in turn."""
        todo: dict[str, list[Detector]] = {}
        for det, im in self.missing(images):
            todo.setdefault(im.key, []).append(det)
        by_key = {im.key: im for im in images}
        total = sum(len(dets) for dets in todo.values()) * (self.runs + 1)
        done = 0
        for key, dets in todo.items():
            im = by_key[key]
            first = {id(d): d.infer_raw(im.image, self.min_conf) for d in dets}  # untimed: warms this input
            done += len(dets)
            samples: dict[int, list[float]] = {id(d): [] for d in dets}
            for r in range(self.runs):
                for det in dets:
                    raw = det.infer_raw(im.image, self.min_conf)
                    samples[id(det)].append(raw.preprocess_ms + raw.inference_ms)
                    done += 1
                progress(done / total, f"{im.name}: run {r + 1}/{self.runs}")
            for det in dets:
                self.cache[self._key(det, im)] = _Raw(det.compact(first[id(det)], self.min_conf), samples[id(det)])

    def result(self, images: Sequence[InputImage], params: PostParams) -> CompareResult:
        """Detections, latency and agreement at ``params`` (runs what is missing first, without progress)."""
        if params.conf < self.min_conf:
            raise InputError(f"confidence {params.conf} is below {self.min_conf}, the lowest this comparison keeps")
        self.run(images)
        out = []
        for im in images:
            rows: dict[str, tuple[Detections, LatencySpread, tuple[int, int]]] = {}
            for det in self.detectors:
                raw = self.cache[self._key(det, im)]
                dets, post_ms = det.postprocess(raw.output, params)
                spread = LatencySpread.from_samples([s + post_ms for s in raw.samples_ms])
                rows[str(det.variant)] = (dets, spread, raw.output.letterbox.input_hw)
            ref = rows[str(self.reference)][0]
            out.append(
                ImageResult(
                    im.key,
                    im.name,
                    [
                        VariantOnImage(v, dets, lat, None if v == str(self.reference) else agreement(ref, dets), hw)
                        for v, (dets, lat, hw) in rows.items()
                    ],
                )
            )
        return CompareResult(str(self.reference), params, out)


@dataclass
class CompareRun(Result):
    """A comparison and what it ran with: the model, its input size, the timed runs per image."""

    kind = "compare"
    model: str
    imgsz: int
    result: CompareResult
    runs: int = 5
    unreadable: int = 0  # files that were not images this tool can read (named on stderr / on the page)
    shape: str = "square"  # the input shape policy it ran (core.variants.Shape)

    def payload(self) -> dict[str, Any]:
        return {"model": self.model, "imgsz": self.imgsz, "shape": self.shape, **self.result.to_dict()}

    def table(self) -> Table:
        return self.result.table()

    def text(self) -> str:
        head = f"{self.model} @ {self.shape} {self.imgsz}; reference {self.result.reference}; "
        head += f"{self.runs} timed runs per image"
        return head + "\n" + self.table().to_text()

    @property
    def exit_code(self) -> int:
        return 1 if self.unreadable else 0
