"""Each browser session's temporary files (uploads, results) and the janitor that removes them."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from ui import persist

if TYPE_CHECKING:
    from core.measure import Job  # a worker thread a session started: stopped when nobody watches it


def safe_name(name: str, limit: int = 80) -> str:
    """A user-given file name made safe to put in a path: last component only, no odd characters."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("\\", "/").rsplit("/", 1)[-1]).lstrip(".")
    stem, dot, ext = base.rpartition(".")
    if dot and len(ext) <= 8:
        return f"{stem[: limit - len(ext) - 1]}.{ext}" if stem else f"file.{ext}"
    return base[:limit] or "file"


# Temporary files of each browser session live in <tmp>/yololab-<server pid>/<session key>--<owner>/,
# the session key being the one in the page's URL (ui.persist: a reload keeps it, and its results).
# Two layers remove them: the folder's owner (in st.session_state and the kept results) deletes it
# when both let it go, and a janitor thread deletes the folders, and forgets the kept results, of keys
# no connected session uses any more (tab closed, connection lost) after a grace period, first
# stopping their video jobs. Streamlit keeps a disconnected session for 2 minutes in case it
# reconnects; the default grace is longer than that.
ENV_SESSION_GRACE = "YOLOLAB_SESSION_GRACE"  # seconds a session that went away keeps its files (default 300)
ENV_JANITOR_EVERY = "YOLOLAB_JANITOR_SECONDS"  # how often the janitor looks (default 30)
SESSIONS_PREFIX = "yololab-"
_SEP = "--"  # <session id>--<owner>: a session's folder name


def sessions_root(pid: int | None = None) -> Path:
    return Path(tempfile.gettempdir()) / f"{SESSIONS_PREFIX}{pid or os.getpid()}"


class _SessionDir:
    """Owns one session's folder (kept in st.session_state): removed when the session state is collected."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(path), True)

    def release(self) -> None:
        """Give up ownership without deleting (the folder is being handed to a new owner)."""
        self._finalizer.detach()


class Janitor:
    """Removes the temporary folders of sessions that ended, on a daemon thread; one per server process.

    ``alive(key)`` says whether a session key is still in use (by default: one of the sessions that
    used it is connected, or there is no server); a key gone for ``grace`` seconds loses its folders
    and its kept results, once the video jobs started under it have stopped.
    """

    def __init__(
        self,
        root: Path,
        grace: float,
        every: float | None,
        alive: Callable[[str], bool] | None = None,
        keeper: persist.Keeper | None = None,
    ) -> None:
        self.root = root
        self.grace = grace
        self.keeper = keeper or persist.Keeper()
        self.alive = alive or self._key_alive
        self._lock = threading.Lock()
        self._jobs: dict[str, list[Job]] = {}
        self._gone_since: dict[str, float] = {}
        self.removed: list[str] = []  # session ids whose folder was removed (for tests and logs)
        self.root.mkdir(parents=True, exist_ok=True)
        _remove_dead_servers_folders()
        if every:
            threading.Thread(target=self._loop, args=(every,), name="yololab-janitor", daemon=True).start()

    def _key_alive(self, key: str) -> bool:
        from streamlit.runtime import Runtime

        return not Runtime.exists() or persist.any_active(self.keeper.sessions(key))

    def track(self, session_id: str, job: Job) -> None:
        with self._lock:
            self._jobs.setdefault(session_id, []).append(job)

    def _loop(self, every: float) -> None:
        while True:
            time.sleep(every)
            try:
                self.sweep()
            except Exception:  # a janitor never takes the server down; it tries again next time
                logging.getLogger(__name__).exception("session janitor")

    def sweep(self, now: float | None = None) -> list[str]:
        """One pass; returns the session ids whose folders were removed."""
        now = time.monotonic() if now is None else now
        removed = []
        with self._lock:
            folders: dict[str, list[Path]] = {}
            for p in self.root.iterdir():
                if p.is_dir():
                    folders.setdefault(p.name.rsplit(_SEP, 1)[0], []).append(p)
            for sid in sorted(folders.keys() | self._jobs.keys() | self.keeper.keys()):
                if self.alive(sid):
                    self._gone_since.pop(sid, None)
                    continue
                if now - self._gone_since.setdefault(sid, now) < self.grace:
                    continue
                jobs = self._jobs.get(sid, [])
                for job in jobs:
                    job.stop()  # nobody is watching: stop at the next frame
                if any(job.running for job in jobs):
                    continue  # its output is still open: remove the folder next time
                for p in folders.get(sid, []):
                    shutil.rmtree(p, ignore_errors=True)
                self._jobs.pop(sid, None)
                self._gone_since.pop(sid, None)
                self.keeper.forget([sid])
                removed.append(sid)
        self.removed += removed
        return removed


def _remove_dead_servers_folders() -> None:
    """Folders left by server processes that no longer exist (killed, crashed)."""
    import psutil

    for p in Path(tempfile.gettempdir()).glob(f"{SESSIONS_PREFIX}*"):
        pid = p.name[len(SESSIONS_PREFIX) :]
        if pid.isdigit() and int(pid) != os.getpid() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


@st.cache_resource(show_spinner=False)
def janitor() -> Janitor:
    return Janitor(
        sessions_root(),
        grace=float(os.environ.get(ENV_SESSION_GRACE, "300")),
        every=float(os.environ.get(ENV_JANITOR_EVERY, "30")),
        keeper=persist.keeper(),
    )


def session_dir() -> Path:
    """A temporary folder for this browser session's uploads and results; removed when the session ends."""
    owner: _SessionDir | None = st.session_state.get("tmpdir")
    if owner is None or not owner.path.is_dir():  # first use, or removed while the session was away
        if owner is not None:
            owner.release()
        # unique per owner: a folder is only ever deleted by the owner that made it (or the janitor)
        owner = _SessionDir(janitor().root / f"{persist.session_key()}{_SEP}{uuid.uuid4().hex[:8]}")
        st.session_state.tmpdir = owner
    return owner.path


def track_job(job: Job) -> None:
    """Let the janitor stop ``job`` if its session goes away."""
    janitor().track(persist.session_key(), job)
