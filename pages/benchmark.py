"""Benchmark: latency percentiles, distribution, stage split and throughput per variant."""

import json

import streamlit as st

from core.data import IMAGE_TYPES, load_image, sample_images
from core.deploy.capacity import CapacityResult, default_clip, measure_capacity
from core.errors import CoreError, InputError
from core.measure import (
    BenchJob,
    BenchRun,
    ProfileRun,
    build_cards,
    measure_footprint,
    profile_variants,
    transfer_lines,
)
from core.report import latency_distribution, profile_section, stage_split, throughput
from core.runtime import machine_line, system_info
from core.variants import parse_variants
from ui import jobs, messages, model, navigation, pool, report_sections, widgets
from ui.deploy import bundle_download
from ui.state import AccuracyState, BenchmarkState

navigation.through_app_navigation()

STOPPED = (
    "Stopped: nothing of that run is kept (variants cut short would have been timed over different rounds); "
    "the results below, if any, are the previous run's."
)

st.title("Benchmark")
st.caption(
    "Per-image latency, end to end (letterbox + inference + NMS), measured by the same routine as "
    "`python -m core bench`."
)

state = BenchmarkState.read()
jobs.settle(state, STOPPED)
job: BenchJob | None = state.job
busy = job is not None  # running: settle() took it out of the state when it ended
# The settings sit in one container: whether a run is going or not, everything below keeps its place on the
# page, so the previous results are redrawn in place (not beside a stale copy) while a run goes on.
with st.container():
    choice = model.model_choice()
    if busy:
        st.caption(f"Settings are locked while the benchmark runs: **Stop** it to change them. Running: {job.words()}.")
    s1, s2 = st.columns(2)
    sizes = sorted({320, 416, 512, 640, 768, 1024, choice.imgsz})
    imgsz = s1.selectbox("Image size (px)", sizes, index=sizes.index(choice.imgsz), key="bench:imgsz", disabled=busy)
    threads = s2.number_input(
        "CPU threads (0 = one per physical core)", 0, 64, choice.threads, key="bench:threads", disabled=busy
    )
    store = model.active_store(imgsz=imgsz)
    if store is None:
        st.stop()

    with st.expander("Variants", expanded=not busy):
        variants = widgets.variant_picker(
            "bench", store, default=("ort:fp32", "ort:fp16", "ort:int8"), max_count=8, disabled=busy
        )

    c1, c2, c3, c4 = st.columns(4)
    warmup = c1.number_input("Warm-up runs", 0, 200, 10, key="bench:warmup", disabled=busy)
    iterations = c2.number_input("Timed runs", 5, 2000, 100, key="bench:iters", disabled=busy)
    batch = c3.number_input(
        "Batch size",
        1,
        32,
        1,
        key="bench:batch",
        help="Throughput mode above 1: that many images per runtime call. Latency is then per call, FPS per image.",
        disabled=busy,
    )
    samples = {p.name: p for p in sample_images()[:2]}
    image_choice = c4.selectbox("Image", [*samples, "upload…"], key="bench:image", disabled=busy)
    upload = (
        st.file_uploader("Image to time", type=list(IMAGE_TYPES), key="bench:upload", disabled=busy)
        if image_choice == "upload…"
        else None
    )

    if not busy:
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

# The run goes on a worker thread (it survives leaving the page and a reload); meanwhile the previous
# results stay below, marked as such with their downloads off, and the progress is shown above them.
start = st.button("Run benchmark", type="primary", disabled=busy)
progress_box = st.container()
if start:
    with progress_box:
        detectors = pool.open_detectors(store, variants, threads=int(threads), in_turn=False)
    if detectors is None:
        st.stop()
    job = BenchJob(
        detectors,
        image,
        system=system_info(),
        model=store.source.name,
        imgsz=store.input_size,
        image_name=image_name,
        warmup=int(warmup),
        iterations=int(iterations),
        batch=int(batch),
        threads=int(threads),
        model_sha256=store.source.sha256,
    )
    jobs.start(state, job)
jobs.results_or_progress(
    state,
    progress_box,
    "Benchmarking",
    "bench",
    "Press **Run benchmark**. Each variant is built the first time it is used (progress is shown).",
)
run: BenchRun = state.results
results, model_name, imgsz, threads, batch = run.results, run.model, run.imgsz, run.threads, run.batch_size
accuracy = jobs.finished_results(AccuracyState.read())
evals = accuracy.results if accuracy is not None and accuracy.model == model_name else []
variants = [r.variant for r in results]
profiled = state.profile if state.profile is not None and state.profile.model == model_name else None
memory = {f.variant: f.peak_mb for f in profiled.footprints} if profiled else None  # from Where the time goes
cards = build_cards(variants, variants[0], bench=results, evals=evals, model_mb=widgets.model_sizes(store, variants),
                    memory_mb=memory)  # fmt: skip
card_frame = widgets.decision_cards(cards, "bench")
bundle_download(store, cards, "bench")
if not evals:
    st.caption("Run the **Accuracy** page on this model to add ΔmAP and missed detections to these cards.")
