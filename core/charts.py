"""Every chart the dashboard and the report show, built once here from core's results (Plotly, no Streamlit).

Colours are set explicitly on every trace (``core.colours``: one per variant, whatever else is shown) and
every figure carries an explicit template, so a chart exported into the HTML report looks as it does on
screen (Streamlit's default template only holds placeholders, '#000001'..., that its front end replaces).
Every latency axis names the one definition used everywhere: per image, end to end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import plotly.graph_objects as go

from .colours import STAGE_COLOURS, variant_colour

if TYPE_CHECKING:
    from .bench import BenchResult
    from .compare import CompareResult
    from .evaluation import VariantEval

TEMPLATE = "plotly_white"
LATENCY_AXIS = "ms per image, end to end"


def _figure(traces: Sequence[go.BaseTraceType], title: str, **layout: object) -> go.Figure:
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
    return _figure(
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
    return _figure(traces, "Latency distribution", yaxis_title=f"{unit}, end to end", showlegend=False)


def stage_split(results: Sequence[BenchResult]) -> go.Figure:
    x = [r.variant for r in results]
    traces = [
        go.Bar(name=stage, x=x, y=[r.stages_ms[stage] for r in results], marker_color=colour)
        for stage, colour in STAGE_COLOURS.items()
    ]
    return _figure(traces, "Stage split (mean ms per image)", barmode="stack", yaxis_title="ms per image")


def throughput(results: Sequence[BenchResult]) -> go.Figure:
    batch = results[0].batch_size if results else 1
    trace = go.Bar(
        x=[r.variant for r in results],
        y=[r.fps for r in results],
        marker_color=[variant_colour(r.variant) for r in results],
    )
    return _figure([trace], f"Throughput (images per second, batch size {batch})", yaxis_title="images per second")


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
    return _figure(
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
    return _figure([trace], f"AP50-95 per class, {variant}", height=max(300, 18 * len(rows)), xaxis_title="AP50-95")


def video_latency(latency: Mapping[str, Sequence[float]], height: int = 320, upto: int | None = None) -> go.Figure:
    """ms per frame of each variant; ``upto``: the frames drawn so far, named in the title while a clip runs."""
    traces = [
        go.Scatter(y=list(s), mode="lines", name=v, line={"color": variant_colour(v)}) for v, s in latency.items()
    ]
    return _figure(
        traces,
        "Latency per frame (end to end)" + (f", frames 1–{upto}" if upto else ""),
        xaxis_title="frame",
        yaxis_title="ms per frame, end to end",
        height=height,
        margin={"t": 40, "b": 30, "l": 40, "r": 10},
    )


# ---------------------------------------------------------------------------------------------
# the precision explorer

_KIND_STYLE = {
    "default": ("default INT8 recipe", "diamond", "#ff7f0e"),
    "sensitivity": ("one block in float", "circle", "#9467bd"),
    "calibration": ("calibration / weight settings", "square", "#17becf"),
    "search": ("search steps", "triangle-up", "#1f77b4"),
}


def _block_index(block: str) -> int:
    return int(block.split(".")[1]) if block.startswith("model.") and block.split(".")[1].isdigit() else 999


def drift_by_block(blocks: Sequence[Mapping[str, object]], images: int) -> go.Figure:
    """Worst SQNR per block (``ExploreResult.to_dict()["blocks"]``), in model order: low bars are far from FP32."""
    rows = sorted(blocks, key=lambda b: _block_index(str(b["block"])))
    return _figure(
        [
            go.Bar(
                name="worst SQNR in the block",
                x=[f"{b['block']} {b['module']}" for b in rows],
                y=[b["worst_db"] for b in rows],
                marker={"color": "#1f77b4"},
                hovertemplate="%{x}: %{y:.1f} dB<extra></extra>",
            )
        ],
        f"INT8 drift from FP32 per block ({images} images; lower = further from FP32)",
        yaxis_title="worst SQNR in the block (dB)",
        xaxis_tickangle=-45,
        showlegend=False,
    )


def sensitivity(rows: Sequence[Mapping[str, object]]) -> go.Figure:
    """Points of mAP50-95 recovered by keeping each block in float (``to_dict()["sensitivity"]``), best first."""
    rows = sorted(rows, key=lambda r: -float(r["recovers_points"] or 0.0))  # type: ignore[arg-type]
    text = [
        f"{float(r['recovers_points'] or 0):+.2f} pts"
        + ("" if r["costs_ms"] is None else f", {float(r['costs_ms']):+.1f} ms")  # type: ignore[arg-type]
        for r in rows
    ]
    return _figure(
        [
            go.Bar(
                name="recovered",
                x=[r["block"] for r in rows],
                y=[r["recovers_points"] for r in rows],
                text=text,
                textposition="outside",
                marker={"color": "#9467bd"},
            )
        ],
        "Keeping one block in float: mAP50-95 points recovered (search split) and latency it costs",
        yaxis_title="points recovered vs the default INT8",
        showlegend=False,
    )


def explore_front(result: Mapping[str, object], chosen: str = "") -> go.Figure:
    """Every candidate (``ExploreResult.to_dict()``): ΔmAP50-95 on the search split against the median latency,
    bars the median's 95 % interval; FP32 and the default recipe marked, the Pareto front joined."""
    if not any(c["p50_ms"] is not None for c in result["candidates"]):  # type: ignore[attr-defined]
        return _accuracy_only(result, chosen)
    cands = [c for c in result["candidates"] if c["p50_ms"] is not None]  # type: ignore[attr-defined]
    traces: list[go.BaseTraceType] = []
    for kind, (label, symbol, colour) in _KIND_STYLE.items():
        group = [c for c in cands if c["kind"] == kind]
        if not group:
            continue
        traces.append(
            go.Scatter(
                name=label,
                x=[c["p50_ms"] for c in group],
                y=[c["delta_points"] for c in group],
                mode="markers",
                text=[f"{c['label']}<br>{c['recipe']}" for c in group],
                hovertemplate="%{text}<br>%{x:.1f} ms, %{y:+.2f} points<extra></extra>",
                marker={"symbol": symbol, "color": colour, "size": 14 if kind == "default" else 10},
            )
        )
    fp32 = result["fp32"]  # type: ignore[index]
    if fp32["p50_ms"] is not None:
        traces.append(
            go.Scatter(
                name="FP32 (the reference)",
                x=[fp32["p50_ms"]],
                y=[0.0],
                mode="markers+text",
                text=["FP32"],
                textposition="top center",
                marker={"symbol": "star", "size": 16, "color": variant_colour("ort:fp32")},
            )
        )
    pick = next((c for c in cands if c["key"] == chosen), None)
    if pick is not None:
        traces.append(
            go.Scatter(
                name="chosen recipe",
                x=[pick["p50_ms"]],
                y=[pick["delta_points"]],
                mode="markers",
                marker={"symbol": "circle-open", "size": 22, "color": "#111827", "line": {"width": 2}},
                hoverinfo="skip",
            )
        )
    front = sorted((c for c in cands if c["pareto"]), key=lambda c: c["p50_ms"])
    if len(front) > 1:
        traces.append(
            go.Scatter(
                name="Pareto front: no other candidate is both faster and more accurate",
                x=[c["p50_ms"] for c in front],
                y=[c["delta_points"] for c in front],
                mode="lines",
                line={"dash": "dot", "color": "#6b7280"},
            )
        )
    splits = result["splits"]  # type: ignore[index]
    return _figure(
        traces,
        f"INT8 candidates: speed vs accuracy (search split, {splits.get('search')} images)",
        xaxis_title=LATENCY_AXIS + " (p50, interleaved rounds)",
        yaxis_title="ΔmAP50-95 vs FP32 (points)",
    )


def _accuracy_only(result: Mapping[str, object], chosen: str) -> go.Figure:
    """The trt flavour's candidates: accuracy only (its speed needs a GPU)."""
    cands = list(result["candidates"])  # type: ignore[call-overload]
    colours = [_KIND_STYLE[c["kind"]][2] for c in cands]
    return _figure(
        [
            go.Bar(
                name="ΔmAP50-95 vs FP32",
                x=[("▶ " if c["key"] == chosen else "") + c["label"] for c in cands],
                y=[c["delta_points"] for c in cands],
                marker={"color": colours},
                hovertext=[c["recipe"] for c in cands],
            )
        ],
        "INT8 candidates, TensorRT-format files: accuracy measured on CPU (search split; speed needs a GPU)",
        yaxis_title="ΔmAP50-95 vs FP32 (points)",
        xaxis_tickangle=-45,
        showlegend=False,
    )
