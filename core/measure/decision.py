"""The decision card: per variant, the few numbers a team decides on, each with its honesty, and a headline.

p50 end to end with its spread and FPS, the speed-up over the reference with its interval, ΔmAP with its
interval and sample size, the share of the reference's detections missed (and extra ones) at the working
threshold, the model file's size, and what actually ran. Built from whichever results exist (benchmark,
evaluation); what is missing is said, never invented.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.measure.metrics import Agreement, LatencySpread, Speedup
from core.tables import Column, Table

if TYPE_CHECKING:
    from core.measure.bench import BenchResult
    from core.measure.bootstrap import MapDelta
    from core.measure.evaluation import VariantEval


@dataclass(frozen=True)
class DecisionCard:
    variant: str
    reference: str
    latency: LatencySpread | None = None  # ms per image, end to end
    latency_source: str = ""  # "benchmark" (one image, repeated) or "evaluation" (every image of the set once)
    speedup: Speedup | None = None  # vs the reference, from the same source
    delta: MapDelta | None = None
    agreement: Agreement | None = None  # vs the reference at the working threshold
    conf: float = 0.25
    model_mb: float | None = None
    runs_on: str = ""
    memory_mb: float | None = None  # peak resident memory it adds, loaded in a fresh process (core.measure.footprint)

    @property
    def is_reference(self) -> bool:
        return self.variant == self.reference

    @property
    def fps(self) -> float | None:
        return self.latency.fps if self.latency else None

    @property
    def missed_pct(self) -> float | None:
        a = self.agreement
        return 100.0 * a.missed / a.reference_count if a and a.reference_count else None

    @property
    def extra_pct(self) -> float | None:
        a = self.agreement
        return 100.0 * a.extra / a.reference_count if a and a.reference_count else None

    def headline(self) -> str:
        """One line in plain words, e.g. "ort:int8 — 1.22x faster than ort:fp32 (1.15-1.30x), -0.61 mAP points
        (-1.68 to +0.65; 128 images: no measurable loss), misses 15 % of ort:fp32's detections at conf 0.25"."""
        if self.is_reference:
            bits = [f"the reference: {self.latency.p50:.1f} ms per image" if self.latency else "the reference"]
            return f"{self.variant} — " + ", ".join(bits)
        parts = []
        if self.speedup is not None:
            parts.append(self.speedup.words(self.reference))
        if self.delta is not None:
            d = self.delta.map50_95
            verdict = ": no measurable change" if d.holds_zero else ""
            parts.append(
                f"{d.value:+.2f} mAP50-95 points ({d.lo:+.2f} to {d.hi:+.2f}; {self.delta.images} images{verdict})"
            )
        if self.missed_pct is not None:
            extra = f" and adds {self.extra_pct:.0f} %" if self.extra_pct else ""
            parts.append(
                f"misses {self.missed_pct:.0f} % of {self.reference}'s detections{extra} at conf {self.conf:g}"
            )
        return f"{self.variant} — " + (", ".join(parts) if parts else "no comparison with the reference yet")


def build_cards(
    variants: Sequence[str],
    reference: str,
    *,
    bench: Sequence[BenchResult] = (),
    evals: Sequence[VariantEval] = (),
    model_mb: Mapping[str, float] | None = None,
    conf: float = 0.25,
    memory_mb: Mapping[str, float] | None = None,
) -> list[DecisionCard]:
    """One card per variant. Latency and speed-up come from the benchmark when it ran the variant and the
    reference (the same image, repeated, variants in turn), else from the evaluation (every image once)."""
    by_bench = {r.variant: r for r in bench if r.batch_size == 1}  # per image: a batch's calls are not
    by_eval = {r.variant: r for r in evals}
    cards = []
    for v in variants:
        latency = ref_latency = None
        source = runs_on = ""
        if v in by_bench:
            latency, source, runs_on = by_bench[v].spread, "benchmark", by_bench[v].description
            if reference in by_bench:
                ref_latency = by_bench[reference].spread
        elif v in by_eval and by_eval[v].latency_samples:
            latency, source = LatencySpread.from_samples(by_eval[v].latency_samples), "evaluation"
            if reference in by_eval and by_eval[reference].latency_samples:
                ref_latency = LatencySpread.from_samples(by_eval[reference].latency_samples)
        speedup = Speedup.of(ref_latency, latency) if latency and ref_latency and v != reference else None
        e = by_eval.get(v)
        cards.append(
            DecisionCard(
                v,
                reference,
                latency,
                source,
                speedup,
                e.delta if e else None,
                e.agreement if e else None,
                conf,
                (model_mb or {}).get(v),
                runs_on,
                (memory_mb or {}).get(v),
            )
        )
    return cards


def cards_table(cards: Sequence[DecisionCard]) -> Table:
    columns = (
        Column("variant"),
        Column("p50 ms", 2),
        Column("p10–p90 ms"),
        Column("FPS", 1),
        Column("speed-up"),
        Column("ΔmAP50-95 pts"),
        Column("missed %", 1),
        Column("extra %", 1),
        Column("model MB", 1),
        Column("memory MB", 0),
        Column("runs on"),
    )
    rows = []
    for c in cards:
        lat = c.latency
        up = "(reference)" if c.is_reference else (c.speedup.words() if c.speedup else "—")
        d = "(reference)" if c.is_reference else (c.delta.map50_95.words() if c.delta else "—")
        rows.append(
            (c.variant, lat.p50 if lat else None, f"{lat.p10:.1f}–{lat.p90:.1f}" if lat else "—",
             c.fps, up, d, c.missed_pct, c.extra_pct, c.model_mb, c.memory_mb, c.runs_on or "—")
        )  # fmt: skip
    sources = sorted({c.latency_source for c in cards if c.latency_source})
    notes = [f"latency: ms per image, end to end (letterbox + inference + NMS), from the {' and '.join(sources)}"]
    if "evaluation" in sources:
        notes.append("evaluation latency: every image of the set once, at mAP settings (conf 0.001: more boxes to NMS)")
    if any(c.memory_mb is not None for c in cards):
        notes.append("memory: peak resident memory the variant adds, loaded in a fresh process (Where the time goes)")
    if any(c.agreement for c in cards):
        notes.append(f"missed / extra: share of the reference's detections at conf {cards[0].conf:g}, IoU 0.5")
    return Table(columns, rows, tuple(notes))