bench = run.table()
table = widgets.table_frame(bench)
transfer_text = transfer_lines(run.transfers, variants)
for line in transfer_text:
    st.caption(line)
st.subheader(f"{model_name} @ {run.shape} {imgsz}px, {threads or 'auto'} threads, batch size {batch}")
widgets.show_table(bench, table)
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
d1.download_button("Download CSV", bench.to_csv(), "benchmark.csv", "text/csv", disabled=busy)
d2.download_button("Download JSON", json.dumps(export, indent=2), "benchmark.json", "application/json", disabled=busy)
with st.expander(f"Measured on {machine_line(info)}"):
    st.json(info)

st.subheader("Where the time goes")
st.caption(
    "Each runtime's own profiler (ONNX Runtime's session profiling, OpenVINO's performance counters, PyTorch block "
    "by block) on the benchmark's image: milliseconds per YOLOv5 block, split into compute, quantize / dequantize "
    "and reorders and casts; profiled and plain calls in turn. The same numbers as `python -m core profile`."
)
if st.button("Profile these variants", key="bench:profile_run", disabled=busy):
    local = [v for v in parse_variants(variants) if not v.node]  # a variant on a cluster node is profiled there
    profiled = pool.open_detectors(store, local, threads=int(threads), in_turn=True) if local else None
    if profiled:
        with st.spinner("Profiling, 10 calls per variant, then each variant's memory in a fresh process…"):
            try:
                found = profile_variants(profiled, image, runs=10)
                memory = [measure_footprint(d, store.variant_artefact(d.variant)) for d in profiled]
                state.profile = ProfileRun(store.source.name, store.input_size, image_name, 10, variants[0], found,
                                           memory, shape=store.shape.value)  # fmt: skip
                state.write()
                st.rerun()  # the decision cards above take the memory it measured
            except CoreError as exc:
                st.error(messages.error_text(exc))
if state.profile is not None:
    section = profile_section(state.profile.to_dict())
    for kind, item in section.items:
        if kind == "text":
            st.caption(item)
        elif kind == "figure":
            st.plotly_chart(item, width="stretch")
        else:
            st.dataframe(item, hide_index=True, width="stretch")
    report_sections.put_section("profile", section)
else:
    st.caption("Press **Profile these variants** to see where each variant's time goes.")

st.subheader("Capacity")
st.caption(
    "How many cameras this machine carries: N streams at once, each its own session with the CPU threads split "
    "between them (OpenVINO: its throughput streams on one compiled model), frames due at the frame rate. A stream "
    "is carried when it keeps up and its p95 latency (frame due -> detections) stays under one frame interval. "
    "The same numbers as `python -m core capacity`; this machine is busy while it runs."
)
k1, k2, k3, k4 = st.columns(4)
stream_text = k1.text_input("Streams", "1,2,4", key="bench:cap_streams", disabled=busy)
cap_fps = k2.number_input("Frames per second", 1.0, 120.0, 15.0, key="bench:cap_fps", disabled=busy)
cap_seconds = k3.number_input("Seconds per point", 1.0, 60.0, 5.0, key="bench:cap_seconds", disabled=busy)
cap_memory = k4.checkbox("Memory per stream", True, key="bench:cap_memory", disabled=busy,
                         help="Each variant loaded in a fresh process: seconds each")  # fmt: skip
if st.button("Run capacity", key="bench:cap_run", disabled=busy):
    try:
        counts = sorted({int(n) for n in stream_text.split(",") if n.strip()})
        if not counts or counts[0] < 1:
            raise ValueError
    except ValueError:
        st.error(f"Streams: whole numbers of at least 1 separated by commas, like 1,2,4 (got {stream_text!r}).")
    else:
        local = [v for v in parse_variants(variants) if not v.node]  # this machine's capacity
        update, bar = widgets.progress_callback("Capacity")
        try:
            st.session_state["bench:capacity"] = measure_capacity(
                store, local, counts, default_clip(), fps=float(cap_fps), seconds=float(cap_seconds),
                cores=int(threads) or None, memory=cap_memory, progress=update,
            )  # fmt: skip
        except CoreError as exc:
            st.error(messages.error_text(exc))
        bar.empty()
capacity: CapacityResult | None = st.session_state.get("bench:capacity")
if capacity is not None and capacity.model == model_name:
    for verdict in capacity.verdicts:
        st.markdown(f"**{verdict.variant}**: {verdict.words()}")
    cap_table = capacity.table()
    widgets.show_table(cap_table, widgets.table_frame(cap_table))
    for note in cap_table.notes:
        st.caption(note)
    with st.expander("Each stream"):
        per_stream = capacity.streams_table()
        widgets.show_table(per_stream, widgets.table_frame(per_stream))
else:
    st.caption("Press **Run capacity** to size this machine for the variants above.")

if busy:
    jobs.follow(job, progress_box, "Benchmarking", "bench")  # reruns the page when done

report_sections.put_section(
    "benchmark",
    report_sections.ReportSection(
        "Benchmark",
        [
            ("text", f"{model_name} @ {run.shape} {imgsz}px on {machine_line(info)}."),
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
