"""core.measure.job: a benchmark and an evaluation on a worker thread; the caller polls them and may stop them."""

from __future__ import annotations

from core.data import load_dataset
from core.measure import BenchJob, BenchRun, EvalJob, EvalRun, Job


def _bench(detectors, bus_image, iterations: int) -> BenchJob:
    return BenchJob(
        [detectors["ort:fp32"], detectors["ort:int8"]],
        bus_image,
        system={"cpu": "test"},
        model="yolov5n.pt",
        imgsz=640,
        image_name="bus.jpg",
        warmup=1,
        iterations=iterations,
    )


def test_a_bench_job_makes_the_bench_run_the_page_shows(detectors, bus_image):
    job = _bench(detectors, bus_image, iterations=5)
    job.wait(120)
    assert not job.running and not job.error and not job.stopped
    run = job.result
    assert isinstance(run, BenchRun) and [r.variant for r in run.results] == ["ort:fp32", "ort:int8"]
    assert run.iterations == 5 and all(r.latency.count == 5 for r in run.results)
    assert run.model == "yolov5n.pt" and run.image == "bus.jpg" and run.batch_size == 1
    assert job.progress[0] == 1.0
    assert "ort:fp32, ort:int8: 1 warm-up and 5 timed runs each" in job.words()


def test_a_stopped_bench_job_keeps_nothing(detectors, bus_image):
    job = _bench(detectors, bus_image, iterations=2000)
    job.stop()
    job.wait(120)
    assert job.stopped and job.result is None and not job.error


def test_an_eval_job_makes_an_eval_run_and_its_errors_stay_in_the_job(detectors, val_dir, tmp_path):
    dataset = load_dataset(val_dir, 8)
    job = EvalJob([detectors["ort:int8"]], dataset, detectors["ort:fp32"], model="yolov5n.pt", imgsz=640)
    job.wait(300)
    assert not job.error and isinstance(job.result, EvalRun)
    assert [r.variant for r in job.result.results] == ["ort:int8"] and job.result.reference == "ort:fp32"
    assert job.result.inventory.images == 8

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"not a picture")
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    bad = EvalJob([detectors["ort:fp32"]], load_dataset(tmp_path), detectors["ort:fp32"], model="m", imgsz=640)
    bad.wait(60)
    assert bad.result is None and bad.error.startswith("None of the 1 images") and "\n" not in bad.error


def test_no_exception_leaves_a_job():
    class Broken(Job[int]):
        def __init__(self) -> None:
            super().__init__()
            self.start()

        def work(self) -> int:
            raise ValueError("boom")

    job = Broken()
    job.wait(10)
    assert job.result is None and job.error == "unexpected ValueError: boom"
