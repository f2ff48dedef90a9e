"""core.measure.decision: the card and headline a team decides on, built from whichever results exist."""

from __future__ import annotations

import pytest

from core.data.dataset import load_dataset
from core.measure.bench import benchmark_variants
from core.measure.decision import build_cards, cards_table
from core.measure.evaluation import evaluate


@pytest.fixture(scope="module")
def results(detectors, bus_image, val_dir):
    fp32, int8 = detectors["ort:fp32"], detectors["ort:int8"]
    bench = benchmark_variants([fp32, int8], bus_image, warmup=1, iterations=20)
    evals = evaluate([fp32, int8], load_dataset(val_dir, max_images=8), reference=fp32, resamples=200)
    return bench, evals


def test_a_card_joins_speed_from_the_benchmark_and_accuracy_from_the_evaluation(results):
    bench, evals = results
    ref, int8 = build_cards(["ort:fp32", "ort:int8"], "ort:fp32", bench=bench, evals=evals, model_mb={"ort:int8": 2.1})
    assert ref.is_reference and ref.speedup is None and ref.headline().startswith("ort:fp32 — the reference")
    assert int8.latency_source == "benchmark" and int8.latency == bench[1].spread
    assert int8.speedup is not None and int8.speedup.value == pytest.approx(bench[0].spread.p50 / bench[1].spread.p50)
    assert int8.delta is evals[1].delta and int8.model_mb == 2.1
    a = evals[1].agreement
    assert int8.missed_pct == pytest.approx(100 * a.missed / (a.matched + a.missed))
    line = int8.headline()
    assert line.startswith("ort:int8 — ") and "ort:fp32" in line and "mAP50-95 points" in line
    assert "8 images" in line and f"misses {int8.missed_pct:.0f} % of ort:fp32's detections" in line
    assert line.endswith(" at conf 0.25")  # "... detections at conf 0.25", or "... and adds N % at conf 0.25"
    assert ("faster" in line or "slower" in line) != ("no measurable speed difference" in line)


def test_without_a_benchmark_latency_comes_from_the_evaluation_and_says_so(results):
    _, evals = results
    cards = build_cards(["ort:fp32", "ort:int8"], "ort:fp32", evals=evals)
    assert cards[1].latency_source == "evaluation" and cards[1].speedup is not None
    table = cards_table(cards)
    assert any("at mAP settings" in n for n in table.notes)
    rows = table.records()
    assert rows[0]["speed-up"] == "(reference)" and rows[1]["ΔmAP50-95 pts"].endswith(")")


def test_nothing_is_invented_when_a_result_is_missing():
    (card,) = build_cards(["ort:int8"], "ort:fp32")
    assert card.latency is None and card.delta is None and card.missed_pct is None
    assert card.headline() == "ort:int8 — no comparison with the reference yet"
    assert cards_table([card]).records()[0]["p10–p90 ms"] == "—"
