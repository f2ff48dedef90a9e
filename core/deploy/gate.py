"""Pass, fail or "inconclusive" for one variant, by the intervals that ``eval`` and ``bench`` results carry.

Each rule compares an interval with an allowed region: it passes when the whole interval lies inside, fails
only when the whole interval lies beyond, and is inconclusive when the interval straddles the limit (the run
cannot tell; more images or more iterations can). Point estimates never decide.

Rules on the variant against its run's reference:

- mAP: ΔmAP50-95 (points) and its paired 95 % bootstrap interval, from ``eval`` — at least ``-max_map_drop``;
- speed: the speed-up (ratio of medians) and its 95 % bootstrap interval, from ``bench`` — at least ``min_speedup``;
- tail: p95 over the reference's p95, bootstrap over the timed calls, from ``bench`` — at most ``1 + max_p95_increase``.

With a baseline (the same commands run earlier, on the same data): the variant's mAP50-95 now minus then
(paired over images when both runs carry per-image results and ran the same images), its p50 now over then and,
when asked, its p95 now over then. Two runs compare only on the same machine: every result carries a fingerprint
(CPU model and instruction sets, GPU, threads, image size, shape, model hash, runtime versions); a baseline whose
machine part differs is refused unless allowed, and then what differs is listed. The model hash and the runtime
versions may differ from a baseline (that is what a baseline tests): they are listed as what changed.

Exit codes: 0 every rule passed, 1 a rule failed, 3 none failed and at least one was inconclusive (2 stays a
usage error).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InputError
from core.measure import LatencySpread, MapDelta, Speedup
from core.results import Result
from core.tables import Column, Table

DEFAULT_MAX_MAP_DROP = 0.5  # points of mAP50-95
DEFAULT_MIN_SPEEDUP = 1.0
DEFAULT_MAX_P50_INCREASE = 10.0  # per cent, against a baseline (shared VMs move about that much between runs)
RESAMPLES = 2000

# the fingerprint's machine part: two runs that differ here measured different things
MACHINE_KEYS = ("cpu", "cpu_features", "gpu", "threads", "imgsz", "shape")
# what a baseline is there to compare (a new model, new runtime versions): listed, never refused
SOFTWARE_KEYS = ("model_sha256", "versions")


class MachineMismatchError(InputError):
    """The results were measured on different machines or settings, and that was not allowed."""


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"

    @property
    def exit_code(self) -> int:
        return {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.INCONCLUSIVE: 3}[self]


@dataclass(frozen=True)
class Limits:
    """The allowed regions; None: not asked for (mAP and speed then take their defaults when their result is
    there; p95 is checked only when asked)."""

    max_map_drop: float | None = None  # points of mAP50-95 below the reference (and below the baseline)
    min_speedup: float | None = None  # times the reference's speed (ratio of medians)
    max_p95_increase: float | None = None  # per cent over the reference's p95 (and the baseline's)
    max_p50_increase: float | None = None  # per cent over the baseline's p50


def judge_at_least(lo: float, hi: float, limit: float) -> Verdict:
    if lo >= limit:
        return Verdict.PASS
    return Verdict.FAIL if hi < limit else Verdict.INCONCLUSIVE


def judge_at_most(lo: float, hi: float, limit: float) -> Verdict:
    if hi <= limit:
        return Verdict.PASS
    return Verdict.FAIL if lo > limit else Verdict.INCONCLUSIVE


@dataclass(frozen=True)
class Rule:
    """One rule's outcome: what was compared, its value and 95 % interval, the limit and the verdict in words."""

    name: str
    verdict: Verdict
    value: float | None
    lo: float | None
    hi: float | None
    limit: float
    unit: str  # "points" or "x"
    words: str  # the whole line: what was compared, on how many samples, against what limit

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "rule": self.name,
            "verdict": self.verdict.value,
            "value": r(self.value),
            "ci95": None if self.lo is None else [r(self.lo), r(self.hi)],
            "limit": r(self.limit),
            "unit": self.unit,
            "words": self.words,
        }


