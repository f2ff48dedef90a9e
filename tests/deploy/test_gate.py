"""``python -m core gate``: pass (0), fail (1) or inconclusive (3) by the intervals of eval and bench --json.

The slow tests gate a real run (YOLOv5n, 32 images of coco-val128, ``ort:fp32`` and ``ort:int8``); the others
gate crafted files whose intervals are known, the cases a real run cannot be made to produce on demand.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.deploy.gate import Limits, MachineMismatchError, Verdict, gate, judge_at_least, judge_at_most
from core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **({"YOLOLAB_CACHE_DIR": str(cache)} if cache else {}))
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path


# ---------------------------------------------------------------------------------------------
# a real run


@pytest.fixture(scope="module")
def real_run(yolov5n_pt, calib_dir, val_dir, session_cache, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("gate")
    model = ["--model", str(yolov5n_pt), "--calib", str(calib_dir)]
    runs = {
        "eval": ["eval", *model, "--data", str(val_dir), "--variants", "ort:fp32,ort:int8", "--max-images", "32"],
        # the same eval again, the variant alone (its reference still runs): a baseline of the same software
        "eval_again": ["eval", *model, "--data", str(val_dir), "--variants", "ort:int8", "--max-images", "32"],
        "bench": ["bench", *model, "--variants", "ort:fp32,ort:int8", "--warmup", "2", "--iterations", "30"],
    }
    files = {}
    for name, args in runs.items():
        p = cli(*args, "--json", cache=session_cache)
        assert p.returncode == 0, p.stderr[-2000:]
        files[name] = write(out / f"{name}.json", json.loads(p.stdout))
    return files


@pytest.mark.slow
def test_a_real_run_passes_generous_rules_and_fails_an_impossible_speedup(real_run):
    files = [str(real_run["eval"]), str(real_run["bench"])]
    ok = cli("gate", *files, "--variant", "ort:int8", "--max-map-drop", "5", "--min-speedup", "0.5")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0] == "gate ort:int8: PASS (exit 0)"
    assert any(line.split()[0] == "pass" and "mAP50-95 vs ort:fp32" in line and "32 images" in line for line in lines)
    assert any(
        line.split()[0] == "pass" and "speed-up vs ort:fp32" in line and "30 and 30 timed" in line for line in lines
    )

    bad = cli("gate", *files, "--variant", "ort:int8", "--max-map-drop", "5", "--min-speedup", "5", "--json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    doc = json.loads(bad.stdout)  # --json: only JSON on stdout
    assert doc["kind"] == "gate" and doc["verdict"] == "fail" and doc["exit_code"] == 1
    speed = next(r for r in doc["rules"] if r["rule"] == "speed-up")
    assert speed["verdict"] == "fail" and speed["ci95"][1] < 5 and speed["limit"] == 5
    assert next(r for r in doc["rules"] if r["rule"] == "mAP vs reference")["verdict"] == "pass"


@pytest.mark.slow
def test_eval_and_bench_carry_the_fingerprint_and_what_pairing_needs(real_run, yolov5n_pt):
    import hashlib

    ev, be = (json.loads(real_run[k].read_text()) for k in ("eval", "bench"))
    for doc in (ev, be):
        fp = doc["fingerprint"]
        assert fp["cpu"] == doc["system"]["cpu"] and fp["cpu_features"] == doc["system"]["cpu_features"]
        assert fp["imgsz"] == 640 and fp["shape"] == "square" and fp["threads"] >= 1 and fp["gpu"]
        assert fp["model_sha256"] == hashlib.sha256(yolov5n_pt.read_bytes()).hexdigest()
        assert fp["versions"]["onnxruntime"]
    assert len(ev["image_files"]) == 32 and all(name.endswith(".jpg") for name in ev["image_files"])
    assert all(v["per_image"]["images"] == 32 for v in ev["variants"])
    assert all(len(v["samples_ms"]) == 30 for v in be["variants"])
    assert be["variants"][1]["speedup_vs_reference"]["range"][0] > 0


@pytest.mark.slow
def test_the_same_eval_run_twice_is_no_difference_paired_over_images(real_run):
    again = cli("gate", str(real_run["eval_again"]), "--variant", "ort:int8", "--baseline", str(real_run["eval"]),
                "--max-map-drop", "5", "--json")  # fmt: skip
    doc = json.loads(again.stdout)
    rule = next(r for r in doc["rules"] if r["rule"] == "mAP vs baseline")
    assert rule["verdict"] == "pass" and rule["ci95"][0] <= 0 <= rule["ci95"][1]
    assert "paired bootstrap over the same 32 images" in rule["words"]
    assert again.returncode == 0, again.stdout


def _degrade(doc: dict[str, Any], variant: str) -> dict[str, Any]:
    """``variant``'s per-image record with every other true positive made false (a model that finds half as
    much), and its reported mAP recomputed from it as eval would report it."""
    from core.measure.bootstrap import Matches, weighted_map

    doc = copy.deepcopy(doc)
    row = next(v for v in doc["variants"] if v["variant"] == variant)
    tp = np.frombuffer(base64.b64decode(row["per_image"]["detections"]["tp"]), dtype="<u2").copy()
    tp[::2] = 0
    row["per_image"]["detections"]["tp"] = base64.b64encode(tp.tobytes()).decode()
    m = Matches.from_record(row["per_image"])
    map50, map50_95 = weighted_map(m, np.ones((1, m.images)))
    row["map50"], row["map50_95"] = float(map50[0]), float(map50_95[0])
    return doc


@pytest.mark.slow
def test_a_worse_run_against_its_baseline_fails_paired_and_without_per_image_data_is_unpaired(real_run, tmp_path):
    base = json.loads(real_run["eval"].read_text())
    worse = write(tmp_path / "worse.json", _degrade(base, "ort:int8"))
    p = cli("gate", str(worse), "--variant", "ort:int8", "--baseline", str(real_run["eval"]), "--max-map-drop", "5")
    assert p.returncode == 1, p.stdout + p.stderr
    line = next(line for line in p.stdout.splitlines() if "vs the baseline's ort:int8" in line)
    assert line.split()[0] == "fail" and "paired bootstrap over the same 32 images" in line

    old = copy.deepcopy(base)
    for row in old["variants"]:
        del row["per_image"]  # an eval --json from before per-image results
    old_file = write(tmp_path / "old.json", old)
    p = cli("gate", str(worse), "--variant", "ort:int8", "--baseline", str(old_file), "--max-map-drop", "5")
    assert p.returncode == 3, p.stdout + p.stderr
    line = next(line for line in p.stdout.splitlines() if "vs the baseline's ort:int8" in line)
    assert line.split()[0] == "inconclusive" and "unpaired and with no interval" in line and str(old_file) in line


@pytest.mark.slow
def test_a_baseline_from_another_cpu_is_refused_unless_allowed_and_then_listed(real_run, tmp_path):
    other = json.loads(real_run["bench"].read_text())
    other["fingerprint"]["cpu"] = "Intel(R) Xeon(R) Platinum 8480+"
    other["fingerprint"]["cpu_features"] = ["avx2", "avx512f", "amx"]
    baseline = write(tmp_path / "other_bench.json", other)
    args = [
        "gate",
        str(real_run["bench"]),
        "--variant",
        "ort:int8",
        "--min-speedup",
        "0.5",
        "--baseline",
        str(baseline),
    ]
    refused = cli(*args)
    assert refused.returncode == 2 and refused.stdout == ""
    [line] = refused.stderr.strip().splitlines()
    assert "not measured on the same machine" in line and "Intel(R) Xeon(R) Platinum 8480+" in line
    assert "--allow-different-machines" in line

    allowed = cli(*args, "--allow-different-machines", "--max-p50-increase", "1000%", "--json")
    doc = json.loads(allowed.stdout)
    assert allowed.returncode == doc["exit_code"] == 0, allowed.stdout
    listed = " | ".join(doc["machine_differences"])
    assert "cpu Intel(R) Xeon(R) Platinum 8480+ -> " in listed and "+avx512_vnni" in listed and "-amx" in listed
    assert any(r["rule"] == "p50 vs baseline" for r in doc["rules"])


# ---------------------------------------------------------------------------------------------
# crafted files


FINGERPRINT = {
    "cpu": "AMD EPYC 9R14",
    "cpu_features": ["avx2", "avx512f"],
    "gpu": "none",
    "threads": 2,
    "imgsz": 640,
    "shape": "square",
    "model_sha256": "ab" * 32,
    "versions": {"onnxruntime": "1.32.0"},
}


def crafted_eval(value: float, lo: float, hi: float) -> dict[str, Any]:
    delta = {"map50_95_points": {"value": value, "ci95": [lo, hi]}, "images": 128}
    return {
        "kind": "eval",
        "reference": "ort:fp32",
        "variants": [
            {"variant": "ort:fp32", "map50_95": 0.34, "delta_vs_reference": None},
            {"variant": "ort:int8", "map50_95": 0.34 + value / 100, "delta_vs_reference": delta},
        ],
        "fingerprint": FINGERPRINT,
    }


def bench_row(variant: str, samples: np.ndarray) -> dict[str, Any]:
    p10, p50, p90, p95 = np.percentile(samples, [10, 50, 90, 95])
    lat = {"p50": p50, "p10": p10, "p90": p90, "p95": p95, "min": samples.min(), "median_ci95": [p50 - 1, p50 + 1]}
    return {"variant": variant, "latency_ms": lat, "iterations": samples.size, "samples_ms": samples.tolist()}


def crafted_bench(fp32_ms: float, int8_ms: float, spread: float = 2.0, n: int = 60) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    rows = [
        bench_row(v, ms + spread * rng.standard_normal(n)) for v, ms in (("ort:fp32", fp32_ms), ("ort:int8", int8_ms))
    ]
    return {"kind": "bench", "variants": rows, "fingerprint": FINGERPRINT}


def test_the_verdict_follows_the_interval_not_the_point():
    assert judge_at_least(-0.4, 0.2, -0.5) is Verdict.PASS
    assert judge_at_least(-0.9, -0.6, -0.5) is Verdict.FAIL
    assert judge_at_least(-0.9, 0.1, -0.5) is Verdict.INCONCLUSIVE  # the point -0.4 would have passed
    assert judge_at_most(1.0, 1.08, 1.1) is Verdict.PASS
    assert judge_at_most(1.12, 1.3, 1.1) is Verdict.FAIL
    assert judge_at_most(1.05, 1.2, 1.1) is Verdict.INCONCLUSIVE


def test_intervals_straddling_the_limits_are_inconclusive_exit_3(tmp_path):
    ev = write(tmp_path / "eval.json", crafted_eval(-0.3, -1.1, +0.4))  # straddles the 0.5-point drop
    be = write(tmp_path / "bench.json", crafted_bench(30.0, 29.5))  # speed-up about 1.02x, straddles 1.0
    p = cli("gate", str(ev), str(be), "--variant", "ort:int8")
    assert p.returncode == 3, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "gate ort:int8: INCONCLUSIVE (exit 3)"
    assert [line.split()[0] for line in lines[1:3]] == ["inconclusive", "inconclusive"]
    assert "-0.30 points (-1.10 to +0.40" in lines[1] and "allowed drop 0.5 points" in lines[1]
    assert "required at least 1x" in lines[2] and "60 and 60 timed calls" in lines[2]


def test_a_failed_rule_wins_over_an_inconclusive_one(tmp_path):
    result = gate(
        [
            write(tmp_path / "e.json", crafted_eval(-2.0, -2.8, -1.2)),
            write(tmp_path / "b.json", crafted_bench(30, 29.5)),
        ],
        "ort:int8",
    )
    assert [r.verdict for r in result.rules] == [Verdict.FAIL, Verdict.INCONCLUSIVE]
    assert result.exit_code == 1


def test_p95_against_the_reference_by_bootstrap_over_the_timed_calls(tmp_path):
    slow_tail = crafted_bench(30.0, 20.0)
    tail = np.asarray(slow_tail["variants"][1]["samples_ms"])
    tail[::4] = 60.0  # one call in four stalls: a faster median, a far worse p95
    slow_tail["variants"][1] = bench_row("ort:int8", tail)
    be = write(tmp_path / "bench.json", slow_tail)
    result = gate([be], "ort:int8", Limits(min_speedup=1.2, max_p95_increase=10))
    speed, p95 = result.rules
    assert speed.verdict is Verdict.PASS and p95.verdict is Verdict.FAIL and p95.lo > 1.1
    assert "bootstrap over 60 and 60 timed calls" in p95.words and "allowed at most 1.10x" in p95.words


def test_files_that_cannot_be_gated_are_one_line_errors(tmp_path):
    ev = write(tmp_path / "eval.json", crafted_eval(-0.3, -1.1, 0.4))
    with pytest.raises(InputError, match="has no results for ort:fp16; it has: ort:fp32, ort:int8"):
        gate([ev], "ort:fp16")
    with pytest.raises(InputError, match="is a compare result; gate reads eval and bench"):
        gate([write(tmp_path / "c.json", {"kind": "compare"})], "ort:int8")
    with pytest.raises(InputError, match="needs a bench result"):
        gate([ev], "ort:int8", Limits(min_speedup=1.1))
    old = crafted_eval(-0.3, -1.1, 0.4)
    del old["fingerprint"]
    with pytest.raises(InputError, match="has no fingerprint"):
        gate([ev], "ort:int8", baseline=[write(tmp_path / "old.json", old)])
    other = crafted_bench(30, 20)
    other["fingerprint"] = dict(FINGERPRINT, threads=8)
    with pytest.raises(MachineMismatchError, match="threads 2 -> 8"):  # the run's own files must describe one run
        gate([ev, write(tmp_path / "b.json", other)], "ort:int8")
    p = cli("gate", str(ev), "--variant", "ort:int8", "--max-p95-increase", "ten", "--json")
    assert p.returncode == 2 and json.loads(p.stdout)["kind"] == "error"


def test_a_new_model_or_runtime_version_is_what_a_baseline_compares_listed_not_refused(tmp_path):
    now = crafted_bench(30.0, 20.0)
    then = crafted_bench(30.0, 20.5)
    then["fingerprint"] = dict(FINGERPRINT, model_sha256="cd" * 32, versions={"onnxruntime": "1.31.0"})
    result = gate([write(tmp_path / "now.json", now)], "ort:int8", baseline=[write(tmp_path / "then.json", then)])
    assert result.machine_differences == []
    assert "onnxruntime 1.31.0 -> 1.32.0" in result.changes and any("model sha256" in c for c in result.changes)
    p50 = next(r for r in result.rules if r.name == "p50 vs baseline")
    assert p50.verdict is Verdict.PASS and p50.hi <= 1.1
