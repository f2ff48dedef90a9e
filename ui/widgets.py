"""Widgets every page shares: the variant picker (the variant table as a grid), thresholds, progress."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.backends import Availability, availability
from core.compare import MIN_CONF
from core.convert import list_images
from core.decision import DecisionCard, cards_table
from core.errors import CoreError
from core.processing import PostParams
from core.store import NEEDS_CALIBRATION, ModelStore
from core.variants import REFERENCE, VARIANTS, Precision, Runtime, Variant

if TYPE_CHECKING:
    from pandas import DataFrame

MAX_UPLOAD_MB = 200  # keep in sync with .streamlit/config.toml server.maxUploadSize


@st.cache_data(show_spinner=False, ttl=600)
def _runtime_status() -> dict[str, tuple[bool, str]]:
    return {rt.value: (s.ok, s.reason) for rt in Runtime for s in [availability(rt)]}


def variant_status(v: Variant, store: ModelStore | None) -> Availability:
    ok, reason = _runtime_status()[v.runtime.value]
    if not ok:
        return Availability(False, reason)
    missing = NEEDS_CALIBRATION if store is None and v.precision is Precision.INT8 else ""
    missing = missing or (store.missing_input(v) if store is not None else "")
    if missing:
        return Availability(False, f"{missing}: set a folder on the Models page")
    return Availability(True)


def variant_picker(
    key: str,
    store: ModelStore | None,
    default: Sequence[str] = ("ort:fp32", "ort:int8"),
    max_count: int = 4,
    disabled: bool = False,
) -> list[Variant]:
    """A runtime x precision grid of checkboxes; returns the chosen, runnable variants in table order.

    ``disabled``: shown but locked (a running job uses them).
    """
    precisions = list(Precision)
    header = st.columns([2, 1, 1, 1])
    header[0].caption("runtime")
    for col, p in zip(header[1:], precisions, strict=True):
        col.caption(p.value.upper())
    chosen: list[Variant] = []
    reasons: dict[str, str] = {}
    for rt in Runtime:
        cols = st.columns([2, 1, 1, 1])
        statuses = {p: variant_status(Variant(rt, p), store) for p in precisions if Variant(rt, p) in VARIANTS}
        usable = any(s.ok for s in statuses.values())
        # a runtime that cannot run here is greyed out, with the reason in full below the grid
        cols[0].markdown(f"**{rt.label}**" if usable else f":gray[{rt.label} (unavailable)]")
        for col, p in zip(cols[1:], precisions, strict=True):
            v = Variant(rt, p)
            if v not in VARIANTS:
                col.markdown("—")
                continue
            status = statuses[p]
            if not status:
                reasons.setdefault(status.reason, str(v))
            picked = col.checkbox(
                str(v),
                value=str(v) in default and status.ok,
                key=f"{key}:{v}",
                disabled=disabled or not status.ok,
                help=status.reason or VARIANTS[v].note or None,
                label_visibility="collapsed",
            )
            if picked and status.ok:
                chosen.append(v)
    chosen += _recipe_picks(key, store, default, disabled, reasons)
    chosen += _node_picks(key, disabled)
    for reason, example in reasons.items():
        st.caption(f"Unavailable ({example} …): {reason}")
    if len(chosen) > max_count:
        st.warning(f"{len(chosen)} variants chosen; at most {max_count} fit side by side. Untick some.")
        st.stop()
    if store is not None and not disabled:
        announce_builds(store, chosen)
    return chosen


def _recipe_picks(
    key: str, store: ModelStore | None, default: Sequence[str], disabled: bool, reasons: dict[str, str]
) -> list[Variant]:
    """The model's saved INT8 recipes (Precision explorer), one checkbox each, below the grid."""
    from core.precision.recipes import recipe_variant

    recipes = store.recipes.all() if store is not None else []
    if not recipes:
        return []
    st.caption("Saved INT8 recipes of this model (Precision explorer; Models page lists and deletes them)")
    picked: list[Variant] = []
    cols = st.columns(2)
    for i, recipe in enumerate(recipes):
        v = Variant.parse(recipe_variant(recipe))
        status = variant_status(v, store)
        if not status:
            reasons.setdefault(status.reason, str(v))
        on = cols[i % 2].checkbox(
            str(v),
            value=str(v) in default and status.ok,
            key=f"{key}:{v}",
            disabled=disabled or not status.ok,
            help=f"{recipe.describe()}. {recipe.note}".strip(),
        )
        if on and status.ok:
            picked.append(v)
    return picked


def _node_picks(key: str, disabled: bool) -> list[Variant]:
    """With a cluster ($YOLOLAB_CLUSTER): variants on its nodes, typed as NODE/runtime:precision."""
    from core.cluster import ENV_CLUSTER
    from core.variants import parse_variants

    if not os.environ.get(ENV_CLUSTER):
        return []
    typed = st.text_input(
        "Also on cluster nodes (NODE/runtime:precision, comma-separated; the Models page lists the nodes)",
        key=f"{key}:nodes",
        placeholder="gpu-box/trt:fp16, gpu-box/ort:fp32",
        disabled=disabled,
    )
    if not typed.strip():
        return []
    try:
        picked = parse_variants(typed)
    except CoreError as exc:
        st.error(str(exc))
        return []
    here = [str(v) for v in picked if not v.node]
    if here:
        st.error(f"{', '.join(here)}: no node given; tick variants of this machine in the grid above")
    return [v for v in picked if v.node]


