"""Compare images: the same pictures through 2–4 variants, side by side, with a diff against a reference."""

from pathlib import Path

import streamlit as st

from core.data import IMAGE_TYPES, sample_images
from core.measure import (
    ImageComparison,
    TransferWatch,
    match_detections,
    read_images,
    transfer_lines,
)
from core.report import annotate, annotate_diff, compare_latency
from ui import model, navigation, pool, report_sections, widgets
from ui.state import CompareImagesState, Preset

navigation.through_app_navigation()

st.title("Compare images")
st.caption("What each variant detects on the same pictures, how fast, and where it differs from the reference.")

store = model.active_store()
if store is None:
    st.stop()

with st.expander("Variants", expanded=True):
    state = CompareImagesState.read()
    preset = Preset(*state.preset) if state.preset is not None else None  # sent by the Accuracy page
    chosen = tuple(preset.variants) if preset is not None else ("ort:fp32", "ort:int8")
    variants = widgets.variant_picker("img", store, default=chosen)


def _uploads_changed() -> None:
    """The user added or removed files: keep what the uploader holds now (a reload shows it again)."""
    files = st.session_state.get("img:upload") or []
    kept = CompareImagesState.read()
    kept.uploads = [(f.name, f.getvalue()) for f in files] or None
    kept.write()


uploads = st.file_uploader(
    f"Images ({', '.join(IMAGE_TYPES)}; up to {widgets.MAX_UPLOAD_MB} MB each)",
    type=list(IMAGE_TYPES),
    accept_multiple_files=True,
    key="img:upload",
    on_change=_uploads_changed,
)
# -- decode what was given; a bad file is reported and the others still run --------------------------
sources: list[tuple[str, bytes]] = [(u.name, u.getvalue()) for u in uploads or []]
kept = state.uploads
if uploads:
    state.uploads = sources
    state.write()
elif kept:  # uploaded before a reload or before visiting another page: the uploader itself forgets them
    sources = kept
    c1, c2 = st.columns([4, 1])
    c1.caption(f"Showing the {len(kept)} image(s) you uploaded earlier; upload others above.")
    if c2.button("Back to the samples", key="img:uploads:clear"):
        state.uploads = None
        state.write()
        st.rerun()
elif preset is not None:
    paths, what = preset.paths, preset.what
    sources = [(Path(p).name, Path(p).read_bytes()) for p in paths if Path(p).is_file()]
    c1, c2 = st.columns([4, 1])
    c1.caption(f"Showing {what}; upload your own above.")
    if c2.button("Back to the samples", key="img:preset:clear"):
        state.preset = None
        state.write()
        st.rerun()
else:
    sources = [(p.name, p.read_bytes()) for p in sample_images()[:2]]
    st.caption("Showing the sample images (bus, zidane); upload your own above.")
if state.decoded is None or state.raw is None:  # the page's caches: decoded images, network outputs
    state.decoded, state.raw = state.decoded or {}, state.raw or {}
    state.write()
given = read_images(sources, state.decoded)
for line in given.duplicates:
    st.caption(line)
for line in given.errors:
    st.warning(line)
images = given.images

if not images:
    st.info("None of the uploaded files is an image this tool can read.")
    st.stop()
if len(variants) < 2:
    st.info("Tick at least two variants to compare (up to four).")
    st.stop()

names = store.info().names
params = widgets.post_controls(names, "img")
reference = widgets.reference_picker(variants, "img:ref")
detectors = pool.open_detectors(store, variants)
if detectors is None:
    st.stop()

# -- inference once per (model, variant, image); thresholds only re-run post-processing ----------------
comparison = ImageComparison(detectors, reference, model_key=str(store.directory), cache=state.raw)
if comparison.missing(images):
    update, bar = widgets.progress_callback("Running…")
    watch = TransferWatch.start(detectors)
    comparison.run(images, update)
    state.transfer = watch.samples()
    state.write()
    bar.empty()
