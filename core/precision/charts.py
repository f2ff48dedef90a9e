"""The precision explorer's charts: drift by block, per-block sensitivity, and every candidate's speed vs accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import plotly.graph_objects as go

from core.model import describe_options
from core.report import LATENCY_AXIS, figure, variant_colour

if TYPE_CHECKING:
    from core.precision.drift import BlockDrift
    from core.precision.explorer import BlockSensitivity, Candidate, ExploreResult

_KIND_STYLE = {
    "default": ("default INT8 recipe", "diamond", "#ff7f0e"),
    "sensitivity": ("one block in float", "circle", "#9467bd"),
    "calibration": ("calibration / weight settings", "square", "#17becf"),
    "search": ("search steps", "triangle-up", "#1f77b4"),
}


def _block_index(block: str) -> int:
    return int(block.split(".")[1]) if block.startswith("model.") and block.split(".")[1].isdigit() else 999


def drift_by_block(blocks: Sequence[BlockDrift], images: int) -> go.Figure:
    """Worst SQNR per block, in model order: low bars are far from FP32."""
    rows = sorted(blocks, key=lambda b: _block_index(b.block))
    return figure(
        [
            go.Bar(
                name="worst SQNR in the block",
                x=[f"{b.block} {b.module}" for b in rows],
                y=[b.worst_db for b in rows],
                marker={"color": "#1f77b4"},
                hovertemplate="%{x}: %{y:.1f} dB<extra></extra>",
            )
        ],
        f"INT8 drift from FP32 per block ({images} images; lower = further from FP32)",
        yaxis_title="worst SQNR in the block (dB)",
        xaxis_tickangle=-45,
        showlegend=False,
    )


def sensitivity_chart(rows: Sequence[BlockSensitivity]) -> go.Figure:
    """Fidelity points each block kept in float changes against the default recipe, best first, with the 95 %
    paired interval as error bars (grey: no measurable difference)."""
    rows = sorted(rows, key=lambda r: -(r.recovers_points or 0.0))
    text = [
        f"{r.recovers_points or 0:+.2f} pts" + ("" if r.costs_ms is None else f", {r.costs_ms:+.1f} ms") for r in rows
    ]
    up = [0.0 if r.recovers is None else r.recovers.hi - r.recovers.value for r in rows]
    down = [0.0 if r.recovers is None else r.recovers.value - r.recovers.lo for r in rows]
    return figure(
        [
            go.Bar(
                name="recovered",
                x=[r.block for r in rows],
                y=[r.recovers_points for r in rows],
                text=text,
                textposition="outside",
                error_y={"type": "data", "symmetric": False, "array": up, "arrayminus": down},
                marker={"color": ["#9467bd" if r.measurable else "#c7c7c7" for r in rows]},
            )
        ],
        "Keeping one block in float: fidelity points it changes vs the default INT8 (95 % paired intervals; grey: "
        "no measurable difference) and latency it costs",
        yaxis_title="fidelity points vs the default INT8",
        showlegend=False,
    )


def _bars(cands: Sequence[Candidate]) -> dict[str, object]:
    """Each candidate's 95 % interval as asymmetric error bars."""
    return {
        "type": "data",
        "symmetric": False,
        "array": [c.fidelity.hi - c.fidelity.value for c in cands],
        "arrayminus": [c.fidelity.value - c.fidelity.lo for c in cands],
    }


def _hover(c: Candidate) -> str:
    return f"{c.label}<br>{describe_options(c.options)}"


def explore_front(result: ExploreResult, chosen: str = "") -> go.Figure:
    """Every candidate: fidelity against FP32 (95 % interval as error bars) against the median latency; FP32 and the
    default recipe marked, the chosen one ringed, the front of measurably different points joined."""
    if not any(c.p50_ms is not None for c in result.candidates):
        return _accuracy_only(result, chosen)
    cands = [c for c in result.candidates if c.p50_ms is not None]
    traces: list[go.BaseTraceType] = []
    for kind, (label, symbol, colour) in _KIND_STYLE.items():
        group = [c for c in cands if c.kind == kind]
        if not group:
            continue
        traces.append(
            go.Scatter(
                name=label,
                x=[c.p50_ms for c in group],
                y=[c.delta_points for c in group],
                error_y=_bars(group),
                mode="markers",
                text=[_hover(c) for c in group],
                hovertemplate="%{text}<br>%{x:.1f} ms, fidelity %{y:+.2f} points<extra></extra>",
                marker={"symbol": symbol, "color": colour, "size": 14 if kind == "default" else 10},
            )
        )
    if result.fp32_p50_ms is not None:
        traces.append(
            go.Scatter(
                name="FP32 (the reference)",
                x=[result.fp32_p50_ms],
                y=[0.0],
                mode="markers+text",
                text=["FP32"],
                textposition="top center",
                marker={"symbol": "star", "size": 16, "color": variant_colour("ort:fp32")},
            )
        )
    pick = next((c for c in cands if c.key == chosen), None)
    if pick is not None:
        traces.append(
            go.Scatter(
                name="chosen recipe",
                x=[pick.p50_ms],
                y=[pick.delta_points],
                mode="markers",
                marker={"symbol": "circle-open", "size": 22, "color": "#111827", "line": {"width": 2}},
                hoverinfo="skip",
            )
        )
    front = sorted((c for c in cands if c.pareto), key=lambda c: c.p50_ms or 0.0)
    if len(front) > 1:
        traces.append(
            go.Scatter(
                name="front: no other candidate measurably faster and more faithful",
                x=[c.p50_ms for c in front],
                y=[c.delta_points for c in front],
                mode="lines",
                line={"dash": "dot", "color": "#6b7280"},
            )
        )
    return figure(
        traces,
        f"INT8 candidates: speed vs fidelity to FP32 ({result.fidelity_images} unlabelled images)",
        xaxis_title=LATENCY_AXIS + " (p50, interleaved rounds)",
        yaxis_title="Δ fidelity vs FP32 (points)",
    )


def _accuracy_only(result: ExploreResult, chosen: str) -> go.Figure:
    """The trt flavour's candidates: fidelity only (its speed needs a GPU)."""
    cands = list(result.candidates)
    return figure(
        [
            go.Bar(
                name="Δ fidelity vs FP32",
                x=[("▶ " if c.key == chosen else "") + c.label for c in cands],
                y=[c.delta_points for c in cands],
                error_y=_bars(cands),
                marker={"color": [_KIND_STYLE[c.kind][2] for c in cands]},
                hovertext=[describe_options(c.options) for c in cands],
            )
        ],
        "INT8 candidates, TensorRT-format files: fidelity measured on CPU (speed needs a GPU)",
        yaxis_title="Δ fidelity vs FP32 (points)",
        xaxis_tickangle=-45,
        showlegend=False,
    )
