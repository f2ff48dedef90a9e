"""Who can reach the dashboard. Locally (the default) it serves 127.0.0.1 only and everyone who reaches it is
its operator. Shared (``./start.sh --share``) it serves every interface and runs nothing of the app for a
visitor without the access token: they see one page saying to ask for the link. The token comes from
``$YOLOLAB_TOKEN`` (start.sh makes one), travels once in the link (``?token=…``), is compared in constant time,
and is then dropped from the address bar; the session keeps its access."""

from __future__ import annotations

import hmac
import os

import streamlit as st

ENV_SHARE = "YOLOLAB_SHARE"  # "1": served to the network, visitors need the token
ENV_TOKEN = "YOLOLAB_TOKEN"
ENV_ALLOW_SERVER_PATHS = "YOLOLAB_ALLOW_SERVER_PATHS"  # "1": shared, visitors may still type paths on the server
ENV_ALLOW_TRUSTED_PICKLES = "YOLOLAB_ALLOW_TRUSTED_PICKLES"  # "1": shared, visitors may still trust a pickle
ENV_ALLOW_PUBLIC_CLUSTER = "YOLOLAB_ALLOW_PUBLIC_CLUSTER"  # "1": shared, the cluster may be on a public address
ENV_ALLOW_STREAMS = "YOLOLAB_ALLOW_STREAMS"  # "1": shared, visitors may open camera stream URLs from the server
QUERY_PARAM = "token"
_GRANTED = "access:granted"


def shared() -> bool:
    return os.environ.get(ENV_SHARE, "") == "1"


def server_paths() -> bool:
    """May this session name files and folders on the server (a model path, a calibration or labelled folder)?
    Locally yes (the operator is the user); shared only when the operator started with --allow-server-paths."""
    return not shared() or os.environ.get(ENV_ALLOW_SERVER_PATHS, "") == "1"


def trusted_pickles() -> bool:
    """May this session tick "I trust this file" (an ultralytics .pt is unpickled: it can run code on the
    server)? Locally yes; shared only when the operator started with --allow-trusted-pickles."""
    return not shared() or os.environ.get(ENV_ALLOW_TRUSTED_PICKLES, "") == "1"


def streams() -> bool:
    """May this session have the server open a camera stream URL (RTSP / HTTP) on Live? Locally yes; shared only
    when the operator started with --allow-streams (the server would connect wherever a visitor points it)."""
    return not shared() or os.environ.get(ENV_ALLOW_STREAMS, "") == "1"


def sidebar_words() -> list[str]:
    """What the sidebar says of sharing: nothing locally; shared, what visitors may do beyond the defaults."""
    if not shared():
        return []
    words = ["Shared by link: visitors upload their own files and use the folders this server was started with."]
    if os.environ.get(ENV_ALLOW_SERVER_PATHS, "") == "1":
        words.append("The operator allows paths on the server (--allow-server-paths).")
    if os.environ.get(ENV_ALLOW_TRUSTED_PICKLES, "") == "1":
        words.append("The operator allows trusted pickles (--allow-trusted-pickles): an ultralytics .pt runs its code.")
    if os.environ.get(ENV_ALLOW_STREAMS, "") == "1":
        words.append("The operator allows camera stream URLs on Live (--allow-streams).")
    return words


def cluster_refusal() -> str:
    """Why the dashboard must not be shared with the cluster it was given, or "": shared, a cluster on a public
    address is refused unless the operator started with --allow-public-cluster (README, "Sharing")."""
    from core.config import ENV_CLUSTER

    address = os.environ.get(ENV_CLUSTER, "").strip()
    if not shared() or not address or os.environ.get(ENV_ALLOW_PUBLIC_CLUSTER, "") == "1":
        return ""
    from core.cluster import public_reason

    return public_reason(address)


def token_ok(given: str, token: str) -> bool:
    """Constant-time comparison; an empty token never grants access."""
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


@st.cache_resource(show_spinner=False)
def _granted_keys() -> set[str]:
    """The session keys (ui.persist, in the address bar) of sessions that came with the token: a reload of
    such a tab is a new Streamlit session, and keeps its access by its key (as random as the token)."""
    return set()


def granted() -> bool:
    """Whether this session may use the app; takes the token out of the address bar once it was checked."""
    if not shared() or st.session_state.get(_GRANTED):
        return True
    from ui.persist import QUERY_PARAM as SESSION_PARAM

    if st.query_params.get(SESSION_PARAM, "") in _granted_keys():
        st.session_state[_GRANTED] = True
        return True
    if token_ok(st.query_params.get(QUERY_PARAM, ""), os.environ.get(ENV_TOKEN, "")):
        st.session_state[_GRANTED] = True
        del st.query_params[QUERY_PARAM]
        return True
    return False


def keep(session_key: str) -> None:
    """A granted session's key: a reload of its tab (the key stays in the address bar) keeps its access."""
    if shared() and st.session_state.get(_GRANTED):
        _granted_keys().add(session_key)


def access_page() -> None:
    """All a visitor without the token sees: nothing of the app runs for them."""
    st.title("YOLO Lab")
    if not os.environ.get(ENV_TOKEN):
        st.error("Shared without an access token: its operator starts it with ./start.sh --share.")
    else:
        st.info(
            "This dashboard is shared by link. Ask the person who runs it for the link: it carries the access token."
        )