def announce_builds(store: ModelStore, variants: Sequence[Variant]) -> None:
    """Say before a run what it will build first (e.g. INT8 calibration after an image-size change)."""
    for v in variants:
        artefact = v.spec.artefact
        try:
            if store.variant_path(v).is_file():
                continue
        except CoreError:
            continue  # cannot be named (INT8 without calibration images): the picker said why
        if artefact.int8_flavour is not None:
            options, folder = store.int8_plan(v)
            n = min(len(list_images(folder)), options.max_images or 10**9) if folder else 0
            what = f"calibrates INT8 on {n} images of {folder.name if folder else '?'} first"
            st.info(f"{v} at {store.input_size} px is not built yet: the first run {what} (about a minute).")
        else:
            st.caption(f"{v} at {store.input_size} px is not built yet: the first run converts it (a few seconds).")


def reference_picker(variants: Sequence[Variant], key: str) -> Variant:
    default = variants.index(REFERENCE) if REFERENCE in variants else 0
    picked: Variant = st.selectbox(
        "Reference variant (diffs are against it)", variants, index=default, key=key, format_func=str
    )
    return picked


def post_controls(names: Sequence[str], key: str, disabled: bool = False) -> PostParams:
    c1, c2, c3 = st.columns([1, 1, 2])
    conf = c1.slider("Confidence", MIN_CONF, 1.0, 0.25, 0.01, key=f"{key}:conf", disabled=disabled)
    iou = c2.slider("NMS IoU", 0.05, 0.95, 0.45, 0.05, key=f"{key}:iou", disabled=disabled)
    picked = c3.multiselect(
        "Only these classes", list(names), key=f"{key}:classes", placeholder="all classes", disabled=disabled
    )
    classes = tuple(names.index(n) for n in picked) or None
    return PostParams(conf=conf, iou=iou, classes=classes)


# ---------------------------------------------------------------------------------------------
# small helpers


def run_button(label: str, results_key: str, first_time: str) -> tuple[bool, DeltaGenerator]:
    """The page's run button; returns (clicked, the box for the run's progress).

    A page that measures at the end of its script draws the previous results first: while a run is on,
    they are marked as the previous run's (the page turns their downloads off). With no results yet and
    no click, ``first_time`` says what to do and the page stops.
    """
    clicked = st.button(label, type="primary")
    box = st.container()
    if results_key not in st.session_state:
        if not clicked:
            st.info(first_time)
            st.stop()
    elif clicked:
        st.warning(
            "Below: the previous run's results, until this run has finished (their downloads are off meanwhile)."
        )
    return clicked, box


def progress_callback(text: str) -> tuple[Callable[[float, str], None], DeltaGenerator]:
    bar = st.progress(0.0, text=text)

    def update(fraction: float, message: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=f"{text} {message}")

    return update, bar


def model_sizes(store: ModelStore, variants: Sequence[str]) -> dict[str, float]:
    """MB of the file each variant runs from, for the ones already built."""
    out = {}
    for v in variants:
        try:
            path = store.variant_path(Variant.parse(v))
        except CoreError:
            continue
        if path.is_file():
            out[v] = path.stat().st_size / 1e6
    return out


def decision_cards(cards: Sequence[DecisionCard], key: str) -> DataFrame:
    """The headline of each variant in plain words, then the card table; returns the table for the report."""
    import pandas as pd

    st.subheader("Decision")
    for card in cards:
        line = card.headline()
        st.markdown(f"**{line}**" if not card.is_reference else line)
    table = cards_table(cards)
    frame = pd.DataFrame(table.records())
    st.dataframe(frame, hide_index=True, width="stretch", key=f"{key}:cards")
    for note in table.notes:
        st.caption(note)
    return frame


def labelled_dataset(key: str, disabled: bool = False) -> Path | None:
    """Where a labelled YOLO set comes from: the bundled default, a folder on the server or an uploaded zip."""
    from core.archive import MAX_UNPACKED_BYTES, dataset_root, extract_zip
    from core.compare import digest
    from ui import model, session_files

    default_data = os.environ.get(model.ENV_DATA, "")
    options = (["Bundled default"] if default_data and Path(default_data).is_dir() else []) + [
        "Folder path",
        "Upload a zip",
    ]
    source = st.radio(
        "Labelled dataset (images/ + labels/, YOLO format)", options, horizontal=True, key=f"{key}:source",
        disabled=disabled,
    )  # fmt: skip
    if source == "Bundled default":
        st.caption(f"`{default_data}`")
        return Path(default_data)
    if source == "Folder path":
        typed = st.text_input("Folder on the server", placeholder="/data/my-val-set", key=f"{key}:path",
                              disabled=disabled)  # fmt: skip
        return Path(typed).expanduser() if typed else None
    up = st.file_uploader(
        f"Zip with images/ and labels/ (up to {MAX_UPLOAD_MB} MB; unpacked at most "
        f"{MAX_UNPACKED_BYTES / 2**30:.0f} GB)",
        type=["zip"],
        key=f"{key}:zip",
        disabled=disabled,
    )
    if up is None:
        return None
    target = session_files.session_dir() / f"dataset-{digest(up.getvalue())}"
    try:
        return dataset_root(target) if target.exists() else extract_zip(up.getvalue(), target, up.name)
    except CoreError as exc:
        st.error(str(exc))
        st.stop()
    return None
