"""``python -m core report``: the HTML report made from the JSON the CLI prints (compare, bench, eval, video).

Each file says its kind (``"kind"``; older files are recognised by their shape) and is turned into the same
kind of sections the dashboard's Report page makes (headlines first, tables with spreads and intervals, charts
in the variants' colours), rendered by :func:`core.report.html.render_html`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from core.errors import InputError
from core.measure import Speedup
from core.report.charts import LATENCY_AXIS, TEMPLATE, profile_blocks, profile_split
from core.report.colours import variant_colour
from core.report.html import ReportSection
from core.runtime import block_index, machine_line

KINDS = ("compare", "bench", "profile", "eval", "video")


def kind_of(doc: dict[str, Any]) -> str:
    """The kind the file names (``"kind"``, written by every ``--json`` since results carry it); files
    written before that are recognised by their shape."""
    if "kind" in doc:
        return str(doc["kind"]) if doc["kind"] in KINDS else ""
    if "images" in doc and "reference" in doc:
        return "compare"
    if "dataset" in doc and "variants" in doc:
        return "eval"
    if "frames" in doc and "fps_processed" in doc:
        return "video"
    if "variants" in doc and "batch_size" in doc and "image" in doc:
        return "bench"
    return ""


def load_results(paths: Sequence[Path]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: not a readable JSON file ({exc})") from exc
        kind = kind_of(doc) if isinstance(doc, dict) else ""
        if not kind:
            raise InputError(f"{path}: not the --json output of {', '.join(KINDS)} (python -m core ... --json)")
        out.append((kind, doc))
    return out


def _bar(names: list[str], p50: list[float], p10: list[float], p90: list[float], title: str, unit: str) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=names,
            y=p50,
            marker_color=[variant_colour(n) for n in names],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [b - a for a, b in zip(p50, p90, strict=True)],
                "arrayminus": [a - b for a, b in zip(p50, p10, strict=True)],
            },
        )
    )
    fig.update_layout(template=TEMPLATE, title=title, yaxis_title=unit, showlegend=False)
    return fig


def _bench(doc: dict[str, Any]) -> ReportSection:
    rows = doc["variants"]
    base = rows[0]
    items: list[tuple[str, Any]] = [
        (
            "text",
            f"{_model_at(doc)} on {Path(str(doc.get('image'))).name}, batch size "
            f"{doc.get('batch_size')}; {base.get('iterations')} timed calls per variant in "
            f"{base.get('rounds', 1)} rounds, variants in turn.",
        ),
    ]
    b = base["latency_ms"]
    for r in rows[1:]:
        lat = r["latency_ms"]
        if "median_ci95" in b and "median_ci95" in lat:  # the widest ratio the two medians' intervals allow
            (blo, bhi), (lo, hi) = b["median_ci95"], lat["median_ci95"]
            up = Speedup(b["p50"] / lat["p50"], blo / hi, bhi / lo).words()
        else:
            up = f"{b['p50'] / lat['p50']:.2f}x (no interval in this file)"
        items.append(("text", f"{r['variant']} vs {base['variant']}: {up}; {r['fps']:.1f} vs {base['fps']:.1f} FPS."))
    table = [
        {
            "variant": r["variant"],
            "p50 ms": r["latency_ms"]["p50"],
            "p10 ms": r["latency_ms"].get("p10"),
            "p90 ms": r["latency_ms"]["p90"],
            "FPS": r["fps"],
            "runs on": r.get("runs_on", ""),
        }
        for r in rows
    ]
    names = [r["variant"] for r in rows]
    lat = [r["latency_ms"] for r in rows]
    fig = _bar(
        names,
        [x["p50"] for x in lat],
        [x.get("p10", x["p50"]) for x in lat],
        [x["p90"] for x in lat],
        "Benchmark: median latency, bars p10-p90",
        LATENCY_AXIS,
    )
    system = doc.get("system") or {}
    items += [
        ("table", table),
        ("figure", fig),
        ("text", f"Measured on {machine_line(system)}."),
    ]
    return ReportSection("Benchmark", items)


def _eval(doc: dict[str, Any]) -> ReportSection:
    ref = doc.get("reference", "ort:fp32")
    items: list[tuple[str, Any]] = [("text", f"{_model_at(doc)} on {doc.get('data')}: {doc['dataset']['summary']}.")]
    if warning := doc["dataset"].get("pairing_warning"):
        items.append(("text", f"Warning: {warning}"))
    table = []
    for r in doc["variants"]:
        d, a = r.get("delta_vs_reference"), r.get("agreement_vs_fp32")
        row = {"variant": r["variant"], "mAP50": r["map50"], "mAP50-95": r["map50_95"]}
        if d:
            m = d["map50_95_points"]
            lo, hi = m["ci95"]
            missed = (
                f", misses {100 * a['missed'] / max(a['matched'] + a['missed'], 1):.0f} % of {ref}'s detections"
                if a
                else ""
            )
            verdict = ": no measurable change" if lo <= 0 <= hi else ""
            items.append(
                (
                    "text",
                    f"{r['variant']} — {m['value']:+.2f} mAP50-95 points ({lo:+.2f} to {hi:+.2f}; "
                    f"{d['images']} images{verdict}){missed} at conf 0.25.",
                )
            )
            row |= {"ΔmAP50-95 pts": m["value"], "95 % interval": f"{lo:+.2f} to {hi:+.2f}"}
        if a:
            row |= {"matched": a["matched"], "missed": a["missed"], "extra": a["extra"]}
        table.append(row)
    items.append(("table", table))
    return ReportSection("Accuracy", items)


def _agreement(a: dict[str, Any]) -> dict[str, Any]:
    return {"matched": a["matched"], "missed": a["missed"], "extra": a["extra"]}


def _compare(doc: dict[str, Any]) -> ReportSection:
    table, names, p50, p10, p90 = [], [], [], [], []
    for im in doc["images"]:
        for v in im["variants"]:
            lat, a = v["latency_ms"], v.get("agreement")
            table.append(
                {
                    "image": Path(im["image"]).name,
                    "variant": v["variant"],
                    "objects": len(v["detections"]),
                    "p50 ms": lat["p50"],
                    "p10 ms": lat["p10"],
                    "p90 ms": lat["p90"],
                    "runs": lat["runs"],
                    **(_agreement(a) if a else {}),
                }
            )
            names.append(f"{Path(im['image']).name} · {v['variant']}")
            p50.append(lat["p50"])
            p10.append(lat["p10"])
            p90.append(lat["p90"])
    fig = _bar(names, p50, p10, p90, "Compare images: median latency, bars p10-p90", LATENCY_AXIS)
    fig.update_traces(marker_color=[variant_colour(n.split(" · ")[1]) for n in names])
    text = f"{_model_at(doc)}; reference {doc['reference']}; conf {doc.get('conf')}."
    return ReportSection("Compare images", [("text", text), ("table", table), ("figure", fig)])


def _model_at(doc: dict[str, Any]) -> str:
    """ "yolov5n.pt @ rect 640px": the model and the input it ran (files written before the shape policy: square)."""
    return f"{doc.get('model')} @ {doc.get('shape', 'square')} {doc.get('imgsz')}px"


def _video(doc: dict[str, Any]) -> ReportSection:
    rows = doc["variants"]
    table = [
        {
            "variant": r["variant"],
            "frames": doc["frames"],
            "p50 ms": r["latency_ms"]["p50"],
            "p95 ms": r["latency_ms"]["p95"],
            "detections per frame": r["detections_per_frame"],
        }
        for r in rows
    ]
    text = (
        f"{Path(doc['source']).name}: {doc['frames']} frames, {doc.get('shape', 'square')} input "
        f"{'x'.join(str(v) for v in reversed(doc.get('input_hw') or [640, 640]))}, at {doc['fps_processed']:.1f} "
        "fps processed (decode, "
        "every variant, drawing and encoding together; each variant alone is faster)."
    )
    return ReportSection("Compare video", [("text", text), ("table", table)])


def profile_section(doc: dict[str, Any]) -> ReportSection:
    """A profile (``profile --json``, or the Benchmark page's): blocks as rows, variants as columns, the charts
    and the words, the same on the page and in the report."""
    variants = doc["variants"]
    names = sorted({b["block"] for v in variants for b in v["blocks"]}, key=block_index)
    modules = {b["block"]: b["module"] for v in variants for b in v["blocks"]}
    table: list[dict[str, Any]] = []
    for name in names:
        row: dict[str, Any] = {"block": name, "module": modules.get(name, "")}
        for v in variants:
            row[f"{v['variant']} ms"] = next((b["ms"] for b in v["blocks"] if b["block"] == name), None)
        table.append(row)
    totals = [("blocks, sum", "blocks_ms"), ("graph, median (no profiler)", "graph_ms")]
    for label, key in totals:
        table.append({"block": label, "module": "", **{f"{v['variant']} ms": v[key] for v in variants}})
    for label, key in (("letterbox", "letterbox"), ("box decode", "box_decode"), ("NMS", "nms")):
        table.append({"block": label, "module": "", **{f"{v['variant']} ms": v["outside_ms"][key] for v in variants}})
    memory = {f["variant"]: f for f in doc.get("footprint", [])}
    if memory:
        for label, key in (("file MB", "file_mb"), ("loading adds MB", "load_mb"), ("peak MB", "peak_mb")):
            cells = {f"{v['variant']} ms": memory.get(v["variant"], {}).get(key) for v in variants}
            table.append({"block": label, "module": "", **cells})
    ran = [f"{v['variant']} runs on {v['runs_on']}" for v in variants]
    items: list[tuple[str, Any]] = [
        ("text", f"{_model_at(doc)} on {Path(str(doc.get('image'))).name}: each runtime's "
                 f"own profiler, median of {doc.get('runs')} calls per variant, profiled and plain calls in turn."),
        *[("text", w) for w in doc.get("words", [])],
        ("figure", profile_split(doc)),
        ("figure", profile_blocks(doc)),
        ("table", table),
        *[("text", r) for r in ran],
    ]  # fmt: skip
    return ReportSection("Where the time goes", items)


_BUILD = {"bench": _bench, "profile": profile_section, "eval": _eval, "compare": _compare, "video": _video}
_ORDER = {"eval": 0, "bench": 1, "profile": 2, "compare": 3, "video": 4}  # the decision's numbers first


def sections_from_results(results: Sequence[tuple[str, dict[str, Any]]]) -> list[ReportSection]:
    ordered = sorted(results, key=lambda kd: _ORDER[kd[0]])
    return [_BUILD[kind](doc) for kind, doc in ordered]


def system_of(results: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    return next((doc["system"] for _, doc in results if isinstance(doc.get("system"), dict)), None)
