"""A new user's first five minutes: a fresh machine, no YOLOLAB_* settings, no network — the app still opens on
a comparison of two variants, with the bundled model and INT8 calibrated on the bundled pictures (and says so)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.serve import NO_CHROMIUM, chromium, shot, streamlit_server, wait_idle
from tests.browser.test_browser import loaded_images_at_least

pytestmark = [pytest.mark.browser, NO_CHROMIUM]


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("home")
    env = {
        "HOME": str(home),  # the cache (~/.cache/yololab) and the models directory start empty
        "XDG_CACHE_HOME": str(home / ".cache"),
        "YOLOLAB_WEIGHTS_URL": "http://127.0.0.1:9/",  # no network route: a download would fail
    }
    with streamlit_server(env, tmp_path_factory.mktemp("log"), clean=True) as url:
        yield url


def test_the_first_load_compares_two_variants_offline(fresh_server):
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1600, "height": 1100}).new_page()
        page.goto(fresh_server)
        page.get_by_text("Showing the sample images").wait_for(timeout=120_000)
        # both default variants ran: the INT8 one's headline against the reference, and the note on its calibration
        page.get_by_text("ort:int8 — ").first.wait_for(timeout=300_000)
        wait_idle(page, 300)
        page.get_by_text("INT8 calibrated on the 5 bundled pictures").first.wait_for(timeout=30_000)
        assert loaded_images_at_least(page, 3) >= 3  # one annotated image per variant + the diff
        assert "Traceback" not in page.content() and "cannot be used" not in page.content()
        shot(page, "first_run_offline")
