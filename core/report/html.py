"""A self-contained HTML report of a session's results: text, tables, images, interactive plots.

One file, no network needed to open it: images are inlined as JPEG data URIs and plotly.js is
embedded once.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from core.runtime import machine_line

ItemKind = Literal["text", "table", "figure", "image"]


@dataclass
class ReportSection:
    title: str
    items: list[tuple[ItemKind, Any]] = field(default_factory=list)
    # text: str; table: a DataFrame (to_html) or list of dicts; figure: a plotly figure;
    # image: (caption, RGB uint8 array)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#1f2937}
h1{margin-bottom:.2rem} h2{border-bottom:2px solid #2563eb;padding-bottom:.2rem;margin-top:2.5rem}
.meta{color:#6b7280} table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #e5e7eb;padding:.3rem .6rem;text-align:right} th{background:#f3f4f6}
td:first-child,th:first-child{text-align:left} .images{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0;flex:1 1 300px;max-width:48%} figure img{width:100%;border:1px solid #e5e7eb}
figcaption{font-size:.85rem;color:#4b5563}
"""


def _image_uri(rgb: np.ndarray, max_side: int = 1280) -> str:
    from PIL import Image

    img = Image.fromarray(rgb)
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _cell(value: Any) -> str:
    """A table cell in words: no NaN, None or True/False in a report."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return str(value)


def _table(payload: Any) -> str:
    rows = payload.to_dict("records") if hasattr(payload, "to_dict") else list(payload)
    if not rows:
        return "<p>(empty)</p>"
    cols = list(dict.fromkeys(c for r in rows for c in r))  # every row's columns, first seen first
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(fig: Any, include_plotlyjs: bool) -> str:
    """The figure on an explicit template: the app's default one (Streamlit's) holds only colour placeholders."""
    import plotly.graph_objects as go

    from core.report.charts import TEMPLATE

    exported = go.Figure(fig)
    exported.update_layout(template=TEMPLATE)
    return str(exported.to_html(full_html=False, include_plotlyjs=include_plotlyjs))


def render_html(title: str, sections: list[ReportSection], system: dict[str, Any] | None = None) -> str:
    plotly_included = False
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='meta'>Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC}</p>",
    ]
    if system:
        parts.append(f"<p class='meta'>Measured on {html.escape(machine_line(system))}</p>")
    if not sections:
        parts.append("<p>No results in this session yet.</p>")
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        images: list[str] = []
        for kind, payload in section.items:
            if kind != "image" and images:
                parts.append("<div class='images'>" + "".join(images) + "</div>")
                images = []
            if kind == "text":
                parts.append(f"<p>{html.escape(str(payload))}</p>")
            elif kind == "table":
                parts.append(_table(payload))
            elif kind == "figure":
                parts.append(_figure(payload, include_plotlyjs=not plotly_included))
                plotly_included = True
            elif kind == "image":
                caption, rgb = payload
                images.append(
                    f"<figure><img src='{_image_uri(rgb)}' alt='{html.escape(caption)}'>"
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
        if images:
            parts.append("<div class='images'>" + "".join(images) + "</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
