"""Runs on a worker thread: a UI starts one, polls its progress, may stop it, then reads its result.

:class:`Job` is what every such run shares (the video run, the precision explorer, the benchmark and the
evaluation); :class:`BenchJob` and :class:`EvalJob` are the Benchmark's and the Accuracy page's. Nothing
here knows about Streamlit: a page keeps the job in its session and redraws from it while it runs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from core.errors import CoreError
from core.measure.bench import BenchRun, benchmark_variants
from core.measure.evaluation import EvalRun, evaluate
from core.measure.transfer import TransferWatch

if TYPE_CHECKING:
    import numpy as np

    from core.data import YoloDataset
    from core.runtime import Detector

R = TypeVar("R")


class Stopped(Exception):  # noqa: N818 -- not an error: how a stopped run leaves its work
    """Raised inside a job's work (from its progress callback) when a stop was asked for and nothing is kept."""


class Job(Generic[R]):
    """A run of :meth:`work` on a daemon thread, started by :meth:`start` (the subclass's constructor calls it).

    ``progress`` is the latest (fraction, message). When the thread ends, ``result`` holds what
    :meth:`work` returned, or ``error`` a one-line message (:meth:`error_text`), or ``stopped`` is True
    when :meth:`stop` ended a run that keeps nothing (:class:`Stopped`): no exception leaves the thread.
    A run that keeps what it measured checks :meth:`should_stop` itself and returns its partial result.
    """

    thread_name = "job"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._progress = (0.0, "starting")
        self.result: R | None = None
        self.error = ""
        self.failure: CoreError | None = None  # the error behind ``error`` when core raised it (it may name a Setting)
        self.stopped = False  # stopped before the end, nothing kept
        self.thread = threading.Thread(target=self._main, name=self.thread_name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def work(self) -> R:
        raise NotImplementedError

    def error_text(self, text: str) -> str:
        """The message of an error that ended the run (subclasses add what it was about)."""
        return text

    def finished(self) -> None:
        """Called on the thread when the run ends, however it ends."""

    def _main(self) -> None:
        try:
            self.result = self.work()
        except Stopped:
            self.stopped = True
        except CoreError as exc:  # core's messages are written for users
            self.failure = exc
            self.error = self.error_text(str(exc))
        except Exception as exc:  # shown to the user; the app keeps running
            self.error = self.error_text(f"unexpected {type(exc).__name__}: {exc}")
        finally:
            self.finished()

    def on_progress(self, fraction: float, message: str) -> None:
        """The progress callback to pass to core: keeps the latest step."""
        with self._lock:
            self._progress = (fraction, message)

    def on_progress_or_stop(self, fraction: float, message: str) -> None:
        """The progress callback of a run that keeps nothing when stopped: raises :class:`Stopped` at the
        first step after :meth:`stop`."""
        self.on_progress(fraction, message)
        if self._stop.is_set():
            raise Stopped

    @property
    def progress(self) -> tuple[float, str]:
        with self._lock:
            return self._progress

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask the run to stop at its next step."""
        self._stop.set()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)


class BenchJob(Job[BenchRun]):
    """:func:`~core.measure.benchmark_variants` on a thread, making a :class:`BenchRun`.

    :meth:`stop` ends it at the next step (a variant's warm-up, a round of one variant) and keeps nothing:
    a benchmark cut short would compare variants timed over different rounds, which the interleaving is
    there to prevent.
    """

    thread_name = "bench-job"

    def __init__(
        self,
        detectors: Sequence[Detector],
        image: np.ndarray,
        *,
        system: dict[str, Any],
        model: str,
        imgsz: int,
        image_name: str,
        warmup: int,
        iterations: int,
        batch: int = 1,
        threads: int | None = None,
        model_sha256: str = "",
    ) -> None:
        super().__init__()
        self.variants = [str(d.variant) for d in detectors]
        self.iterations, self.warmup, self.batch = iterations, warmup, batch
        self._detectors, self._image = list(detectors), image
        shape = detectors[0].shape.value if detectors else "square"  # the store's: every detector shares it
        self._run = dict(system=system, model=model, imgsz=imgsz, image=image_name, batch_size=batch, threads=threads,
                         shape=shape, model_sha256=model_sha256)  # fmt: skip
        self._transfer = TransferWatch.start(detectors)  # variants on cluster nodes: this run's transfer samples
        self.start()

    def work(self) -> BenchRun:
        results = benchmark_variants(
            self._detectors,
            self._image,
            warmup=self.warmup,
            iterations=self.iterations,
            batch=self.batch,
            progress=self.on_progress_or_stop,
        )
        return BenchRun(
            results=results,
            iterations=self.iterations,
            transfers=self._transfer.samples(),
            nodes={str(d.variant): d.node.to_dict() for d in self._detectors if d.node is not None},
            **self._run,
        )

    def words(self) -> str:
        """What this run measures, in a line."""
        per = "image" if self.batch == 1 else f"call of {self.batch} images"
        return (
            f"{', '.join(self.variants)}: {self.warmup} warm-up and {self.iterations} timed runs each, "
            f"one {per} at a time"
        )


class EvalJob(Job[EvalRun]):
    """:func:`~core.measure.evaluate` on a thread, making an :class:`EvalRun` of ``detectors`` against ``reference``.

    :meth:`stop` ends it at the next image and keeps nothing: mAP over part of the set is not the set's.
    A run where no image could be read ends with ``error`` saying so.
    """

    thread_name = "eval-job"

    def __init__(
        self,
        detectors: Sequence[Detector],
        dataset: YoloDataset,
        reference: Detector,
        *,
        model: str,
        imgsz: int,
        batch_size: int = 1,
        system: dict[str, Any] | None = None,
        threads: int | None = None,
        model_sha256: str = "",
    ) -> None:
        """``system``, ``threads``, ``model_sha256``: the machine fingerprint its JSON carries (``gate`` reads it)."""
        super().__init__()
        self.variants = [str(d.variant) for d in detectors]
        self.dataset, self.batch_size = dataset, batch_size
        self._detectors, self._reference = list(detectors), reference
        self._model, self._imgsz = model, imgsz
        self._fingerprint = dict(system=system or {}, threads=threads, model_sha256=model_sha256)
        self.start()

    def work(self) -> EvalRun:
        results = evaluate(
            self._detectors,
            self.dataset,
            reference=self._reference,
            progress=self.on_progress_or_stop,
            batch_size=self.batch_size,
        )
        if not any(r.accuracy.images for r in results):
            shown = ", ".join(self.dataset.inventory.unreadable_images[:5])
            raise CoreError(
                f"None of the {len(self.dataset.items)} images of {self.dataset.root.name} could be read ({shown}); "
                "nothing to score."
            )
        return EvalRun(
            self._model,
            self._imgsz,
            str(self.dataset.root),
            self.dataset.inventory,
            str(self._reference.variant),
            self.batch_size,
            results,
            shape=self._reference.shape.value,
            **self._fingerprint,
        )

    def words(self) -> str:
        return (
            f"{', '.join(self.variants)} on {len(self.dataset.items)} images of {self.dataset.root.name}, "
            f"batch size {self.batch_size}"
        )
