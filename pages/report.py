"""Report: one self-contained HTML file of this session's results, for stakeholders."""

import streamlit as st

from core.measure import build_cards, cards_table
from core.report import render_html
from core.runtime import system_info
from core.variants import REFERENCE
from ui import model, navigation, report_sections
from ui.state import AccuracyState, BenchmarkState

navigation.through_app_navigation()


def decision_section() -> report_sections.ReportSection | None:
    """The headline and decision card first, from this session's benchmark and accuracy results."""
    bench_run, eval_run = BenchmarkState.read().results, AccuracyState.read().results
    bench = list(bench_run.results) if bench_run else []
    evals = list(eval_run.results) if eval_run else []
    if bench_run and eval_run and bench_run.model != eval_run.model:  # two different models: the latest only
        bench = []
    variants = list(dict.fromkeys([r.variant for r in evals] + [r.variant for r in bench]))
    if not variants:
        return None
    reference = str(REFERENCE) if evals else variants[0]
    cards = build_cards(variants, reference, bench=bench, evals=evals)
    table = cards_table(cards)
    items: list = [("text", card.headline()) for card in cards]
    items += [("table", table.records()), *[("text", note) for note in table.notes]]
    return report_sections.ReportSection("Decision", items)


st.title("Report")
st.caption(
    "Everything this session produced — images, tables, interactive plots — in one HTML file that opens offline."
)

sections = report_sections.sections()
order = ["images", "video", "benchmark", "accuracy", "precision"]
present = [k for k in order if k in sections] + [k for k in sections if k not in order]
if not present:
    st.info("Nothing to report yet: run a comparison, a benchmark or an evaluation first.")
    st.stop()

chosen = [sections[k] for k in present]
decision = decision_section()
if decision is not None:
    chosen.insert(0, decision)
st.write("Included: " + ", ".join(section.title for section in chosen))
title = st.text_input("Title", value=f"YOLO variant comparison — {model.model_choice().label}")
html = render_html(title, chosen, system_info())
st.download_button("Download the HTML report", html, "yololab-report.html", "text/html", type="primary")
st.caption(f"{len(html) / 1e6:.1f} MB (plotly.js is embedded so the file works without a network).")
