"""Models: choose the model, see and build its artefacts, clear the cache, see what can run here."""

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from core.cluster import ENV_CLUSTER
from core.config import OFFICIAL_MODELS, cache_dir
from core.errors import CoreError
from core.measure import digest
from core.model import SourceKind, recipe_rows, resolve_model
from core.runtime import cpu_features, runtime_availability, system_info
from core.variants import Artefact
from ui import access, messages, model, navigation, pool, session_files, widgets

navigation.through_app_navigation()


st.title("Models")

current = model.model_choice()
st.subheader("Choose the model")
kinds = ["Official YOLOv5", "Upload .pt / .onnx"] + (["Path on the server"] if access.server_paths() else [])
first = 0 if current.spec in OFFICIAL_MODELS else len(kinds) - 1
kind = st.radio("Source", kinds, index=first, horizontal=True, key="models:kind")
spec = ""
if kind == kinds[0]:
    default = OFFICIAL_MODELS.index(current.spec) if current.spec in OFFICIAL_MODELS else 0
    spec = st.selectbox("Model", OFFICIAL_MODELS, index=default, key="models:official")
    st.caption(f"Taken from the models folder or downloaded once from the YOLOv5 v7.0 release into `{cache_dir()}`.")
elif kind == kinds[1]:
    up = st.file_uploader(
        f"Model file (.pt, .onnx; up to {widgets.MAX_UPLOAD_MB} MB)", type=["pt", "pth", "onnx"], key="models:upload"
    )
    if up is not None:
        path = session_files.session_dir() / "models" / f"{digest(up.getvalue())}-{session_files.safe_name(up.name)}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_bytes(up.getvalue())
        spec = str(path)
else:
    spec = st.text_input("Path to a .pt or .onnx file", value="" if current.spec in OFFICIAL_MODELS else current.spec)

if access.trusted_pickles():
    trust = st.checkbox(
        "I trust this file (ultralytics .pt checkpoints are unpickled, which can run code from the file)",
        value=False,
        key="models:trust",
    )
else:
    trust = False
    st.caption(
        "Ultralytics .pt checkpoints are not loaded here: loading one runs code from the file on this server. "
        "Legacy YOLOv5 .pt and .onnx files load safely."
    )
c1, c2, c3 = st.columns([1, 1, 2])
sizes = [320, 416, 512, 640, 768, 1024]
imgsz = c1.selectbox("Image size", sizes, index=sizes.index(current.imgsz) if current.imgsz in sizes else 3)
threads = c2.number_input("CPU threads (0 = auto)", 0, 64, current.threads)
if access.server_paths():
    calib = c3.text_input(
        "INT8 calibration images (a folder; never your evaluation set)", value=current.calib_dir, key="models:calib"
    )
else:
    calib = current.calib_dir  # the folder this server was started with (YOLOLAB_CALIB_DIR), or the bundled pictures
    c3.caption(f"INT8 calibration: `{calib}`" if calib else "INT8 calibration: the bundled pictures")

if st.button("Use this model", type="primary", disabled=not spec):
    # The new model becomes the active one only once it has loaded: a file that is unsafe, damaged or
    # not a detector is refused here with the reason, and every page keeps working with the old one.
    try:
        source = resolve_model(spec, trust=trust)  # checks the file and the trust gate before anything loads
        if calib and not Path(calib).is_dir():
            raise CoreError(f"calibration folder {calib} does not exist")
        choice = model.ModelChoice(spec, int(imgsz), calib, trust, int(threads), model.shape_of(current))
        with st.spinner(f"Checking {source.path.name} (first time: export to ONNX)…"):
            model.load_store(choice)
    except CoreError as exc:
        st.error(messages.error_text(exc))
        st.caption(f"The active model is still `{current.label}`.")
    else:
        model.set_model_choice(choice)
        st.session_state["models:using"] = f"Using {source.path.name} ({source.kind.value})."
        st.rerun()  # the sidebar (drawn before this page) shows the new model at once
if using := st.session_state.pop("models:using", None):
    st.success(using)

store = model.active_store()
if store is None:
    st.stop()
info = store.info()
st.subheader(f"{store.source.name}")
m = st.columns(4)
m[0].metric("source", store.source.kind.value)
m[1].metric("input", f"{store.input_size}px, {store.shape.value}")
m[2].metric("classes", len(info.names))
m[3].metric("output layout", info.layout.value)
st.caption(
    f"From: {store.source.provenance or store.source.path} · sha256 `{store.source.sha256}` · artefacts in "
    f"`{store.directory}`"
)
if store.source.kind is SourceKind.ULTRALYTICS_PT:
    st.warning("This is an ultralytics checkpoint loaded with your explicit trust.")

st.subheader("Artefacts")
status = store.status()
rows = [
    {
        "artefact": s.artefact.value,
        "built": "yes" if s.exists else "no",
        "size MB": round(s.size_bytes / 1e6, 2) if s.exists else None,
        "sha256": s.sha256[:16] if s.exists else "",
        "build s": s.build_seconds,
        "file": s.path.name,
    }
    for s in status
]
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
if store.calibration_note:
    st.caption(store.calibration_note + " (the calibration folder above).")
