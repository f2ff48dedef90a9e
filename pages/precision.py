"""Precision explorer: where INT8 drifts from FP32, what keeping each block in float buys, a searched recipe."""

import json
import time

import pandas as pd
import streamlit as st

from core.data import load_dataset, sample_videos
from core.errors import CoreError
from core.measure import Speedup
from core.model import describe_options
from core.precision import (
    CALIBRATIONS,
    DEFAULT_FIDELITY_IMAGES,
    FIDELITY_WORDS,
    TRT_NOTE,
    Calibration,
    ExploreJob,
    ExploreResult,
    ExploreSettings,
    chosen_words,
    drift_by_block,
    explore_front,
    save_best,
    sensitivity_chart,
)
from core.variants import Int8Flavour, check_recipe_name
from ui import messages, model, navigation, report_sections, session_files, widgets
from ui.state import PrecisionState

navigation.through_app_navigation()


CALIB_LEFTOVERS = "the calibration folder's images calibration does not use (then the labelled set's, labels unused)"


def _cal_label(c: Calibration) -> str:
    return f"{c.method.value} on {c.images} images" + ("" if c.moving_average else " (extremes)")


st.title("Precision explorer")
st.caption(
    "When INT8 loses accuracy: which YOLOv5 blocks drift from FP32, what keeping each one in float recovers and "
    "costs, and a searched recipe (blocks in float, calibration method and size, weight bits) that meets your "
    "target. The recipe is saved with the model and runs as ort:int8@NAME on every page."
)

store = model.active_store()
if store is None:
    st.stop()
if store.calib_dir is None or store.calib_bundled:
    st.warning(
        "The explorer builds and compares INT8 files: set a calibration folder of your own images on the Models "
        "page first (the bundled pictures are too few to tell recipes apart)."
    )
    st.stop()

state = PrecisionState.read()
job: ExploreJob | None = state.job
busy = job is not None and job.running

root = widgets.labelled_dataset("prec", disabled=busy)
c1, c2, c3 = st.columns([2, 2, 1])
flavour = c1.radio(
    "INT8 flavour",
    [Int8Flavour.CPU, Int8Flavour.TRT],
    format_func=lambda f: (
        "cpu: what ort:int8 runs (speed and accuracy)"
        if f is Int8Flavour.CPU
        else "trt: TensorRT's file (accuracy only, measured on CPU)"
    ),
    key="prec:flavour",
    disabled=busy,
)
kinds = ["largest mAP drop"] + (["smallest speed-up"] if flavour is Int8Flavour.CPU else [])
kind = c2.radio("Target", kinds, horizontal=True, key="prec:kind", disabled=busy)
if kind == "largest mAP drop":
    value = c3.number_input("points of mAP50-95", 0.0, 20.0, 0.3, 0.1, key="prec:drop", disabled=busy)
else:
    value = c3.number_input("x FP32's speed", 1.0, 4.0, 1.2, 0.05, key="prec:speedup", disabled=busy)
clips = {f"frames of {p.name}": p for p in sample_videos()}
f1, f2 = st.columns([3, 1])
fid_source = f1.selectbox(
    "Fidelity images (unlabelled: every candidate is ranked by how closely it follows FP32 on them)",
    [CALIB_LEFTOVERS, *clips],
    key="prec:fidsource",
    disabled=busy,
)
fid_count = f2.number_input("how many", 16, 2000, DEFAULT_FIDELITY_IMAGES, 16, key="prec:fidcount", disabled=busy)
d1, d2, d3, d4 = st.columns(4)
max_images = d2.slider("Labelled images (confirm)", 8, 500, 128, 8, key="prec:max", disabled=busy)
drift_images = d3.slider("Drift images (calibration)", 1, 64, 16, 1, key="prec:drift", disabled=busy)
blocks = d4.number_input("Sensitivity: worst K blocks (0 = all)", 0, 25, 0, 1, key="prec:blocks", disabled=busy)
cal_names = {_cal_label(c): c for c in CALIBRATIONS}
tried = st.multiselect(
    "Calibration settings the search also tries (beside the default: moving-average min/max on 128 images)",
    list(cal_names),
    default=list(cal_names),
    key="prec:cals",
    disabled=busy,
)
st.caption(
    f"Candidates are ranked by fidelity ({FIDELITY_WORDS}), paired over the unlabelled images with a 95 % "
    "interval: two candidates differ only when it excludes 0. The labelled set never ranks them; it confirms the "
    "chosen recipe (and the default) against FP32 with its own interval. Calibration uses the calibration folder "
    f"`{store.calib_dir.name}`; the images it uses are never fidelity images. Latency: end to end per image on "
    "bus.jpg, median of interleaved rounds (the Benchmark page's definition)."
)
if flavour is Int8Flavour.TRT:
    st.info(f"trt flavour: {TRT_NOTE}.")

