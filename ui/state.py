"""What each page keeps between runs: one named dataclass per page, its fields typed results.

A field ``f`` of a page's state lives in ``st.session_state["<prefix>:<f>"]`` (the key the widgets and tests
know it by); :func:`kept_keys` derives from these classes what a reload keeps (:mod:`ui.persist`), so adding
a field is all it takes for it to survive a reload.

    state = BenchmarkState.read()       # every field, None where nothing is kept
    state.results = run
    state.write()                       # None fields are removed
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Self

import streamlit as st

if TYPE_CHECKING:
    from core.deploy.capacity import CapacityResult
    from core.measure import BenchJob, BenchRun, EvalJob, EvalRun, ProfileRun
    from core.precision import ExploreJob, ExploreResult
    from core.video import Recording, VideoJob


class PageState:
    """Mixed into a page's state dataclass; ``PREFIX`` names the page in the session keys."""

    PREFIX: ClassVar[str]

    @classmethod
    def key(cls, name: str) -> str:
        return f"{cls.PREFIX}:{name}"

    @classmethod
    def session_keys(cls) -> tuple[str, ...]:
        return tuple(cls.key(f.name) for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def read(cls) -> Self:
        return cls(**{f.name: st.session_state.get(cls.key(f.name)) for f in dataclasses.fields(cls)})  # type: ignore[arg-type]

    def write(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None:
                st.session_state.pop(self.key(f.name), None)
            else:
                st.session_state[self.key(f.name)] = value


class Preset(NamedTuple):
    """Images another page sends to Compare images (the Accuracy page's worst images)."""

    paths: list[str]
    what: str  # what they are, in words
    variants: list[str]


@dataclass
class CompareImagesState(PageState):
    PREFIX = "img"
    decoded: dict[str, Any] | None = None  # decoded images by content digest (the page's cache)
    raw: dict[Any, Any] | None = None  # network outputs by (model, variant, image): filters re-run only NMS
    preset: Preset | None = None
    uploads: list[tuple[str, bytes]] | None = None  # (name, bytes) of the last upload, kept over a reload
    transfer: dict[str, list[float]] | None = None  # remote variants' transfer in the last run


@dataclass
class BenchmarkState(PageState):
    PREFIX = "bench"
    job: BenchJob | None = None  # the run on its worker thread, until the page takes its results
    results: BenchRun | None = None
    profile: ProfileRun | None = None  # "Where the time goes" (core.measure.profile), of the variants timed
    capacity: CapacityResult | None = None  # "Capacity": how many streams this machine carries per variant


@dataclass
class AccuracyState(PageState):
    PREFIX = "acc"
    job: EvalJob | None = None  # the run on its worker thread, until the page takes its results
    results: EvalRun | None = None


@dataclass
class VideoState(PageState):
    PREFIX = "vid"
    job: VideoJob | None = None
    clip: Any = None  # pages/compare_video.Clip: the clip and settings the job ran with


@dataclass
class PrecisionState(PageState):
    PREFIX = "prec"
    job: ExploreJob | None = None
    results: ExploreResult | None = None
    saved: str | None = None  # the variant of the recipe saved from this result


@dataclass
class LiveState(PageState):
    PREFIX = "live"
    recording: Recording | None = None  # the last recording of the Live page (its file is in the session folder)


PAGE_STATES: tuple[type[PageState], ...] = (CompareImagesState, BenchmarkState, AccuracyState, VideoState,
                                            PrecisionState, LiveState)  # fmt: skip
# Beside the pages' states, a reload keeps the model chosen, the session's folder and the report's sections.
SESSION_KEYS = ("model_choice", "tmpdir", "report")


def kept_keys() -> tuple[str, ...]:
    """What a reload keeps: derived from the page states, never listed by hand."""
    return SESSION_KEYS + tuple(k for state in PAGE_STATES for k in state.session_keys())