missing = [s.artefact for s in status if not s.exists]
b1, b2 = st.columns(2)
if b1.button(f"Build missing ({len(missing)})", disabled=not missing):
    update, bar = widgets.progress_callback("Building")
    try:
        for i, art in enumerate(missing):
            store.artefact(art, lambda f, msg, i=i, art=art: update((i + f) / len(missing), f"{art.value}: {msg}"))
    except CoreError as exc:
        st.error(messages.error_text(exc))
    bar.empty()
    st.rerun()


@st.dialog("Clear this model's cache?")
def confirm_clear() -> None:
    built = [a for a in store.status() if a.exists and a.path != store.source.path]
    mb = sum(a.size_bytes for a in built) / 1e6
    st.write(
        f"Deletes the {len(built)} files built for {store.source.name} ({mb:.1f} MB). Each is rebuilt the next time "
        "a variant needs it (the export and the INT8 calibration take a while). Your model file is not touched."
    )
    c1, c2 = st.columns(2)
    if c1.button("Clear", type="primary", key="models:clear:yes"):
        pool.forget_detectors(store)
        store.clear()
        st.session_state["models:cleared"] = store.source.name
        st.rerun()
    if c2.button("Keep", key="models:clear:no"):
        st.rerun()


if b2.button("Clear this model's cache…"):
    confirm_clear()
if cleared := st.session_state.pop("models:cleared", None):
    st.success(f"Cleared {cleared}'s cache. Artefacts are rebuilt the next time they are needed.")
st.caption(
    f"{Artefact.ONNX_INT8_TRT.value} is what TensorRT variants run; it can be built and inspected on any machine."
)

st.subheader("INT8 recipes")
recipe_list = recipe_rows(store)
if not recipe_list:
    st.caption(
        "No saved recipes yet. The Precision explorer searches for one (which blocks stay in float, how ranges "
        "are calibrated) and saves it here; it then runs as ort:int8@NAME on every page."
    )
else:
    st.dataframe(
        pd.DataFrame(
            [
                {"variant": r["variant"], "settings": r["describe"], "how it was made": r["note"],
                 "built": "yes" if r["built"] else "no", "saved": r["created"]}
                for r in recipe_list
            ]
        ),
        hide_index=True,
        width="stretch",
        key="models:recipes",
    )  # fmt: skip
    d1, d2 = st.columns([2, 1])
    doomed = d1.selectbox("Recipe", [r["name"] for r in recipe_list], key="models:recipe:pick")
    if d2.button("Delete recipe", key="models:recipe:delete") and doomed:
        store.recipes.delete(doomed)
        st.session_state["models:recipe:deleted"] = doomed
        st.rerun()
if gone := st.session_state.pop("models:recipe:deleted", None):
    st.success(f"Deleted recipe {gone}. Its built INT8 file stays cached until the cache is cleared.")

cluster_address = os.environ.get(ENV_CLUSTER, "")
if cluster_address:
    st.subheader("Cluster")
    if st.button("Ask the nodes again", key="models:cluster:refresh", help="The node list is kept a minute"):
        widgets.cluster_nodes.clear()
    cluster_nodes = widgets.cluster_nodes(cluster_address)
    if isinstance(cluster_nodes, str):
        st.warning(f"{cluster_nodes}. Variants in this process run as usual.")
    else:
        st.caption(
            f"Ray cluster `{cluster_address}`: {len(cluster_nodes)} node(s). Every page's variant picker has a "
            "grid per node; on the command line a variant runs on a node as NODE/runtime:precision "
            "(e.g. gpu-box/trt:fp16, NODE as in the first column). What each node can run:"
        )
        st.dataframe(
            pd.DataFrame(
                [
                    {"node": n["handle"] + (" (this machine)" if n["here"] else ""), "ip": n["ip"],
                     "CPUs": n["cpus"], "GB": n["memory_gb"], "GPUs": n["gpus"],
                     "can run": ", ".join(r["runtime"] for r in n["runtimes"] if r["available"]) or n.get("error", ""),
                     "cannot run": "; ".join(f"{r['runtime']}: {r['reason']}" for r in n["runtimes"]
                                             if not r["available"])}
                    for n in cluster_nodes
                ]
            ),
            hide_index=True,
            width="stretch",
            key="models:cluster",
        )  # fmt: skip

st.subheader("Runtimes on this machine")
_cpu = cpu_features()
st.caption(
    f"This CPU: {_cpu.summary()}. "
    + ("BF16 is native: ov:bf16 and torch:bf16 compute in it. " if _cpu.bf16 else f"BF16: {_cpu.bf16_reason()}. ")
    + f"INT8 (cpu flavour) files use {8 if _cpu.vnni else 7}-bit weights here "
    + ("(VNNI sums int8 products without overflow)." if _cpu.vnni else "(no VNNI: 8-bit weights could overflow).")
)
st.dataframe(
    pd.DataFrame(
        [
            {
                "runtime": r["label"],
                "variants": ", ".join(f"{r['runtime']}:{p}" for p in r["precisions"]),
                "available": "yes" if r["available"] else "no",
                "why not": r["reason"]
                or "; ".join(f"{r['runtime']}:{p}: {why}" for p, why in r["unavailable_precisions"].items()),
            }
            for r in runtime_availability()
        ]
    ),
    hide_index=True,
    width="stretch",
)
with st.expander("System"):
    st.json(system_info())