result = comparison.result(images, params)
comparison.keep_only(images)  # bounded: what this session shows now

for v in result.images[0].variants:
    if v.agreement is not None:
        st.markdown(f"**{result.headline(v.variant)}**")
transfer_text = transfer_lines(state.transfer or {}, variants)
for line in transfer_text:
    st.caption(line)

# -- one image at a time, one column per variant ------------------------------------------------------
labels = {im.key: f"{i + 1}. {im.name}" for i, im in enumerate(images)}
shown = st.selectbox("Image", list(labels), format_func=labels.get) if len(images) > 1 else images[0].key
image = next(im.image for im in images if im.key == shown)
on_image = next(r for r in result.images if r.key == shown)
cols = st.columns(len(detectors))
for col, v in zip(cols, on_image.variants, strict=True):
    with col:
        st.markdown(f"**{v.variant}**" + (" · reference" if v.variant == result.reference else ""))
        st.image(annotate(image, v.detections), width="stretch")
        # one above the other: side by side, four columns leave each value a few characters at 1024 px
        st.metric("objects", len(v.detections))
        st.metric("latency", f"{v.latency.p50:.1f} ms", help="median of the timed runs, end to end")
        st.caption(f"p10–p90 {v.latency.p10:.1f}–{v.latency.p90:.1f} ms over {v.latency.runs} runs")
        if v.agreement is not None:
            st.caption(f"vs {result.reference}: {result.speedup(on_image, v.variant).words()}")

st.subheader(f"Differences from {reference}")
st.caption("Green: found by both (same class, IoU ≥ 0.5) · red: missed by this variant · amber: only this variant.")
ref_dets = on_image.of(reference).detections
others = [v for v in on_image.variants if v.agreement is not None]
for col, v in zip(st.columns(max(2, len(others))), others, strict=False):
    a = v.agreement
    assert a is not None
    with col:
        st.markdown(f"**{v.variant}** vs {reference}")
        st.image(
            annotate_diff(image, ref_dets, v.detections, match_detections(ref_dets, v.detections)), width="stretch"
        )
        top, bottom = st.columns(2), st.columns(2)  # two by two: readable with three diff columns
        top[0].metric("matched", a.matched)
        top[1].metric("missed", a.missed)
        bottom[0].metric("extra", a.extra)
        bottom[1].metric("|Δconf|", f"{a.mean_abs_dconf:.3f}", help="mean absolute confidence change, matched boxes")

# -- every image, every variant ---------------------------------------------------------------------------
result_table = result.table()
table = widgets.table_frame(result_table)
st.subheader("All images")
widgets.show_table(result_table, table)
fig = compare_latency(result)
st.plotly_chart(fig, width="stretch")


def report_images(result, images) -> list:
    """Every compared picture: each variant's detections, then each variant's diff against the reference."""
    by_key = {im.key: im.image for im in images}
    items = []
    for im in result.images:
        picture, ref = by_key[im.key], im.of(result.reference).detections
        for v in im.variants:
            items.append(
                ("image", (f"{im.name} · {v.variant}: {len(v.detections)} objects", annotate(picture, v.detections)))
            )
            if v.agreement is not None:
                diff = annotate_diff(picture, ref, v.detections, match_detections(ref, v.detections))
                a = v.agreement
                counts = f"{a.matched} matched, {a.missed} missed, {a.extra} extra"
                caption = f"{im.name} · {v.variant} vs {result.reference}: {counts}"
                items.append(("image", (caption, diff)))
    return items


report_sections.put_section(
    "images",
    report_sections.ReportSection(
        "Compare images",
        [
            ("text", f"Model {store.source.name} @ {store.shape_words}; conf {params.conf}, IoU {params.iou}."),
            *[("text", result.headline(v.variant)) for v in result.images[0].variants if v.agreement is not None],
            *report_images(result, images),
            ("table", table),
            *[("text", line) for line in transfer_text],
            *[("text", note) for note in result.table().notes],
            ("figure", fig),
        ],
    ),
)
