"""core.measure.evaluation: variants over a labelled set, interleaved; mAP, latency, agreement with the reference."""

import pytest

from core.data.dataset import load_dataset
from core.measure.evaluation import eval_table, evaluate


def test_eval_rows_carry_map_latency_agreement_and_the_pareto_flag(detectors, val_dir):
    dataset = load_dataset(val_dir, max_images=8)
    fp32, int8 = detectors["ort:fp32"], detectors["ort:int8"]
    results = evaluate([fp32, int8], dataset, reference=fp32)
    assert [r.variant for r in results] == ["ort:fp32", "ort:int8"]
    assert results[0].agreement is None and results[1].agreement is not None
    assert all(r.accuracy.images == 8 and r.latency.count == 8 for r in results)
    table = eval_table(results, "ort:fp32")
    ref, other = table.records()
    assert ref["matched"] is None and other["matched"] == results[1].agreement.matched
    assert other["mAP50-95"] == round(results[1].accuracy.map50_95, 4)
    assert any(r["Pareto"] for r in (ref, other))  # a front always has a member
    assert any("agreement vs ort:fp32" in n for n in table.notes)
    d = results[1].delta
    assert results[0].delta is None and d is not None and d.images == 8 and d.resamples == 1000
    want = 100 * (results[1].accuracy.map50_95 - results[0].accuracy.map50_95)
    assert d.map50_95.value == pytest.approx(want) and d.map50_95.lo <= d.map50_95.value <= d.map50_95.hi
    assert other["ΔmAP50-95 pts"] == round(d.map50_95.value, 2) and ref["95 % interval"] == "(reference)"
    assert "8 images" in table.notes[0] and "expect wide intervals" in table.notes[0]
