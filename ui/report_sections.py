"""The session's report: each page puts its latest results under its own key; the Report page renders them."""

from __future__ import annotations

import streamlit as st

from core.report import ReportSection

__all__ = ["ReportSection", "put_section", "sections"]


def put_section(key: str, section: ReportSection) -> None:
    st.session_state.setdefault("report", {})[key] = section


def sections() -> dict[str, ReportSection]:
    sections: dict[str, ReportSection] = st.session_state.get("report", {})
    return sections
