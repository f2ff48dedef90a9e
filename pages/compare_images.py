"""Compare images: the same pictures through 2–4 variants, side by side, with a diff against a reference."""

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from core.draw import annotate, annotate_diff
from core.errors import InputError
from core.images import IMAGE_TYPES, load_image
from core.metrics import agreement, match_detections
from core.samples import sample_images
from pages import common

common.through_app_navigation()

st.title("Compare images")
st.caption("What each variant detects on the same pictures, how fast, and where it differs from the reference.")

store = common.active_store()
if store is None:
    st.stop()

with st.expander("Variants", expanded=True):
    variants = common.variant_picker("img", store)

uploads = st.file_uploader(
    f"Images ({', '.join(IMAGE_TYPES)}; up to {common.MAX_UPLOAD_MB} MB each)",
    type=list(IMAGE_TYPES),
    accept_multiple_files=True,
)
# -- decode what was given; a bad file is reported and the others still run --------------------------
sources: list[tuple[str, bytes]] = [(u.name, u.getvalue()) for u in uploads or []]
if not uploads:
    sources = [(p.name, p.read_bytes()) for p in sample_images()[:2]]
    st.caption("Showing the sample images (bus, zidane); upload your own above.")
decoded: dict[str, tuple[str, np.ndarray]] = st.session_state.setdefault("img:decoded", {})
images: list[tuple[str, str, np.ndarray]] = []
for name, data in sources:
    key = common.digest(data)
    if any(k == key for k, _, _ in images):
        st.caption(f"{name} is the same picture as {decoded[key][0]}; shown once.")
        continue
    if key not in decoded:
        try:
            decoded[key] = (name, load_image(data, name))
        except InputError as exc:
            st.warning(str(exc))
            continue
    images.append((key, *decoded[key]))
for stale in set(decoded) - {k for k, _, _ in images}:
    del decoded[stale]  # only the current pictures stay in memory

if not images:
    st.info("None of the uploaded files is an image this tool can read.")
    st.stop()
if len(variants) < 2:
    st.info("Tick at least two variants to compare (up to four).")
    st.stop()

names = store.info().names
params = common.post_controls(names, "img")
reference = common.reference_picker(variants, "img:ref")
detectors = common.open_detectors(store, variants)
if detectors is None:
    st.stop()

# -- inference once per (model, variant, image); thresholds only re-run post-processing ----------------
raw_cache: dict = st.session_state.setdefault("img:raw", {})
todo = [(k, d) for k, _, _ in images for d in detectors if (store.directory, str(d.variant), k) not in raw_cache]
bar = st.progress(0.0, text="Running…") if todo else None
for i, (key, det) in enumerate(todo):
    image = decoded[key][1]
    raw_cache[(store.directory, str(det.variant), key)] = det.compact(det.infer_raw(image), common.MIN_CONF)
    if bar:
        bar.progress((i + 1) / len(todo), text=f"{det.variant} on {decoded[key][0]}")
if bar:
    bar.empty()

results = {}  # (image key, variant) -> (detections, latency ms)
for key, _, _ in images:
    for det in detectors:
        raw = raw_cache[(store.directory, str(det.variant), key)]
        dets, post_ms = det.postprocess(raw, params)
        results[(key, str(det.variant))] = (dets, raw.preprocess_ms + raw.inference_ms + post_ms)

# -- one image at a time, one column per variant ------------------------------------------------------
labels = {k: f"{i + 1}. {n}" for i, (k, n, _) in enumerate(images)}
shown = st.selectbox("Image", list(labels), format_func=labels.get) if len(images) > 1 else images[0][0]
image = decoded[shown][1]
cols = st.columns(len(detectors))
for col, det in zip(cols, detectors, strict=True):
    dets, ms = results[(shown, str(det.variant))]
    with col:
        st.markdown(f"**{det.variant}**" + (" · reference" if det.variant == reference else ""))
        st.image(annotate(image, dets), width="stretch")
        m1, m2 = st.columns(2)
        m1.metric("objects", len(dets))
        m2.metric("latency", f"{ms:.1f} ms")

st.subheader(f"Differences from {reference}")
st.caption("Green: found by both (same class, IoU ≥ 0.5) · red: missed by this variant · amber: only this variant.")
ref_dets = results[(shown, str(reference))][0]
others = [d for d in detectors if d.variant != reference]
for col, det in zip(st.columns(max(2, len(others))), others, strict=False):
    dets = results[(shown, str(det.variant))][0]
    a = agreement(ref_dets, dets)
    with col:
        st.markdown(f"**{det.variant}** vs {reference}")
        st.image(annotate_diff(image, ref_dets, dets, match_detections(ref_dets, dets)), width="stretch")
        c = st.columns(4)
        c[0].metric("matched", a.matched)
        c[1].metric("missed", a.missed)
        c[2].metric("extra", a.extra)
        c[3].metric("mean |Δconf|", f"{a.mean_abs_dconf:.3f}")

# -- every image, every variant ---------------------------------------------------------------------------
rows = []
for key, name, _ in images:
    ref = results[(key, str(reference))][0]
    for det in detectors:
        dets, ms = results[(key, str(det.variant))]
        a = agreement(ref, dets)
        rows.append(
            {
                "image": name,
                "variant": str(det.variant),
                "objects": len(dets),
                "latency ms": round(ms, 2),
                "matched": a.matched,
                "missed": a.missed,
                "extra": a.extra,
                "mean |Δconf|": round(a.mean_abs_dconf, 4),
            }
        )
table = pd.DataFrame(rows)
st.subheader("All images")
st.dataframe(table, hide_index=True, width="stretch")
fig = px.bar(table, x="image", y="latency ms", color="variant", barmode="group", title="Latency per image (end to end)")
st.plotly_chart(fig, width="stretch")

common.report_put(
    "images",
    common.ReportSection(
        "Compare images",
        [
            ("text", f"Model {store.source.name} @ {store.input_size}; conf {params.conf}, IoU {params.iou}."),
            *[
                ("image", (f"{det.variant}: {labels[shown]}", annotate(image, results[(shown, str(det.variant))][0])))
                for det in detectors
            ],
            ("table", table),
            ("figure", fig),
        ],
    ),
)
