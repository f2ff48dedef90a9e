"""The decision card's "Download deployment bundle": the chosen variant as a zip that runs and checks itself.

Building runs the variant on the sample pictures (to record the detections verify.py checks), so it waits behind
a "Prepare deployment bundle" button; the zip then stays in the session until the variant or the model changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from core.data import sample_images
from core.deploy.bundle import Bundle, card_dict, make_bundle, sample_ship_images
from core.errors import CoreError
from core.measure import DecisionCard
from core.model import ModelStore
from core.runtime import PostParams
from core.variants import Variant
from ui import messages


def bundle_download(store: ModelStore | None, cards: Sequence[DecisionCard], key: str) -> None:
    """A variant picker, "Prepare deployment bundle", then the download of its zip (see core.deploy.bundle)."""
    if store is None or not cards:
        return
    with st.expander("Deployment bundle"):
        names = [c.variant for c in cards]
        default = next((i for i, c in enumerate(cards) if not c.is_reference), 0)
        chosen = st.selectbox("Variant to ship", names, index=default, key=f"{key}:ship:variant")
        card = cards[names.index(chosen)]
        st.caption(
            "A zip with the exact model graph the variant ran, its settings, this decision card, a standalone "
            "infer.py (the runtime, numpy and opencv only) and verify.py, which re-checks the detections recorded "
            "on the sample pictures. TensorRT variants ship the ONNX file and the engine build settings."
        )
        slot = f"{key}:ship:bundle"
        stamp = (chosen, str(store.directory), store.shape.value, card.conf)
        kept = st.session_state.get(slot)
        if kept is not None and kept[0] != stamp:
            kept = st.session_state[slot] = None
        if st.button("Prepare deployment bundle", key=f"{key}:ship:prepare"):
            try:
                with st.spinner(f"running {chosen} on the sample pictures"):
                    bundle = make_bundle(
                        store,
                        Variant.parse(chosen),
                        sample_ship_images(sample_images()),
                        PostParams(conf=card.conf),
                        decision=card_dict(card),
                    )
            except CoreError as exc:
                st.error(messages.error_text(exc))
                return
            kept = st.session_state[slot] = (stamp, bundle)
        if kept is not None:
            made: Bundle = kept[1]
            st.caption(made.rerun)
            st.download_button(
                "Download deployment bundle",
                made.data,
                file_name=f"{made.folder}.zip",
                mime="application/zip",
                key=f"{key}:ship:download",
            )
