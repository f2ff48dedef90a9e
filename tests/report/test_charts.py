"""core.report.charts: one colour per variant on every chart and in the exported report, whatever else is shown."""

from __future__ import annotations

import json
import re

import pytest

from core.measure.bench import benchmark
from core.measure.compare import ImageComparison, read_images
from core.report import charts
from core.report.colours import VARIANT_COLOURS, variant_colour
from core.report.html import ReportSection, render_html
from core.runtime.processing import PostParams
from core.variants import VARIANTS, Variant


@pytest.fixture
def streamlit_default_template():
    """What the app process has: importing streamlit makes its placeholder template ('#000001'...) the default."""
    import plotly.io as pio
    import streamlit  # noqa: F401  (configures the template on import)
    from streamlit.elements.lib.streamlit_plotly_theme import configure_streamlit_plotly_theme

    before = pio.templates.default
    configure_streamlit_plotly_theme()
    assert pio.templates.default == "streamlit"
    yield
    pio.templates.default = before


def _trace_colours(html: str) -> list[list[str]]:
    """Per figure in the HTML: the colour of each trace, read from the Plotly JSON the page embeds."""
    out = []
    for data in re.findall(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*(\[.*?\]),\s*\{", html, flags=re.S):
        traces = json.loads(data)
        out.append([(t.get("marker") or {}).get("color") or (t.get("line") or {}).get("color") for t in traces])
    return out


def test_every_variant_has_its_own_colour_from_the_table():
    assert len(set(VARIANT_COLOURS.values())) == len(VARIANTS)
    assert variant_colour(Variant.parse("ort:int8")) == VARIANT_COLOURS["ort:int8"]


def test_report_charts_keep_distinct_variant_colours(streamlit_default_template, detectors, bus_jpg):
    images = read_images([(bus_jpg.name, bus_jpg.read_bytes())]).images
    fp32 = Variant.parse("ort:fp32")
    # int8 first: the colour follows the variant, not the order it was ticked in
    compared = ImageComparison([detectors["ort:int8"], detectors["ort:fp32"]], fp32, runs=2).result(
        images, PostParams()
    )
    bench = [benchmark(detectors[v], images[0].image, warmup=1, iterations=3) for v in ("ort:fp32", "ort:fp16")]
    figures = [charts.compare_latency(compared), charts.latency_distribution(bench), charts.video_latency(
        {"ort:fp32": [10.0, 11.0], "ort:int8": [8.0, 9.0]})]  # fmt: skip
    html = render_html("t", [ReportSection("s", [("figure", f) for f in figures])])
    colours = _trace_colours(html)
    assert colours == [
        [VARIANT_COLOURS["ort:int8"], VARIANT_COLOURS["ort:fp32"]],
        [VARIANT_COLOURS["ort:fp32"], VARIANT_COLOURS["ort:fp16"]],
        [VARIANT_COLOURS["ort:fp32"], VARIANT_COLOURS["ort:int8"]],
    ]
    assert "#000001" not in html and '"template":{"data"' in html.replace(" ", "")
