"""A reload keeps a session's results: kept on the server under the key in the URL (ui.persist)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui.persist import KEPT, Keeper
from ui.session_files import Janitor
from ui.state import (
    PAGE_STATES,
    AccuracyState,
    BenchmarkState,
    CompareImagesState,
    PrecisionState,
    VideoState,
)

ROOT = Path(__file__).resolve().parents[2]


def test_a_kept_session_comes_back_with_its_results_and_without_widget_values():
    keeper = Keeper()
    state = {"bench:results": ["measured"], "report": {"benchmark": "section"}, "bench:iters": 100}
    keeper.save("k1", "tab-1", state)
    reloaded: dict[str, object] = {}
    assert keeper.restore("k1", "tab-2", reloaded, others_active=lambda ids: False) == "k1"
    assert reloaded == {"bench:results": ["measured"], "report": {"benchmark": "section"}}
    assert reloaded["bench:results"] is state["bench:results"]  # the same objects, nothing copied or pickled
    assert keeper.sessions("k1") == {"tab-1", "tab-2"}
    assert keeper.restore("unknown", "tab-3", {}, others_active=lambda ids: False) is None


def test_the_link_opened_in_a_second_tab_gets_copies_under_its_own_key():
    keeper = Keeper()
    keeper.save("k1", "tab-1", {"report": {"benchmark": "section"}, "tmpdir": object()})
    second: dict[str, object] = {}
    key = keeper.restore("k1", "tab-2", second, others_active=lambda ids: ids == {"tab-1"})
    assert key not in (None, "k1") and keeper.sessions("k1") == {"tab-1"}
    assert second["report"] == {"benchmark": "section"}
    assert "tmpdir" not in second  # its own folder: the first tab's files stay the first tab's
    second["report"]["accuracy"] = "new"  # type: ignore[index]
    first: dict[str, object] = {}
    keeper.restore("k1", "tab-1", first, others_active=lambda ids: False)
    assert first["report"] == {"benchmark": "section"}


def test_the_janitor_forgets_kept_results_with_the_folder_once_the_grace_period_is_over(tmp_path: Path):
    keeper = Keeper()
    alive = {"k1": True, "k2": False}
    janitor = Janitor(tmp_path / "s", grace=60, every=None, alive=lambda key: alive[key], keeper=keeper)
    keeper.save("k1", "a", {"bench:results": 1})
    keeper.save("k2", "b", {"bench:results": 2})
    (janitor.root / "k2--1234").mkdir()
    janitor.sweep(now=0)
    assert keeper.keys() == {"k1", "k2"}  # k2 may still reload within the grace period
    assert janitor.sweep(now=61) == ["k2"]
    assert keeper.keys() == {"k1"} and not (janitor.root / "k2--1234").exists()


def test_app_restores_the_results_named_by_the_url_and_ignores_a_made_up_key(app_env):
    first = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    first.run()
    assert not first.exception
    key = first.query_params["session"]  # written into the URL on the first run
    assert len(key) == 32 and first.session_state["session_key"] == key
    first.session_state["bench:results"] = "results of the first tab"
    first.run()  # saved at the end of this run

    reloaded = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    reloaded.query_params["session"] = key
    reloaded.run()
    assert not reloaded.exception
    assert reloaded.session_state["bench:results"] == "results of the first tab"

    forged = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    forged.query_params["session"] = "../../etc"
    forged.run()
    assert not forged.exception and "bench:results" not in forged.session_state
    assert forged.session_state["session_key"] != "../../etc"


def test_every_page_result_is_kept():
    """What a reload keeps is derived from the pages' state classes (ui.state), not listed by hand: every
    field of every page's state is kept, and each page reads its results through its class."""
    for key in ("bench:results", "acc:results", "vid:job", "vid:clip", "img:raw", "img:uploads"):
        assert key in KEPT
    for state in PAGE_STATES:
        assert set(state.session_keys()) <= set(KEPT)
    users = {
        "compare_images": CompareImagesState,
        "benchmark": BenchmarkState,
        "accuracy": AccuracyState,
        "compare_video": VideoState,
        "precision": PrecisionState,
    }
    for page, state in users.items():
        assert f"{state.__name__}.read()" in (ROOT / "pages" / f"{page}.py").read_text()
