"""One self-contained HTML report from the --json outputs of the other commands.

``python -m core report RESULT.json... --out report.html [--title T]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.report import load_results, render_html, sections_from_results, system_of

GROUPS = ()


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", type=Path, help="JSON files printed by compare, bench, eval or video --json")
    p.add_argument("--out", "-o", type=Path, required=True, help="the HTML file to write")
    p.add_argument("--title", default="YOLO variant comparison")


def run(args: argparse.Namespace) -> int:
    results = load_results(args.results)
    html = render_html(args.title, sections_from_results(results), system_of(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(html, encoding="utf-8")
    kinds = ", ".join(kind for kind, _ in results)
    print(f"wrote {args.out} ({len(html) / 1e6:.1f} MB: {kinds})", file=sys.stderr)
    return 0
