"""The active model: chosen on the Models page, kept in session state, its store loaded once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import streamlit as st

from core.config import DEFAULT_IMGSZ, cache_dir
from core.errors import CoreError
from core.model import ModelStore, open_store
from core.variants import Shape
from ui import messages

ENV_MODEL = "YOLOLAB_MODEL"  # the model the app starts with (path or official name)
ENV_CALIB = "YOLOLAB_CALIB_DIR"  # default folder of INT8 calibration images
ENV_DATA = "YOLOLAB_EVAL_DATA"  # default labelled dataset for the Accuracy page


@dataclass(frozen=True)
class ModelChoice:
    spec: str  # a path or an official name
    imgsz: int = DEFAULT_IMGSZ
    calib_dir: str = ""
    trust: bool = False
    threads: int = 0  # 0 = one per physical core
    shape: str = Shape.SQUARE.value  # the input shape policy every page runs (core.variants.Shape)

    @property
    def label(self) -> str:
        return Path(self.spec).name if os.sep in self.spec else self.spec

    @property
    def input_words(self) -> str:
        """ "640px, rect"."""
        return f"{self.imgsz}px, {shape_of(self)}"


def shape_of(choice: ModelChoice) -> str:
    return getattr(choice, "shape", Shape.SQUARE.value)  # a choice kept from before the shape policy: square


def shape_picker() -> None:
    """The input shape every page runs, in the sidebar: a change applies to the next run of any page."""
    choice = model_choice()
    options = [s.value for s in Shape]

    def changed() -> None:
        set_model_choice(replace(model_choice(), shape=st.session_state["sidebar:shape"]))

    st.session_state["sidebar:shape"] = shape_of(choice)  # follows the choice (a reload, the Models page)
    st.radio(
        "Input shape",
        options,
        key="sidebar:shape",
        horizontal=True,
        on_change=changed,
        help=" · ".join(f"**{s.value}**: {s.help}" for s in Shape),
    )


def default_choice() -> ModelChoice:
    return ModelChoice(spec=os.environ.get(ENV_MODEL, "yolov5n"), calib_dir=os.environ.get(ENV_CALIB, ""))


def model_choice() -> ModelChoice:
    if "model_choice" not in st.session_state:
        st.session_state.model_choice = default_choice()
    choice: ModelChoice = st.session_state.model_choice
    return choice


def set_model_choice(choice: ModelChoice) -> None:
    st.session_state.model_choice = choice


@st.cache_resource(show_spinner=False, max_entries=8)
def _store(spec: str, imgsz: int, calib_dir: str, trust: bool, cache_root: str, shape: str) -> ModelStore:
    store = open_store(
        spec, cache_dir=Path(cache_root), trust=trust, imgsz=imgsz, shape=Shape(shape),
        calib_dir=Path(calib_dir) if calib_dir else None,
    )  # fmt: skip
    store.info()  # export FP32 now, so every page can read names and sizes
    return store


def load_store(choice: ModelChoice, imgsz: int | None = None, shape: str | None = None) -> ModelStore:
    """The store of ``choice``, loaded once per process and checked usable; raises CoreError if not.

    Anything else a damaged model file makes the converters raise becomes a CoreError too: a file a
    user gave must never surface as a traceback."""
    try:
        shape = shape or shape_of(choice)
        store = _store(choice.spec, imgsz or choice.imgsz, choice.calib_dir, choice.trust, str(cache_dir()), shape)
        _ = store.input_size  # a fixed-size ONNX refuses another size here
        return store
    except CoreError:
        raise
    except Exception as exc:
        raise CoreError(f"{choice.label}: cannot be converted ({type(exc).__name__}: {exc})") from exc


def active_store(show_errors: bool = True, imgsz: int | None = None, shape: str | None = None) -> ModelStore | None:
    """The store of the active model (at ``imgsz`` and ``shape`` if given), loaded once per process.

    An error is shown, never raised."""
    c = model_choice()
    try:
        with st.spinner(f"Preparing {c.label} (first time: export to ONNX)…"):
            return load_store(c, imgsz, shape)
    except CoreError as exc:
        if show_errors:
            st.error(f"Model {c.label!r} cannot be used: {messages.error_text(exc)}")
            st.caption("Choose another model on the **Models** page (left).")
        return None
