"""YOLO Lab: compare YOLOv5 variants side by side. Entry point: navigation and the shared sidebar."""

from pathlib import Path

import streamlit as st

from ui import access, model, navigation, persist, widgets

ASSETS = Path(__file__).resolve().parent / "assets"

navigation.through_app_navigation()

# a local file: a Material icon here would make every browser fetch the favicon from Google's font CDN
st.set_page_config(page_title="YOLO Lab", page_icon=str(ASSETS / "favicon.png"), layout="wide")
if why := access.cluster_refusal():  # shared with a cluster on a public address: refuse to serve anything
    st.error(f"Not shared: {why}.")
    st.stop()
if not access.granted():  # shared, and this visitor has no token: nothing of the app runs for them
    st.navigation([st.Page(access.access_page, title="YOLO Lab")], position="hidden").run()
    st.stop()
persist.begin()  # a reload finds this session's results again (the key is in the URL)
access.keep(persist.session_key())  # shared: a reload of a tab that came with the token keeps its access

pages = {
    "Compare": [
        st.Page("pages/compare_images.py", title="Compare images", icon=":material/image:", default=True),
        st.Page("pages/compare_video.py", title="Compare video", icon=":material/movie:"),
        st.Page("pages/live.py", title="Live", icon=":material/videocam:"),
    ],
    "Measure": [
        st.Page("pages/benchmark.py", title="Benchmark", icon=":material/timer:"),
        st.Page("pages/accuracy.py", title="Accuracy", icon=":material/target:"),
        st.Page("pages/precision.py", title="Precision explorer", icon=":material/tune:"),
    ],
    "Setup & share": [
        st.Page("pages/models.py", title="Models", icon=":material/deployed_code:"),
        st.Page("pages/report.py", title="Report", icon=":material/description:"),
    ],
}
page = st.navigation(pages)
st.logo(str(ASSETS / "logo.svg"))

with st.sidebar:
    choice = model.model_choice()
    st.markdown(f"**Model:** `{choice.label}` @ {choice.input_words}")
    model.shape_picker()
    st.caption(
        f"INT8 calibration: `{choice.calib_dir}`"
        if choice.calib_dir
        else "INT8 calibration: the bundled pictures, for a first look (set a folder of your own on the Models page)"
    )
    st.caption(f"Uploads up to {widgets.MAX_UPLOAD_MB} MB per file.")
    st.caption(f"Measured on: {widgets.machine()}")
    for words in access.sidebar_words():
        st.caption(words)

try:
    page.run()
finally:  # also when the page stops early (st.stop) or reruns
    persist.save()
