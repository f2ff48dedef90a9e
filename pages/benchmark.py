"""Benchmark: latency percentiles, distribution, stage split and throughput per variant."""

import json

import streamlit as st

from core.data import IMAGE_TYPES, load_image, sample_images
from core.errors import InputError
from core.measure import (
    BenchRun,
    TransferWatch,
    benchmark_variants,
    build_cards,
    transfer_lines,
)
from core.report import latency_distribution, stage_split, throughput
from core.runtime import system_info
from ui import messages, model, navigation, pool, report_sections, widgets
from ui.state import AccuracyState, BenchmarkState

navigation.through_app_navigation()

st.title("Benchmark")
st.caption(
    "Per-image latency, end to end (letterbox + inference + NMS), measured by the same routine as "
    "`python -m core bench`."
)

choice = model.model_choice()
s1, s2 = st.columns(2)
sizes = sorted({320, 416, 512, 640, 768, 1024, choice.imgsz})
imgsz = s1.selectbox("Image size (px)", sizes, index=sizes.index(choice.imgsz), key="bench:imgsz")
threads = s2.number_input("CPU threads (0 = one per physical core)", 0, 64, choice.threads, key="bench:threads")
store = model.active_store(imgsz=imgsz)
if store is None:
    st.stop()

with st.expander("Variants", expanded=True):
    variants = widgets.variant_picker("bench", store, default=("ort:fp32", "ort:fp16", "ort:int8"), max_count=8)

c1, c2, c3, c4 = st.columns(4)
warmup = c1.number_input("Warm-up runs", 0, 200, 10, key="bench:warmup")
iterations = c2.number_input("Timed runs", 5, 2000, 100, key="bench:iters")
batch = c3.number_input(
    "Batch size",
    1,
    32,
    1,
    key="bench:batch",
    help="Throughput mode above 1: that many images per runtime call. Latency is then per call, FPS per image.",
)
samples = {p.name: p for p in sample_images()[:2]}
image_choice = c4.selectbox("Image", [*samples, "upload…"], key="bench:image")
upload = (
    st.file_uploader("Image to time", type=list(IMAGE_TYPES), key="bench:upload") if image_choice == "upload…" else None
)

if not variants:
    st.info("Tick at least one variant.")
    st.stop()
if image_choice == "upload…" and upload is None:
    st.info("Upload the image to time.")
    st.stop()
try:
    image = load_image(upload.getvalue(), upload.name) if upload else load_image(samples[image_choice])
    image_name = upload.name if upload else str(samples[image_choice])
except InputError as exc:
    st.error(messages.error_text(exc))
    st.stop()

# A run draws the previous results first, marked stale with their downloads off, and measures at the
# end of the script (progress shown above them); then the page is drawn again with the new results.
running, progress_box = widgets.run_button(
    "Run benchmark",
    BenchmarkState.key("results"),
    "Press **Run benchmark**. Each variant is built the first time it is used (progress is shown).",
)


def measure(variants=tuple(variants), threads=int(threads), batch=int(batch), runs=(int(warmup), int(iterations))):
    """Bound now: the names are reused below for what the shown results were measured with."""
    with progress_box:
        detectors = pool.open_detectors(store, variants, threads=threads, in_turn=False)
        if detectors is None:
            st.stop()
        update, bar = widgets.progress_callback("Benchmarking")
    watch = TransferWatch.start(detectors)
    results = benchmark_variants(detectors, image, warmup=runs[0], iterations=runs[1], batch=batch, progress=update)
    bar.empty()
    state.results = BenchRun(
        system_info(),
        store.source.name,
        store.input_size,
        image_name,
        batch,
        results,
        threads=threads,
        iterations=runs[1],
        transfers=watch.samples(),
        nodes={str(d.variant): d.node.to_dict() for d in detectors if d.node is not None},
    )
    state.write()
    st.rerun()


state = BenchmarkState.read()
if state.results is None:
    measure()

run: BenchRun = state.results
results, model_name, imgsz, threads, batch = run.results, run.model, run.imgsz, run.threads, run.batch_size
accuracy = AccuracyState.read().results
evals = accuracy.results if accuracy is not None and accuracy.model == model_name else []
variants = [r.variant for r in results]
cards = build_cards(variants, variants[0], bench=results, evals=evals, model_mb=widgets.model_sizes(store, variants))
card_frame = widgets.decision_cards(cards, "bench")
if not evals:
    st.caption("Run the **Accuracy** page on this model to add ΔmAP and missed detections to these cards.")
bench = run.table()
table = widgets.table_frame(bench)
transfer_text = transfer_lines(run.transfers, variants)
for line in transfer_text:
    st.caption(line)
st.subheader(f"{model_name} @ {imgsz}px, {threads or 'auto'} threads, batch size {batch}")
st.dataframe(table, hide_index=True, width="stretch")
for note in bench.notes:
    st.caption(note)

dist = latency_distribution(results)
stages = stage_split(results)
fps = throughput(results)
c1, c2 = st.columns(2)
c1.plotly_chart(dist, width="stretch")
c2.plotly_chart(stages, width="stretch")
st.plotly_chart(fps, width="stretch")

info = run.system
export = run.to_dict() | {"threads": threads or None}
d1, d2 = st.columns(2)
d1.download_button("Download CSV", bench.to_csv(), "benchmark.csv", "text/csv", disabled=running)
d2.download_button(
    "Download JSON", json.dumps(export, indent=2), "benchmark.json", "application/json", disabled=running
)
with st.expander("Measured on"):
    st.json(info)

if running:
    measure()  # reruns the page when done

report_sections.put_section(
    "benchmark",
    report_sections.ReportSection(
        "Benchmark",
        [
            ("text", f"{model_name} @ {imgsz}px on {info['cpu']} ({info['cores_logical']} cores), GPU: {info['gpu']}."),
            *[("text", card.headline()) for card in cards],
            ("table", card_frame),
            ("table", table),
            *[("text", line) for line in transfer_text],
            *[("text", note) for note in bench.notes],
            ("figure", dist),
            ("figure", stages),
        ],
    ),
)
