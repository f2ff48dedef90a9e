"""core.report.html: one self-contained HTML file (images inlined, plotly.js embedded once)."""

import numpy as np
import plotly.graph_objects as go

from core.report.html import ReportSection, render_html


def test_the_report_holds_every_item_and_needs_no_network():
    fig = go.Figure(go.Bar(x=["ort:fp32"], y=[12.0]))
    sections = [
        ReportSection("Benchmark", [("text", "yolov5n <640>"), ("table", [{"variant": "ort:fp32", "p50 ms": 12.0}])]),
        ReportSection("Images", [("image", ("bus", np.zeros((8, 8, 3), np.uint8))), ("figure", fig), ("figure", fig)]),
    ]
    html = render_html("A & B", sections, {"cpu": "EPYC", "cores_logical": 2, "gpu": "none"})
    assert "<title>A &amp; B</title>" in html and "yolov5n &lt;640&gt;" in html  # escaped
    assert "<td>ort:fp32</td>" in html and "data:image/jpeg;base64," in html
    assert html.count("plotly.js v") == 1 and "<script src=" not in html  # embedded once, loads nothing
    assert "Measured on EPYC" in html


def test_an_empty_session_says_so():
    assert "No results in this session yet." in render_html("Empty", [])
