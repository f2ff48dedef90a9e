"""A session's results survive a browser reload: kept on the server under a key carried in the page's URL.

Every run of ``app.py`` calls :func:`begin` first and :func:`save` last. The first run of a browser
session either finds ``?session=<key>`` in the URL and a kept entry for it (a reload, or a link opened
again) and puts the kept values back into ``st.session_state``, or makes a new key and writes it into
the URL. The values are kept by reference in this server process (nothing is pickled or written to
disk); the janitor of :mod:`ui.session_files` forgets a key once no session has used it for the grace
period, together with the key's temporary folder.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field

import streamlit as st

from ui.state import kept_keys

QUERY_PARAM = "session"
STATE_KEY = "session_key"
_VALID_KEY = re.compile(r"[0-9a-f]{32}")

# What a reload keeps: every page's state (ui.state), the model chosen, the session's folder and the
# report's sections. Widget values (ticked variants, sliders) start afresh.
KEPT = kept_keys()
_NOT_SHARED = ("tmpdir",)  # a second tab on the same link gets its own folder


@dataclass
class _Kept:
    values: dict[str, object]
    sessions: set[str] = field(default_factory=set)  # Streamlit session ids that used this key


class Keeper:
    """Kept values per session key; thread-safe (every browser session runs on its own thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[str, _Kept] = {}

    def save(self, key: str, session_id: str, state: MutableMapping[str, object]) -> None:
        values = {k: state[k] for k in KEPT if k in state}
        with self._lock:
            kept = self._kept.setdefault(key, _Kept({}))
            kept.values = values
            kept.sessions.add(session_id)

    def restore(
        self, key: str, session_id: str, state: MutableMapping[str, object], others_active: Callable[[set[str]], bool]
    ) -> str | None:
        """Put the values kept under ``key`` into ``state``; returns the key this session goes on with.

        None when nothing is kept under ``key``. When another session that used ``key`` is still
        connected (the link opened in a second tab), this session gets copies of the results under a
        new key, so the two tabs do not write over each other.
        """
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            shared = others_active(kept.sessions - {session_id})
            values = dict(kept.values)
            if not shared:
                kept.sessions.add(session_id)
        if shared:
            values = {
                k: copy.copy(v) if isinstance(v, dict | list) else v for k, v in values.items() if k not in _NOT_SHARED
            }
            key = new_key()
            self.save(key, session_id, values)
        for k, v in values.items():
            state[k] = v
        return key

    def keys(self) -> set[str]:
        with self._lock:
            return set(self._kept)

    def sessions(self, key: str) -> set[str]:
        with self._lock:
            kept = self._kept.get(key)
            return set(kept.sessions) if kept is not None else set()

    def forget(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._kept.pop(key, None)


def new_key() -> str:
    return uuid.uuid4().hex


@st.cache_resource(show_spinner=False)
def keeper() -> Keeper:
    return Keeper()


def any_active(session_ids: Iterable[str]) -> bool:
    """Is one of these Streamlit sessions connected? False when there is no server (AppTest, scripts)."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return False
    runtime = Runtime.instance()
    return any(runtime.is_active_session(sid) for sid in session_ids)


def _streamlit_session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


def session_key() -> str:
    """This browser session's key: names its folder and its kept results (made on first use)."""
    key = st.session_state.get(STATE_KEY)
    if not isinstance(key, str):
        key = new_key()
        st.session_state[STATE_KEY] = key
    return key


def begin() -> None:
    """At the start of every run: restore a reloaded session's results, and keep the key in the URL."""
    if STATE_KEY not in st.session_state:
        given = st.query_params.get(QUERY_PARAM, "")
        key = None
        if _VALID_KEY.fullmatch(given):
            key = keeper().restore(given, _streamlit_session_id(), st.session_state, any_active)
        st.session_state[STATE_KEY] = key or new_key()
    key = session_key()
    if st.query_params.get(QUERY_PARAM) != key:  # set once; put back if a page switch dropped it
        st.query_params[QUERY_PARAM] = key


def save() -> None:
    """At the end of every run (also one cut short by st.stop or st.rerun)."""
    keeper().save(session_key(), _streamlit_session_id(), st.session_state)
