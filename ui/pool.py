"""Detectors: loaded once per process and shared by sessions (Detector is thread-safe)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from core.errors import CoreError
from core.model import ModelStore
from core.runtime import BackendOptions, Detector, OrtOptions
from core.variants import Variant
from ui import messages

from .model import model_choice

MAX_DETECTORS = 8  # loaded at once per server process; the least recently used beyond that are let go


class _Pool:
    def __init__(self, limit: int = MAX_DETECTORS) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._detectors: OrderedDict[tuple[Any, ...], Detector] = OrderedDict()

    def get(
        self, store: ModelStore, variant: Variant, threads: int, spin: bool, progress: Callable[[float, str], None]
    ) -> Detector:
        key = (str(store.directory), store.input_size, str(store.calib_dir), variant, threads, spin, store.shape)
        with self._lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:  # two sessions asking for the same variant build it once
            if key not in self._detectors:
                det = store.open_detector(
                    variant, BackendOptions(threads=threads or None, ort=OrtOptions(spin=spin)), progress
                )
                det.warmup(2)
                with self._lock:
                    self._detectors[key] = det
            with self._lock:
                self._detectors.move_to_end(key)
                # Not closed here: a session may be running an evicted one right now (a video job); each is
                # freed when the last session holding it lets go. Detectors of models nobody uses go first.
                while len(self._detectors) > self.limit:
                    old, _ = self._detectors.popitem(last=False)
                    self._key_locks.pop(old, None)
                return self._detectors[key]

    def loaded(self) -> list[str]:
        with self._lock:
            return [str(k[3]) for k in self._detectors]

    def drop(self, store: ModelStore) -> None:
        """Forget the detectors of ``store``, e.g. after its cache was cleared.

        Not closed here: another session may be running one right now (a video job); each is freed when
        the last session holding it lets go."""
        with self._lock:
            for key in [k for k in self._detectors if k[0] == str(store.directory)]:
                del self._detectors[key]


def forget_detectors(store: ModelStore) -> None:
    _pool().drop(store)


@st.cache_resource(show_spinner=False)
def _pool() -> _Pool:
    return _Pool()


def open_detectors(
    store: ModelStore,
    variants: Sequence[Variant],
    threads: int | None = None,
    in_turn: bool = True,
    beside_other_work: bool = False,
) -> list[Detector] | None:
    """Detectors for ``variants``, building artefacts with a progress bar the first time.

    ``in_turn``: the variants will alternate call by call (comparisons, video), so CPU threads must not
    spin between calls (see BackendOptions.spin); a benchmark timing one variant at a time passes False.
    ``beside_other_work``: other threads need the cores between calls (video decode and encode): never spin.
    """
    threads = model_choice().threads if threads is None else threads
    spin = not beside_other_work and (not in_turn or len(variants) == 1)
    out = []
    bar = None
    for i, v in enumerate(variants):
        try:

            def report(f: float, msg: str, i: int = i, v: Variant = v) -> None:
                nonlocal bar
                bar = bar or st.progress(0.0, text="Preparing variants…")
                bar.progress(min((i + f) / len(variants), 1.0), text=f"{v}: {msg}")

            out.append(_pool().get(store, v, threads, spin, report))
        except CoreError as exc:
            st.error(f"{v} cannot run: {messages.error_text(exc)}")
            return None
    if bar is not None:
        bar.empty()
        from .widgets import clear_build_notes  # here, not at the top: widgets imports this module's users

        clear_build_notes()
    return out