@dataclass
class GateResult(Result):
    """The verdict on one variant: one line per rule, the files read and what differs between the runs."""

    kind = "gate"
    variant: str
    rules: list[Rule]
    files: list[str]
    baseline: list[str] = field(default_factory=list)
    machine_differences: list[str] = field(default_factory=list)  # allowed with --allow-different-machines
    changes: list[str] = field(default_factory=list)  # model / runtime versions that changed since the baseline
    not_checked: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        got = {r.verdict for r in self.rules}
        if Verdict.FAIL in got:
            return Verdict.FAIL
        return Verdict.INCONCLUSIVE if Verdict.INCONCLUSIVE in got else Verdict.PASS

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code

    def payload(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "verdict": self.verdict.value,
            "exit_code": self.exit_code,
            "rules": [r.to_dict() for r in self.rules],
            "files": self.files,
            "baseline": self.baseline,
            "machine_differences": self.machine_differences,
            "changes": self.changes,
            "not_checked": self.not_checked,
        }

    def table(self) -> Table:
        columns = (Column("rule"), Column("verdict"), Column("value", 3), Column("95 % interval"), Column("limit"))
        rows = []
        for r in self.rules:
            span = "—" if r.lo is None else f"{r.lo:.3f} to {r.hi:.3f}"
            bound = f"{'>=' if r.unit == 'points' or r.name == 'speed-up' else '<='} {r.limit:g}"
            rows.append((r.name, r.verdict.value, r.value, span, f"{bound} {r.unit}"))
        return Table(
            columns, rows, ("pass: the whole interval is allowed; fail: none of it; inconclusive: it straddles",)
        )

    def text(self) -> str:
        lines = [f"gate {self.variant}: {self.verdict.value.upper()} (exit {self.exit_code})"]
        lines += [f"  {r.verdict.value:<12} {r.words}" for r in self.rules]
        lines += [f"  not checked: {n}" for n in self.not_checked]
        if self.machine_differences:
            lines.append("  measured on different machines (allowed): " + "; ".join(self.machine_differences))
        if self.changes:
            lines.append("  changed since the baseline: " + "; ".join(self.changes))
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# reading the files


@dataclass(frozen=True)
class Runs:
    """The eval and bench results of one run (either may be missing), by file."""

    eval: dict[str, Any] | None
    eval_path: str
    bench: dict[str, Any] | None
    bench_path: str

    @property
    def paths(self) -> list[str]:
        return [p for p in (self.eval_path, self.bench_path) if p]

    def docs(self) -> list[tuple[str, dict[str, Any]]]:
        return [(p, d) for p, d in ((self.eval_path, self.eval), (self.bench_path, self.bench)) if d is not None]


def read_runs(paths: Sequence[Path], what: str = "result") -> Runs:
    """One ``eval`` and/or one ``bench`` JSON (as ``--json`` prints them); anything else is refused by name."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise InputError(f"{what} file {path} not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{what} file {path} is not JSON ({exc})") from None
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if kind == "error":
            raise InputError(f"{what} file {path} holds an error, not a result: {doc.get('error')}")
        if kind not in ("eval", "bench"):
            raise InputError(f"{what} file {path} is a {kind or 'JSON'} result; gate reads eval and bench --json")
        if kind in found:
            raise InputError(f"two {kind} results given as {what}s ({found[kind][0]} and {path}): give one of each")
        found[kind] = (str(path), doc)
    ev, be = found.get("eval", ("", None)), found.get("bench", ("", None))
    return Runs(ev[1], ev[0], be[1], be[0])


def _variant(doc: dict[str, Any], path: str, variant: str) -> dict[str, Any]:
    for row in doc.get("variants", []):
        if row.get("variant") == variant:
            return row
    have = ", ".join(str(r.get("variant")) for r in doc.get("variants", [])) or "none"
    raise InputError(f"{path} has no results for {variant}; it has: {have}")


def _fingerprint(doc: dict[str, Any], path: str) -> dict[str, Any]:
    fp = doc.get("fingerprint")
    if not isinstance(fp, dict):
        raise InputError(f"{path} has no fingerprint (written by an older version): run {doc.get('kind')} --json again")
    return fp


def _differences(a: dict[str, Any], b: dict[str, Any], keys: Sequence[str]) -> list[str]:
    out = []
    for key in keys:
        x, y = a.get(key), b.get(key)
        if key == "versions":
            x, y = x or {}, y or {}
            out += [
                f"{p} {x.get(p, 'absent')} -> {y.get(p, 'absent')}" for p in sorted({*x, *y}) if x.get(p) != y.get(p)
            ]
        elif key == "cpu_features" and x != y:
            gone, new = sorted(set(x or []) - set(y or [])), sorted(set(y or []) - set(x or []))
            out.append("instruction sets " + ", ".join([*(f"-{s}" for s in gone), *(f"+{s}" for s in new)]))
        elif key == "model_sha256" and x != y:
            out.append(f"model sha256 {str(x)[:12]} -> {str(y)[:12]}")
        elif x != y:
            out.append(f"{key} {x} -> {y}")
    return out


# ---------------------------------------------------------------------------------------------
# the statistics


def _spread(row: dict[str, Any]) -> LatencySpread:
    """A bench row's median, spread and interval, with its timed calls when the file has them."""
    lat = row["latency_ms"]
    lo, hi = lat.get("median_ci95", [lat["p50"], lat["p50"]])
    samples = tuple(float(x) for x in row.get("samples_ms", ()))
    return LatencySpread(
        lat["p50"], lat.get("p10", lat["min"]), lat["p90"], int(row.get("iterations", 0)), lo, hi, samples
    )


