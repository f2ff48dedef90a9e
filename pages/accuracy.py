"""Accuracy: mAP on a labelled YOLO-format set, latency, agreement with FP32, and the trade-off."""

from pathlib import Path

import pandas as pd
import streamlit as st

from core.data import load_dataset
from core.errors import CoreError
from core.measure import EvalJob, EvalRun, build_cards, eval_table, per_class_table
from core.report import per_class_ap, speed_vs_accuracy
from core.runtime import system_info
from core.variants import REFERENCE, with_reference
from ui import jobs, messages, model, navigation, pool, report_sections, widgets
from ui.deploy import bundle_download
from ui.state import AccuracyState, BenchmarkState, CompareImagesState, Preset

navigation.through_app_navigation()

STOPPED = (
    "Stopped: nothing of that evaluation is kept (mAP over part of the set is not the set's); "
    "the results below, if any, are the previous run's."
)

st.title("Accuracy")
st.caption(
    "mAP50 and mAP50-95 with YOLOv5 val.py's protocol (conf 0.001, NMS IoU 0.6, 300 detections, 101-point AP), "
    "end-to-end latency, and agreement with ort:fp32 at conf 0.25."
)

state = AccuracyState.read()
jobs.settle(state, STOPPED)
job: EvalJob | None = state.job
busy = job is not None  # running: settle() took it out of the state when it ended
# The settings sit in one container: whether a run is going or not, everything below keeps its place on the
# page, so the previous results are redrawn in place (not beside a stale copy) while a run goes on.
with st.container():
    store = model.active_store()
    if store is None:
        st.stop()

    if busy:
        st.caption(
            f"Settings are locked while the evaluation runs: **Stop** it to change them. Running: {job.words()}."
        )
    with st.expander("Variants", expanded=not busy):
        variants = widgets.variant_picker(
            "acc", store, default=("ort:fp32", "ort:fp16", "ort:int8"), max_count=8, disabled=busy
        )

    root = widgets.labelled_dataset("acc", disabled=busy)
    m1, m2 = st.columns([3, 1])
    max_images = m1.slider("Use at most this many images", 8, 5000, 128, 8, key="acc:max", disabled=busy)
    batch = m2.number_input(
        "Batch size",
        1,
        32,
        4,
        key="acc:batch",
        help="Images per runtime call: a few images at once keep the cores busier. Latency is then per image, "
        "amortised.",
        disabled=busy,
    )

    if not busy:
        if root is None:
            st.info("Choose a labelled dataset.")
            st.stop()
        if not variants:
            st.info("Tick at least one variant.")
            st.stop()
        try:
            dataset = load_dataset(root, max_images, num_classes=len(store.info().names))
        except CoreError as exc:
            st.error(messages.error_text(exc))
            st.stop()
        st.caption(f"Dataset: {dataset.inventory.summary()}" + (f" — read {dataset.layout}" if dataset.layout else ""))
        for warning in (dataset.inventory.pairing_warning, dataset.names_mismatch(store.info().names)):
            if warning:
                st.warning(warning)

# The evaluation goes on a worker thread (it survives leaving the page and a reload); meanwhile the previous
# results stay below, marked as such with their downloads off, and the progress is shown above them.
start = st.button("Evaluate", type="primary", disabled=busy)
progress_box = st.container()
if start:
    needed = with_reference(list(variants))
    with progress_box:
        detectors = pool.open_detectors(store, needed)
    if detectors is None:
        st.stop()
    job = EvalJob(
        detectors[: len(variants)],
        dataset,
        detectors[needed.index(REFERENCE)],
        model=store.source.name,
        imgsz=store.input_size,
        batch_size=int(batch),
        system=system_info(),
        threads=model.model_choice().threads,
        model_sha256=store.source.sha256,
    )
    jobs.start(state, job)
jobs.results_or_progress(state, progress_box, "Accuracy:", "acc", "Press **Evaluate**.")

