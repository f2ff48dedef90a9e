"""Widgets every page shares: the variant picker (the variant table as a grid), thresholds, progress."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.errors import CoreError
from core.measure import MIN_CONF, DecisionCard, cards_table
from core.model import NEEDS_CALIBRATION, ModelStore, list_images
from core.runtime import Availability, PostParams, machine_line, runtime_availability, system_info
from core.tables import Table
from core.variants import ABSENT, REFERENCE, VARIANTS, Precision, Runtime, Variant
from ui import messages

if TYPE_CHECKING:
    from pandas import DataFrame

_BUILD_NOTES = "_widgets:build_notes"  # the placeholder announce_builds wrote into
MAX_UPLOAD_MB = 200  # keep in sync with .streamlit/config.toml server.maxUploadSize


@st.cache_data(show_spinner=False)
def machine() -> str:
    """What every number on these pages is measured on: the CPU, its instruction sets, the GPU."""
    return machine_line(system_info())


def _statuses(rows: list[dict[str, Any]]) -> dict[str, tuple[bool, str]]:
    """A doctor's runtime rows as runtime -> (ok, why) and, for a precision its runtime cannot compute here
    (BF16 without native support), "runtime:precision" -> (False, why)."""
    out = {str(r["runtime"]): (bool(r["available"]), str(r["reason"])) for r in rows}
    for r in rows:
        out |= {f"{r['runtime']}:{p}": (False, str(why)) for p, why in r.get("unavailable_precisions", {}).items()}
    return out


@st.cache_data(show_spinner=False, ttl=600)
def _runtime_status() -> dict[str, tuple[bool, str]]:
    return _statuses(runtime_availability())


def variant_status(
    v: Variant, store: ModelStore | None, runtimes: dict[str, tuple[bool, str]] | None = None
) -> Availability:
    """Can ``v`` run: its runtime here (or on its node: ``runtimes``, the node's doctor) and its inputs here."""
    known = runtimes if runtimes is not None else _runtime_status()
    ok, reason = known.get(v.runtime.value, (False, "unknown"))
    ok, reason = known.get(f"{v.runtime.value}:{v.precision.value}", (ok, reason)) if ok else (ok, reason)
    if not ok:
        return Availability(False, reason)
    missing = NEEDS_CALIBRATION if store is None and v.precision is Precision.INT8 else ""
    missing = missing or (store.missing_input(v.here) if store is not None else "")
    if missing:
        return Availability(False, f"{missing}: set a folder on the Models page")
    return Availability(True)


@dataclass
class _Picking:
    """One variant picker's drawing: its key, model, defaults, lock, and the reasons collected for below it."""

    key: str
    store: ModelStore | None
    default: Sequence[str]
    disabled: bool
    reasons: dict[str, str] = field(default_factory=dict)

    def box(self, where: DeltaGenerator, v: Variant, status: Availability, tip: str | None, **kw: Any) -> bool:
        """``v``'s checkbox in ``where``: ticked by default if asked and runnable; True if ticked and runnable."""
        if not status:
            self.reasons.setdefault(status.reason, str(v))
        on = where.checkbox(
            str(v),
            value=str(v) in self.default and status.ok,
            key=f"{self.key}:{v}",
            disabled=self.disabled or not status.ok,
            help=tip,
            **kw,
        )
        return bool(on and status.ok)


def runnable_defaults(store: ModelStore | None, default: Sequence[str]) -> list[str]:
    """``default`` where each can run here; one that cannot is replaced by the next runnable variant of the
    table, so a first visit always shows as many variants side by side as were asked for."""
    table = [str(v) for v in VARIANTS]
    runnable = [v for v in table if variant_status(Variant.parse(v), store).ok]
    chosen = [d for d in default if d in runnable or d not in table]  # recipes, node variants: as asked
    spare = [v for v in runnable if v not in chosen]
    return chosen + spare[: len(default) - len(chosen)]


def variant_picker(
    key: str,
    store: ModelStore | None,
    default: Sequence[str] = ("ort:fp32", "ort:int8"),
    max_count: int = 4,
    disabled: bool = False,
) -> list[Variant]:
    """A runtime x precision grid of checkboxes; returns the chosen, runnable variants in table order.

    The model's saved INT8 recipes follow the grid; with a cluster ($YOLOLAB_CLUSTER), each other node
    gets a grid of its own in an expander, its boxes enabled by what the node's doctor says runs there.
    ``disabled``: shown but locked (a running job uses them).
    """
    picking = _Picking(key, store, runnable_defaults(store, default), disabled)
    chosen = _grid(picking) + _recipe_picks(picking) + _node_picks(picking)
    for reason, example in picking.reasons.items():
        st.caption(f"Unavailable ({example} …): {reason}")
    if store is not None and store.calibration_note and any(v.precision is Precision.INT8 for v in chosen):
        st.caption(f":material/info: {store.calibration_note} (Models page).")
    if len(chosen) > max_count:
        st.warning(f"{len(chosen)} variants chosen; at most {max_count} fit side by side. Untick some.")
        st.stop()
    if store is not None and not disabled:
        announce_builds(store, chosen)
    return chosen


def _grid(picking: _Picking, node: str = "", runtimes: dict[str, tuple[bool, str]] | None = None) -> list[Variant]:
    """The variant table as checkboxes (on ``node`` when given, with that node's ``runtimes``)."""
    precisions = list(Precision)
    widths = [2] + [1] * len(precisions)
    header = st.columns(widths)
    header[0].caption("runtime")
    for col, p in zip(header[1:], precisions, strict=True):
        col.caption(p.value.upper())
    chosen: list[Variant] = []
    for rt in Runtime:
        cols = st.columns(widths)
        row = {p: Variant(rt, p) for p in precisions if Variant(rt, p) in VARIANTS}
        row = {p: v.on(node) for p, v in row.items()} if node else row
        statuses = {p: variant_status(v, picking.store, runtimes) for p, v in row.items()}
        usable = any(s.ok for s in statuses.values())
        # a runtime that cannot run here is greyed out, with the reason in full below the grid
        cols[0].markdown(f"**{rt.label}**" if usable else f":gray[{rt.label} (unavailable)]")
        for col, p in zip(cols[1:], precisions, strict=True):
            if p not in row:  # an empty cell; one left empty on purpose says why on hover
                col.markdown("—", help=ABSENT.get(Variant(rt, p)))
                continue
            v, status = row[p], statuses[p]
            tip = status.reason or VARIANTS[v.base].note or None
            if picking.box(col, v, status, tip, label_visibility="collapsed"):
                chosen.append(v)
    return chosen


def _recipe_picks(
    picking: _Picking, node: str = "", runtimes: dict[str, tuple[bool, str]] | None = None
) -> list[Variant]:
    """The model's saved INT8 recipes (Precision explorer), one checkbox each, below the grid."""
    from core.model import recipe_variant

    recipes = picking.store.recipes.all() if picking.store is not None else []
    if not recipes:
        return []
    st.caption("Saved INT8 recipes of this model (Precision explorer; Models page lists and deletes them)")
    picked: list[Variant] = []
    cols = st.columns(2)
    for i, recipe in enumerate(recipes):
        v = Variant.parse(recipe_variant(recipe))
        v = v.on(node) if node else v
        status = variant_status(v, picking.store, runtimes)
        if picking.box(cols[i % 2], v, status, f"{recipe.describe()}. {recipe.note}".strip()):
            picked.append(v)
    return picked


@st.cache_data(ttl=60, show_spinner="Asking the cluster's nodes…")
def cluster_nodes(address: str) -> list[dict[str, Any]] | str:
    """Each node's doctor report (``Cluster.doctor``), or one line saying why the cluster cannot be reached.

    Kept a minute: a node that joins shows within that (the Models page can ask again at once)."""
    from core.cluster import connect

    try:
        return connect(address).doctor()
    except CoreError as exc:
        return messages.error_text(exc)


def _node_picks(picking: _Picking) -> list[Variant]:
    """With a cluster ($YOLOLAB_CLUSTER): a grid per node other than this machine's, as NODE/runtime:precision."""
    from core.cluster import ENV_CLUSTER

    address = os.environ.get(ENV_CLUSTER, "").strip()
    if not address:
        return []
    nodes = cluster_nodes(address)
    if isinstance(nodes, str):
        st.caption(f"Cluster: {nodes}. The variants of this machine run as usual.")
        return []
    others = [n for n in nodes if not n.get("here")]
    if not others:
        st.caption(f"Cluster `{address}`: no node besides this machine's yet (the Models page lists them).")
        return []
    picked: list[Variant] = []
    for n in others:
        where = f"{n['ip']}, {n['cpus']:g} CPUs, {n['memory_gb']:g} GB, {n['gpus']:g} GPUs"
        if n.get("error"):
            st.caption(f"Node {n['name']} ({where}) cannot run this project's code: {n['error']}")
            continue
        runtimes = _statuses(n["runtimes"])
        expanded = any(d.startswith(f"{n['handle']}/") for d in picking.default)
        with st.expander(f"On node {n['handle']} ({where})", expanded=expanded):
            picked += _grid(picking, n["handle"], runtimes) + _recipe_picks(picking, n["handle"], runtimes)
    return picked


def announce_builds(store: ModelStore, variants: Sequence[Variant]) -> None:
    """Say before a run what it will build first (e.g. INT8 calibration after an image-size change).

    Said in a placeholder that :func:`clear_build_notes` empties once the build is done, so the page
    never shows "not built yet" beside results of that very build."""
    notes: list[tuple[bool, str]] = []
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
            what = f"calibrates INT8 on {n} images of {folder.name if folder else '?'} first (about a minute)"
        else:
            what = "converts it (a few seconds)"
        notes.append(
            (artefact.int8_flavour is not None, f"{v} at {store.input_size} px is not built yet: the first run {what}.")
        )
    if not notes:
        return
    holder = st.empty()
    with holder.container():
        for loud, text in notes:
            (st.info if loud else st.caption)(text)
    st.session_state[_BUILD_NOTES] = holder


def clear_build_notes() -> None:
    """Empty what :func:`announce_builds` said in this run (the artefacts are built now)."""
    holder = st.session_state.pop(_BUILD_NOTES, None)
    if holder is not None:
        with contextlib.suppress(Exception):  # a placeholder of an earlier run: nothing left to empty
            holder.empty()


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


def table_frame(table: Table) -> DataFrame:
    """A result's table as a DataFrame (numbers stay numbers, so columns sort as numbers)."""
    import pandas as pd

    return pd.DataFrame(table.records())


def show_table(table: Table, frame: DataFrame, **kwargs: Any) -> None:
    """``frame`` (:func:`table_frame` of ``table``) on the page: a cell with no value reads "—" (a number that
    does not apply, e.g. the reference's difference from itself), not "None"; floats at the table's digits."""

    def cell(digits: int | None) -> Callable[[Any], str]:
        def show(value: Any) -> str:
            if value is None or (isinstance(value, float) and value != value):
                return "—"
            if isinstance(value, float) and digits is not None:
                return f"{value:.{digits}f}"
            return str(value)

        return show

    styled = frame.style.format({c.title: cell(c.digits) for c in table.columns if c.title in frame.columns})
    st.dataframe(styled, hide_index=True, width="stretch", **kwargs)


def decision_cards(cards: Sequence[DecisionCard], key: str) -> DataFrame:
    """The headline of each variant in plain words, then the card table; returns the table for the report."""

    st.subheader("Decision")
    for card in cards:
        line = card.headline()
        st.markdown(f"**{line}**" if not card.is_reference else line)
    table = cards_table(cards)
    frame = table_frame(table)
    show_table(table, frame, key=f"{key}:cards")
    for note in table.notes:
        st.caption(note)
    return frame


def labelled_dataset(key: str, disabled: bool = False) -> Path | None:
    """Where a labelled YOLO set comes from: the bundled default, a folder on the server or an uploaded zip."""
    from core.data import MAX_UNPACKED_BYTES, dataset_root, extract_zip
    from core.measure import digest
    from ui import access, model, session_files

    default_data = os.environ.get(model.ENV_DATA, "")
    options = (
        (["Bundled default"] if default_data and Path(default_data).is_dir() else [])
        + (["Folder path"] if access.server_paths() else [])
        + ["Upload a zip"]
    )
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
        st.error(messages.error_text(exc))
        st.stop()
    return None
