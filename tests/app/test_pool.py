"""ui.pool and the compare cache: what a long-running server keeps stays bounded."""

from __future__ import annotations

from pathlib import Path

from core.measure.compare import ImageComparison, read_images
from core.runtime.processing import PostParams
from core.variants import CPU_VARIANTS, REFERENCE, Shape
from ui.pool import _Pool


class _Store:
    """Only what the pool reads of a store; opening a detector counts the builds."""

    def __init__(self, name: str) -> None:
        self.directory, self.input_size, self.calib_dir, self.built = Path(name), 640, None, 0
        self.shape = Shape.SQUARE

    def open_detector(self, variant, options, progress):
        self.built += 1
        store = self

        class _Det:
            def warmup(self, n: int) -> None: ...

            owner = store

        return _Det()


def test_the_pool_keeps_the_most_recently_used_detectors_only():
    pool = _Pool(limit=2)
    a, b = _Store("a"), _Store("b")
    first = pool.get(a, CPU_VARIANTS[0], 0, False, lambda f, m: None)
    assert pool.get(a, CPU_VARIANTS[0], 0, False, lambda f, m: None) is first and a.built == 1  # shared
    pool.get(a, CPU_VARIANTS[1], 0, False, lambda f, m: None)
    pool.get(a, CPU_VARIANTS[0], 0, False, lambda f, m: None)  # used again: now the most recent
    pool.get(b, CPU_VARIANTS[0], 0, False, lambda f, m: None)  # a third one: the least recently used goes
    assert pool.loaded() == [str(CPU_VARIANTS[0]), str(CPU_VARIANTS[0])]
    pool.get(a, CPU_VARIANTS[1], 0, False, lambda f, m: None)
    assert a.built == 3  # evicted, so built again when asked for


def test_a_sessions_raw_outputs_are_only_those_of_its_current_pictures(detectors, bus_jpg):
    zidane = bus_jpg.with_name("zidane.jpg")
    both = read_images([(p.name, p.read_bytes()) for p in (bus_jpg, zidane)]).images
    cache: dict = {}
    comparison = ImageComparison([detectors["ort:fp32"], detectors["ort:int8"]], REFERENCE, cache=cache, runs=1)
    comparison.result(both, PostParams())
    assert len(cache) == 4
    comparison.keep_only(both[1:])
    assert len(cache) == 2 and all(key[-1] == both[1].key for key in cache)