run: EvalRun = state.results
results, report, model_name, imgsz, data_root = run.results, run.inventory, run.model, run.imgsz, run.data
benchmark = jobs.finished_results(BenchmarkState.read())
bench = benchmark.results if benchmark is not None and benchmark.model == model_name else []
variants = [r.variant for r in results]
cards = build_cards(variants, str(REFERENCE), bench=bench, evals=results, model_mb=widgets.model_sizes(store, variants))
card_frame = widgets.decision_cards(cards, "acc")
bundle_download(store, cards, "acc")
scores = eval_table(results, str(REFERENCE))
table = widgets.table_frame(scores)
st.subheader(
    f"{model_name} @ {run.shape} {imgsz}px on {Path(data_root).name}: {report.images} images, {report.boxes} boxes"
)
for note in scores.notes:
    st.caption(note)
widgets.show_table(scores, table)

scatter = speed_vs_accuracy(results, table["Pareto"].tolist(), str(REFERENCE))
st.plotly_chart(scatter, width="stretch")

# opens on the first variant that is not the reference: its Δ column is what the table is for
names = [r.variant for r in results]
first = next((i for i, v in enumerate(names) if v != str(REFERENCE)), 0)
chosen = st.selectbox("Per-class AP of", names, index=first, key="acc:perclass")
picked = next(r for r in results if r.variant == chosen)
classes = per_class_table(picked, str(REFERENCE))
if classes.rows:
    widgets.show_table(classes, widgets.table_frame(classes))
    st.caption(classes.notes[0] + "; click a column to sort by it.")
    pc = sorted(
        (
            {"class": c.name, "instances": c.instances, "AP50": c.ap50, "AP50-95": c.ap50_95}
            for c in picked.accuracy.per_class
        ),
        key=lambda row: row["AP50-95"],
    )
    fig = per_class_ap(pc, chosen)
    st.plotly_chart(fig, width="stretch")
if picked.disagreements:
    st.subheader(f"Where {chosen} differs most from {REFERENCE}")
    st.dataframe(
        pd.DataFrame([{"image": d.image.name, "missed": d.missed, "extra": d.extra} for d in picked.disagreements]),
        hide_index=True,
        width="stretch",
    )
    st.caption("Boxes of the reference it misses and boxes only it finds, at conf 0.25, IoU 0.5, same class.")
    if st.button(f"Open these {len(picked.disagreements)} images in Compare images", key="acc:open"):
        images = CompareImagesState.read()
        images.preset = Preset(
            [str(d.image) for d in picked.disagreements],
            f"the {len(picked.disagreements)} images of {Path(data_root).name} where {chosen} differs most "
            f"from {REFERENCE}",
            [str(REFERENCE), chosen],
        )
        images.uploads = None  # these images replace what was uploaded there
        images.write()
        st.switch_page("pages/compare_images.py")
if report.bad_lines or report.orphan_labels or report.other_files or report.unreadable_images:
    with st.expander("Dataset problems (skipped)"):
        st.write(
            {
                "bad label lines": report.bad_lines[:200],
                "label files without image": report.orphan_labels,
                "unreadable images": report.unreadable_images,
                "other files": report.other_files[:200],
            }
        )
st.download_button("Download CSV", scores.to_csv(), "accuracy.csv", "text/csv", disabled=busy)
if busy:
    jobs.follow(job, progress_box, "Accuracy:", "acc")  # reruns the page when done
report_sections.put_section(
    "accuracy",
    report_sections.ReportSection(
        "Accuracy",
        [
            ("text", f"{model_name} @ {run.shape} {imgsz}px; dataset {report.summary()}."),
            *[("text", f"Warning: {report.pairing_warning}")] * bool(report.pairing_warning),
            *[("text", card.headline()) for card in cards],
            ("table", card_frame),
            ("table", table),
            *[("text", note) for note in scores.notes],
            ("figure", scatter),
        ],
    ),
)
