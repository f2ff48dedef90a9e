"""Each browser session's temporary files are removed once the session has gone (issue: limits)."""

from __future__ import annotations

import threading
from pathlib import Path

from ui.session_files import Janitor, _SessionDir


class _FakeJob:
    def __init__(self) -> None:
        self.stopped = threading.Event()

    def stop(self) -> None:
        self.stopped.set()

    @property
    def running(self) -> bool:
        return not self.stopped.is_set()


def test_folders_of_sessions_that_left_are_removed_after_the_grace_period(tmp_path: Path):
    alive = {"a": True, "b": False}
    janitor = Janitor(tmp_path / "sessions", grace=60, every=None, alive=lambda sid: alive[sid])
    for name in ("a--1111", "b--2222", "b--3333"):
        (janitor.root / name).mkdir()
        (janitor.root / name / "upload.mp4").write_bytes(b"x" * 100)
    assert janitor.sweep(now=1000) == []  # b just left: it may come back (Streamlit reconnects)
    assert janitor.sweep(now=1059) == []
    assert janitor.sweep(now=1061) == ["b"]
    assert sorted(p.name for p in janitor.root.iterdir()) == ["a--1111"]
    alive["a"] = False
    janitor.sweep(now=2000)
    assert janitor.sweep(now=2061) == ["a"] and not list(janitor.root.iterdir())


def test_a_running_video_job_is_stopped_first_and_its_folder_removed_once_it_ended(tmp_path: Path):
    janitor = Janitor(tmp_path / "sessions", grace=0, every=None, alive=lambda sid: False)
    (janitor.root / "c--4444").mkdir()
    job = _FakeJob()
    janitor.track("c", job)  # type: ignore[arg-type]
    assert job.running
    removed = janitor.sweep(now=10)
    assert job.stopped.is_set()  # nobody watches it any more: stopped at its next frame
    assert removed == ["c"] and not (janitor.root / "c--4444").exists()


def test_a_session_folder_goes_with_its_owner(tmp_path: Path):
    import gc

    owner = _SessionDir(tmp_path / "s--5555")
    (owner.path / "result.mp4").write_bytes(b"x")
    del owner
    gc.collect()
    assert not (tmp_path / "s--5555").exists()


def test_folders_left_by_a_killed_server_are_removed_at_start(tmp_path: Path, monkeypatch):
    import tempfile

    import ui.session_files as common

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / f"{common.SESSIONS_PREFIX}999999999"  # no such process
    (dead / "x--1").mkdir(parents=True)
    Janitor(common.sessions_root(), grace=300, every=None, alive=lambda sid: True)
    assert not dead.exists() and common.sessions_root().is_dir()
