"""Every chart the dashboard and the report show, built once here from core's results (Plotly, no Streamlit).

Colours are set explicitly on every trace (``core.report.colours``: one per variant, whatever else is shown) and
every figure carries an explicit template, so a chart exported into the HTML report looks as it does on
screen (Streamlit's default template only holds placeholders, '#000001'..., that its front end replaces).
Every latency axis names the one definition used everywhere: per image, end to end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import plotly.graph_objects as go

from core.report.colours import STAGE_COLOURS, variant_colour

if TYPE_CHECKING:
    from core.measure import BenchResult, CompareResult, VariantEval

TEMPLATE = "plotly_white"
LATENCY_AXIS = "ms per image, end to end"


def figure(traces: Sequence[go.BaseTraceType], title: str, **layout: object) -> go.Figure:
    fig = go.Figure(list(traces))
    fig.update_layout(template=TEMPLATE, title=title, legend={"orientation": "h", "y": -0.2}, **layout)
    return fig


def compare_latency(result: CompareResult) -> go.Figure:
    """Median latency per image and variant, with its p10-p90 spread as error bars."""
    variants = [v.variant for v in result.images[0].variants] if result.images else []
    traces = []
    for name in variants:
        rows = [im.of(name) for im in result.images]
        p50 = [r.latency.p50 for r in rows]
        traces.append(
            go.Bar(
                name=name,
                x=[im.name for im in result.images],
                y=p50,
                marker_color=variant_colour(name),
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [r.latency.p90 - m for r, m in zip(rows, p50, strict=True)],
                    "arrayminus": [m - r.latency.p10 for r, m in zip(rows, p50, strict=True)],
                },
            )
        )
    runs = result.images[0].variants[0].latency.runs if result.images else 0
    return figure(
        traces,
        f"Latency per image: median of {runs} runs, bars p10-p90",
        barmode="group",
        yaxis_title=LATENCY_AXIS,
        xaxis_title="image",
    )


def latency_distribution(results: Sequence[BenchResult]) -> go.Figure:
    unit = "ms per image" if not results or results[0].batch_size == 1 else f"ms per call of {results[0].batch_size}"
    traces = [
        go.Box(name=r.variant, y=r.samples_ms, marker_color=variant_colour(r.variant), boxpoints="outliers")
        for r in results
    ]
    return figure(traces, "Latency distribution", yaxis_title=f"{unit}, end to end", showlegend=False)


def stage_split(results: Sequence[BenchResult]) -> go.Figure:
    x = [r.variant for r in results]
    traces = [
        go.Bar(name=stage, x=x, y=[r.stages_ms[stage] for r in results], marker_color=colour)
        for stage, colour in STAGE_COLOURS.items()
    ]
    return figure(traces, "Stage split (mean ms per image)", barmode="stack", yaxis_title="ms per image")


def throughput(results: Sequence[BenchResult]) -> go.Figure:
    batch = results[0].batch_size if results else 1
    trace = go.Bar(
        x=[r.variant for r in results],
        y=[r.fps for r in results],
        marker_color=[variant_colour(r.variant) for r in results],
    )
    return figure([trace], f"Throughput (images per second, batch size {batch})", yaxis_title="images per second")


def speed_vs_accuracy(results: Sequence[VariantEval], pareto: Sequence[bool], reference: str) -> go.Figure:
    """ΔmAP50-95 vs the reference in points (bars: 95 % interval) against the median latency."""
    traces: list[go.BaseTraceType] = []
    for r, front in zip(results, pareto, strict=True):
        d = r.delta
        y = d.map50_95.value if d else 0.0
        error = (
            {"type": "data", "symmetric": False, "array": [d.map50_95.hi - y], "arrayminus": [y - d.map50_95.lo]}
            if d
            else None
        )
        traces.append(
            go.Scatter(
                name=r.variant + (" — on the Pareto front" if front else ""),
                x=[r.latency.p50],
                y=[y],
                error_y=error,
                mode="markers+text",
                text=[r.variant],
                textposition="top center",
                marker={"color": variant_colour(r.variant), "size": 12, "symbol": "circle" if front else "circle-open"},
            )
        )
    front = sorted((r for r, f in zip(results, pareto, strict=True) if f), key=lambda r: r.latency.p50)
    if len(front) > 1:
        traces.append(
            go.Scatter(
                name="Pareto front: no other variant is both faster and more accurate",
                x=[r.latency.p50 for r in front],
                y=[r.delta.map50_95.value if r.delta else 0.0 for r in front],
                mode="lines",
                line={"dash": "dot", "color": "#6b7280"},
            )
        )
    images = results[0].accuracy.images if results else 0
    return figure(
        traces,
        f"Speed vs accuracy ({images} images; bars: 95 % interval)",
        xaxis_title=LATENCY_AXIS + " (p50)",
        yaxis_title=f"ΔmAP50-95 vs {reference} (points)",
    )


def per_class_ap(rows: Sequence[Mapping[str, object]], variant: str) -> go.Figure:
    """``rows``: class, instances, AP50, AP50-95 (sorted as they should be shown, lowest first)."""
    trace = go.Bar(
        x=[r["AP50-95"] for r in rows],
        y=[r["class"] for r in rows],
        orientation="h",
        marker_color=variant_colour(variant),
        customdata=[[r["instances"], r["AP50"]] for r in rows],
        hovertemplate="%{y}: AP50-95 %{x:.3f}, AP50 %{customdata[1]:.3f}, %{customdata[0]} instances<extra></extra>",
    )
    return figure([trace], f"AP50-95 per class, {variant}", height=max(300, 18 * len(rows)), xaxis_title="AP50-95")


def video_latency(latency: Mapping[str, Sequence[float]], height: int = 320, upto: int | None = None) -> go.Figure:
    """ms per frame of each variant; ``upto``: the frames drawn so far, named in the title while a clip runs."""
    traces = [
        go.Scatter(y=list(s), mode="lines", name=v, line={"color": variant_colour(v)}) for v, s in latency.items()
    ]
    return figure(
        traces,
        "Latency per frame (end to end)" + (f", frames 1–{upto}" if upto else ""),
        xaxis_title="frame",
        yaxis_title="ms per frame, end to end",
        height=height,
        margin={"t": 40, "b": 30, "l": 40, "r": 10},
    )


PROFILE_KIND_COLOURS = {"compute": "#2563eb", "quantize": "#a21caf", "reorder": "#64748b"}
PROFILE_OUTSIDE_COLOURS = {"letterbox": STAGE_COLOURS["preprocess"], "box_decode": "#0f766e",
                           "nms": STAGE_COLOURS["postprocess"]}  # fmt: skip


def profile_blocks(doc: Mapping[str, object]) -> go.Figure:
    """A profile's (``profile --json``) milliseconds per YOLOv5 block, the variants side by side in their colours."""
    variants = list(doc["variants"])  # type: ignore[call-overload]
    traces = []
    for v in variants:
        blocks = v["blocks"]
        traces.append(go.Bar(name=v["variant"], x=[f"{b['block']} {b['module']}" for b in blocks],
                             y=[b["ms"] for b in blocks], marker_color=variant_colour(v["variant"])))  # fmt: skip
    return figure(traces, "Where the time goes: ms per YOLOv5 block (median of the profiled calls)",
                  barmode="group", yaxis_title="ms per image")  # fmt: skip


def profile_split(doc: Mapping[str, object]) -> go.Figure:
    """Each variant's time stacked: inside the graph compute, quantize / dequantize, reorders and casts; outside
    it letterbox, box decode and NMS."""
    variants = list(doc["variants"])  # type: ignore[call-overload]
    x = [v["variant"] for v in variants]
    words = {"compute": "compute", "quantize": "quantize / dequantize", "reorder": "reorders and casts"}
    traces = [go.Bar(name=words[k], x=x, y=[v["split_ms"][k] for v in variants], marker_color=colour)
              for k, colour in PROFILE_KIND_COLOURS.items()]  # fmt: skip
    traces += [go.Bar(name=k.replace("_", " "), x=x, y=[v["outside_ms"][k] for v in variants], marker_color=colour)
               for k, colour in PROFILE_OUTSIDE_COLOURS.items()]  # fmt: skip
    return figure(traces, "Where the time goes, by kind (ms per image)", barmode="stack", yaxis_title="ms per image")
