"""core.evaluation: variants over a labelled set, interleaved; mAP, latency, agreement with the reference."""

from core.accuracy import load_dataset
from core.evaluation import eval_table, evaluate


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
    assert "agreement vs ort:fp32" in table.notes[0]
