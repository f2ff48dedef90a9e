"""Report: one self-contained HTML file of this session's results, for stakeholders."""

import streamlit as st

from core.html_report import render_html
from core.system import system_info
from ui import model, navigation, report_sections

navigation.through_app_navigation()

st.title("Report")
st.caption(
    "Everything this session produced — images, tables, interactive plots — in one HTML file that opens offline."
)

sections = report_sections.sections()
order = ["images", "video", "benchmark", "accuracy"]
present = [k for k in order if k in sections] + [k for k in sections if k not in order]
if not present:
    st.info("Nothing to report yet: run a comparison, a benchmark or an evaluation first.")
    st.stop()

st.write("Included: " + ", ".join(sections[k].title for k in present))
title = st.text_input("Title", value=f"YOLO variant comparison — {model.model_choice().label}")
html = render_html(title, [sections[k] for k in present], system_info())
st.download_button("Download the HTML report", html, "yololab-report.html", "text/html", type="primary")
st.caption(f"{len(html) / 1e6:.1f} MB (plotly.js is embedded so the file works without a network).")