start = st.button("Explore", type="primary", disabled=busy or root is None)
if root is None and not busy:
    st.info("Choose a labelled dataset.")
if start and root is not None:
    try:
        settings = ExploreSettings(
            flavour=flavour,
            target_drop=value if kind == "largest mAP drop" else None,
            target_speedup=value if kind != "largest mAP drop" else None,
            fidelity_video=clips.get(fid_source),
            fidelity_count=int(fid_count),
            drift_images=drift_images,
            blocks=int(blocks) or None,
            calibrations=tuple(cal_names[n] for n in tried),
        )
        dataset = load_dataset(root, max_images, num_classes=len(store.info().names))
        job = ExploreJob(store, dataset, settings)
    except CoreError as exc:
        st.error(messages.error_text(exc))
        st.stop()
    session_files.track_job(job)  # stopped if this session goes away
    state.job, state.saved = job, None
    state.write()
    st.rerun()

if job is not None and job.running:
    if st.button("Stop", key="prec:stop"):
        job.stop()
    bar = st.progress(0.0, text="Exploring…")
    st.caption("Settings are locked while the exploration runs. Stop keeps what was measured so far.")
    while job.running:
        fraction, message = job.progress
        bar.progress(min(max(fraction, 0.0), 1.0), text=f"Exploring… {message}")
        time.sleep(0.5)
    state.results = job.result
    state.write()
    st.rerun()

if job is not None and job.error:
    st.error(job.error)
if job is not None and job.result is not None and not job.running:
    state.results = job.result
    state.write()
result: ExploreResult | None = state.results
if result is None:
    st.stop()

d = result.to_dict()
best = result.best
if result.stopped:
    st.warning("Stopped: below is what was measured before the stop.")
for note in result.notes:
    st.caption(note)
settings = result.settings
st.caption(
    f"{result.model}, {settings.flavour.value} flavour; target: {settings.target_words()}; "
    f"fidelity on {result.fidelity_source}; {result.labelled.get('images')} labelled images confirm."
    + (f" {TRT_NOTE}." if settings.flavour is Int8Flavour.TRT else "")
)

if best is not None:
    st.subheader("Chosen recipe")
    lo, hi = best.delta_report_ci95
    st.markdown(f"**{best.recipe}** — {chosen_words(best)}.")
    m = st.columns(4)
    m[0].metric("Δ mAP50-95, labelled", f"{best.delta_report:+.2f}", help=f"95 % interval {lo:+.2f}…{hi:+.2f}")
    fid = best.candidate.fidelity
    m[1].metric("Δ fidelity vs FP32", f"{fid.value:+.2f}", help=f"95 % interval {fid.lo:+.2f}…{fid.hi:+.2f}")
    m[2].metric("speed-up vs FP32", f"{best.speedup.value:.2f}x" if best.speedup else "needs a GPU")
    m[3].metric("default INT8, labelled", f"{best.default_report.map50_95.value:+.2f}")
    st.caption(f"Chosen as {best.why}.")
    if best.meets_target:
        st.success("The labelled set confirms the target.")
    else:
        st.warning("The labelled set does NOT confirm the target: see the notes above.")
    if best.candidate.kind == "default":
        st.info(
            "No candidate is measurably more faithful than the default INT8 recipe and faster: the default is the "
            "choice (saving it gives it a name, nothing else changes)."
        )
    if best.dominates_default:
        st.success(
            "It dominates the default INT8 recipe: measurably more faithful, more accurate on the labels"
            + (" and not measurably slower." if best.speedup else " (speed not compared: it needs a GPU).")
        )
    saved = state.saved
    if saved:
        st.success(f"Saved as **{saved}**: tick it in the variant picker of any page (Compare images, Benchmark …).")
    else:
        n1, n2 = st.columns([2, 1])
        name = n1.text_input("Recipe name (empty: automatic)", key="prec:name", placeholder="auto-…")
        if n2.button("Use this recipe", type="primary", key="prec:use"):
            try:
                if name:
                    check_recipe_name(name)
                save_best(store, result, name or None)
                state.saved = best.variant
                state.write()
                st.rerun()
            except CoreError as exc:
                st.error(messages.error_text(exc))


