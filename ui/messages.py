"""The engine's errors in the dashboard's words: the engine names the setting that remedies an error
(:class:`core.errors.Setting`), the CLI adds its flag, and the pages say which widget to use."""

from __future__ import annotations

from core.config import ENV_CLUSTER, ENV_MODELS_DIR
from core.errors import CoreError, Setting

PAGE_WORDS = {
    Setting.CALIBRATION: "choose a calibration folder on the Models page (a few hundred images from your training "
    "set; never the evaluation set)",
    Setting.TRUST: "tick 'I trust this file' on the Models page only if you trust where it came from",
    Setting.CLUSTER: f"start the app with ${ENV_CLUSTER} set to the cluster's address (HOST:PORT, or auto)",
    Setting.IMGSZ: "choose the model's own image size on the Models page",
    Setting.SHAPE: "choose the square input shape on the Models page",
    Setting.MODELS_DIR: f"or start the app with ${ENV_MODELS_DIR} naming a folder that holds it",
    Setting.INT8_FLAVOUR: "choose the trt flavour",
    Setting.TARGET: "set the explorer's target (largest mAP drop, or smallest speed-up)",
}


def error_text(exc: BaseException) -> str:
    """One line for the page: the engine's words, then the widget that remedies it."""
    from ui import access

    if isinstance(exc, CoreError) and exc.setting is Setting.TRUST and not access.trusted_pickles():
        return f"{exc}: this shared dashboard does not load such files"
    if isinstance(exc, CoreError) and exc.setting in PAGE_WORDS:
        return f"{exc}: {PAGE_WORDS[exc.setting]}"
    return str(exc)