def percentile_ratio(num: Sequence[float], den: Sequence[float], q: float, seed: int = 0) -> tuple[float, float, float]:
    """``q``-th percentile of ``num`` over that of ``den``, and its 95 % bootstrap interval (each side resampled
    on its own: timed calls are not paired)."""
    a, b = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    rng = np.random.default_rng(seed)
    pa = np.percentile(a[rng.integers(0, a.size, (RESAMPLES, a.size))], q, axis=1)
    pb = np.percentile(b[rng.integers(0, b.size, (RESAMPLES, b.size))], q, axis=1)
    lo, hi = np.percentile(pa / pb, [2.5, 97.5])
    return float(np.percentile(a, q) / np.percentile(b, q)), float(lo), float(hi)


def _p95_rule(name: str, new: dict[str, Any], old: dict[str, Any], what: str, limit_pct: float, where: str) -> Rule:
    limit = 1.0 + limit_pct / 100.0
    a, b = new.get("samples_ms") or [], old.get("samples_ms") or []
    if len(a) < 3 or len(b) < 3:
        value = new["latency_ms"]["p95"] / old["latency_ms"]["p95"]
        words = (
            f"{name}: p95 {value:.2f}x {what} with no interval ({where} has no per-call samples: bench --json "
            f"from an older version); allowed at most {limit:.2f}x"
        )
        return Rule(name, Verdict.INCONCLUSIVE, value, None, None, limit, "x", words)
    value, lo, hi = percentile_ratio(a, b, 95)
    verdict = judge_at_most(lo, hi, limit)
    words = (
        f"{name}: p95 {new['latency_ms']['p95']:.1f} ms is {value:.2f}x {what} ({lo:.2f}-{hi:.2f}x, bootstrap over "
        f"{len(a)} and {len(b)} timed calls); allowed at most {limit:.2f}x (+{limit_pct:g} %)"
    )
    return Rule(name, verdict, value, lo, hi, limit, "x", words)


def _map_vs_reference(run: Runs, variant: str, drop: float) -> Rule | str:
    assert run.eval is not None
    doc, path = run.eval, run.eval_path
    row = _variant(doc, path, variant)
    reference = doc.get("reference", "the reference")
    if variant == reference:
        return f"mAP against the reference: {variant} is the eval's reference"
    delta = (row.get("delta_vs_reference") or {}).get("map50_95_points")
    if not delta:
        raise InputError(f"{path} has no ΔmAP interval for {variant} (eval ran without a reference or resamples)")
    value, (lo, hi) = delta["value"], delta["ci95"]
    images = row["delta_vs_reference"].get("images", row.get("images"))
    verdict = judge_at_least(lo, hi, -drop)
    words = (
        f"mAP50-95 vs {reference}: {value:+.2f} points ({lo:+.2f} to {hi:+.2f}, paired bootstrap over {images} "
        f"images); allowed drop {drop:g} points"
    )
    return Rule("mAP vs reference", verdict, value, lo, hi, -drop, "points", words)