def _span(speedup: Speedup | None) -> str:
    return "" if speedup is None else f"{speedup.lo:.2f}–{speedup.hi:.2f}"


if result.candidates:
    chosen_key = best.candidate.key if best is not None else ""
    front = explore_front(result, chosen_key)
    st.plotly_chart(front, key="prec:chart:front")
    table = pd.DataFrame(
        [
            {
                "candidate": c.label,
                "settings": describe_options(c.options),
                "Δ fidelity": round(c.fidelity.value, 3),
                "fidelity 95 %": f"{c.fidelity.lo:+.2f}…{c.fidelity.hi:+.2f}",
                "p50 ms": c.p50_ms,
                "speed-up": None if c.speedup is None else round(c.speedup.value, 3),
                "speed-up 95 %": _span(c.speedup),
                "on the front": "yes" if c.pareto else "",
            }
            for c in result.candidates
        ]
    )  # fmt: skip
    st.dataframe(table, hide_index=True, width="stretch", key="prec:candidates")
    st.caption(
        "Δ fidelity: points against FP32's 100 on the unlabelled images (negative: a loss), with its paired 95 % "
        "interval. A speed-up whose 95 % interval "
        "holds 1.00 is no measurable difference."
    )
sensitivity = result.sensitivity_rows()
if sensitivity:
    sens = sensitivity_chart(sensitivity)
    st.plotly_chart(sens, key="prec:chart:sens")
    top = sorted(sensitivity, key=lambda r: -(r.recovers_points or 0))[:3]
    for r in top:
        words = r.words()
        st.caption(words[0].upper() + words[1:] + ".")
if result.drift is not None and result.drift.blocks:
    drift = drift_by_block(result.drift.blocks, result.drift.images)
    st.plotly_chart(drift, key="prec:chart:drift")
    with st.expander("Every tensor, lowest SQNR first"):
        st.dataframe(pd.DataFrame(d["layers"]), hide_index=True, width="stretch", key="prec:layers")
if result.fp16 is not None:
    st.subheader("FP16 range check")
    st.markdown(result.fp16.summary() + ".")
    flagged = [r for r in d["fp16"] if r["at_risk"]] or d["fp16"][:5]
    st.dataframe(pd.DataFrame(flagged), hide_index=True, width="stretch", key="prec:fp16")
    st.caption(
        "FP16's largest finite value is 65,504; at risk: within 4 bits of it. ONNX Runtime's CPU provider computes "
        "many FP16 nodes in FP32, so the FP16 drift here is a lower bound of a GPU's; the ranges are the model's own."
    )
    with st.expander("FP16 drift per block, lowest SQNR first"):
        st.dataframe(pd.DataFrame(d["fp16_blocks"]), hide_index=True, width="stretch", key="prec:fp16blocks")

st.download_button(
    "Download the exploration (JSON)",
    json.dumps(d, indent=2),
    "explore.json",
    "application/json",
)

items: list = [("text", f"{result.model}: exploration stopped before a recipe was chosen.")]
if best is not None:
    items = [
        (
            "text",
            f"Chosen INT8 recipe ({settings.flavour.value} flavour, target: {settings.target_words()}): {best.recipe}; "
            f"{chosen_words(best)}." + (f" Saved as {best.variant}." if best.variant else ""),
        )
    ]
report_sections.put_section(
    "precision",
    report_sections.ReportSection(
        "Precision explorer",
        [
            *items,
            *([("figure", front)] if result.candidates else []),
            *([("figure", sens)] if sensitivity else []),
            *([("figure", drift)] if result.drift is not None and result.drift.blocks else []),
        ],
    ),
)
