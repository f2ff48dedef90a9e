"""A page's run on a worker thread (core.measure.Job): its progress and Stop button, and taking its result.

A page whose state has ``job`` and ``results`` fields (Benchmark, Accuracy) starts the job, keeps it in
its state and calls :func:`settle` at the top of every run: a finished job's result becomes the page's
results, wherever the user was when it finished. While it runs, :func:`follow` shows it and reruns the
page when it ends. The job lives in the session, so leaving the page or reloading it loses nothing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

import streamlit as st

from ui import messages

if TYPE_CHECKING:
    from streamlit.delta_generator import DeltaGenerator

    from core.measure import Job

POLL_SECONDS = 0.3


class JobState(Protocol):
    job: Any
    results: Any

    def write(self) -> None: ...


def finished_results(state: JobState) -> Any:
    """The results to show now: a finished job's, before its page has taken them, else the kept ones."""
    job = state.job
    if job is not None and not job.running and job.result is not None:
        return job.result
    return state.results


def settle(state: JobState, stopped: str) -> None:
    """At the top of the page: a job that ended leaves the state, its result becoming the page's results.

    What ended it otherwise is said here, once: its error, or ``stopped`` after a Stop.
    """
    job: Job | None = state.job
    if job is None or job.running:
        return
    if job.result is not None:
        state.results = job.result
    state.job = None
    state.write()
    if job.failure is not None:
        st.error(messages.error_text(job.failure))
    elif job.error:
        st.error(job.error)
    elif job.stopped:
        st.info(stopped)


def follow(job: Job, box: DeltaGenerator, label: str, key: str) -> None:
    """In ``box``: a Stop button and the job's progress until it ends; then the page runs again (never returns).

    Leaving the page interrupts only this loop: the job goes on, and the page shows it again on return.
    """
    with box:
        if st.button("Stop", key=f"{key}:stop"):
            job.stop()
        bar = st.progress(0.0, text=label)
    while job.running:
        fraction, message = job.progress
        words = "stopping at the next step…" if job.should_stop() else message
        bar.progress(min(max(fraction, 0.0), 1.0), text=f"{label} {words}")
        time.sleep(POLL_SECONDS)
    st.rerun()


def start(state: JobState, job: Job) -> None:
    """Run ``job`` for the page whose state this is: stopped if the session goes away, kept in the state (a
    reload or another page keeps it); the page is drawn again with its settings locked."""
    from ui import session_files

    session_files.track_job(job)  # stopped if this session goes away
    state.job = job
    state.write()
    st.rerun()


def results_or_progress(state: JobState, box: DeltaGenerator, label: str, key: str, prompt: str) -> None:
    """Below the settings: the running job's progress over the previous results (marked as such), or the
    prompt when there is nothing to show yet (the script stops there)."""
    busy = state.job is not None
    slot = st.empty()  # drawn either way, so what follows keeps its place on the page
    if busy and state.results is not None:
        slot.warning(
            "Below: the previous run's results, until this run has finished (their downloads are off meanwhile)."
        )
    if state.results is None:
        if busy:
            follow(state.job, box, label, key)
        st.info(prompt)
        st.stop()
