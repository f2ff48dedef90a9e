"""Every page runs through app.py's navigation, even for a server's first visitor who opens a page URL."""

from __future__ import annotations

import streamlit as st


def through_app_navigation() -> None:
    """Make sure this run goes through app.py's ``st.navigation``; call first thing on every page.

    Streamlit takes a ``pages/`` folder beside the main script for an old-style (v1) multipage app until
    some session has run ``st.navigation`` in this server process. Until then a first visitor who opens a
    page's URL directly gets that page run on its own: no shared sidebar, and every file of ``pages/``
    (this module too) listed as a page. Switching the flag and rerunning sends the run through app.py,
    which resolves the same URL to the same page.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