def _speed_vs_reference(run: Runs, variant: str, minimum: float) -> Rule | str:
    assert run.bench is not None
    doc, path = run.bench, run.bench_path
    row = _variant(doc, path, variant)
    ref_row = doc["variants"][0]
    reference = ref_row["variant"]
    if variant == reference:
        return f"speed against the reference: {variant} is the bench's reference (its first variant)"
    base, this = _spread(ref_row), _spread(row)
    up = Speedup.of(base, this)
    how = (
        f"bootstrap over {len(this.samples)} and {len(base.samples)} timed calls"
        if this.samples and base.samples
        else "the widest ratio the medians' intervals allow (no per-call samples in the file)"
    )
    words = (
        f"speed-up vs {reference}: {up.value:.2f}x ({up.lo:.2f}-{up.hi:.2f}x; p50 {this.p50:.1f} vs "
        f"{base.p50:.1f} ms, {how}); required at least {minimum:g}x"
    )
    return Rule("speed-up", judge_at_least(up.lo, up.hi, minimum), up.value, up.lo, up.hi, minimum, "x", words)


def _map_vs_baseline(run: Runs, base: Runs, variant: str, drop: float) -> Rule:
    assert run.eval is not None and base.eval is not None
    new, old = _variant(run.eval, run.eval_path, variant), _variant(base.eval, base.eval_path, variant)
    if new.get("per_image") and old.get("per_image"):
        delta, paired = MapDelta.between_runs(
            old["per_image"], new["per_image"], base.eval.get("image_files", []), run.eval.get("image_files", [])
        )
        d = delta.map50_95
        how = (
            f"paired bootstrap over the same {delta.images} images"
            if paired
            else f"unpaired: the runs hold different images ({old['per_image']['images']} then, "
            f"{new['per_image']['images']} now), each resampled on its own"
        )
        words = (
            f"mAP50-95 vs the baseline's {variant}: {d.value:+.2f} points ({d.lo:+.2f} to {d.hi:+.2f}, {how}); "
            f"allowed drop {drop:g} points"
        )
        return Rule("mAP vs baseline", judge_at_least(d.lo, d.hi, -drop), d.value, d.lo, d.hi, -drop, "points", words)
    missing = " and ".join(p for p, r in ((base.eval_path, old), (run.eval_path, new)) if not r.get("per_image"))
    value = 100.0 * (new["map50_95"] - old["map50_95"])
    words = (
        f"mAP50-95 vs the baseline's {variant}: {value:+.2f} points, unpaired and with no interval ({missing} has "
        f"no per-image results: eval --json from an older version); allowed drop {drop:g} points"
    )
    return Rule("mAP vs baseline", Verdict.INCONCLUSIVE, value, None, None, -drop, "points", words)


def _p50_vs_baseline(run: Runs, base: Runs, variant: str, increase_pct: float) -> Rule:
    assert run.bench is not None and base.bench is not None
    new, old = (
        _spread(_variant(run.bench, run.bench_path, variant)),
        _spread(_variant(base.bench, base.bench_path, variant)),
    )
    ratio = Speedup.of(new, old)  # new p50 over old p50
    limit = 1.0 + increase_pct / 100.0
    how = (
        f"bootstrap over {len(new.samples)} and {len(old.samples)} timed calls"
        if new.samples and old.samples
        else "the widest ratio the medians' intervals allow (no per-call samples)"
    )
    words = (
        f"p50 vs the baseline's {variant}: {new.p50:.1f} ms now, {old.p50:.1f} ms then: {ratio.value:.2f}x "
        f"({ratio.lo:.2f}-{ratio.hi:.2f}x, {how}); allowed at most {limit:.2f}x (+{increase_pct:g} %)"
    )
    return Rule("p50 vs baseline", judge_at_most(ratio.lo, ratio.hi, limit), ratio.value, ratio.lo, ratio.hi, limit,
                "x", words)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the gate


