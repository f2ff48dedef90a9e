"""``python -m core doctor``: what can run on this machine, and why not."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .backends import availability
from .system import system_info
from .variants import VARIANTS, Runtime


def runtime_report() -> list[dict[str, Any]]:
    rows = []
    for runtime in Runtime:
        status = availability(runtime)
        precisions = [v.precision.value for v in VARIANTS if v.runtime is runtime]
        rows.append(
            {
                "runtime": runtime.value,
                "label": runtime.label,
                "available": status.ok,
                "reason": status.reason,
                "precisions": precisions,
            }
        )
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    report = {"system": system_info(), "runtimes": runtime_report()}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    s = report["system"]
    print(f"{s['cpu']} ({s['cores_physical']} cores), {s['memory_gb']} GB, GPU: {s['gpu']}")
    for r in report["runtimes"]:
        mark = "ok " if r["available"] else "no "
        line = f"  [{mark}] {r['runtime']:<9} {r['label']:<28} {','.join(r['precisions'])}"
        print(line + ("" if r["available"] else f"  — {r['reason']}"))
    return 0