def _check_fingerprints(run: Runs, base: Runs | None, allow: bool) -> tuple[list[str], list[str]]:
    """The machine differences (refused unless ``allow``) and the software changes since the baseline."""
    docs = run.docs()
    prints = [(p, _fingerprint(d, p)) for p, d in docs]
    machine: list[str] = []
    for path, fp in prints[1:]:  # the run's own files must describe one run
        diff = _differences(prints[0][1], fp, (*MACHINE_KEYS, *SOFTWARE_KEYS))
        machine += [f"{prints[0][0]} vs {path}: {d}" for d in diff]
    changes: list[str] = []
    if base is not None:
        for path, doc in base.docs():
            fp = _fingerprint(doc, path)
            machine += [f"baseline {path}: {d}" for d in _differences(fp, prints[0][1], MACHINE_KEYS)]
            changes += [c for c in _differences(fp, prints[0][1], SOFTWARE_KEYS) if c not in changes]
    if machine and not allow:
        raise MachineMismatchError(
            "the results were not measured on the same machine and settings (" + "; ".join(machine) + "): their "
            "numbers do not compare"
        )
    return machine, changes


def gate(
    files: Sequence[Path],
    variant: str,
    limits: Limits | None = None,
    baseline: Sequence[Path] = (),
    allow_different_machines: bool = False,
) -> GateResult:
    """Judge ``variant`` by the rules over the ``eval`` / ``bench`` JSON in ``files`` (and ``baseline``)."""
    limits = limits or Limits()
    run = read_runs(files)
    base = read_runs(baseline, "baseline") if baseline else None
    if limits.min_speedup is not None and run.bench is None:
        raise InputError("a minimum speed-up needs a bench result among the files (bench --json)")
    if limits.max_p95_increase is not None and run.bench is None:
        raise InputError("a p95 limit needs a bench result among the files (bench --json)")
    if base is not None and ((base.eval and not run.eval) or (base.bench and not run.bench)):
        raise InputError("a baseline result needs the same kind (eval, bench) among the files to compare with")
    machine, changes = _check_fingerprints(run, base, allow_different_machines)
    drop = DEFAULT_MAX_MAP_DROP if limits.max_map_drop is None else limits.max_map_drop
    rules: list[Rule] = []
    skipped: list[str] = []

    def add(got: Rule | str) -> None:
        (rules if isinstance(got, Rule) else skipped).append(got)  # type: ignore[arg-type]

    if run.eval is not None:
        add(_map_vs_reference(run, variant, drop))
    else:
        skipped.append("mAP: no eval result among the files")
    if run.bench is not None:
        minimum = DEFAULT_MIN_SPEEDUP if limits.min_speedup is None else limits.min_speedup
        add(_speed_vs_reference(run, variant, minimum))
        if limits.max_p95_increase is not None:
            ref_row = run.bench["variants"][0]
            if ref_row["variant"] == variant:
                skipped.append(f"p95 against the reference: {variant} is the bench's reference")
            else:
                row = _variant(run.bench, run.bench_path, variant)
                what = f"{ref_row['variant']}'s {ref_row['latency_ms']['p95']:.1f} ms"
                add(_p95_rule("p95 vs reference", row, ref_row, what, limits.max_p95_increase, run.bench_path))
    else:
        skipped.append("speed: no bench result among the files")
    if base is not None:
        if base.eval is not None:
            add(_map_vs_baseline(run, base, variant, drop))
        if base.bench is not None:
            p50 = DEFAULT_MAX_P50_INCREASE if limits.max_p50_increase is None else limits.max_p50_increase
            add(_p50_vs_baseline(run, base, variant, p50))
            if limits.max_p95_increase is not None:
                assert run.bench is not None
                old = _variant(base.bench, base.bench_path, variant)
                what = f"the baseline's {old['latency_ms']['p95']:.1f} ms"
                new = _variant(run.bench, run.bench_path, variant)
                where = " or ".join(
                    p for p, r in ((run.bench_path, new), (base.bench_path, old)) if not r.get("samples_ms")
                )
                add(_p95_rule("p95 vs baseline", new, old, what, limits.max_p95_increase, where))
    if not rules:
        raise InputError(f"no rule applies to {variant}: " + "; ".join(skipped))
    return GateResult(variant, rules, run.paths, base.paths if base else [], machine, changes, skipped)
